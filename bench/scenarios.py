"""The five scenarios of issue 8, each run the same way against every supervisor.

Why these shapes:

* **flood** — writers start only when a "go" file appears, after every one of
  them is up, so the clock measures ingestion and persistence, not each
  tool's start-up. Done = every line is in the tool's store (log files for
  peers, committed rows of ``fleet.db`` for us), polled cheaply (file sizes /
  ``SUM(count)``); then every line is read back and its ``(proc, seq)`` checked,
  so loss and duplication are counted, not assumed. Writers linger until told
  to exit (honcho stops everything when one process ends).
* **idle** — 200 ``sleep``s; the supervisor's CPU over a window after a settle.
* **crash** — a shell script that appends its start and exit times and fails:
  exit → next start is read from its own clock, with each tool's default policy
  and again with the smallest delay it allows; plus what each does over 60 s.
* **pause** — ``/proc/PID/stat`` polled from the command's start until ``T``.
* **config** — append a program to the config file (plus the tool's reload
  command where it needs one) until that program has written its start time.

Every run is bounded by a timeout, every supervisor is stopped after, and the
run's processes are swept by pid (found by the run's own temp directory).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    LINE_BYTES,
    Program,
    Sampler,
    Workdir,
    count_flood_lines,
    proc_state,
    python,
    supervisor_pids,
    sweep,
    wait_for,
)
from bench.peers import Peer

SCENARIOS = ("flood", "flood_blocks", "busy", "idle", "crash", "pause", "config")


@dataclass
class Settings:
    """Sizes and repeats; ``quick()`` is the smoke-test version."""

    repeats: int = 5
    flood_procs: int = 20
    flood_lines: int = 200_000
    #: A flood not persisted by then is cut short: lines/s counts what was in by the deadline.
    flood_timeout: float = 60.0
    idle_procs: int = 200
    idle_settle: float = 6.0
    idle_window: float = 8.0
    crash_window: float = 60.0
    crash_timeout: float = 10.0
    #: Seconds the first run stays up before crashing (the supervisor has finished starting).
    crash_settle: float = 5.0
    op_timeout: float = 10.0
    #: Seconds between "every writer is up" and "go" (a supervisor still starting up pays for it).
    flood_settle: float = 0.3
    #: How often "is everything persisted yet?" is asked during the flood (s).
    poll: float = 0.02
    #: Directory for py-spy profiles of our supervisor during the flood (None: no profiling).
    profile_dir: Path | None = None
    #: Lines per write() of the block writers (``flood_blocks``, ``busy``), as a buffered logger writes.
    block_lines: int = 1000
    #: CPU-bound agents next to the block flood in ``busy``, and how long each counts (s).
    busy_procs: int = 2
    busy_s: float = 12.0
    #: Longest wait after the flood for the fleet's full-text index to catch up (s).
    index_timeout: float = 120.0

    @classmethod
    def quick(cls) -> Settings:
        return cls(repeats=2, flood_lines=20_000, flood_timeout=30.0, idle_procs=50, idle_settle=1.5,
                   idle_window=3.0, crash_window=12.0, crash_settle=2.0, busy_s=6.0)


class Run:
    """One supervisor started in a fresh temp dir, always stopped and swept after."""

    def __init__(self, peer: Peer, programs_fn: Any) -> None:
        self.peer = peer
        self.root = Path(tempfile.mkdtemp(prefix="fleetbench-"))
        self.wd = Workdir(self.root)
        self.wd.write_scripts()
        self.programs: list[Program] = programs_fn(self.wd)
        self.marker = str(self.root)
        self.leftovers = 0

    def __enter__(self) -> Run:
        try:
            self.peer.start(self.wd, self.programs)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.peer.stop()
        finally:
            time.sleep(0.2)
            self.leftovers = sweep(self.marker)
            shutil.rmtree(self.root, ignore_errors=True)

    def sampler(self, interval: float = 0.1) -> Sampler:
        return Sampler(supervisor_pids(self.peer.roots(), self.marker), interval).start()


def _workload_count(peer: Peer, marker: str, exe: str | None = None) -> int:
    n = 0
    for root in peer.roots():
        try:
            kids = psutil.Process(root).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for k in kids:
            try:
                cmd = k.cmdline()
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            if (exe and cmd and cmd[0].endswith(exe)) or (not exe and any(marker in c for c in cmd)):
                n += 1
    return n


# --- (1) log flood -------------------------------------------------------------------
def flood(peer: Peer, s: Settings, blocks: bool = False, busy: int = 0, index_wait: bool = True) -> dict[str, Any]:
    """The flood: line writers (``flood.py``) or, with ``blocks``, writers of ``s.block_lines``
    lines per write(); with ``busy``, that many CPU-bound agents count next to it for ``s.busy_s``.
    """
    go = None

    def programs(wd: Workdir) -> list[Program]:
        nonlocal go
        go = wd.scripts / "go"
        script = [str(wd.scripts / "flood_blocks.py")] if blocks else [str(wd.scripts / "flood.py")]
        extra = [str(s.block_lines)] if blocks else []
        progs = [Program(f"flood{i:02d}", [python(), *script, str(i), str(s.flood_lines), str(go), *extra,
                                           f"--name=flood{i:02d}"]) for i in range(s.flood_procs)]
        progs += [Program(f"busy{i}", [python(), str(wd.scripts / "busy.py"), f"busy{i}", str(go), str(s.busy_s),
                                       f"--name=busy{i}"]) for i in range(busy)]
        return progs

    expected = s.flood_procs * s.flood_lines
    with Run(peer, programs) as run:
        assert go is not None
        ready = wait_for(lambda: len(list(run.wd.scripts.glob("go.ready.*"))) >= s.flood_procs
                         and len(list(run.wd.scripts.glob("go.busyready.*"))) >= busy, 60, 0.05)
        if not ready:
            raise RuntimeError("flood writers did not all start")
        # The previous run left up to a GB of dirty pages (ours: WAL, database and index);
        # the kernel writing them back during this run would bill whoever runs next.
        os.sync()
        time.sleep(s.flood_settle)
        sampler = run.sampler(0.1)
        rss_at_go = sampler.last_rss
        console_json = run.root / "console.json"
        if console_json.with_name("console.json.ready").exists():
            console_json.with_name("console.json.probe").write_text("1")
        spy = _start_profile(peer, s)
        cpu0 = sampler.cpu()
        by_pid0 = sampler.cpu_by_pid()
        threads0 = sampler.threads()
        t0 = time.perf_counter()
        t0_wall = time.time()
        go.write_text("go")
        done = wait_for(lambda: peer.persisted_estimate() >= expected, s.flood_timeout, s.poll)
        wall = time.perf_counter() - t0
        at_deadline = min(peer_estimate_safe(peer), expected)
        cpu = sampler.cpu() - cpu0
        peak_rss = sampler.peak_rss  # during the flood (indexing after it is reported apart)
        main_pid = peer.roots()[0]  # the supervisor process itself (no watchdog, no console)
        peak_rss_main = sampler.peak_rss_by_pid.get(main_pid, 0)
        peak_uss = sampler.peak_uss
        console_proc = getattr(peer, "console_proc", None)
        console_cpu = None
        if console_proc is not None:
            by_pid = sampler.cpu_by_pid()
            console_cpu = by_pid.get(console_proc.pid, 0.0) - by_pid0.get(console_proc.pid, 0.0)
        threads = thread_deltas(threads0, sampler.threads())
        # While the busy agents count: the supervisor's CPU over their whole window.
        window_cpu = None
        if busy:
            time.sleep(max(0.0, t0 + s.busy_s - time.perf_counter()))
            window_cpu = sampler.cpu() - cpu0
        # After the flood: the fleet's full-text indexing, until the index has caught up.
        index_cpu = index_wall = None
        caught_up = getattr(peer, "index_caught_up", None)
        if caught_up is not None and done and index_wait:
            t_idx = time.perf_counter()
            if wait_for(caught_up, s.index_timeout, 0.05):
                index_wall = time.perf_counter() - t_idx
                index_cpu = sampler.cpu() - cpu0 - cpu
        store_stats = None
        if peer.name.startswith("fleet"):
            with contextlib.suppress(Exception):
                store_stats = peer.status().get("store")  # type: ignore[attr-defined]
        busy_iters: list[int] = []
        if busy:
            wait_for(lambda: len(list(run.wd.scripts.glob("go.busy.*"))) >= busy, s.busy_s + 60, 0.1)
            busy_iters = [int(f.read_text()) for f in run.wd.scripts.glob("go.busy.*")]
        sampler.stop()
        _stop_profile(spy)
        go.with_name("go.stop").write_text("1")
        # Exactness, outside the clock: let writes settle, then read every line back.
        last = -1
        settle_end = time.monotonic() + 240
        while time.monotonic() < settle_end:
            cur = peer.persisted_estimate()
            if cur == last:
                break
            last = cur
            time.sleep(0.5)
        writers_cpu = [tuple(map(float, f.read_text().split())) for f in run.wd.scripts.glob("go.cpu.*")]
        counts = count_flood_lines(peer.flood_lines(), s.flood_procs, s.flood_lines)
        keys: list[float] = []
        if console_json.with_name("console.json.ready").exists():
            console_json.with_name("console.json.stop").write_text("1")
            import json

            if wait_for(console_json.exists, 15, 0.1):
                samples = json.loads(console_json.read_text())["samples"]
                # Key presses made while the flood ran (the probe goes on during indexing after it).
                keys = [x["paint_ms"] for x in samples if x["ok"] and t0_wall <= x["t"] <= t0_wall + wall]
    return {
        "wall_s": wall,
        "lines_per_s": (expected if done else at_deadline) / wall,
        "cpu_s": cpu,
        # With a console attached: the supervisor's share alone, and the console process's.
        "supervisor_cpu_s": cpu - console_cpu if console_cpu is not None else cpu,
        "console_cpu_s": console_cpu,
        "cpu_threads": threads,
        # The workload's own cost under each supervisor (the same two cores serve both).
        "writers_cpu_s": sum(u + y for u, y in writers_cpu) if len(writers_cpu) == s.flood_procs else None,
        "writers_sys_s": sum(y for _, y in writers_cpu) if len(writers_cpu) == s.flood_procs else None,
        "peak_rss_mb": peak_rss / 2**20,
        "peak_rss_main_mb": peak_rss_main / 2**20,
        "peak_uss_mb": peak_uss / 2**20,
        "peak_rss_after_mb": sampler.peak_rss / 2**20,
        "rss_at_go_mb": rss_at_go / 2**20,
        "index_wall_s": index_wall,
        "index_cpu_s": index_cpu,
        "index_cpu_s_per_mlines": index_cpu / (expected / 1e6) if index_cpu is not None else None,
        "busy_iters": sum(busy_iters) if len(busy_iters) == busy and busy else None,
        "busy_iters_m": sum(busy_iters) / 1e6 if len(busy_iters) == busy and busy else None,
        "busy_window_cpu_s": window_cpu,
        "store": store_stats,
        "writer_lock_wait_max_ms": (store_stats["lock_wait_max_s"] * 1e3
                                    if store_stats and "lock_wait_max_s" in store_stats else None),
        "lost": counts["lost"],
        "duplicated": counts["duplicated"],
        "malformed": counts["malformed"],
        "malformed_examples": counts["malformed_examples"],
        "timed_out": not done,
        "mb_per_s": expected * LINE_BYTES / 2**20 / wall,
        "key_ms_all": keys,
        "key_samples": len(keys),
        "leftovers": run.leftovers,
    }


def flood_blocks(peer: Peer, s: Settings) -> dict[str, Any]:
    return flood(peer, s, blocks=True)


def busy(peer: Peer, s: Settings) -> dict[str, Any]:
    """Two CPU-bound agents next to the block flood; for our fleet also with indexing off, and
    how much of the agents' progress indexing cost (% of what they did with it off)."""
    run = flood(peer, s, blocks=True, busy=s.busy_procs)
    if not peer.name.startswith("fleet") or run.get("busy_iters") is None:
        return run
    peer.extra_env = {"FLEET_SEARCH_INDEX": "off"}  # type: ignore[attr-defined]
    try:
        off = flood(peer, s, blocks=True, busy=s.busy_procs, index_wait=False)
    finally:
        peer.extra_env = {}  # type: ignore[attr-defined]
    run["busy_iters_index_off"] = off.get("busy_iters")
    run["busy_iters_index_off_m"] = off.get("busy_iters_m")
    run["busy_window_cpu_s_index_off"] = off.get("busy_window_cpu_s")
    run["wall_s_index_off"] = off["wall_s"]
    if off.get("busy_iters"):
        run["busy_loss_pct"] = (1 - run["busy_iters"] / off["busy_iters"]) * 100
    return run


