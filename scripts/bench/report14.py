"""Issue 14's part of scripts/bench/report.py: the S3-latency table and the targets of the
mount and S3 at scale (big directories, `find` and cold `tar` against ext4 and borg, the
mount daemon's memory, S3 at a cloud round trip against restic), as ratios with met /
NOT met. Imported by report.py, which passes its Report, fmt and render in.
"""

KINDS = ["GET", "PUT", "LIST", "HEAD", "DELETE", "POST", "OTHER", "total"]
S3LAT_FIGURES = ["first-backup", "nochange-backup", "restore", "mount", "mount-find",
                 "mount-read-cold"]
FUSE_KINDS = ["lookup", "getattr", "open", "opendir", "read", "readdir", "readdirplus",
              "release", "releasedir", "forget", "readlink", "getxattr", "listxattr",
              "statfs", "other"]

ALL = ["cairn", "restic", "borg", "ext4"]
LS_VS_DISK = 3.0  # ls -f of 100k entries through the mount / on ext4, both cold
LS_VS_RESTIC = 0.3
FIND_VS_DISK = 3.0  # find of the 300k-entry point / of the source on ext4
TAR_VS_BORG = 0.5  # cold tar of the Linux tree through the mount
PEAK_MAX_MB = 128  # the daemon's peak during the 300k find
DROP_OVER_IDLE_MB = 32  # after drop_caches, over its idle RSS right after mounting
PEAK_10X = 1.2  # find peak, 10x the files / 1x
# S3 at --s3-rtt-ms: (figure, metric) -> cairn / restic bound
S3LAT_TARGETS = [
    ("nochange-backup", "time_s", 0.7),
    ("nochange-backup", "req_total", 1.5),
    ("restore", "time_s", 0.8),
    ("restore", "req_total", 2.0),
    ("mount-find", "time_s", 1.0),
    ("mount-read-cold", "time_s", 0.3),
    ("nochange-backup", "req_total_per_GB", 2.0),
]


def s3lat_table(rep, render):
    """The S3-latency set's table: time, RSS, stored size and requests by kind."""
    s = "s3lat"
    for t in rep.tools:
        size = rep.get(s, t, "nochange-backup", "size_mb")
        n = rep.get(s, t, "nochange-backup", "req_total")
        if size and n is not None:
            rep.med[(s, t, "nochange-backup", "req_total_per_GB")] = n / (size * 1048576 / 1e9)
    rows = []
    for f in S3LAT_FIGURES:
        rows.append((f, "time_s", None))
        rows.append((f, "daemon_rss_mb" if f.startswith("mount") else "rss_mb", None))
        if f.endswith("backup"):
            rows.append((f, "size_mb", None))
        if f == "mount-find":
            rows.append((f, "entries", None))
        for k in KINDS:
            vals = [rep.get(s, t, f, f"req_{k}") for t in rep.tools]
            if k == "total" or any(vals):
                rows.append((f, f"req_{k}", None))
        if f == "nochange-backup":
            rows.append((f, "req_total_per_GB", None))
    files = rep.get(s, "source", "data", "files")
    data = rep.get(s, "source", "data", "data_bytes")
    extra = f": {files:.0f} files, {data / 1048576:.0f} MiB" if files and data else ""
    rtt = rep.get(s, "source", "proxy", "rtt_ms")
    rtt = f"{rtt:.0f} ms" if rtt is not None else "a"
    data_name = ("the --quick slice's mm/" if rep.get(s, "source", "data", "quick")
                 else "the Linux tree's drivers/")
    title, head, lines = rep.table(
        f"S3 behind {rtt} round trip per request ({data_name}{extra}); the mount as on "
        "another machine: fresh empty cache, mount = until the point shows", s, rows)
    return [""] + render(title, head, lines)


def ratio_line(rep, label, c, other, bound, what):
    if c is None or not other:
        return None
    r = c / other
    return f"    {label}: {r:.2f}x {what}; target <= {bound}x: " + rep.verdict(label, r <= bound)


def side(rep, fmt, s, fig):
    """ "cairn X s, restic Y s, ..." for one figure, the tools that have it."""
    return ", ".join(f"{t} {fmt(rep.get(s, t, fig, 'time_s'))} s" for t in ALL
                     if rep.get(s, t, fig, "time_s") is not None)


def issue14(rep, fmt, render):
    """The issue-14 lines: figures side by side, then each target with met / NOT met."""
    g = rep.get
    out = ["", "issue 14 (the mount and S3 at scale), same run:"]
    first = len(rep.met)

    def line(x):
        if x:
            out.append(x)

    c = g("bigdir", "cairn", "mount-ls", "time_s")
    if c is not None:
        n = g("bigdir", "ext4", "mount-ls", "entries") or g("bigdir", "cairn", "mount-ls", "entries")
        out.append(f"  bigdir: ls -f of one directory ({fmt(n, 'entries')} lines with . and ..), "
                   "cold, fresh mount: " + side(rep, fmt, "bigdir", "mount-ls"))
        line(ratio_line(rep, "bigdir ls -f vs ext4", c, g("bigdir", "ext4", "mount-ls", "time_s"),
                        LS_VS_DISK, "of ext4"))
        line(ratio_line(rep, "bigdir ls -f vs restic", c,
                        g("bigdir", "restic", "mount-ls", "time_s"), LS_VS_RESTIC, "of restic"))
    for s in ("small", "linux"):
        c = g(s, "cairn", "mount-find", "time_s")
        if c is None:
            continue
        n = g(s, "ext4", "mount-find", "entries") or g(s, "cairn", "mount-find", "entries")
        out.append(f"  {s}: find of a point of {fmt(n, 'entries')} entries, cold: "
                   + side(rep, fmt, s, "mount-find"))
        if s == "small":
            line(ratio_line(rep, "small find vs ext4", c, g(s, "ext4", "mount-find", "time_s"),
                            FIND_VS_DISK, "of ext4"))
    c = g("linux", "cairn", "mount-read-cold", "time_s")
    if c is not None:
        out.append("  linux: cold tar of the mounted point: "
                   + side(rep, fmt, "linux", "mount-read-cold"))
        line(ratio_line(rep, "linux cold tar vs borg", c,
                        g("linux", "borg", "mount-read-cold", "time_s"), TAR_VS_BORG, "of borg"))
        out.append("    " + requests_per_file(rep))
    memory(rep, fmt, out)
    s3lat_targets(rep, fmt, out)
    mine = rep.met[first:]
    if mine:
        out.append(f"  issue 14 targets met: {sum(ok for _, ok in mine)} of {len(mine)}")
    return out if len(out) > 2 else []


