#!/usr/bin/env python3
"""Deterministic inputs for scripts/bench.sh (fixed seeds: the same bytes on every run).

  gen.py sqlite OUT --mib N [--seed S]             a SQLite database of about N MiB
  gen.py sqlite-change IN OUT [--percent P] [--seed S]
                                                   a copy of IN with ~P% of its pages rewritten
                                                   (UPDATEs of random rows, same row sizes)
  gen.py smallfiles OUT --files N [--replicas R] [--seed S]
                                                   N small files in R replicas r0..r(R-1),
                                                   each its own deep directory tree
  gen.py bigdir OUT --entries N [--seed S]        one directory OUT/big of N small files
  gen.py change-files DIR [--every K]              appends a line to every K-th file (sorted)
  gen.py pages-changed A B                         prints the % of 4 KiB pages that differ

Each command writes into a temporary name and renames at the end, so an interrupted run
leaves no half-made input that a later run would take as finished.
"""

import argparse
import os
import random
import shutil
import sqlite3
import sys

PAGE = 4096
WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu order "
    "invoice payment shipped pending refund customer account balance street city region "
    "postal priority express standard warehouse item quantity price discount total tax"
).split()


def text_pool(rng, size):
    """A pool of word text to slice from: compressible like real records and source."""
    out, n = [], 0
    while n < size:
        w = WORDS[rng.randrange(len(WORDS))]
        out.append(w)
        n += len(w) + 1
    return " ".join(out).encode()


def cmd_sqlite(args):
    rng = random.Random(args.seed)
    pool = text_pool(rng, 1 << 20)
    tmp = args.out + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    db = sqlite3.connect(tmp)
    db.executescript(
        f"""
        PRAGMA page_size={PAGE};
        PRAGMA journal_mode=OFF;
        PRAGMA synchronous=OFF;
        CREATE TABLE orders(
            id INTEGER PRIMARY KEY, customer TEXT NOT NULL, email TEXT NOT NULL,
            amount INTEGER NOT NULL, created INTEGER NOT NULL, status TEXT NOT NULL,
            note TEXT NOT NULL, payload BLOB NOT NULL);
        CREATE INDEX orders_customer ON orders(customer);
        """
    )
    target = args.mib << 20
    statuses = ["new", "paid", "shipped", "returned", "closed"]
    rowid = 0
    while True:
        rows = []
        for _ in range(20000):
            rowid += 1
            cust = f"customer-{rng.randrange(200000):06d}"
            off = rng.randrange(len(pool) - 400)
            note = pool[off : off + rng.randrange(120, 380)].decode()
            rows.append(
                (rowid, cust, cust + "@example.org", rng.randrange(10**7),
                 1_600_000_000 + rowid * 7, statuses[rng.randrange(5)], note,
                 rng.randbytes(96))
            )
        db.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?)", rows)
        db.commit()
        if os.path.getsize(tmp) >= target:
            break
    db.close()
    os.replace(tmp, args.out)
    print(f"{args.out}: {rowid} rows, {os.path.getsize(args.out) >> 20} MiB")


