"""Shared pieces of the peer benchmark: workloads, process sampling, clean-up, machine facts.

Why one module: every supervisor (ours and the peers) must run *byte for byte
the same workload* and be measured by *the same sampler*, otherwise the ratios
in the table mean nothing. The workloads are tiny scripts written into the run's
work directory, so a process is recognised as "workload" (and kept out of the
supervisor's CPU/RSS) because its command line names that directory or is a
plain ``sleep``. The sampler polls only the supervisor's own pids, chosen once
after start-up, so sampling 200 idle agents costs the machine nothing.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil

#: Bytes of one flood line: ``"PP NNNNNNN " + 85 x + "\n"``.
LINE_BYTES = 2 + 1 + 7 + 1 + 85 + 1

FLOOD_PY = '''\
"""Flood writer: waits for the go file, prints N numbered lines as fast as it can, lingers."""
import os, sys, time
proc, n, go = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
open(go + ".ready.%02d" % proc, "w").close()
while not os.path.exists(go):
    time.sleep(0.002)
t0 = os.times()
w = sys.stdout.write
pad = "x" * 85
for i in range(n):
    w(f"{proc:02d} {i:07d} {pad}\\n")
sys.stdout.flush()
t = os.times()
with open(go + ".cpu.%02d" % proc, "w") as f:
    f.write("%.3f %.3f" % (t.user - t0.user, t.system - t0.system))
# Stay up until told: honcho (like foreman) stops everything when one process exits.
end = time.monotonic() + 600
while not os.path.exists(go + ".stop") and time.monotonic() < end:
    time.sleep(0.05)
'''

FLOOD_BLOCKS_PY = '''\
"""Flood writer in blocks: as flood.py, but each write() carries BLOCK lines (a buffered logger).

The lines of a block are filled in by one bytes %-format of a template, not formatted one
by one in Python: that took the 20 writers ~2 CPU-s, so on a 2-core box they, not the
supervisor under test, were the limit."""
import os, sys, time
proc, n, go, block = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
open(go + ".ready.%02d" % proc, "w").close()
line = b"%02d %%07d %s\\n" % (proc, b"x" * 85)
templates = {}
while not os.path.exists(go):
    time.sleep(0.002)
t0 = os.times()
for start in range(0, n, block):
    k = min(n, start + block) - start
    template = templates.get(k) or templates.setdefault(k, line * k)
    buf = memoryview(template % tuple(range(start, start + k)))
    while buf:
        buf = buf[os.write(1, buf):]
t = os.times()
with open(go + ".cpu.%02d" % proc, "w") as f:
    f.write("%.3f %.3f" % (t.user - t0.user, t.system - t0.system))
end = time.monotonic() + 600
while not os.path.exists(go + ".stop") and time.monotonic() < end:
    time.sleep(0.05)
'''

BUSY_PY = '''\
"""CPU-bound agent: waits for the go file, then counts as fast as it can for SECONDS and reports how far it got."""
import os, sys, time
name, go, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
open(go + ".busyready." + name, "w").close()
while not os.path.exists(go):
    time.sleep(0.002)
end = time.monotonic() + seconds
n = 0
while time.monotonic() < end:
    for _ in range(10000):
        n += 1
with open(go + ".busy." + name, "w") as f:
    f.write(str(n))
while not os.path.exists(go + ".stop"):
    time.sleep(0.05)
'''

CRASH_SH = """\
#!/bin/sh
# Crash workload: record start and exit times, then fail at once. With a gate file
# ($2), the first run waits for it: the crash then hits a supervisor that has settled.
echo "start $(date +%s.%N)" >> "$1"
if [ -n "$2" ] && [ ! -e "$2.used" ]; then
    while [ ! -e "$2" ]; do sleep 0.01; done
    touch "$2.used"
fi
echo "exit $(date +%s.%N)" >> "$1"
exit 1
"""

SPIN_PY = '''\
"""Pause workload: a process that stays alive doing nothing much."""
import time
while True:
    time.sleep(0.5)
'''

STARTED_SH = """\
#!/bin/sh
# Config-change workload: record the moment it runs, then stay up.
date +%s.%N > "$1"
exec sleep 86400
"""

Restart = Literal["never", "on-failure", "always"]


@dataclass
class Program:
    """One supervised program, described the same way for every supervisor."""

    name: str
    argv: list[str]
    restart: Restart = "never"
    #: Ask for the smallest restart delay the supervisor allows (crash scenario, "no delay" variant).
    fast_restart: bool = False


@dataclass
class Workdir:
    """A throw-away directory holding the workload scripts and one supervisor's files."""

    root: Path

    @property
    def scripts(self) -> Path:
        return self.root / "w"

    def write_scripts(self) -> None:
        self.scripts.mkdir(parents=True, exist_ok=True)
        for name, text in (("flood.py", FLOOD_PY), ("flood_blocks.py", FLOOD_BLOCKS_PY), ("busy.py", BUSY_PY),
                           ("crash.sh", CRASH_SH), ("spin.py", SPIN_PY), ("started.sh", STARTED_SH)):
            p = self.scripts / name
            p.write_text(text)
            p.chmod(0o755)


