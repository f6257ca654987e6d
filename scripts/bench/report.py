#!/usr/bin/env python3
"""Tables from scripts/bench.sh's results.tsv: medians over rounds, cairn / faster peer,
and issue 4's targets with met / NOT met (issue 14's: report14.py; 15's: report15.py;
16's: report16.py).

  report.py RESULTS.tsv [--rounds N]

RESULTS.tsv rows: set, round, tool, figure, metric, value.
"""

import argparse
import collections
import statistics
import sys

import report14
import report15
import report16

PEERS = ["restic", "borg"]
BACKUPS = ["first-backup", "nochange-backup", "changed-backup"]
MOUNT_OPS = ["mount-first-byte", "mount-find", "mount-read-cold", "mount-read-warm"]
HIGHER_IS_BETTER = {"mb_s"}
DUMP_FIGURES = ["stream-1x", "stream-again", "stream-4x"]
DUMP_RSS_GROWTH_MAX = 64  # MiB the daemon may grow by while a dump streams in
DUMP_PIPE_FRACTION = 0.8  # of `cat DUMP | zstd -3 -T0`
DUMP_AGAIN_MAX_PCT = 1.0  # stored by a second, unchanged dump, in % of its size
FLAT_MAX = 1.5  # "flat": 10x the data costs at most 1.5x the peak RSS
PITR_RPO_MAX_S = 2.0  # a write is restorable within 2 s
PITR_IDLE_CPU_MAX_S = 1.0  # daemon CPU for 1,000 idle archive passes
PITR_MIB_PASS_MAX_OBJECTS = 2  # objects a pass with 1 MiB new may write
PITR_RESTORE_MAX_RATIO = 1.5  # restore at a time / plain restore of the same bytes
PITR_CAT_MAX_RATIO = 1.1  # cat under @TIME/ / the same file under latest/

# (figure, metric) -> (against, bound): cairn / peer must be <= bound ("best": the better
# peer on that figure; "restic": restic alone).
TARGETS = {
    ("first-backup", "time_s"): ("best", 0.4),
    ("nochange-backup", "time_s"): ("best", 0.3),
    ("changed-backup", "time_s"): ("best", 0.5),
    ("restore", "time_s"): ("best", 0.5),
    ("mount-read-cold", "time_s"): ("best", 1 / 6),
    ("mount-find", "time_s"): ("best", 0.25),
}
for _f in BACKUPS:
    TARGETS[(_f, "size_mb")] = ("restic", 1.0)


def load(path):
    rows = collections.defaultdict(list)
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 6:
            continue
        s, _round, tool, fig, metric, val = parts
        try:
            rows[(s, tool, fig, metric)].append(float(val))
        except ValueError:
            pass
    return {k: statistics.median(v) for k, v in rows.items()}


def fmt(v, metric=""):
    if v is None:
        return "-"
    if metric == "stored_pct":
        return f"{v:.2f}"
    if metric.endswith("_mb") or metric.endswith("_per_GB") or metric == "entries" \
            or metric.startswith("req_") or metric.startswith("fuse_"):
        return f"{v:.0f}"
    if abs(v) < 0.1 and v:
        return f"{v:.3f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


