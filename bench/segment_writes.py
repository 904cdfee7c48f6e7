"""Benchmark: kernel CPU of writing a flood's bytes to a log segment, by size of the write call.

Why it exists: the store writer took each 8 MiB batch of log chunks to the
segment in one ``pwritev``, and a 400 MB flood cost its thread 1-2 CPU-s of
system time in some runs and 0.15 s in others — all of it inside the kernel's
copy into the page cache. This writes the same bytes (fresh ``bytes`` of
64 KiB, as the pipes deliver them) with calls of each size and prints the
system CPU per call size, several rounds interleaved: the spread, not one
figure, is the point. The store writes in calls of ``segments.WRITE_BYTES``.

    python -m bench.segment_writes [--mb 388] [--rounds 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
from pathlib import Path

from fleet.store.segments import WRITE_BYTES

SIZES = [64 * 1024, 256 * 1024, 1024 * 1024, 2 * 1024 * 1024, 8 * 1024 * 1024]
PIECE = 64 * 1024


def _system_s() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def write_once(path: Path, total: int, call: int) -> float:
    """System CPU-seconds to write ``total`` bytes in calls of ``call`` bytes of fresh pieces."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    spent = 0.0
    try:
        pos = 0
        per_call = max(1, call // PIECE)
        while pos < total:
            pieces = [os.urandom(16) * (PIECE // 16) for _ in range(per_call)]
            t0 = _system_s()
            pos += os.pwritev(fd, pieces, pos)
            spent += _system_s() - t0
    finally:
        os.close(fd)
        path.unlink()
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=388, help="bytes written per round (the flood's 388 MB)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = ap.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    results: dict[int, list[float]] = {size: [] for size in SIZES}
    for _ in range(args.rounds):
        for size in SIZES:
            os.sync()
            results[size].append(write_once(directory / "segment.log", args.mb * 2**20, size))
    print(f"{args.mb} MB in calls of N bytes (fresh 64 KiB pieces), kernel CPU-s per round")
    for size, runs in results.items():
        mark = "  <- the store's WRITE_BYTES" if size == WRITE_BYTES else ""
        print(f"{size // 1024:>6} KiB: median {statistics.median(runs):.2f}  "
              f"[{', '.join(f'{r:.2f}' for r in runs)}]{mark}")
    if args.dir is None:
        directory.rmdir()


if __name__ == "__main__":
    main()
