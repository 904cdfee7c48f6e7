"""Keystroke echo through ``fleet attach`` next to ``tmux attach``: ``python -m bench.attach_latency``.

Both run ``cat`` on a terminal (a ``tty = true`` agent; a tmux session) and are
attached from a pseudo-terminal this script holds, as a person's terminal
would be. One key at a time is written to that terminal and the time until its
echo comes back on the screen is measured: the whole path a typed key takes
(client, socket, multiplexer, the program's terminal, its echo, and back).
Also: how long the fleet takes to show a command agent ``waiting`` after it
prompted, and ``running`` again after ``fleet send``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ESCAPES = re.compile(rb"\x1b(\[[0-9;?>=]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-Za-z]|[=>78DEHMNOZc])")
KEYS = b"abcdefghijklmnopqrstuvwxyz"


def spawn_on_pty(
    argv: list[str], env: dict[str, str], cols: int = 100, rows: int = 30
) -> tuple[subprocess.Popen[bytes], int]:
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    return proc, master


def read_until(fd: int, pred: Callable[[bytes], bool], timeout: float = 10.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while not pred(buf):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"screen never showed it; got {buf[-300:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            buf += os.read(fd, 65536)
    return buf


def drain(fd: int, quiet: float = 0.05) -> None:
    while select.select([fd], [], [], quiet)[0]:
        if not os.read(fd, 65536):
            return


def echo_latencies(master: int, n: int) -> list[float]:
    out = []
    for i in range(n):
        key = KEYS[i % len(KEYS) : i % len(KEYS) + 1]
        drain(master)
        t0 = time.perf_counter()
        os.write(master, key)
        read_until(master, lambda b, k=key: k in ESCAPES.sub(b"", b))
        out.append((time.perf_counter() - t0) * 1000)
        if i % 20 == 19:
            os.write(master, b"\r")  # a new line now and then: cat echoes it back
    return out


def summary(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return (f"{name:<14} n={len(ms):<4} median {statistics.median(ms):6.2f} ms   p90 {p(0.9):6.2f} ms   "
            f"p99 {p(0.99):6.2f} ms   max {ms[-1]:6.2f} ms")


def bench_fleet(n: int, root: Path, env: dict[str, str]) -> tuple[list[float], list[float], list[float]]:
    fleet_dir = root / "fleet"
    fleet_dir.mkdir()
    (fleet_dir / "fleet.toml").write_text(
        '[[agent]]\nname = "cat"\ncommand = ["cat"]\ntty = true\n\n'
        '[[agent]]\nname = "asker"\n'
        'command = ["sh", "-c", "while true; do echo ready?; read x; echo got $x; sleep 0.5; done"]\n'
    )
    fleet = subprocess.Popen([sys.executable, "-m", "fleet.cli", "-C", str(fleet_dir), "run", "-q"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = fleet_dir / ".fleet" / "control.sock"
    try:
        from fleet.control.blocking import BlockingClient

        deadline = time.monotonic() + 30
        while not sock.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the fleet did not start")
            time.sleep(0.05)
        with BlockingClient(sock) as client:
            detect, clear = waiting_latencies(client, n=max(5, n // 20))
        proc, master = spawn_on_pty([sys.executable, "-m", "fleet.cli", "-C", str(fleet_dir), "attach", "cat"], env)
        read_until(master, lambda b: b"ctrl+] detaches]" in b)
        ms = echo_latencies(master, n)
        os.write(master, b"\x1d")
        proc.wait(10)
        os.close(master)
        return ms, detect, clear
    finally:
        fleet.terminate()
        fleet.wait(30)


def waiting_latencies(client: object, n: int) -> tuple[list[float], list[float]]:
    """From the prompt (the line's log timestamp) to ``waiting``; from ``send`` to ``running``."""
    detect, clear = [], []
    for _ in range(n):
        while True:
            a = next((x for x in client.call("status")["agents"] if x["name"] == "asker"), {})  # type: ignore[attr-defined]
            if a.get("state") == "waiting":
                break
            time.sleep(0.005)
        lines = client.call("logs", agent="asker", n=5)["lines"]  # type: ignore[attr-defined]
        prompt = [ln for ln in lines if ln["text"].startswith("ready?")][-1]
        detect.append((a["waiting_since"] - prompt["ts"]) * 1000)
        t0 = time.perf_counter()
        client.call("send", name="asker", text="y")  # type: ignore[attr-defined]
        while True:  # ``running`` lasts until the next prompt is seen (>= 0.2 s): polling catches it
            a = next(x for x in client.call("status")["agents"] if x["name"] == "asker")  # type: ignore[attr-defined]
            if a["state"] == "running":
                clear.append((time.perf_counter() - t0) * 1000)
                break
            time.sleep(0.002)
    return detect, clear


def bench_tmux(n: int, env: dict[str, str]) -> list[float]:
    sock = f"bench-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
    subprocess.run([*tmux, "new-session", "-d", "-s", "b", "-x", "100", "-y", "30", "cat"], check=True, env=env)
    subprocess.run([*tmux, "set", "-g", "status", "off"], check=True, env=env)
    try:
        proc, master = spawn_on_pty([*tmux, "attach", "-t", "b"], {**env, "TERM": "xterm-256color"})
        time.sleep(0.5)  # let tmux draw its first screen
        ms = echo_latencies(master, n)
        subprocess.run([*tmux, "detach-client", "-s", "b"], env=env)
        proc.wait(10)
        os.close(master)
        return ms
    finally:
        subprocess.run([*tmux, "kill-server"], env=env, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=200, help="keystrokes per tool")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with tempfile.TemporaryDirectory() as tmp:
        fleet_ms, detect, clear = bench_fleet(args.n, Path(tmp), env)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(summary("fleet attach", fleet_ms))
    if shutil.which("tmux"):
        print(summary("tmux attach", bench_tmux(args.n, env)))
    print(summary("prompt->waiting", detect))
    print(summary("send->running", clear))
    print(json.dumps({"fleet_attach_ms": statistics.median(fleet_ms), "detect_ms": statistics.median(detect)}))


if __name__ == "__main__":
    main()