class Report:
    def __init__(self, med):
        self.med = med
        # "ext4": the same operation on the source, the disk's baseline (never a peer).
        self.tools = [t for t in ["cairn"] + PEERS + ["ext4"]
                      if any(k[1] == t for k in med)]
        self.met = []

    def get(self, s, tool, fig, metric):
        return self.med.get((s, tool, fig, metric))

    def ratio(self, s, fig, metric, against="best"):
        c = self.get(s, "cairn", fig, metric)
        peers = [self.get(s, p, fig, metric) for p in PEERS] if against == "best" \
            else [self.get(s, against, fig, metric)]
        peers = [p for p in peers if p is not None]
        if c is None or not peers:
            return None
        best = max(peers) if metric in HIGHER_IS_BETTER else min(peers)
        return c / best if best else None

    def verdict(self, label, ok):
        self.met.append((label, ok))
        return "met" if ok else "NOT met"

    def target(self, s, fig, metric):
        if s in ("s3", "s3lat", "bigdir") or fig.endswith("-warm"):
            return ""  # issue 4's targets are for the local sets, cold (14's, 16's: report1x.py)
        if (fig, metric) in TARGETS:
            against, bound = TARGETS[(fig, metric)]
            r = self.ratio(s, fig, metric, against)
            if r is None:
                return ""
            who = "" if against == "best" else f" {against}"
            return f"<= {bound:.2f}x{who}: {self.verdict(f'{s} {fig} {metric}', r <= bound)}" + (
                f" ({r:.2f})" if against != "best" else "")
        if metric in ("rss_mb", "daemon_rss_mb"):
            r = self.ratio(s, fig, metric)
            if r is None:
                return ""
            return f"< 1.00x: {self.verdict(f'{s} {fig} {metric}', r < 1.0)}"
        if fig == "mount-read-warm" and metric == "daemon_out_mb":
            warm = self.get(s, "cairn", fig, metric)
            data = self.get(s, "cairn", "mount-read-cold", "tar_bytes")
            if warm is None or not data:
                return ""
            ok = warm * 1048576 <= 0.05 * data
            return f"page cache: {self.verdict(f'{s} warm re-read from page cache', ok)}"
        return ""

    def table(self, title, s, rows):
        tools = [t for t in self.tools if any(k[0] == s and k[1] == t for k in self.med)]
        head = ["figure", "metric"] + tools + ["cairn/best", "target"]
        lines = []
        for fig, metric, label in rows:
            vals = [self.get(s, t, fig, metric) for t in tools]
            if all(v is None for v in vals):
                continue
            r = self.ratio(s, fig, metric)
            lines.append([label or fig, metric] + [fmt(v, metric) for v in vals]
                         + ["-" if r is None else f"{r:.2f}x", self.target(s, fig, metric)])
        return title, head, lines

    def local_rows(self, s):
        rows = []
        for f in BACKUPS:
            rows += [(f, "time_s", None), (f, "rss_mb", None), (f, "size_mb", None)]
        rows += [("restore", "time_s", None), ("restore", "rss_mb", None),
                 ("mount-idle", "daemon_vmrss_mb", None)]
        for f in MOUNT_OPS + ["mount-ls"]:
            rows += [(f, "time_s", None), (f, "daemon_rss_mb", None), (f, "daemon_cpu_s", None)]
            if f.startswith("mount-read"):
                rows.append((f, "daemon_out_mb", None))
            if f in ("mount-find", "mount-ls"):
                rows.append((f, "entries", None))
            if f == "mount-find":
                rows += [(f, "daemon_vmrss_mb", None), (f, "fuse_inodes", None),
                         ("drop-caches", "daemon_vmrss_mb", None), ("drop-caches", "fuse_inodes", None)]
            if f == "mount-read-cold":
                rows.append((f, "fuse_requests_total", None))
        at = rows.index(("mount-read-cold", "daemon_out_mb", None)) + 1
        rows.insert(at, ("mount-read-cold", "mb_s", None))
        rows.append(("mount-daemon", "daemon_rss_mb", None))
        return rows

    def derive(self, s):
        """mount read MB/s from the tar's bytes; requests per GB stored."""
        for t in self.tools:
            b = self.get(s, t, "mount-read-cold", "tar_bytes")
            secs = self.get(s, t, "mount-read-cold", "time_s")
            if b and secs:
                self.med[(s, t, "mount-read-cold", "mb_s")] = b / secs / 1e6

    def s3_rows(self):
        s = "s3"
        kinds = ["GET", "PUT", "LIST", "HEAD", "DELETE", "POST", "OTHER", "total"]
        rows = []
        for f in BACKUPS + ["restore"]:
            rows += [(f, "time_s", None), (f, "rss_mb", None)]
            if f != "restore":
                rows.append((f, "size_mb", None))
        for t in self.tools:
            size = self.get(s, t, "changed-backup", "size_mb")
            gb = size * 1048576 / 1e9 if size else None
            for f in BACKUPS + ["restore"]:
                for k in kinds:
                    n = self.get(s, t, f, f"req_{k}")
                    if n is not None and gb:
                        self.med[(s, t, f, f"req_{k}_per_GB")] = n / gb
                        tot = self.med.get((s, t, "all", f"req_{k}_per_GB"), 0.0)
                        self.med[(s, t, "all", f"req_{k}_per_GB")] = tot + n / gb
        for f in BACKUPS + ["restore", "all"]:
            for k in kinds:
                vals = [self.get(s, t, f, f"req_{k}_per_GB") for t in self.tools]
                if k == "total" or any(v for v in vals if v):
                    rows.append((f, f"req_{k}_per_GB", None))
        return rows

    def flat_rows(self):
        """RSS at 1x (small1x) and 10x (small), and 10x / 1x."""
        out = []
        for fig, metric in (("first-backup", "rss_mb"), ("mount-daemon", "daemon_rss_mb")):
            label1 = f"1x: {fig}"
            labelr = f"10x/1x: {fig}"
            for t in self.tools:
                one = self.get("small1x", t, fig, metric)
                ten = self.get("small", t, fig, metric)
                if one is not None:
                    self.med[("small", t, label1, metric)] = one
                if one and ten is not None:
                    self.med[("small", t, labelr, "rss_10x/1x")] = ten / one
            out += [(label1, metric, None), (labelr, "rss_10x/1x", None)]
        return out

    def flat_target(self, lines):
        for line in lines:
            if line[0].startswith("10x/1x"):
                c = self.get("small", "cairn", line[0], line[1])
                line[-2] = "-"
                if c is not None:
                    line[-1] = (f"cairn <= {FLAT_MAX}: "
                                + self.verdict(f"flat RSS {line[0]}", c <= FLAT_MAX))

    def throughput(self, s):
        out = []
        data = self.get(s, "source", "data", "data_bytes")
        lim = s if s != "s3" else "linux"
        stages = {k[2]: v for k, v in self.med.items()
                  if k[0] == lim and k[1] == "machine" and k[2].endswith("-allcores")}
        disk_r = self.get("machine", "machine", "disk-read", "mb_s")
        disk_w = self.get("machine", "machine", "disk-write-fdatasync", "mb_s")
        if disk_r is not None and s != "s3":
            stages["disk-read"] = disk_r
        b = self.get(s, "cairn", "first-backup", "time_s")
        if data and b and stages:
            name, z = min(stages.items(), key=lambda kv: kv[1])
            x = data / b / 1e6
            out.append(f"  backup throughput {x:.0f} MB/s = {100 * x / z:.0f}% of the slowest stage "
                       f"limit {z:.0f} MB/s ({name}); target >= 70%: "
                       + self.verdict(f"{s} backup vs machine", x >= 0.7 * z))
        r = self.get(s, "cairn", "restore", "time_s")
        if data and r and disk_w:
            x = data / r / 1e6
            out.append(f"  restore {x:.0f} MB/s = {100 * x / disk_w:.0f}% of disk write "
                       f"{disk_w:.0f} MB/s; target >= 70%: "
                       + self.verdict(f"{s} restore vs disk", x >= 0.7 * disk_w))
        return out


