"""``fleet down`` on a large fleet: how long until nothing of it is left.

Run by hand: ``python -m bench.fleet_down [--agents 200] [--rounds 3]``. Each
round writes a fleet of N ``sleep`` command agents, starts it with ``fleet
up``, waits until every agent runs, then times ``fleet down`` as a user runs
it (a new interpreter, wall clock from exec to exit) and checks with the
kernel that no process carrying the fleet's token, nor the supervisor, nor
its watchdog, is left. ``--ignore-term`` makes every agent ignore SIGTERM,
so the figure includes the SIGKILL after ``stop_grace_s``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

FLEET = [sys.executable, "-m", "fleet.cli"]


def write_fleet(d: Path, n: int, ignore_term: bool, grace: float) -> None:
    (d / "policies").mkdir(parents=True, exist_ok=True)
    command = (["sh", "-c", "trap '' TERM; while true; do sleep 1; done"] if ignore_term
               else ["sleep", "100000"])
    (d / "fleet.toml").write_text(
        f'[fleet]\nname = "down{n}"\n\n[[agent]]\nname = "sleeper"\ncommand = {json.dumps(command)}\n'
        f"replicas = {n}\n\n[agent.restart]\nstop_grace_s = {grace}\n"
    )


def cli(d: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLEET, "-C", str(d), *args], capture_output=True, text=True, timeout=timeout)


def token_processes(token: str) -> list[int]:
    found = []
    for p in psutil.process_iter(["pid", "environ"]):
        try:
            if (p.info.get("environ") or {}).get("FLEET_SUPERVISOR_TOKEN") == token and \
                    p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except psutil.Error:
            continue
    return found


def one_round(n: int, ignore_term: bool, grace: float) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_fleet(d, n, ignore_term, grace)
        up = cli(d, "up")
        if up.returncode != 0:
            raise SystemExit(f"fleet up failed: {up.stderr}")
        deadline = time.monotonic() + 120
        while True:  # another process's state: polled with a deadline
            st = json.loads(cli(d, "status", "--json").stdout)
            if sum(a["state"] == "running" for a in st["agents"]) == n:
                break
            if time.monotonic() > deadline:
                raise SystemExit("the agents did not all come up within 120 s")
            time.sleep(0.2)
        token = psutil.Process(st["agents"][0]["pid"]).environ()["FLEET_SUPERVISOR_TOKEN"]
        before = len(token_processes(token))
        sup, watchdog = st["daemon"]["pid"], st["daemon"]["watchdog_pid"]
        t0 = time.perf_counter()
        down = cli(d, "down")
        took = time.perf_counter() - t0
        left = token_processes(token) + [p for p in (sup, watchdog) if psutil.pid_exists(p)
                                         and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if down.returncode != 0 or left:
            raise SystemExit(f"fleet down failed (exit {down.returncode}, left {left}): {down.stdout}{down.stderr}")
        return {"agents": n, "processes": before, "seconds": took}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ignore-term", action="store_true", help="Agents ignore SIGTERM (SIGKILL after the grace).")
    ap.add_argument("--grace", type=float, default=5.0, help="stop_grace_s of every agent.")
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    times = []
    for i in range(args.rounds):
        r = one_round(args.agents, args.ignore_term, args.grace)
        times.append(float(r["seconds"]))
        print(f"round {i + 1}: fleet down of {r['agents']} agents ({r['processes']} processes) "
              f"took {r['seconds']:.2f} s; nothing left")
    print(f"fleet down, {args.agents} agents: median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s over {len(times)} rounds "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
