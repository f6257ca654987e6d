#!/usr/bin/env python3
"""This machine's limits for scripts/bench.sh, measured beside the tools in the same run.

  limits.py stages --sample FILE --set NAME [--seconds S]
      BLAKE3, FastCDC (2020; min 256 KiB / avg 1 MiB / max 4 MiB, as cairn) + BLAKE3 of
      every chunk, and zstd level 3 of every 1 MiB piece, on the bytes of FILE (a sample
      of the data set): on one core, then on both cores (one process per core, each on its
      own copy). Prints TSV rows `NAME 0 machine FIGURE mb_s VALUE` (MB = 10^6 bytes).
  limits.py disk --dir DIR --mib N
      Sequential write of N MiB with fdatasync, then (page cache dropped) read of it back.

The libraries are the same kinds cairn uses (the blake3 crate through its Python binding,
libzstd, a Cython FastCDC 2020); they run outside cairn, so the limits do not depend on it.
"""

import argparse
import multiprocessing as mp
import os
import time


def blake3_only(buf):
    import blake3

    blake3.blake3(buf).digest()


def cdc_blake3(buf):
    import blake3
    import pyfastcdc

    cdc = pyfastcdc.FastCDC(avg_size=1 << 20, min_size=256 << 10, max_size=4 << 20)
    for ch in cdc.cut_buf(buf):
        blake3.blake3(ch.data).digest()


def zstd3(buf):
    import zstandard

    c = zstandard.ZstdCompressor(level=3)
    mv = memoryview(buf)
    for i in range(0, len(mv), 1 << 20):
        c.compress(mv[i : i + (1 << 20)])


STAGES = {"blake3": blake3_only, "cdc-blake3": cdc_blake3, "zstd3": zstd3}


def run_for(stage, path, seconds, barrier=None, out=None):
    """Bytes processed by STAGE over FILE, repeated for at least SECONDS; (bytes, secs).
    With a barrier, starts timing together with the other workers."""
    with open(path, "rb") as f:
        buf = f.read()
    fn = STAGES[stage]
    fn(buf[: 1 << 20])  # warm up: imports, tables
    if barrier is not None:
        barrier.wait()
    done, t0 = 0, time.perf_counter()
    while True:
        fn(buf)
        done += len(buf)
        el = time.perf_counter() - t0
        if el >= seconds:
            if out is not None:
                out.put((done, el))
            return done, el


def cmd_stages(args):
    cores = os.cpu_count() or 1
    for stage in STAGES:
        n, el = run_for(stage, args.sample, args.seconds)
        print(f"{args.set}\t0\tmachine\t{stage}-1core\tmb_s\t{n / el / 1e6:.0f}", flush=True)
        barrier, out = mp.Barrier(cores), mp.Queue()
        procs = [mp.Process(target=run_for, args=(stage, args.sample, args.seconds, barrier, out))
                 for _ in range(cores)]
        for pr in procs:
            pr.start()
        res = [out.get() for _ in procs]
        for pr in procs:
            pr.join()
        # The workers ran at the same time: their rates add up.
        rate = sum(n / el for n, el in res)
        print(f"{args.set}\t0\tmachine\t{stage}-allcores\tmb_s\t{rate / 1e6:.0f}", flush=True)


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def cmd_disk(args):
    path = os.path.join(args.dir, "disk-probe.bin")
    block = os.urandom(1 << 20)
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(args.mib):
            f.write(block)
        f.flush()
        os.fdatasync(f.fileno())
    wr = time.perf_counter() - t0
    drop_caches()
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass
    rd = time.perf_counter() - t0
    os.remove(path)
    mb = args.mib * (1 << 20) / 1e6
    print(f"machine\t0\tmachine\tdisk-write-fdatasync\tmb_s\t{mb / wr:.0f}")
    print(f"machine\t0\tmachine\tdisk-read\tmb_s\t{mb / rd:.0f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stages")
    s.add_argument("--sample", required=True)
    s.add_argument("--set", required=True)
    s.add_argument("--seconds", type=float, default=1.0)
    s = sub.add_parser("disk")
    s.add_argument("--dir", required=True)
    s.add_argument("--mib", type=int, required=True)
    args = p.parse_args()
    {"stages": cmd_stages, "disk": cmd_disk}[args.cmd](args)


if __name__ == "__main__":
    main()
