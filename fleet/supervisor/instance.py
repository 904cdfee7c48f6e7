"""One agent instance: its process, its state machine, restarts and pause.

States follow the contract in the README (starting running waiting pausing
paused stopping stopped exited crashed backoff crash-loop). Each process leads its
own process group, so "the agent" is its whole group: pause stops the group,
stop signals the group, and when the main process exits whatever it left
behind in the group is killed (as systemd's control-group kill mode).
Exits are noticed through a pidfd on the event loop: no thread per child.

Where the group lives depends on the terminal (see ``agent_sessions``): an
agent must never reach the operator's terminal, and must not starve the
supervisor of CPU either.

A command agent's stdin is a pipe the supervisor holds (not /dev/null): an
operator can answer a prompt (``fleet send``), and a process blocked reading
it is shown ``waiting`` (``stdinwatch``). Reading it returns EOF only once the
operator sends one (``fleet send NAME --eof``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import string
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.gateway.keys import strip_provider_keys
from fleet.records import AgentState
from fleet.supervisor.agentlink import AgentLink
from fleet.supervisor.cgroups import wrap_argv
from fleet.supervisor.limits import has_limits, limits_of
from fleet.supervisor.logpipe import LogPipe
from fleet.supervisor.ttyattach import TtySession, make_controlling_tty, set_winsize

if TYPE_CHECKING:
    from fleet.policy import AgentSpec, Policy
    from fleet.supervisor.cgroups import AgentCgroup
    from fleet.supervisor.seams import InstanceHost

S = AgentState
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1024 * 1024
#: After an SDK agent exits, its channel is read this long for what it sent before (then closed).
LINK_DRAIN_S = 1.0
#: A run that lasted this long resets the backoff ladder.
STABLE_AFTER_S = 10.0


def agent_sessions() -> bool:
    """Whether each agent needs a session of its own (True) or only a process group.

    A supervisor holding a controlling terminal (``fleet run`` in a shell) gives
    every agent its own session: a program that opens ``/dev/tty`` then finds
    none and cannot scribble over the operator's screen. A supervisor without
    one (started by ``fleet`` or as a service) keeps its agents in its own
    session: no terminal is reachable from it, and only a session leader could
    acquire one. That matters under load: Linux schedules each session as one
    group (autogroups), so 20 flooding agents in 20 sessions left the supervisor
    1/21 of the CPU and ``status`` waited up to 250 ms; in one group the
    supervisor's threads compete one-to-one with the agents and answered
    within 50 ms.
    """
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True

@dataclass(slots=True)
class RunInfo:
    run_id: int
    pid: int
    started: float  # wall clock
    started_mono: float
    ready_mono: float | None = None


class AgentInstance:
    """Lifecycle of one named instance (``name`` or ``name#i``)."""

    def __init__(self, sup: InstanceHost, spec: AgentSpec, name: str, policy: Policy) -> None:
        self.sup = sup
        self.spec = spec
        self.name = name
        self.group = spec.name
        self.policy = policy
        self.kind = "sdk" if spec.run else "command"
        self.state: AgentState = S.STOPPED
        self.reason: str | None = None
        #: Why the agent is in its state, as a word the console can show and sort on:
        #: operator, budget, alert, crash-loop, exit, restart (None: no reason).
        self.reason_kind: str | None = None
        #: Wall time the current state began (a paused agent: since when).
        self.since = time.time()
        self.restarts = 0
        self.exit_code: int | None = None
        self.run: RunInfo | None = None
        self.run_seq = 0
        self.want_paused = False
        self._popen: subprocess.Popen[bytes] | None = None
        self._link: AgentLink | None = None
        self._pipes: list[LogPipe] = []
        self._stopping = False
        self._exited = asyncio.Event()
        self._exited.set()
        self._restart_handle: asyncio.TimerHandle | None = None
        self._restart_times: deque[float] = deque()
        self._fails = 0
        self._paused_event = asyncio.Event()
        self.last_progress = time.monotonic()
        self._pidfd: int | None = None
        #: The fd the supervisor writes the agent's input to (its stdin pipe), and
        #: what /proc shows for the agent's end of it (``pipe:[INODE]``).
        self._input_fd: int | None = None
        self.input_link: str | None = None
        self.input_closed = False
        #: Monotonic time the agent entered ``waiting``; questions it asked (ctx.ask) still open.
        self.waiting_since: float | None = None
        self.waiting_at: float | None = None  # the same, wall clock (status)
        #: A ``tty = true`` agent's attached terminals and recent output (kept across its runs).
        self.tty: TtySession | None = None
        self._asks: list[str] = []
        self._setup: set[asyncio.Task[Any]] = set()  # transports being attached
        #: The agent's own cgroup (every process it starts, however it detaches), where there is one.
        self.cgroup: AgentCgroup | None = None

    # --- introspection ---------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.run.pid if self.run and self.state.alive else None

    def process_pids(self) -> list[int]:
        """Every process of the agent: its cgroup's, else its tree's, else the main one."""
        if self.cgroup is not None:
            return self.cgroup.pids()
        tree = self.sup.tree
        if tree is not None:
            found = tree.alive(self.name)
            if found:
                return found
        return [self.pid] if self.pid is not None else []

    def apply_limits(self) -> None:
        """Write the policy's limits to the agent's cgroup (a policy edit applies at once)."""
        if self.cgroup is not None:
            self.cgroup.set_limits(limits_of(self.policy))

    @property
    def uptime_s(self) -> float:
        if not self.run or not self.state.alive:
            return 0.0
        return time.monotonic() - self.run.started_mono

    # --- state -------------------------------------------------------------------
    def _set(self, state: AgentState, reason: str | None = None, kind: str | None = None) -> None:
        prev = self.state
        self.state = state
        self.reason = reason
        self.reason_kind = kind if reason or kind else None
        if prev != state:
            self.since = time.time()
        if state is not S.WAITING:
            self.waiting_since = self.waiting_at = None
        elif prev is not S.WAITING:
            self.waiting_since, self.waiting_at = time.monotonic(), time.time()
        if state is S.PAUSED:
            self._paused_event.set()
        else:
            self._paused_event.clear()
        if prev != state or reason:
            self.sup.on_state(self, prev)

    # --- start ---------------------------------------------------------------------
    def start(self, *, reset: bool = False) -> None:
        """Start the process now (no-op while it is alive)."""
        if self.state.alive:
            return
        self._cancel_restart()
        if reset:
            self._restart_times.clear()
            self._fails = 0
        self._stopping = False
        try:
            self._spawn()
        except OSError as exc:
            self.sup.note(self.name, f"failed to start: {exc}")
            self.exit_code = None
            self._set(S.CRASHED, f"failed to start: {exc.strerror or exc}", "exit")
            self._after_exit(runtime=0.0, failed=True)

    def _argv(self, env: dict[str, str] | None = None) -> list[str]:
        if self.spec.run:
            return [sys.executable, "-m", "fleet.agent", self.spec.run]
        # ${VAR} in a command expands from the agent's environment (as in a Procfile);
        # $$ is a literal dollar. No shell is involved.
        env = env if env is not None else self._env(None)
        return [string.Template(arg).safe_substitute(env) for arg in self.spec.command or []]

    def _env(self, control_fd: int | None, token: str | None = None) -> dict[str, str]:
        # Provider credentials stay in the supervisor (the gateway uses them) unless
        # an agent's own ``env`` sets them.
        env = strip_provider_keys(os.environ)
        env.pop("FLEET_CONTROL_FD", None)
        env.update(
            FLEET_EXAMPLES=str(Path(__file__).resolve().parent.parent / "examples"),
            FLEET_DIR=str(self.sup.fleet_dir),
            FLEET_AGENT=self.name,
            FLEET_NAME=self.sup.fleet_name,
            FLEET_PYTHON=sys.executable,  # the fleet's interpreter, for command = ["${FLEET_PYTHON}", ...]
            PYTHONIOENCODING=env.get("PYTHONIOENCODING", "utf-8"),
        )
        # No PYTHONUNBUFFERED: a program keeps its own buffering, as under any other
        # supervisor (forcing it costs a write() per line in a flood). SDK agents
        # line-buffer stdout themselves; a Python command agent that should log
        # line by line sets env = { PYTHONUNBUFFERED = "1" }.
        env["FLEET_SUPERVISOR_TOKEN"] = self.sup.token
        if control_fd is not None:
            env["FLEET_CONTROL_FD"] = str(control_fd)
        http = self.sup.services.http_gateway
        if token is not None and http is not None:
            # The gateway's URL and this run's token, in the variables the usual clients
            # read (unless [llm] inject_env = false); the agent's own env still wins.
            env.update(http.agent_env(token, vendor=bool(getattr(self.policy.llm, "inject_env", True))))
        env.update({k: str(v) for k, v in (self.spec.env or {}).items()})
        return env

    def _cwd(self) -> Path:
        if self.spec.cwd:
            p = Path(self.spec.cwd).expanduser()
            return p if p.is_absolute() else self.sup.fleet_dir / p
        return self.sup.fleet_dir

    def _spawn(self) -> None:
        if self.kind == "command" and self.spec.tty:
            self._spawn_tty()
            return
        self.tty = None
        loop = asyncio.get_running_loop()
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        for fd in (out_r, err_r):
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
        parent_sock = child_sock = None
        pass_fds: tuple[int, ...] = ()
        in_r = in_w = -1
        if self.kind == "sdk":
            parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            pass_fds = (child_sock.fileno(),)
        else:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
        http = self.sup.services.http_gateway
        token = http.tokens.issue(self.name) if http is not None else None
        env = self._env(child_sock.fileno() if child_sock else None, token)
        argv = self._argv(env)
        try:
            run_argv = self._contained(argv, env)
            popen = subprocess.Popen(
                run_argv,
                stdin=in_r if in_r >= 0 else subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                cwd=self._cwd(),
                env=env,
                **({"start_new_session": True} if self.sup.agent_sessions else {"process_group": 0}),
                pass_fds=pass_fds,
                close_fds=True,
            )
        except BaseException:
            self._revoke_token()
            for fd in (out_r, err_r, in_w):
                if fd >= 0:
                    os.close(fd)
            if parent_sock:
                parent_sock.close()
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
            if in_r >= 0:
                os.close(in_r)
            if child_sock:
                child_sock.close()
        self._setup = {t for t in self._setup if not t.done()}
        run_id = self._begin_run(popen).run_id
        if in_w >= 0:
            self._take_input(in_w, f"pipe:[{os.fstat(in_w).st_ino}]")
        sink = self.sup.loghub.sink_for(self.name, run_id)
        self._pipes = []
        for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
            pipe = LogPipe(stream, sink, self._pipe_closed)
            self._pipes.append(pipe)
            self.sup.loghub.register(pipe)
            pipe.start(fd)
        self._watch_exit(popen)
        if parent_sock is not None:
            link = AgentLink(
                on_message=self._on_agent_message,
                on_call=lambda op, args, push: self.sup.agent_call(self, op, args, push),
                on_note=lambda note: self.sup.note(self.name, note),
                on_lost=lambda: None,
            )
            self._link = link
            self.sup.loghub.register(link)  # its ``sdk`` log lines obey store backpressure too
            self._setup.add(loop.create_task(loop.create_unix_connection(lambda: link, sock=parent_sock)))
            link_init = self.sup.init_message(self)
            if self.want_paused:
                link_init["paused"] = True
            link.send(link_init)  # queued until the transport is attached
            self._set(S.STARTING)
        else:
            self._link = None
            self.run.ready_mono = time.monotonic()
            self._set(S.RUNNING)
            if self.want_paused:
                self._signal_group(signal.SIGSTOP)
                self._set(S.PAUSED, self.reason, self.reason_kind)
        self.sup.note(self.name, f"started pid {popen.pid} ({' '.join(argv)[:200]})")

    def _contained(self, argv: list[str], env: dict[str, str]) -> list[str]:
        """``argv`` as started: joining the agent's cgroup (limits written) and with its rlimits.

        The process writes itself into its cgroup before the agent's program runs
        (see ``cgroups.wrap_argv``), so nothing it starts is ever outside it.
        """
        cgroups = self.sup.cgroups
        self.cgroup = cgroups.agent(self.name) if cgroups is not None else None
        if self.cgroup is not None:
            self.cgroup.set_limits(limits_of(self.policy))
        open_files = self.policy.limits.open_files
        if self.cgroup is None and open_files is None:
            return argv
        procs = self.cgroup.procs_files if self.cgroup is not None else []
        return wrap_argv(argv, procs, open_files, env.get("PATH"))

    def _spawn_tty(self) -> None:
        """Start the agent on a pseudo-terminal: its session's controlling terminal, held by the supervisor.

        Always a session of its own (a terminal belongs to a session). Its output,
        stdout and stderr together as on any terminal, is logged as ``stdout``.
        """
        master, slave = os.openpty()
        try:
            set_winsize(slave, self.spec.tty_cols, self.spec.tty_rows)
            link = os.ttyname(slave)
            http = self.sup.services.http_gateway
            env = self._env(None, http.tokens.issue(self.name) if http is not None else None)
            env.update(TERM=env.get("TERM") if "TERM" in (self.spec.env or {}) else "xterm-256color")
            env.pop("COLUMNS", None)
            env.pop("LINES", None)
            argv = self._argv(env)
            popen = subprocess.Popen(
                self._contained(argv, env), stdin=slave, stdout=slave, stderr=slave, cwd=self._cwd(), env=env,
                start_new_session=True, preexec_fn=make_controlling_tty, close_fds=True,
            )
        except BaseException:
            self._revoke_token()
            os.close(master)
            raise
        finally:
            os.close(slave)
        if self.tty is None:
            self.tty = TtySession(self)
        self._begin_run(popen).ready_mono = time.monotonic()
        self._take_input(os.dup(master), link)
        pipe = LogPipe("stdout", self.sup.loghub.sink_for(self.name, self.run.run_id), self._pipe_closed)
        pipe.tap = self.tty.output
        pipe.crlf = True
        self._pipes = [pipe]
        self.sup.loghub.register(pipe)
        pipe.start(master)
        self._watch_exit(popen)
        self._link = None
        self._set(S.RUNNING)
        if self.want_paused:
            self._signal_group(signal.SIGSTOP)
            self._set(S.PAUSED, self.reason, self.reason_kind)
        self.tty.notice(f"{self.name} started (pid {popen.pid})")
        self.sup.note(self.name, f"started pid {popen.pid} on a terminal {self.spec.tty_cols}x{self.spec.tty_rows} "
                                 f"({' '.join(argv)[:200]})")

    @property
    def input_fd(self) -> int | None:
        """The fd the agent's input is written to (a tty agent's pty master), if open."""
        return self._input_fd

    def _revoke_token(self) -> None:
        """The run is over: its gateway token authenticates nothing any more."""
        http = self.sup.services.http_gateway
        if http is not None:
            http.tokens.revoke(self.name)

    def _pipe_closed(self, pipe: LogPipe) -> None:
        self.sup.loghub.unregister(pipe)

    def _watch_exit(self, popen: subprocess.Popen[bytes]) -> None:
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):
            fut = asyncio.ensure_future(asyncio.to_thread(popen.wait))
            fut.add_done_callback(lambda f: self._on_exit(popen))
            return
        self._pidfd = pidfd

        def readable() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            self._pidfd = None
            self._on_exit(popen)

        loop.add_reader(pidfd, readable)

    # --- messages from an SDK agent ----------------------------------------------
    def _on_agent_message(self, msg: dict[str, Any]) -> None:
        t = msg.get("t")
        self.last_progress = time.monotonic()
        if t == "hello":
            if self.run and self.run.ready_mono is None:
                self.run.ready_mono = time.monotonic()
            if self.state is S.STARTING:
                self._set(S.RUNNING if not self.want_paused else S.PAUSING, self.reason, self.reason_kind)
        elif t == "paused":
            if self.state in (S.PAUSING, S.RUNNING, S.WAITING, S.STARTING) and self.want_paused:
                self._set(S.PAUSED, self.reason, self.reason_kind)
        elif t == "resumed":
            if self.state in (S.PAUSED, S.PAUSING) and not self.want_paused:
                self._set_running()
        elif t == "log":
            self.sup.agent_log(self, self.sup.redact(msg))
        elif t == "metric":
            self.sup.agent_metric(self, self.sup.redact(msg))
        elif t == "alert":
            self.sup.agent_alert(self, self.sup.redact(msg))
        else:
            from fleet.errors import ProtocolError

            raise ProtocolError(f"unknown control message type {t!r}")

    # --- pause / resume --------------------------------------------------------
    def pause(self, reason: str | None = None, kind: str | None = None) -> bool:
        """Ask the agent to pause; True if anything changed. Idempotent.

        ``kind`` says who paused it (operator, budget, alert), shown with ``reason``.
        """
        if self.want_paused and self.state in (S.PAUSED, S.PAUSING):
            return False
        if self.state not in (S.RUNNING, S.WAITING, S.STARTING, S.PAUSING):
            return False
        self.want_paused = True
        if self.kind == "sdk":
            if self._link is not None:
                self._link.send({"t": "pause"})
            if self.state in (S.RUNNING, S.WAITING):
                self._set(S.PAUSING, reason, kind)
            else:
                self.reason, self.reason_kind = reason, kind
        else:
            self._signal_group(signal.SIGSTOP)
            self._set(S.PAUSED, reason, kind)
        return True

    def resume(self) -> bool:
        if not self.want_paused and self.state not in (S.PAUSED, S.PAUSING):
            return False
        self.want_paused = False
        if not self.state.alive or self.state is S.STOPPING:
            return True
        if self.kind == "sdk":
            if self._link is not None:
                self._link.send({"t": "resume"})
            self._set_running()
        else:
            self._signal_group(signal.SIGCONT)
            self._set(S.RUNNING)
            self.sup.stdin_watch.wake()  # still blocked on its input? waiting again at the next look
        return True

    # --- waiting for the operator -------------------------------------------------
    def _set_running(self) -> None:
        """Running again (resumed): waiting at once if a question of the agent is still open."""
        if self._asks:
            self._set(S.WAITING, self._asks[-1][:200])
        else:
            self._set(S.RUNNING)

    def set_input_waiting(self, waiting: bool) -> None:
        """What the input watch saw: blocked reading its input, or not (any more)."""
        new_prompt = self.state is S.WAITING and any(p.has_partial for p in self._pipes)
        if waiting and (self.state is S.RUNNING or new_prompt):
            # Waiting (again, at a new prompt): a prompt without a newline is the question, show it.
            for pipe in self._pipes:
                pipe.flush_partial()
            from fleet.ansi import sanitize

            question = sanitize(self.sup.loghub.last_line(self.name), keep_sgr=False).strip()
            self._set(S.WAITING, question[:200] or None)
        elif not waiting and self.state is S.WAITING and not self._asks:
            self._set(S.RUNNING)

    def begin_ask(self, question: str) -> None:
        """An SDK agent asked the operator (``ctx.ask``): ``waiting`` until answered."""
        self._asks.append(question)
        if self.state is S.RUNNING or self.state is S.WAITING:
            self._set(S.WAITING, question[:200])

    def end_ask(self, question: str) -> None:
        with contextlib.suppress(ValueError):
            self._asks.remove(question)
        if self.state is S.WAITING:
            self._set_running()

    @property
    def accepts_input(self) -> bool:
        return self._input_fd is not None

    def write_input(self, data: bytes) -> int:
        """Write ``data`` to the agent's input now; raises ``AgentError`` when it cannot take it."""
        from fleet.errors import AgentError

        if not self.state.alive or self._popen is None:
            raise AgentError(f"{self.name} is {self.state.value}: no process reads its input")
        if self._input_fd is None:
            if self.input_closed:
                raise AgentError(f"{self.name}'s input was closed (EOF sent); restart it to reopen it")
            raise AgentError(f"{self.name} is an SDK agent: it has no input to write to "
                             "(answer its questions with `fleet answer`)")
        try:
            n = os.write(self._input_fd, data)
        except BlockingIOError:
            raise AgentError(f"{self.name} has not read its earlier input yet (its input pipe is full)") from None
        except OSError as exc:  # EPIPE: it closed its stdin; EIO: its terminal is gone
            raise AgentError(f"{self.name} no longer reads its input ({exc.strerror or exc})") from None
        self.sup.stdin_watch.soon(self)
        return n

    def close_input(self) -> None:
        """Send end-of-file: close the supervisor's end of the agent's stdin."""
        from fleet.errors import AgentError

        if not self.state.alive:
            raise AgentError(f"{self.name} is {self.state.value}: no process reads its input")
        if self._input_fd is None:
            raise AgentError(f"{self.name}'s input is already closed" if self.input_closed
                             else f"{self.name} is an SDK agent: it has no input to close")
        self._close_input()
        self.input_closed = True
        self.sup.row_changed(self)  # status shows the input closed
        self.sup.stdin_watch.soon(self)

    def _begin_run(self, popen: subprocess.Popen[bytes]) -> RunInfo:
        """The bookkeeping of a new run, alike for a pipe or a terminal: its :class:`RunInfo`,
        the watchdog, and no input or questions left from the run before."""
        self._popen = popen
        self.run_seq += 1
        self.run = RunInfo(self.sup.next_run_id(), popen.pid, time.time(), time.monotonic())
        self.exit_code = None
        self._exited.clear()
        self.last_progress = time.monotonic()
        self.sup.watchdog_add(popen.pid)
        self._close_input()
        self.input_closed = False
        self._asks.clear()
        return self.run

    def _take_input(self, fd: int, link: str) -> None:
        """Write the agent's stdin through ``fd`` (made non-blocking), known to others as ``link``."""
        os.set_blocking(fd, False)
        self._input_fd = fd
        self.input_link = link
        self.sup.stdin_watch.wake()

    def _close_input(self) -> None:
        if self._input_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._input_fd)
            self._input_fd = None

    async def output_drained(self) -> None:
        """Wait until the current run's stdout and stderr reached EOF (all read)."""
        await asyncio.gather(*(p.closed for p in self._pipes))

    async def wait_paused(self) -> None:
        await self._paused_event.wait()

    def send(self, msg: dict[str, Any]) -> None:
        if self._link is not None:
            self._link.send(msg)

    # --- stop / restart -----------------------------------------------------------
    async def stop(self, reason: str | None = None, kind: str | None = None) -> None:
        """SIGTERM the group, SIGKILL after the policy's grace period; wait for exit."""
        self._cancel_restart()
        if not self.state.alive:
            if self.state in (S.BACKOFF, S.CRASH_LOOP, S.CRASHED, S.EXITED):
                self._set(S.STOPPED, reason, kind)
            return
        self._stopping = True
        self._set(S.STOPPING, reason, kind)
        self.sup.update_tree()  # the freshest view of its processes, detached ones included
        self._signal_group(signal.SIGTERM)
        self._signal_group(signal.SIGCONT)  # a stopped process must run to handle SIGTERM
        grace = float(self.policy.restart.stop_grace_s)
        try:
            await asyncio.wait_for(self._exited.wait(), grace)
        except TimeoutError:
            self.sup.note(self.name, f"did not exit within {grace:g}s of SIGTERM; sending SIGKILL")
            self._signal_group(signal.SIGKILL)
            await self._exited.wait()
        await self._emptied()

    async def _emptied(self, timeout: float = 2.0) -> None:
        """Wait (bounded) until the agent's cgroup holds no process: a stop returns when all are gone.

        Killed processes take a moment to exit; the kernel says nothing when the
        last one did (but through inotify on v2's cgroup.events), so this polls.
        """
        cg = self.cgroup
        if cg is None:
            return
        deadline = time.monotonic() + timeout
        while cg.pids() and time.monotonic() < deadline:
            cg.kill()
            await asyncio.sleep(0.01)

    async def restart(self) -> None:
        keep_paused = self.want_paused
        await self.stop("restart", "restart")
        self.want_paused = keep_paused
        self.restarts += 1
        self.start(reset=True)

    def kill_now(self) -> None:
        """Last resort on supervisor exit: SIGKILL the group without waiting."""
        self._cancel_restart()
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: int) -> None:
        """Signal the agent: its process group, and every process of its cgroup or tree."""
        if self._popen is None or (self._popen.returncode is not None and sig != signal.SIGKILL):
            return
        try:
            os.killpg(self._popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        self._signal_rest(sig)

    def _signal_rest(self, sig: int) -> None:
        """``sig`` to the processes that left the group (``setsid``): the cgroup's, else the tree's."""
        if self.cgroup is not None:
            if sig == signal.SIGKILL:
                self.cgroup.kill()
            else:
                self.cgroup.signal(sig)
        elif self.sup.tree is not None:
            self.sup.tree.signal(self.name, sig)

    def _cancel_restart(self) -> None:
        if self._restart_handle is not None:
            self._restart_handle.cancel()
            self._restart_handle = None

    # --- exit and the restart policy ----------------------------------------------
    def _on_exit(self, popen: subprocess.Popen[bytes]) -> None:
        rc = popen.poll()
        if rc is None:  # pidfd fired but not reapable yet; try again shortly
            asyncio.get_running_loop().call_later(0.01, self._on_exit, popen)
            return
        # Whatever the agent left behind dies with it: its group, its cgroup (or its tree).
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.cgroup is None:
            self.sup.update_tree()
        elif has_limits(self.policy):
            # What the kernel did before the end (an OOM kill, refused forks) is still told.
            with contextlib.suppress(Exception):
                self.sup.limit_watch.check(self, exiting=True)
        self._signal_rest(signal.SIGKILL)
        self.sup.watchdog_remove(popen.pid)
        self._close_input()
        self._revoke_token()
        if self._link is not None:
            # Read what the agent sent before it died (its end is closed: EOF comes once
            # read), even under store backpressure; close it regardless after a moment.
            self.sup.loghub.unregister(self._link)
            self._link.retire()
            asyncio.get_running_loop().call_later(LINK_DRAIN_S, self._link.close)
            self._link = None
        self.exit_code = rc
        runtime = time.monotonic() - self.run.started_mono if self.run else 0.0
        desc = f"exit code {rc}" if rc >= 0 else f"killed by {_signame(-rc)}"
        self.sup.note(self.name, f"pid {popen.pid} ended: {desc} after {runtime:.1f}s")
        if self.tty is not None:
            self.tty.notice(f"{self.name} ended: {desc}")
        self._exited.set()
        self.sup.on_exit(self, rc)
        if self._stopping:
            self._stopping = False
            restarting = self.reason_kind == "restart"
            self._set(S.STOPPED, None if restarting else self.reason, None if restarting else self.reason_kind)
            return
        failed = rc != 0
        self._set(S.CRASHED if failed else S.EXITED, desc, "exit")
        self._after_exit(runtime, failed)

    def _after_exit(self, runtime: float, failed: bool) -> None:
        rp = self.policy.restart
        if rp.mode == "never" or (rp.mode == "on-failure" and not failed):
            return
        now = time.monotonic()
        self._restart_times.append(now)
        while self._restart_times and now - self._restart_times[0] > rp.window_s:
            self._restart_times.popleft()
        if len(self._restart_times) > rp.max_restarts:
            msg = f"{len(self._restart_times) - 1} restarts within {rp.window_s:g}s; not restarting"
            self._set(S.CRASH_LOOP, msg, "crash-loop")
            self.sup.on_crash_loop(self, msg)
            return
        if runtime >= max(STABLE_AFTER_S, rp.backoff_max_s):
            self._fails = 0
        self._fails += 1
        # The first restart waits ``backoff_initial_s`` too (as documented), then it doubles.
        delay = min(rp.backoff_initial_s * 2 ** (self._fails - 1), rp.backoff_max_s)
        self.restarts += 1
        if delay <= 0:
            self.start()
            return
        self._set(S.BACKOFF, f"restarting in {delay:.1f}s")
        self._restart_handle = asyncio.get_running_loop().call_later(delay, self._restart_due)

    def _restart_due(self) -> None:
        self._restart_handle = None
        if self.state is S.BACKOFF:
            self.start()


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"