def python() -> str:
    """The interpreter the workloads use (the system one: no venv start-up cost)."""
    return shutil.which("python3") or sys.executable


def is_workload(proc: psutil.Process, marker: str) -> bool:
    try:
        cmd = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return True
    if not cmd:
        return True
    return any(marker in c for c in cmd) or os.path.basename(cmd[0]) == "sleep"


def supervisor_pids(roots: Iterable[int], marker: str) -> list[int]:
    """Roots plus their descendants that are not workload (nor under a workload)."""
    out: list[int] = []
    stack = list(roots)
    while stack:
        pid = stack.pop()
        try:
            p = psutil.Process(pid)
            kids = p.children()
        except psutil.NoSuchProcess:
            continue
        out.append(pid)
        for k in kids:
            if not is_workload(k, marker):
                stack.append(k.pid)
    return out


@dataclass
class Sample:
    cpu_s: float = 0.0
    peak_rss: int = 0
    last_rss: int = 0


class Sampler:
    """Polls CPU time and RSS of a fixed set of supervisor pids in a thread.

    CPU seconds are the sum over pids of the last seen ``user+system`` (a pid's
    own counters, children excluded: the workload is not the supervisor's cost).
    """

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        self.procs = []
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                self.procs.append(psutil.Process(pid))
        self.interval = interval
        self._cpu: dict[int, float] = {}
        self.peak_rss = 0
        self.last_rss = 0
        #: Each process's own peak: a supervisor made of more than one process (ours has a
        #: watchdog) reports the main one apart from the sum.
        self.peak_rss_by_pid: dict[int, int] = {}
        #: Peak of the summed USS: the memory only these processes hold (no page they share
        #: with each other or with other programs, such as libpython's).
        self.peak_uss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def poll(self) -> None:
        rss = uss = 0
        for p in self.procs:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    own = p.memory_info().rss
                with contextlib.suppress(psutil.AccessDenied):
                    uss += p.memory_full_info().uss
                rss += own
                self.peak_rss_by_pid[p.pid] = max(self.peak_rss_by_pid.get(p.pid, 0), own)
                self._cpu[p.pid] = t.user + t.system
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        self.last_rss = rss
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_uss = max(self.peak_uss, uss)

    def cpu(self) -> float:
        self.poll()
        return sum(self._cpu.values())

    def cpu_by_pid(self) -> dict[int, float]:
        """CPU seconds of each sampled pid so far (e.g. the supervisor apart from an attached console)."""
        self.poll()
        return dict(self._cpu)

    def threads(self) -> dict[int, tuple[float, float]]:
        """(user, system) CPU seconds per thread id of every pid: where a supervisor's time goes."""
        out: dict[int, tuple[float, float]] = {}
        for p in self.procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                for t in p.threads():
                    out[t.id] = (t.user_time, t.system_time)
        return out

    def run_ns(self) -> int:
        """Nanoseconds every thread of the pids has spent on a CPU (``/proc/<pid>/task/*/schedstat``).

        The scheduler's own clock: exact where ``cpu_times`` counts 10 ms ticks, so
        an idle supervisor's few microseconds a second show instead of rounding to
        0 or 1 tick. Threads that ended are not counted (none do at rest).
        """
        total = 0
        for p in self.procs:
            try:
                tids = os.listdir(f"/proc/{p.pid}/task")
            except OSError:
                continue
            for tid in tids:
                with contextlib.suppress(OSError, ValueError, IndexError), open(
                    f"/proc/{p.pid}/task/{tid}/schedstat"
                ) as f:
                    total += int(f.read().split()[0])
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def start(self) -> Sampler:
        self.poll()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.poll()