def thread_deltas(before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]]) -> list[list[float]]:
    """[tid, user s, system s] spent by each thread over the window, busiest first."""
    rows = []
    for tid, (u, sy) in after.items():
        u0, s0 = before.get(tid, (0.0, 0.0))
        if u - u0 + sy - s0 > 0.005:
            rows.append([tid, round(u - u0, 3), round(sy - s0, 3)])
    return sorted(rows, key=lambda r: -(r[1] + r[2]))


def _start_profile(peer: Peer, s: Settings) -> list[subprocess.Popen[bytes]]:
    """py-spy on our processes for the flood (``--profile DIR``): supervisor, and the console if attached."""
    if s.profile_dir is None or not peer.name.startswith("fleet"):
        return []
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    s.profile_dir.mkdir(parents=True, exist_ok=True)
    spies = []
    for role, pid in zip(("supervisor", "console"), peer.roots(), strict=False):
        out = s.profile_dir / f"{peer.name}-{role}-flood-{time.strftime('%H%M%S')}.txt"
        # --nonblocking: py-spy's default stops the process for every sample, which slowed a flood 3x.
        spies.append(subprocess.Popen([exe, "record", "-p", str(pid), "-r", "250", "--threads", "--nonblocking",
                                       "-f", "raw", "-o", str(out)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    time.sleep(1.0)  # attach before the clock starts
    return spies


def _stop_profile(spies: list[subprocess.Popen[bytes]]) -> None:
    for spy in spies:
        spy.send_signal(signal.SIGINT)
    for spy in spies:
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()


def peer_estimate_safe(peer: Peer) -> int:
    try:
        return peer.persisted_estimate()
    except Exception:
        return 0


# --- (2) many quiet agents -----------------------------------------------------------
def idle(peer: Peer, s: Settings) -> dict[str, Any]:
    def programs(wd: Workdir) -> list[Program]:
        return [Program(f"idle{i:03d}", ["/bin/sleep", "86400"]) for i in range(s.idle_procs)]

    t0 = time.perf_counter()
    with Run(peer, programs) as run:
        up = wait_for(lambda: _workload_count(peer, run.marker, "sleep") >= s.idle_procs, 120, 0.1)
        started = time.perf_counter() - t0
        if not up:
            raise RuntimeError(f"only {_workload_count(peer, run.marker, 'sleep')} of {s.idle_procs} started")
        os.sync()  # no write-back of an earlier run during the window
        time.sleep(s.idle_settle)
        # No sampling thread in the window: two readings of the scheduler's clock, at its ends.
        sampler = Sampler(supervisor_pids(run.peer.roots(), run.marker))
        cpu0, ns0 = sampler.cpu(), sampler.run_ns()
        w0 = time.perf_counter()
        time.sleep(s.idle_window)
        ns = sampler.run_ns() - ns0
        window = time.perf_counter() - w0
        cpu = sampler.cpu() - cpu0
        rss = sampler.last_rss
    return {"cpu_pct": ns / 1e9 / window * 100, "cpu_pct_ticks": cpu / window * 100, "rss_mb": rss / 2**20,
            "start_all_s": started, "leftovers": run.leftovers}


# --- (3) crash-restart ---------------------------------------------------------------
def _crash_times(path: Path) -> tuple[list[float], list[float]]:
    starts: list[float] = []
    exits: list[float] = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            kind, _, ts = line.partition(" ")
            with contextlib.suppress(ValueError):
                (starts if kind == "start" else exits).append(float(ts))
    return starts, exits


def crash(peer: Peer, s: Settings, fast: bool, window: float | None = None) -> dict[str, Any]:
    """First exit → next start of a process that was up since a settled start; with ``window``,
    the restart pattern of a process that fails at once from the start, over that long."""
    times: Path | None = None
    gate: Path | None = None

    def programs(wd: Workdir) -> list[Program]:
        nonlocal times, gate
        times = wd.root / "crash.times"
        gate = wd.root / "crash.gate"
        return [Program("crasher", ["/bin/sh", str(wd.scripts / "crash.sh"), str(times),
                                    "" if window else str(gate), "--name=crasher"],
                        restart="on-failure", fast_restart=fast)]

    with Run(peer, programs) as run:
        assert times is not None and gate is not None
        if window:
            t_end = time.time() + window
            time.sleep(window)
        else:
            time.sleep(s.crash_settle)
            gate.write_text("1")
            wait_for(lambda: len(_crash_times(times)[0]) >= 2, s.crash_timeout, 0.02)
            t_end = time.time()
        starts, exits = _crash_times(times)
    gaps = [b - a for a, b in zip(exits, starts[1:], strict=False)]
    out: dict[str, Any] = {"first_restart_ms": gaps[0] * 1e3 if gaps else None, "leftovers": run.leftovers}
    if window and starts:
        out.update({
            "starts": len(starts),
            "last_start_s": starts[-1] - starts[0],
            "still_restarting": (t_end - starts[-1]) < max(5.0, 2 * (gaps[-1] if gaps else 0) + 1),
            "gaps_s": [round(g, 3) for g in gaps[:12]],
        })
    return out


# --- (4) pause / resume --------------------------------------------------------------
def _time_signal(fire: Any, pid: int, stopped: bool, timeout: float) -> tuple[float | None, float]:
    """(ms until the process is/isn't in state T, ms until the command returned)."""
    t0 = time.perf_counter()
    done: list[float] = []

    def target() -> None:
        fire()
        done.append(time.perf_counter())

    th = threading.Thread(target=target, daemon=True)
    th.start()
    hit = None
    end = t0 + timeout
    while time.perf_counter() < end:
        if (proc_state(pid) == "T") == stopped:
            hit = (time.perf_counter() - t0) * 1e3
            break
        time.sleep(0.0002)
    th.join(timeout)
    return hit, ((done[0] - t0) * 1e3 if done else float("nan"))


def pause(peer: Peer, s: Settings) -> dict[str, Any]:
    def programs(wd: Workdir) -> list[Program]:
        return [Program("spinner", [python(), str(wd.scripts / "spin.py"), "--name=spinner"])]

    res: dict[str, list[float | None]] = {"cli_stop_ms": [], "cli_cont_ms": [], "api_stop_ms": [],
                                          "api_cont_ms": []}
    with Run(peer, programs) as run:
        pid = wait_for(lambda: peer.running_pids().get("spinner"), 30, 0.05)
        if not pid:
            raise RuntimeError("spinner did not start")
        time.sleep(0.5)
        for _ in range(s.repeats):
            for sig, key in (("STOP", "cli_stop_ms"), ("CONT", "cli_cont_ms")):
                cmd = peer.signal_cmd("spinner", sig)
                assert cmd is not None
                env = getattr(peer, "env", None) or None
                hit, _ = _time_signal(lambda c=cmd, e=env: subprocess.run(c, env=e, capture_output=True, timeout=30),
                                      pid, sig == "STOP", s.op_timeout)
                res[key].append(hit)
                time.sleep(0.2)
            api = getattr(peer, "api_signal", None)
            if api is not None:
                for sig, key in (("STOP", "api_stop_ms"), ("CONT", "api_cont_ms")):
                    hit, _ = _time_signal(lambda a=api, g=sig: a("spinner", g), pid, sig == "STOP", s.op_timeout)
                    res[key].append(hit)
                    time.sleep(0.2)
    return {**{k: v for k, v in res.items() if v}, "leftovers": run.leftovers}


# --- (5) config change ---------------------------------------------------------------
def config(peer: Peer, s: Settings) -> dict[str, Any]:
    def programs(wd: Workdir) -> list[Program]:
        return [Program("spinner", [python(), str(wd.scripts / "spin.py"), "--name=spinner"])]

    lat: list[float | None] = []
    with Run(peer, programs) as run:
        if not wait_for(lambda: peer.running_pids().get("spinner"), 30, 0.05):
            raise RuntimeError("spinner did not start")
        time.sleep(0.5)
        for k in range(s.repeats):
            mark = run.wd.scripts / f"started.{k}"
            prog = Program(f"added{k}", ["/bin/sh", str(run.wd.scripts / "started.sh"), str(mark), f"--name=added{k}"])
            t0 = time.time()
            peer.add_program(prog)
            from bench.peers.fleet import started_at

            ts = started_at(mark, s.op_timeout)
            lat.append((ts - t0) * 1e3 if ts else None)
            time.sleep(0.5)
    return {"add_to_running_ms": lat, "leftovers": run.leftovers}
