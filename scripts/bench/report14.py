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
    title, head, lines = rep.table(
        f"S3 behind {rtt} round trip per request (Linux drivers/{extra}); the mount as on "
        "another machine: fresh empty cache, mount = until the point shows", s, rows)
    return [""] + render(title, head, lines)


def ratio_line(rep, label, c, other, bound, what):
    if c is None or not other:
        return None
    r = c / other
    return f"    {label}: {r:.2f}x {what}; target <= {bound}x: " + rep.verdict(label, r <= bound)


def issue14(rep, fmt, render):
    """The issue-14 lines: figures side by side, then each target with met / NOT met."""
    g = rep.get
    out = ["", "issue 14 (the mount and S3 at scale), same run:"]

    def line(x):
        if x:
            out.append(x)

    # Big directory.
    ls = {t: g("bigdir", t, "mount-ls", "time_s") for t in ("cairn", "restic", "borg", "ext4")}
    if ls["cairn"] is not None:
        n = g("bigdir", "ext4", "mount-ls", "entries") or g("bigdir", "cairn", "mount-ls", "entries")
        out.append(f"  ls -f of one directory of {fmt(n)} entries, cold, fresh mount: "
                   + ", ".join(f"{t} {fmt(v)} s" for t, v in ls.items() if v is not None))
        line(ratio_line(rep, "bigdir ls -f vs ext4", ls["cairn"], ls["ext4"], LS_VS_DISK,
                        "of ext4"))
        line(ratio_line(rep, "bigdir ls -f vs restic", ls["cairn"], ls["restic"], LS_VS_RESTIC,
                        "of restic"))
    # find of the small set, cold tar of the Linux tree.
    for s, what in (("small", "find"), ("linux", "find")):
        c = g(s, "cairn", "mount-find", "time_s")
        if c is None:
            continue
        n = g(s, "ext4", "mount-find", "entries") or g(s, "cairn", "mount-find", "entries")
        out.append(f"  {s}: {what} of a point of {fmt(n)} entries, cold: " + ", ".join(
            f"{t} {fmt(g(s, t, 'mount-find', 'time_s'))} s"
            for t in ("cairn", "restic", "borg", "ext4") if g(s, t, "mount-find", "time_s")))
        if s == "small":
            line(ratio_line(rep, "small find vs ext4", c, g(s, "ext4", "mount-find", "time_s"),
                            FIND_VS_DISK, "of ext4"))
    c = g("linux", "cairn", "mount-read-cold", "time_s")
    if c is not None:
        out.append("  linux: cold tar of the mounted point: " + ", ".join(
            f"{t} {fmt(g('linux', t, 'mount-read-cold', 'time_s'))} s"
            for t in ("cairn", "restic", "borg", "ext4") if g("linux", t, "mount-read-cold", "time_s")))
        line(ratio_line(rep, "linux cold tar vs borg", c, g("linux", "borg", "mount-read-cold", "time_s"),
                        TAR_VS_BORG, "of borg"))
        total = g("linux", "cairn", "mount-read-cold", "fuse_requests_total")
        files = g("linux", "source", "data", "files")
        if total is not None and files:
            kinds = ", ".join(f"{k} {g('linux', 'cairn', 'mount-read-cold', 'fuse_req_' + k) / files:.2f}"
                              for k in FUSE_KINDS
                              if g("linux", "cairn", "mount-read-cold", "fuse_req_" + k))
            out.append(f"    cairn's FUSE requests per file during it: {total / files:.2f} ({kinds})")
        else:
            out.append("    cairn's FUSE requests per file: not reported by this build (.cairn/stats has no \"fuse\")")
    memory(rep, fmt, out)
    s3lat_targets(rep, fmt, out)
    return out


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
        idle, now = g(s, t, "mount-idle", "daemon_vmrss_mb"), g(s, t, "mount-find", "daemon_vmrss_mb")
        drop = g(s, t, "drop-caches", "daemon_vmrss_mb")
        one = g("small1x", t, "mount-find", "daemon_rss_mb")
        extra = ""
        if t == "cairn":
            a, b = g(s, t, "mount-find", "fuse_inodes"), g(s, t, "drop-caches", "fuse_inodes")
            extra = (f"; inodes {fmt(a)} -> {fmt(b)} after drop_caches" if a is not None
                     else "; inodes: not reported by this build")
        out.append(f"  mount daemon, small ({fmt(n)} entries), {t}: idle {fmt(idle, '_mb')}, peak during "
                   f"find {fmt(p, '_mb')}, after it {fmt(now, '_mb')}, 2 s after drop_caches "
                   f"{fmt(drop, '_mb')} MiB; find peak at 1x {fmt(one, '_mb')} MiB{extra}")
    out.append(f"    daemon peak for the find: {peak:.0f} MiB; target <= {PEAK_MAX_MB} MiB: "
               + rep.verdict("daemon peak find", peak <= PEAK_MAX_MB))
    idle, drop = g(s, "cairn", "mount-idle", "daemon_vmrss_mb"), g(s, "cairn", "drop-caches", "daemon_vmrss_mb")
    if idle is not None and drop is not None:
        out.append(f"    after drop_caches - idle: {drop - idle:.0f} MiB; target <= {DROP_OVER_IDLE_MB} MiB: "
                   + rep.verdict("daemon after drop_caches", drop - idle <= DROP_OVER_IDLE_MB))
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
        out.append(f"    {fig} {metric}: cairn {fmt(c)}, restic {fmt(r)} = {c / r:.2f}x; target "
                   f"<= {bound}x: " + rep.verdict(label, c / r <= bound))
    parts = []
    for t in ("cairn", "restic"):
        m, f = g(s, t, "mount", "time_s"), g(s, t, "mount-find", "time_s")
        if m is not None and f is not None:
            parts.append(f"{t} {m + f:.2f} s, {fmt((g(s, t, 'mount', 'req_total') or 0) + (g(s, t, 'mount-find', 'req_total') or 0))} requests")
    if parts:
        out.append("    mount + find on a fresh machine (no target): " + ", ".join(parts))