def requests_per_file(rep):
    """cairn's FUSE requests per file during the Linux tree's cold tar (.cairn/stats)."""
    def per(metric):
        return rep.get("linux", "cairn", "mount-read-cold", metric)
    total, files = per("fuse_requests_total"), rep.get("linux", "source", "data", "files")
    if total is None or not files:
        return ("cairn's FUSE requests per file: not reported by this build "
                "(no \"fuse\" in .cairn/stats)")
    kinds = ", ".join(f"{k} {per('fuse_req_' + k) / files:.2f}" for k in FUSE_KINDS
                      if per("fuse_req_" + k))
    return f"cairn's FUSE requests per file during it: {total / files:.2f} ({kinds})"


def memory(rep, fmt, out):
    """The mount daemon's RSS around the small set's find and drop_caches."""
    g = rep.get
    s = "small"
    peak = g(s, "cairn", "mount-find", "daemon_rss_mb")
    if peak is None:
        return
    n = g(s, "cairn", "mount-find", "entries")
    for t in ("cairn", "restic", "borg"):
        p = g(s, t, "mount-find", "daemon_rss_mb")
        if p is None:
            continue
        mb = [fmt(x, "_mb") for x in (g(s, t, "mount-idle", "daemon_vmrss_mb"), p,
                                      g(s, t, "mount-find", "daemon_vmrss_mb"),
                                      g(s, t, "drop-caches", "daemon_vmrss_mb"),
                                      g("small1x", t, "mount-find", "daemon_rss_mb"))]
        extra = ""
        if t == "cairn":
            a, b = g(s, t, "mount-find", "fuse_inodes"), g(s, t, "drop-caches", "fuse_inodes")
            extra = (f"; inodes {fmt(a, 'entries')} -> {fmt(b, 'entries')} after drop_caches"
                     if a is not None else "; inodes: not reported by this build")
        out.append(f"  mount daemon, small ({fmt(n, 'entries')} entries), {t}: idle {mb[0]}, "
                   f"peak during find {mb[1]}, after it {mb[2]}, 2 s after drop_caches {mb[3]} "
                   f"MiB; find peak at 1x {mb[4]} MiB{extra}")
    out.append(f"    daemon peak for the find: {peak:.0f} MiB; target <= {PEAK_MAX_MB} MiB: "
               + rep.verdict("daemon peak find", peak <= PEAK_MAX_MB))
    idle = g(s, "cairn", "mount-idle", "daemon_vmrss_mb")
    drop = g(s, "cairn", "drop-caches", "daemon_vmrss_mb")
    if idle is not None and drop is not None:
        out.append(f"    after drop_caches - idle: {drop - idle:.0f} MiB; target <= "
                   f"{DROP_OVER_IDLE_MB} MiB: " + rep.verdict("daemon after drop_caches", drop - idle <= DROP_OVER_IDLE_MB))
    one = g("small1x", "cairn", "mount-find", "daemon_rss_mb")
    if one:
        out.append(f"    find peak 10x / 1x files: {peak / one:.2f}; target <= {PEAK_10X}: "
                   + rep.verdict("daemon find peak 10x", peak / one <= PEAK_10X))


def s3lat_targets(rep, fmt, out):
    g = rep.get
    s = "s3lat"
    if g(s, "cairn", "nochange-backup", "time_s") is None:
        return
    out.append("  S3 at the added round trip, cairn vs restic (mount: a fresh machine):")
    for fig, metric, bound in S3LAT_TARGETS:
        c, r = g(s, "cairn", fig, metric), g(s, "restic", fig, metric)
        if c is None or not r:
            continue
        label = f"s3lat {fig} {metric}"
        out.append(f"    {fig} {metric}: cairn {fmt(c, metric)}, restic {fmt(r, metric)} = "
                   f"{c / r:.2f}x; target <= {bound}x: " + rep.verdict(label, c / r <= bound))
    parts = []
    for t in ("cairn", "restic"):
        m, f = g(s, t, "mount", "time_s"), g(s, t, "mount-find", "time_s")
        if m is not None and f is not None:
            n = (g(s, t, "mount", "req_total") or 0) + (g(s, t, "mount-find", "req_total") or 0)
            parts.append(f"{t} {m + f:.2f} s, {n:.0f} requests")
    if parts:
        out.append("    mount + find on a fresh machine (no target): " + ", ".join(parts))