def proc_state(pid: int) -> str:
    """The one-letter state of ``pid`` from /proc (``T`` when stopped), or ``?``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return "?"
    return data[data.rfind(b")") + 2 : data.rfind(b")") + 3].decode()


def wait_for(pred: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    """Poll ``pred`` until truthy (returned) or ``timeout`` seconds pass (returns the last falsy value)."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(interval)


def kill_tree(pid: int, grace: float = 3.0) -> None:
    """SIGTERM ``pid``'s whole tree, then SIGKILL what is left after ``grace`` seconds."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    kill_procs(procs, grace)


def kill_procs(procs: list[psutil.Process], grace: float = 3.0) -> None:
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGCONT)
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=grace)


def leftovers(marker: str) -> list[psutil.Process]:
    """Every process of ours whose command line still names the run's work directory."""
    me = os.getpid()
    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.pid == me:
            continue
        cmd = p.info.get("cmdline") or []
        if any(marker in c for c in cmd):
            out.append(p)
    return out


def sweep(marker: str) -> int:
    """Kill leftovers of a run (by pid, found by the run's own directory); return how many."""
    procs = leftovers(marker)
    if procs:
        kill_procs(procs, 2.0)
    return len(procs)


def count_flood_lines(lines: Iterable[bytes | str], procs: int, per_proc: int) -> dict[str, Any]:
    """Check numbered flood lines: found, lost, duplicated, malformed (each line parsed)."""
    seen = [bytearray(per_proc) for _ in range(procs)]
    found = dup = bad = 0
    examples: list[str] = []
    for line in lines:
        if isinstance(line, str):
            line = line.encode()
        # Peers may prefix lines (honcho: time and name); the payload is the last 96 bytes.
        body = line.rstrip(b"\n")[-96:]
        try:
            p = int(body[0:2])
            i = int(body[3:10])
        except ValueError:
            bad += 1
            if len(examples) < 3:
                examples.append(line[:160].decode("utf-8", "replace"))
            continue
        if not (0 <= p < procs and 0 <= i < per_proc) or body[10:11] != b" ":
            bad += 1
            if len(examples) < 3:
                examples.append(line[:160].decode("utf-8", "replace"))
            continue
        if seen[p][i]:
            dup += 1
        else:
            seen[p][i] = 1
            found += 1
    return {"found": found, "lost": procs * per_proc - found, "duplicated": dup, "malformed": bad,
            "malformed_examples": examples}  # type: ignore[dict-item]


def file_lines(paths: Iterable[Path]) -> Iterable[bytes]:
    for path in paths:
        if path.exists():
            with open(path, "rb") as f:
                yield from f


def median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class ControlSocket:
    """A minimal synchronous client of the fleet control socket (JSON lines), for low overhead."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""
        self.ids = 0

    def call(self, op: str, **args: Any) -> Any:
        import json

        self.ids += 1
        rid = self.ids
        self.sock.sendall(json.dumps({"id": rid, "op": op, "args": args, "origin": "bench"}).encode() + b"\n")
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("control socket closed")
                self.buf += data
            line, _, self.buf = self.buf.partition(b"\n")
            msg = json.loads(line)
            if msg.get("id") == rid:
                if not msg.get("ok"):
                    raise RuntimeError(msg.get("error"))
                return msg.get("result")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass
class Machine:
    """Facts about the machine a result was measured on."""

    cpu: str = ""
    nproc: int = 0
    ram_gb: float = 0.0
    python: str = ""
    kernel: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def machine() -> Machine:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return Machine(
        cpu=cpu,
        nproc=os.cpu_count() or 0,
        ram_gb=round(psutil.virtual_memory().total / 2**30, 1),
        python=platform.python_version(),
        kernel=platform.release(),
    )


def neutral_workload_env() -> None:
    """Drop environment that would change how the workloads write, for every tool alike.

    ``PYTHONUNBUFFERED=1`` (set in some shells and CI images) turns each flood
    line into its own ``write`` syscall: 4 M syscalls that cost every tool 3-4x
    and measure the writers instead of the supervisors. The scenario promises
    block-buffered writers, as they are by default under any supervisor.
    """
    import compileall

    import fleet

    os.environ.pop("PYTHONUNBUFFERED", None)
    # Likewise ``PYTHONDONTWRITEBYTECODE=1``: a Python tool's CLI then compiles its
    # modules on every run. pip byte-compiles what it installs, except an editable
    # project's own sources, which a normal first run writes: do that here.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    compileall.compile_dir(Path(fleet.__file__).parent, quiet=1)


def run_quiet(argv: list[str], env: dict[str, str] | None = None, timeout: float = 60.0,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
