"""``python -m bench.console_idle``: what a console watching N quiet agents costs, over time.

The idle scenario of ``python -m bench`` measures one 8 s window a few seconds
after start, when every agent's uptime is still in its first minute (the column
moves in 10 s steps then). This runs a headless ``fleet run`` with a headless
console attached (as the *fleet+console* column does) and prints the CPU of the
supervisor and of the console over windows at several ages of the fleet, so the
first minute and the steady state are seen apart.
"""

from __future__ import annotations

import argparse
import time

import psutil

from bench.common import Program
from bench.peers.fleet import FleetConsole
from bench.scenarios import Run


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.console_idle", description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--at", default="8,25,70", help="window starts, seconds after start (comma list)")
    ap.add_argument("--window", type=float, default=10.0, help="seconds per window")
    a = ap.parse_args(argv)
    peer = FleetConsole()

    def programs(_wd: object) -> list[Program]:
        return [Program(f"idle{i:03d}", ["/bin/sleep", "86400"]) for i in range(a.agents)]

    with Run(peer, programs):
        procs = [psutil.Process(pid) for pid in peer.roots()]
        t0 = time.monotonic()
        for start in (float(x) for x in a.at.split(",")):
            time.sleep(max(0.0, t0 + start - time.monotonic()))
            c0 = [sum(p.cpu_times()[:2]) for p in procs]
            w0 = time.monotonic()
            time.sleep(a.window)
            c1 = [sum(p.cpu_times()[:2]) for p in procs]
            w = time.monotonic() - w0
            sup, con = ((b - x) / w * 100 for x, b in zip(c0, c1, strict=True))
            print(f"{a.agents} agents, {start:>4.0f}-{start + a.window:.0f} s after start: "
                  f"supervisor {sup:.2f} %, console {con:.2f} % of a core", flush=True)


if __name__ == "__main__":
    main()