def dump_report(rep):
    """The dump set: derived figures, the table, and issue 12's targets."""
    s = "dump"
    data = rep.get(s, "source", "data", "data_bytes")
    if not data:
        return []
    for t in rep.tools:
        secs = rep.get(s, t, "stream-1x", "time_s")
        if secs:
            rep.med[(s, t, "stream-1x", "mb_s")] = data / secs / 1e6
        for fig in DUMP_FIGURES:
            daemon = rep.get(s, t, fig, "daemon_rss_mb")
            base = rep.get(s, t, fig, "daemon_base_mb")
            peak = daemon if daemon is not None else rep.get(s, t, fig, "rss_mb")
            if peak is not None:
                rep.med[(s, t, fig, "peak_rss_mb")] = peak
            if daemon is not None and base is not None:
                rep.med[(s, t, fig, "rss_growth_mb")] = daemon - base
        first = rep.get(s, t, "stream-1x", "size_mb")
        again = rep.get(s, t, "stream-again", "size_mb")
        if first is not None and again is not None:
            rep.med[(s, t, "stream-again", "stored_pct")] = 100 * (again - first) * 1048576 / data
    rows = [("stream-1x", m, None) for m in ("time_s", "mb_s", "peak_rss_mb", "rss_growth_mb")]
    rows += [("stream-again", m, None) for m in ("time_s", "stored_pct")]
    rows += [("stream-4x", m, None) for m in ("time_s", "peak_rss_mb", "rss_growth_mb")]
    title, head, lines = rep.table(f"SQL dump from a command's stdout: {data / 1048576:.0f} MiB "
                                   "(cairn: RSS of the mount daemon)", s, rows)
    out = [""] + render(title, head, lines)
    pipe_secs = rep.get(s, "machine", "zstd-pipe", "time_s")
    cairn = rep.get(s, "cairn", "stream-1x", "mb_s")
    if pipe_secs and cairn:
        pipe = data / pipe_secs / 1e6
        out.append(f"  stream {cairn:.0f} MB/s = {100 * cairn / pipe:.0f}% of `cat | zstd -3 -T0` "
                   f"{pipe:.0f} MB/s; target >= {100 * DUMP_PIPE_FRACTION:.0f}%: "
                   + rep.verdict("dump stream vs zstd pipe", cairn >= DUMP_PIPE_FRACTION * pipe))
    for fig in ("stream-1x", "stream-4x"):
        g = rep.get(s, "cairn", fig, "rss_growth_mb")
        if g is not None:
            out.append(f"  {fig}: the daemon grew by {g:.0f} MiB; target < {DUMP_RSS_GROWTH_MAX}: "
                       + rep.verdict(f"dump {fig} RSS growth", g < DUMP_RSS_GROWTH_MAX))
    pct = rep.get(s, "cairn", "stream-again", "stored_pct")
    if pct is not None:
        out.append(f"  an unchanged dump again stored {pct:.2f}% of its size; target < "
                   f"{DUMP_AGAIN_MAX_PCT:.0f}%: "
                   + rep.verdict("dump unchanged again", pct < DUMP_AGAIN_MAX_PCT))
    return out