def cmd_sqlite_change(args):
    tmp = args.out + ".tmp"
    shutil.copyfile(args.input, tmp)
    pages = os.path.getsize(tmp) // PAGE
    rng = random.Random(args.seed)
    db = sqlite3.connect(tmp)
    db.execute("PRAGMA journal_mode=OFF")
    (rows,) = db.execute("SELECT max(id) FROM orders").fetchone()
    # About 7 rows share a page: one row per page to change; a payload of the same length
    # rewrites the row in place (no page splits, no index change).
    want = max(1, pages * args.percent // 100)
    ids = rng.sample(range(1, rows + 1), min(rows, want))
    db.executemany(
        "UPDATE orders SET amount = ?, payload = ? WHERE id = ?",
        [(rng.randrange(10**7), rng.randbytes(96), i) for i in ids],
    )
    db.commit()
    db.close()
    os.replace(tmp, args.out)


def pages_changed(a, b):
    diff = total = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(PAGE * 256), fb.read(PAGE * 256)
            if not x and not y:
                break
            for i in range(0, max(len(x), len(y)), PAGE):
                total += 1
                diff += x[i : i + PAGE] != y[i : i + PAGE]
    return 100.0 * diff / max(total, 1)


def cmd_pages_changed(args):
    print(f"{pages_changed(args.a, args.b):.2f}")


def cmd_smallfiles(args):
    tmp = args.out + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    per = args.files // args.replicas
    for r in range(args.replicas):
        rng = random.Random(args.seed * 1000 + r)
        pool = text_pool(rng, 1 << 20)
        root = os.path.join(tmp, f"r{r}")
        # A deep, uneven tree: about one directory per 12 files, 2 to 10 levels.
        dirs = []
        for _ in range(max(1, per // 12)):
            depth = rng.randint(2, 10)
            dirs.append(os.path.join(root, *(f"d{rng.randrange(5)}" for _ in range(depth))))
        for d in dirs:
            os.makedirs(d, exist_ok=True)
        for i in range(per):
            size = int(min(64 << 10, rng.lognormvariate(7.0, 1.2)))
            if rng.random() < 0.7:
                off = rng.randrange(len(pool) - size - 1) if size < len(pool) - 1 else 0
                data, ext = pool[off : off + size], "txt"
            else:
                data, ext = rng.randbytes(size), "bin"
            path = os.path.join(dirs[rng.randrange(len(dirs))], f"f{i:06d}.{ext}")
            with open(path, "wb") as f:
                f.write(data)
            os.utime(path, (1_600_000_000 + i, 1_600_000_000 + i))
    os.replace(tmp, args.out)
    print(f"{args.out}: {per * args.replicas} files in {args.replicas} replicas")


def cmd_bigdir(args):
    tmp = args.out + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    rng = random.Random(args.seed)
    pool = text_pool(rng, 1 << 20)
    big = os.path.join(tmp, "big")
    os.makedirs(big)
    for i in range(args.entries):
        size = rng.randrange(0, 2048)
        off = rng.randrange(len(pool) - size - 1)
        path = os.path.join(big, f"entry-{i:07d}-{rng.randrange(1 << 32):08x}.txt")
        with open(path, "wb") as f:
            f.write(pool[off : off + size])
        os.utime(path, (1_600_000_000 + i, 1_600_000_000 + i))
    os.replace(tmp, args.out)
    print(f"{args.out}: {args.entries} files in one directory")


def cmd_change_files(args):
    files = []
    for dirpath, _, names in os.walk(args.dir):
        files.extend(os.path.join(dirpath, n) for n in names)
    files = [f for f in files if os.path.isfile(f) and not os.path.islink(f)]
    files.sort()
    changed = 0
    for n, f in enumerate(files, 1):
        if n % args.every == 0:
            with open(f, "ab") as fh:
                fh.write(f"cairn-bench change {os.path.relpath(f, args.dir)}\n".encode())
            changed += 1
    print(f"changed {changed} of {len(files)} files")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sqlite")
    s.add_argument("out")
    s.add_argument("--mib", type=int, required=True)
    s.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("sqlite-change")
    s.add_argument("input")
    s.add_argument("out")
    s.add_argument("--percent", type=int, default=1)
    s.add_argument("--seed", type=int, default=2)
    s = sub.add_parser("pages-changed")
    s.add_argument("a")
    s.add_argument("b")
    s = sub.add_parser("smallfiles")
    s.add_argument("out")
    s.add_argument("--files", type=int, required=True)
    s.add_argument("--replicas", type=int, default=10)
    s.add_argument("--seed", type=int, default=3)
    s = sub.add_parser("bigdir")
    s.add_argument("out")
    s.add_argument("--entries", type=int, required=True)
    s.add_argument("--seed", type=int, default=4)
    s = sub.add_parser("change-files")
    s.add_argument("dir")
    s.add_argument("--every", type=int, default=50)
    args = p.parse_args()
    {
        "sqlite": cmd_sqlite,
        "sqlite-change": cmd_sqlite_change,
        "pages-changed": cmd_pages_changed,
        "smallfiles": cmd_smallfiles,
        "bigdir": cmd_bigdir,
        "change-files": cmd_change_files,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
