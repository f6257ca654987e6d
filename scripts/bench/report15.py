"""Issue 15's part of scripts/bench/report.py: the mobility set (check, export, copy and
ECC on the linux data, scripts/bench/mobility.sh) as figures side by side, ratios, and
the targets with met / NOT met. Imported by report.py, which passes its Report, fmt and
render in.
"""

S = "mobility"
CHECK_VS_B3SUM = 1.5  # cairn check with checksums / find | xargs b3sum, both warm
EXPORT_VS_RESTIC = 0.5  # cairn export / restic dump to /dev/null, both cold (>= 2x faster)
COPY_VS_BACKUP = 1 / 3  # cairn copy (B shares A's chunker and keys) / fresh backup (>= 3x)
FIGURES = ["backup", "restore", "check", "export", "copy",
           "ecc5-backup", "ecc5-restore", "ecc10-backup", "ecc10-restore"]


def issue15(rep, fmt, render):
    """The mobility table, then each issue-15 target with met / NOT met."""
    g = rep.get
    if g(S, "cairn", "backup", "time_s") is None and g(S, "restic", "export", "time_s") is None:
        return []
    rows = []
    for f in FIGURES:
        rows.append((f, "time_s", None))
        rows.append((f, "rss_mb", None))
        if f.endswith("backup") or f == "copy":
            rows.append((f, "size_mb", None))
    files = g(S, "source", "data", "files")
    data = g(S, "source", "data", "data_bytes")
    extra = f": {files:.0f} files, {data / 1048576:.0f} MiB" if files and data else ""
    title, head, lines = rep.table(f"mobility: check, export, copy, ECC (the linux data{extra})",
                                   S, rows)
    out = [""] + render(title, head, lines)
    out += ["", "issue 15 (integrity and mobility), same run:"]
    first = len(rep.met)

    def target(label, c, other, bound, what):
        if c is None or not other:
            return
        r = c / other
        out.append(f"    {label}: {r:.2f}x {what}; target <= {bound:.2f}x: "
                   + rep.verdict(label, r <= bound))

    c = g(S, "cairn", "check", "time_s")
    m = g(S, "machine", "b3sum", "time_s")
    out.append(f"  check against the source, checksums on, warm: cairn {fmt(c)} s, "
               f"find | xargs b3sum {fmt(m)} s")
    target("check vs b3sum", c, m, CHECK_VS_B3SUM, "of b3sum")
    c, r = g(S, "cairn", "export", "time_s"), g(S, "restic", "export", "time_s")
    out.append(f"  export of the point to /dev/null, cold: cairn {fmt(c)} s, restic dump {fmt(r)} s")
    target("export vs restic dump", c, r, EXPORT_VS_RESTIC, "of restic dump")
    c, b = g(S, "cairn", "copy", "time_s"), g(S, "cairn", "backup", "time_s")
    out.append(f"  copy into a repository made --like the source, cold: {fmt(c)} s; "
               f"the fresh backup {fmt(b)} s")
    target("copy vs fresh backup", c, b, COPY_VS_BACKUP, "of the backup")
    size = g(S, "cairn", "backup", "size_mb")
    for pct in (5, 10):
        parts = []
        for what, base in (("backup", "backup"), ("restore", "restore")):
            v, w = g(S, "cairn", f"ecc{pct}-{what}", "time_s"), g(S, "cairn", base, "time_s")
            if v is not None and w:
                parts.append(f"{what} {fmt(v)} s ({(v / w - 1) * 100:+.0f}%)")
        es = g(S, "cairn", f"ecc{pct}-backup", "size_mb")
        if es is not None and size:
            parts.insert(0, f"size {fmt(es)} MiB ({(es / size - 1) * 100:+.1f}%)")
        if parts:
            out.append(f"  ECC {pct}%: " + ", ".join(parts) + " against no parity")
    mine = rep.met[first:]
    if mine:
        out.append(f"  issue 15 targets met: {sum(ok for _, ok in mine)} of {len(mine)}")
    return out