def pitr_report(rep):
    """The pitr set (cairn only): the table, and issue 13's targets."""
    s = "pitr"
    if not any(k[0] == s and k[1] == "cairn" for k in rep.med):
        return []
    g = lambda fig, metric: rep.get(s, "cairn", fig, metric)  # noqa: E731
    base = rep.get(s, "source", "data", "base_bytes")
    logs = rep.get(s, "source", "data", "log_bytes")
    pass_bytes, pass_secs = g("log-pass", "pass_bytes"), g("log-pass", "time_s")
    if pass_bytes and pass_secs:
        rep.med[(s, "cairn", "log-pass", "mb_s")] = pass_bytes / pass_secs / 1e6
    for fig in ("restore-at", "restore-plain"):
        secs = g(fig, "time_s")
        if base and logs and secs:
            rep.med[(s, "cairn", fig, "mb_s")] = (base + logs) / secs / 1e6
    for fig in ("cat-at", "cat-latest"):
        secs = g(fig, "time_s")
        if base and secs:
            rep.med[(s, "cairn", fig, "mb_s")] = base / secs / 1e6
    rows = [("rpo", m, None) for m in ("delay_median_s", "delay_max_s", "samples")]
    rows += [("idle-passes", m, None) for m in
             ("seconds", "passes", "cpu_ticks", "cpu_s", "cpu_per_1000_s", "tick_per_1000_s",
              "threads_cpu_per_1000_s", "archiver_cpu_per_1000_s",
              "log_objects", "repo_objects")]
    rows += [("mib-pass", m, None) for m in ("log_objects", "repo_objects")]
    rows += [("base-backup", "time_s", None), ("log-pass", "time_s", None),
             ("log-pass", "mb_s", None), ("whole-backup", "time_s", None)]
    for fig in ("restore-at", "restore-plain"):
        rows += [(fig, "time_s", None), (fig, "mb_s", None)]  # rss_mb: the CLI following the job
    rows.append(("at-lookup", "time_s", None))
    for fig in ("cat-at", "cat-latest"):
        rows += [(fig, "time_s", None), (fig, "mb_s", None), (fig, "daemon_rss_mb", None),
                 (fig, "daemon_cpu_s", None)]
    sizes = (f": base {base / 1048576:.0f} MiB + logs {logs / 1048576:.0f} MiB"
             if base and logs else "")
    tools, rep.tools = rep.tools, ["cairn"]
    title, head, lines = rep.table(f"point-in-time restore{sizes} (cairn only: restic and borg "
                                   "archive no logs and cannot restore to a second)", s, rows)
    rep.tools = tools
    for line in lines:  # no peer: no ratio, no per-figure target
        del line[-2:]
    out = [""] + render(title, head[:-2], lines)
    med, mx = g("rpo", "delay_median_s"), g("rpo", "delay_max_s")
    if mx is not None:
        out.append(f"  RPO: a write restorable {med:.2f} s after it (median), {mx:.2f} s at most; "
                   f"target <= {PITR_RPO_MAX_S:.0f} s: "
                   + rep.verdict("pitr RPO", mx <= PITR_RPO_MAX_S))
    cpu, objs = g("idle-passes", "cpu_per_1000_s"), g("idle-passes", "log_objects")
    if cpu is not None and objs is not None:
        others = g("idle-passes", "repo_objects")
        out.append(f"  idle passes: {objs:.0f} objects under logs/ ({others:.0f} in the whole "
                   "repository); target 0: " + rep.verdict("pitr idle pass writes", objs == 0))
        tick = g("idle-passes", "tick_per_1000_s") or 0.0
        exact = g("idle-passes", "threads_cpu_per_1000_s")
        # The ticks' difference is off by up to one tick either way; schedstat misses
        # threads that exited: the estimate is the larger of schedstat and ticks - 1.
        worst = max(cpu - tick, exact) if exact is not None else cpu + tick
        out.append(f"  idle passes: the daemon's CPU per 1,000 passes {cpu:.3f} s (utime+stime, whole "
                   f"ticks of {tick:.3f} s), {fmt(exact)} s (its threads' schedstat; the archiver thread "
                   f"{fmt(g('idle-passes', 'archiver_cpu_per_1000_s'))} s); target < "
                   f"{PITR_IDLE_CPU_MAX_S:.0f} s: "
                   + rep.verdict("pitr idle pass CPU", worst < PITR_IDLE_CPU_MAX_S))
    n = g("mib-pass", "repo_objects")
    if n is not None:
        out.append(f"  a pass with 1 MiB new wrote {n:.0f} object(s); target <= "
                   f"{PITR_MIB_PASS_MAX_OBJECTS}: "
                   + rep.verdict("pitr 1 MiB pass objects", n <= PITR_MIB_PASS_MAX_OBJECTS))
    at, plain = g("restore-at", "time_s"), g("restore-plain", "time_s")
    if at and plain:
        r = at / plain
        out.append(f"  restore at a time {at:.2f} s vs plain restore of the same bytes as one "
                   f"point {plain:.2f} s = {r:.2f}x; target <= {PITR_RESTORE_MAX_RATIO}x: "
                   + rep.verdict("pitr restore vs plain", r <= PITR_RESTORE_MAX_RATIO))
    disk_w = rep.get("machine", "machine", "disk-write-fdatasync", "mb_s")
    x = g("restore-at", "mb_s")
    if x and disk_w:
        out.append(f"  restore at a time {x:.0f} MB/s = {100 * x / disk_w:.0f}% of disk write "
                   f"{disk_w:.0f} MB/s (no target)")
    cat_at, cat_latest = g("cat-at", "time_s"), g("cat-latest", "time_s")
    if g("cat-at", "unavailable"):
        out.append("  cat under @TIME/: not measured: @TIME not available in this build")
    elif cat_at and cat_latest:
        r = cat_at / cat_latest
        out.append(f"  cat under @TIME/ {cat_at:.2f} s vs latest/ {cat_latest:.2f} s = {r:.2f}x; "
                   f"target <= {PITR_CAT_MAX_RATIO}x: "
                   + rep.verdict("pitr cat under @TIME", r <= PITR_CAT_MAX_RATIO))
    return out


