"""Issue 16's part of scripts/bench/report.py: backups and restores with the page cache warm
(scripts/bench/warm.sh) against the pipelines' limits measured in the same run, the mount
daemon against --repo, the faster peer warm and cold, and peak RSS with the KDF's 64 MiB
apart. Imported by report.py, which passes its Report, fmt and render in.
"""

KDF_MB = 64  # Argon2id's memory when a repository is opened (the key file's m_cost)
WARM = ["first-backup-warm", "nochange-backup-warm", "restore-warm",
        "daemon-first-backup-warm", "daemon-nochange-backup-warm", "daemon-restore-warm"]
# (set, figure, machine figure) -> the least share of the limit's speed
OF_LIMIT = [("linux", "first-backup-warm", "tar-zstd", 0.85),
            ("small", "first-backup-warm", "tar-zstd", 0.70),
            ("linux", "restore-warm", "tar-x-sync", 0.85),
            ("small", "restore-warm", "tar-x-sync", 0.85)]
DAEMON_VS_REPO = 1.05
# figure -> cairn / faster peer bound, for the warm figure and the cold one
VS_PEER = {"first-backup": 0.4, "nochange-backup": 0.25, "restore": 0.5}
OPS = ["first-backup", "nochange-backup", "changed-backup", "restore"]


def issue16(rep, fmt, render):
    g = rep.get
    sets = [s for s in ("linux", "small") if g(s, "cairn", "first-backup-warm", "time_s")]
    if not sets:
        return []
    out = []
    for s in sets:
        # the daemon's figures are the CLI's time (its RSS is the CLI's, not shown)
        rows = [(f, m, None) for f in WARM for m in ("time_s", "rss_mb")
                if m == "time_s" or not f.startswith("daemon-")]
        title, head, lines = rep.table(f"{s}, page cache warm (restores end with sync)", s, rows)
        out += [""] + render(title, head, lines)
    out += ["", "issue 16 (backup and restore at the machine's limit), same run:"]
    first = len(rep.met)

    def check(label, ok, text):
        out.append(f"    {label}: {text}: " + rep.verdict(label, ok))

    for s in sets:
        data = g(s, "source", "data", "data_bytes")
        for s2, fig, lim, share in OF_LIMIT:
            c, m = g(s, "cairn", fig, "time_s"), g(s, "machine", lim, "time_s")
            if s2 != s or not c or not m or not data:
                continue
            pct = m / c
            out.append(f"  {s} {fig}: {data / c / 1e6:.0f} MB/s, {lim} {data / m / 1e6:.0f} MB/s")
            check(f"{s} {fig} vs {lim}", pct >= share,
                  f"{100 * pct:.0f}% of the limit; target >= {100 * share:.0f}%")
        for fig in ("first-backup-warm", "nochange-backup-warm", "restore-warm"):
            c, d = g(s, "cairn", fig, "time_s"), g(s, "cairn", "daemon-" + fig, "time_s")
            if c and d:
                check(f"{s} daemon {fig}", d / c <= DAEMON_VS_REPO,
                      f"through the mount {fmt(d)} s, --repo {fmt(c)} s = {d / c:.2f}x; "
                      f"target <= {DAEMON_VS_REPO}x")
        for base, bound in VS_PEER.items():
            for fig in (base + "-warm", base):
                r = rep.ratio(s, fig, "time_s")
                if r is not None:
                    check(f"{s} {fig} vs peer", r <= bound,
                          f"{r:.2f}x the faster peer; target <= {bound}x")
        for fig in OPS + WARM[:3]:
            c = g(s, "cairn", fig, "rss_mb")
            peers = [p for p in (g(s, "restic", fig, "rss_mb"), g(s, "borg", fig, "rss_mb"))
                     if p is not None]
            if c is None or not peers:
                continue
            check(f"{s} {fig} rss", c - KDF_MB < min(peers),
                  f"cairn {c:.0f} MiB ({c - KDF_MB:.0f} without the KDF's {KDF_MB}), "
                  f"lower peer {min(peers):.0f} MiB; target: below it without the KDF")
    mine = rep.met[first:]
    if mine:
        out.append(f"  issue 16 targets met: {sum(ok for _, ok in mine)} of {len(mine)}")
    return out