def render(title, head, lines):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)] if lines else []
    out = [title]
    if not lines:
        return out + ["  (no figures)"]
    for row in [head] + lines:
        cells = [str(c).ljust(w) if i < 2 or i == len(row) - 1 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args()
    med = load(args.results)
    rep = Report(med)
    out = [f"cairn / restic / borg, medians of {args.rounds} round(s); ratio = cairn / faster "
           "peer (for MB/s: cairn / higher peer); times in s, sizes and RSS in MiB"]
    m = {k[2]: v for k, v in med.items() if k[1] == "machine"}
    if "disk-read" in m or "disk-write-fdatasync" in m:
        out.append("")
        out.append("machine limits (MB/s = 10^6 B/s): "
                   f"disk write+fdatasync {fmt(m.get('disk-write-fdatasync'))}, "
                   f"disk read {fmt(m.get('disk-read'))}")
        for s in ("linux", "sqlite", "small"):
            st = {k[2]: v for k, v in med.items() if k[0] == s and k[1] == "machine"}
            if st:
                out.append(f"  {s:<7} " + ", ".join(
                    f"{name} {fmt(st.get(name + '-1core'))} / {fmt(st.get(name + '-allcores'))}"
                    for name in ("blake3", "cdc-blake3", "zstd3")) + "  (1 core / all cores)")
            data = med.get((s, "source", "data", "data_bytes"))
            pipes = [(label, med.get((s, "machine", fig, "time_s"))) for label, fig in
                     (("tar cf | zstd -3 -T0", "tar-zstd"), ("tar xf + sync", "tar-x-sync"))]
            if data and any(t for _, t in pipes):
                out.append(f"  {s:<7} pipelines, warm: " + ", ".join(
                    f"{label} {data / t / 1e6:.0f} MB/s" for label, t in pipes if t))
    titles = {"linux": "Linux source tree", "sqlite": "SQLite database (1% of pages changed)",
              "small": "small files (deep directories)", "s3": "S3 (SeaweedFS on loopback, "
              "Linux tree; requests per GB of repository after the changed backup)",
              "bigdir": "one big directory (ls -f through a fresh mount, cold)"}
    for s in ("linux", "sqlite", "small", "bigdir", "s3"):
        if not any(k[0] == s and k[1] != "source" for k in med):
            continue
        rep.derive(s)
        rows = rep.s3_rows() if s == "s3" else rep.local_rows(s)
        flat = rep.flat_rows() if s == "small" else []
        files = med.get((s, "source", "data", "files"))
        data = med.get((s, "source", "data", "data_bytes"))
        extra = f": {files:.0f} files, {data / 1048576:.0f} MiB" if files and data else ""
        pct = med.get((s, "source", "data", "pages_changed_pct"))
        extra += f", {pct:.2f}% of pages changed" if pct is not None else ""
        title, head, lines = rep.table(f"{titles[s]}{extra}", s, rows + flat)
        if flat:
            rep.flat_target(lines)
        out.append("")
        out += render(title, head, lines)
        if s not in ("s3", "bigdir"):
            out += rep.throughput(s)
    if any(k[0] == "s3lat" and k[1] == "cairn" or k[0] == "s3lat" and k[1] == "restic" for k in med):
        out += report14.s3lat_table(rep, render)
    out += dump_report(rep)
    out += pitr_report(rep)
    out += report14.issue14(rep, fmt, render)
    out += report15.issue15(rep, fmt, render)
    out += report16.issue16(rep, fmt, render)
    sizes = {}
    for (s, t, fig, metric), v in med.items():
        if fig == "mount-read-cold" and metric == "tar_bytes":
            sizes.setdefault(s, {})[t] = v
    for s, by in sizes.items():
        if len(set(by.values())) > 1:
            out.append(f"WARNING: {s}: the mounts' tar streams differ in size: {by}")
    if rep.met:
        n = sum(ok for _, ok in rep.met)
        out.append("")
        out.append(f"targets met: {n} of {len(rep.met)}; not met: "
                   + (", ".join(label for label, ok in rep.met if not ok) or "none"))
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
