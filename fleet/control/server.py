"""The control socket: ``<state_dir>/control.sock``, JSON lines, the operator's alone.

The directory is 0700 and the socket 0600, created under a tight umask so
there is no window in which another user could connect. Each connection may
send requests (answered in any order, matched by ``id``) and may subscribe to
pushed events. A slow subscriber never slows the fleet: when its transport
buffer is full, pushes to it are dropped and counted, and it is told how many
it missed (the store still has everything).

The socket is served from its own thread and event loop. Under a log flood
the supervisor's loop spends each iteration reading every agent's pipe, and
with the agents in their own sessions (so they cannot reach the operator's
terminal) the kernel gives the whole supervisor one share among many busy
processes: an iteration took ~130 ms, and a request waited for it. Here a
request is read at once; the operations declared ``read_only`` (``status``,
``ping``) are answered in this thread from immutable snapshots the loop
publishes (they never read a half-changed object nor write one), every other
operation runs on the supervisor's loop, where all changes to the fleet happen,
and its reply comes back here. Pushes are queued by the supervisor's loop and written by this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from fleet.control.client import socket_answers
from fleet.control.logbudget import LogBudget
from fleet.control.ops import Operations
from fleet.errors import FleetError, ProtocolError, TooManyConnections, error_to_wire
from fleet.flow import ReadGate
from fleet.jsonlines import LineBuffer, dumps, loads
from fleet.paths import ensure_private_dir
from fleet.records import LogChunk
from fleet.supervisor.core import Subscriber, Supervisor

MAX_REQUEST = 32 * 1024 * 1024
#: Incomplete requests held across all connections. One client may send a request of up
#: to ``MAX_REQUEST``; 500 clients each half-way through one would hold gigabytes. Past
#: this total, a connection holding more than ``PARTIAL_SHARE`` of an unfinished line has
#: it discarded (and is told so).
MAX_PARTIAL_TOTAL = 64 * 1024 * 1024
PARTIAL_SHARE = 64 * 1024
#: Bytes a subscriber may have queued before pushes to it are dropped.
SUBSCRIBER_HIGH_WATER = 8 * 1024 * 1024
#: Log text pushed to one subscriber per second (and in one burst). A flood goes to the
#: store at its own speed; a console cannot show 800 k lines/s and, given a core of its
#: own, spent it decoding them (11 CPU-s over a 4 M-line flood). Past the cap lines are
#: skipped and counted in a ``logs_skipped`` push; ``logs`` and the console's history
#: read every line back from the store.
LOG_PUSH_RATE = 4 * 1024 * 1024
LOG_PUSH_BURST = 4 * 1024 * 1024
#: How soon a count of skipped lines is pushed when no later line carries it.
SKIP_REPORT_S = 0.5
#: Sampling done per turn of the control loop when refreshing CPU and memory figures.
STATS_SLICE_S = 0.005
#: Connections the control socket keeps at most (fewer when file descriptors are short:
#: see ``connection_cap``). ~20 000 idle connections used to exhaust the descriptors, after
#: which ``status`` hung and agent restarts failed with EMFILE. At the cap the idlest
#: connection (no request in flight, quiet for ``EVICT_IDLE_S``; plain clients before
#: subscribers) is closed to make room, so ``fleet status`` still gets in; when none is
#: idle, the newcomer is refused with a ``too_many_connections`` error.
MAX_CONNECTIONS = 512
EVICT_IDLE_S = 1.0
#: Descriptors kept free for everything else: the store, log segments read back (32),
#: inotify, the watchdog, and 8 per agent (pipes, channel, pidfd, and a spawn's own).
FD_RESERVE_BASE = 160
FD_RESERVE_PER_AGENT = 8


def connection_cap(agents: int) -> int:
    """How many control connections fit beside what the fleet's agents need of ``RLIMIT_NOFILE``."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):  # pragma: no cover - not Unix
        return MAX_CONNECTIONS
    if soft == getattr(resource, "RLIM_INFINITY", -1):
        return MAX_CONNECTIONS
    return max(8, min(MAX_CONNECTIONS, soft - FD_RESERVE_BASE - FD_RESERVE_PER_AGENT * agents))


def raise_fd_limit() -> None:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard one (commonly 1024 of 524 288): agents and
    clients then share room the system already grants; inherited by the agents unchanged."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, OSError, ValueError):  # pragma: no cover - not allowed: keep the cap lower
        pass


#: Clients named in ``status`` (the count of connections is not bounded by this).
MAX_LISTED_CLIENTS = 50


class AlreadyRunning(FleetError):
    code = "already_running"


def socket_path(state_dir: Path) -> Path:
    return state_dir / "control.sock"


def _peer_pid(transport: asyncio.BaseTransport) -> int | None:
    """The pid of the process at the other end of a Unix socket (``SO_PEERCRED``)."""
    import socket
    import struct

    sock = transport.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        pid, _uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
    except OSError:
        return None
    return pid or None


def _tty_of(pid: int | None) -> str | None:
    """The terminal a client process draws on (its stdin), if any."""
    if pid is None:
        return None
    try:
        target = os.readlink(f"/proc/{pid}/fd/0")
    except OSError:
        return None
    return target if target.startswith("/dev/") and "null" not in target else None


class _Connection(asyncio.Protocol):
    """One client; lives on the control loop except for ``_push`` (supervisor loop)."""

    def __init__(self, server: ControlServer) -> None:
        self.server = server
        self.buf = LineBuffer(MAX_REQUEST)
        self.transport: asyncio.Transport | None = None
        self.unsubscribe: Any = None
        self.sub: Subscriber | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        # Pushes queued by the supervisor's loop for this loop to write.
        self._out_lock = threading.Lock()
        self._outbox: list[bytes] = []
        self._out_bytes = 0
        self._flush_scheduled = False
        self._closed = False
        self._log_budget = LogBudget(LOG_PUSH_RATE, LOG_PUSH_BURST)
        self._skipped: dict[str, int] = {}  # agent -> lines skipped since the last report
        #: What the client said it is (the ``origin`` of its requests: console, cli, api...).
        self.origin: str | None = None
        self.connected_at = time.time()
        self.peer_pid: int | None = None
        #: Stops reading this client while it has too much pending (see ``fleet.flow``).
        self.gate = ReadGate(self._start)
        self.last_active = time.monotonic()
        #: Bytes of an unfinished request line held (counted in ``server.partial_bytes``).
        self._partial = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer_pid = _peer_pid(transport)
        self.gate.attach(self.transport)  # type: ignore[arg-type]
        self.last_active = time.monotonic()

    def describe(self) -> dict[str, Any]:
        """This client as ``fleet status`` lists it: what it is, its process and terminal, since when."""
        return {"kind": self.origin or "unknown", "pid": self.peer_pid, "tty": _tty_of(self.peer_pid),
                "since": self.connected_at, "subscribed": self.sub is not None}

    def pause_writing(self) -> None:  # the client is not reading its replies: stop reading its requests
        self.gate.pause_writing()

    def resume_writing(self) -> None:
        self.gate.resume_writing()

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        lines, dropped = self.buf.feed(data)
        if dropped:
            self._write({"id": None, "ok": False, "error": error_to_wire(
                ProtocolError(f"request over {MAX_REQUEST} bytes discarded"))})
        self._count_partial()
        for raw in lines:
            if raw.strip():
                self.gate.offer(raw)

    def _count_partial(self) -> None:
        """Keep the server's total of incomplete requests; shed this one's if the total is over."""
        held = self.buf.pending
        server = self.server
        server.partial_bytes += held - self._partial
        self._partial = held
        if held > PARTIAL_SHARE and server.partial_bytes > MAX_PARTIAL_TOTAL:
            self.buf.discard()
            server.partial_bytes -= held
            self._partial = 0
            self._write({"id": None, "ok": False, "error": error_to_wire(ProtocolError(
                f"incomplete request of over {held} bytes discarded: the fleet holds more than "
                f"{MAX_PARTIAL_TOTAL >> 20} MiB of unfinished requests; send it again"))})

    def _start(self, raw: bytes) -> bool:
        """Handle one request line (``ReadGate``): True if a request task now runs."""
        try:
            msg = loads(raw)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            self._write({"id": None, "ok": False,
                         "error": error_to_wire(ProtocolError(f"invalid JSON request: {exc}"))})
            return False
        task = asyncio.ensure_future(self._handle(msg))
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        return True

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.last_active = time.monotonic()
        self.gate.done()

    async def _handle(self, msg: dict[str, Any]) -> None:
        rid = msg.get("id")
        op = msg.get("op")
        args = msg.get("args") or {}
        origin = str(msg.get("origin") or "api")[:32]
        self.origin = origin
        try:
            if not isinstance(op, str):
                raise ProtocolError("request needs an 'op' string")
            if not isinstance(args, dict):
                raise ProtocolError("'args' must be an object")
            spec = self.server.ops.get(op)
            if spec.streaming:
                result = await self.server.on_supervisor(self._subscribe(**spec.validate(args)))
            elif spec.read_only:
                result = await self.server.read_only(op, args, origin)
            else:
                result = await self.server.on_supervisor(self.server.ops.call(op, args, origin))
        except asyncio.CancelledError:
            raise
        except FleetError as exc:
            self._write({"id": rid, "ok": False, "error": error_to_wire(exc)})
        except Exception as exc:  # never let one request take the supervisor down
            self._write({"id": rid, "ok": False, "error": {"code": "internal", "message": repr(exc)}})
        else:
            self._write({"id": rid, "ok": True, "result": result})

    async def _subscribe(self, kinds: list[str] | None = None, agents: list[str] | None = None,
                         logs_max_rate: float | None = None) -> dict[str, Any]:
        """Runs on the supervisor's loop: the subscriber list is the supervisor's.

        ``logs_max_rate`` (bytes of log text per second) lowers this subscriber's
        share of a flood below the fleet's ``LOG_PUSH_RATE``: a console that shows
        a screenful needs a few hundred KiB/s, and every byte it is not sent is a
        byte the supervisor does not decode and encode as JSON.
        """
        rate = float(LOG_PUSH_RATE)
        if logs_max_rate is not None:
            if isinstance(logs_max_rate, bool) or not isinstance(logs_max_rate, int | float) or not logs_max_rate > 0:
                raise ProtocolError(f"logs_max_rate must be a positive number of bytes per second, "
                                    f"not {logs_max_rate!r}")
            rate = min(rate, float(logs_max_rate))
        if self.unsubscribe is not None:
            self.unsubscribe()
        if self._closed:  # the client went away while this was on its way
            return {"subscribed": []}
        with self._out_lock:
            self._log_budget = LogBudget(rate, min(float(LOG_PUSH_BURST), rate))
        self.sub = Subscriber(self._push, set(kinds) if kinds else None, set(agents) if agents else None,
                              admit_logs=self._admit_logs)
        self.unsubscribe = self.server.sup.subscribe(self.sub)
        return {"subscribed": sorted(kinds) if kinds else "all", "logs_max_rate": rate}

    def _push(self, msg: dict[str, Any]) -> bool:
        """Called on the supervisor's loop; never blocks, never grows without bound."""
        t = self.transport
        if self._closed or t is None or t.is_closing():
            return False
        with self._out_lock:
            if self._out_bytes + t.get_write_buffer_size() > SUBSCRIBER_HIGH_WATER:
                return False
            if self._skipped:
                self._queue_skipped()
            if self.sub is not None and self.sub.dropped:
                missed, self.sub.dropped = self.sub.dropped, 0
                self._queue(dumps({"event": "dropped", "data": {"count": missed}}))
            self._queue(dumps(msg))
            if self._flush_scheduled:
                return True
            self._flush_scheduled = True
        try:
            self.server.loop.call_soon_threadsafe(self._flush)
        except RuntimeError:  # the control loop is closed: the fleet is shutting down
            return False
        return True

    def _admit_logs(self, chunk: LogChunk) -> bool:
        """Called on the supervisor's loop before ``chunk`` is encoded: whether it fits this
        subscriber's log rate. A chunk that does not is counted as skipped and reported."""
        if self._closed:
            return False
        with self._out_lock:
            if self._log_budget.take(len(chunk.data)):
                return True
            self._note_skipped(chunk.agent, chunk.count)
        return False

    def _note_skipped(self, agent: str, count: int) -> None:
        """Count lines skipped by the log rate (caller holds ``_out_lock``)."""
        if not self._skipped:  # the first skip of a run: make sure it is reported even if no line follows
            try:
                self.server.loop.call_soon_threadsafe(self.server.loop.call_later, SKIP_REPORT_S, self._report_skipped)
            except RuntimeError:
                pass
        self._skipped[agent] = self._skipped.get(agent, 0) + count

    def _queue_skipped(self) -> None:
        """Queue a ``logs_skipped`` push (caller holds ``_out_lock``)."""
        skipped, self._skipped = self._skipped, {}
        self._queue(dumps({"event": "logs_skipped",
                           "data": {"lines": sum(skipped.values()), "agents": skipped}}))

    def _report_skipped(self) -> None:
        """On the control loop: push the skipped count if no later line has carried it."""
        with self._out_lock:
            if not self._skipped or self._closed:
                return
            self._queue_skipped()
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        self._flush()

    def _queue(self, data: bytes) -> None:
        self._outbox.append(data)
        self._out_bytes += len(data)

    def _flush(self) -> None:
        with self._out_lock:
            out, self._outbox = self._outbox, []
            self._out_bytes = 0
            self._flush_scheduled = False
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))

    def _write(self, msg: dict[str, Any]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(dumps(msg))

    def _forget_partial(self) -> None:
        self.server.partial_bytes -= self._partial
        self._partial = 0

    def evict(self, reason: str) -> None:
        """Close this connection to make room for another, telling the client why."""
        self._closed = True
        self.gate.close()
        self._forget_partial()
        self.server.connections.discard(self)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(dumps({"event": "closed", "data": {"reason": reason}}))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.gate.close()
        self._forget_partial()
        if self.unsubscribe is not None:
            self.server.call_on_supervisor(self.unsubscribe)
        for t in list(self.tasks):
            t.cancel()
        self.server.connections.discard(self)


class _Refused(asyncio.Protocol):
    """A connection over the cap: one error line saying so, then closed."""

    def __init__(self, message: str) -> None:
        self.message = message

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(dumps({"id": None, "ok": False, "error": error_to_wire(TooManyConnections(self.message))}))
        transport.close()


class ControlServer:
    """Serves one supervisor's operations on its control socket, from a thread of its own."""

    def __init__(self, sup: Supervisor, ops: Operations, state_dir: Path) -> None:
        self.sup = sup
        self.ops = ops
        self.state_dir = state_dir
        self.path = socket_path(state_dir)
        self.connections: set[_Connection] = set()
        self.loop: asyncio.AbstractEventLoop = asyncio.new_event_loop()
        self._sup_loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        #: Connections refused at the cap, and idle ones closed to make room.
        self.refused = 0
        self.evicted = 0
        #: Bytes of unfinished request lines held across connections.
        self.partial_bytes = 0

    async def start(self) -> None:
        """Listen on the socket (called on the supervisor's loop)."""
        self._sup_loop = asyncio.get_running_loop()
        ensure_private_dir(self.state_dir)
        if self.path.exists() or self.path.is_symlink():
            if socket_answers(self.path):
                raise AlreadyRunning(f"a fleet is already running here (socket {self.path})")
            self.path.unlink()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fleet-control", daemon=True)
        self._thread.start()
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._listen(), self.loop))

    async def _listen(self) -> None:
        old = os.umask(0o177)
        try:
            self._server = await self.loop.create_unix_server(self._factory, str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    def _factory(self) -> asyncio.Protocol:
        cap = connection_cap(len(self.sup.instances))
        if len(self.connections) >= cap and not self._make_room(cap):
            self.refused += 1
            return _Refused(f"the fleet's control socket is at its cap of {cap} connections, all busy;"
                            " close some and retry")
        conn = _Connection(self)
        self.connections.add(conn)
        return conn

    def _make_room(self, cap: int) -> bool:
        """Close the idlest connections until one fits under ``cap``; False if none can go."""
        now = time.monotonic()
        idle = sorted(
            (c for c in self.connections
             if not c.tasks and not c.gate.waiting and now - c.last_active >= EVICT_IDLE_S and not c._closed),
            key=lambda c: (c.sub is not None, c.last_active),
        )
        while len(self.connections) >= cap and idle:
            victim = idle.pop(0)
            victim.evict(f"closed to make room: the control socket is at its cap of {cap} connections"
                         " and this one was the idlest")
            self.evicted += 1
        return len(self.connections) < cap

    # --- crossing between the two loops ------------------------------------------------
    async def on_supervisor(self, coro: Any) -> Any:
        """Run ``coro`` on the supervisor's loop and await its result from the control loop."""
        assert self._sup_loop is not None
        fut = asyncio.run_coroutine_threadsafe(coro, self._sup_loop)
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            fut.cancel()
            raise

    def call_on_supervisor(self, fn: Any, *args: Any) -> None:
        if self._sup_loop is not None and not self._sup_loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._sup_loop.call_soon_threadsafe(fn, *args)

    async def read_only(self, op: str, args: dict[str, Any], origin: str) -> Any:
        """Answer a read-only op here, from what the supervisor's loop has published."""
        if op == "status" and self.sup.stats_age_s() > 1.0:
            self.loop.call_soon(self._refresh_stats)  # after this reply is written
        result = await self.ops.call(op, args, origin)
        if op == "status" and isinstance(result, dict):
            result["clients"] = self.clients()
        return result

    def clients(self) -> list[dict[str, Any]]:
        """Every connection but one-shot CLI calls, oldest first (read on the control loop)."""
        conns = sorted(self.connections, key=lambda c: c.connected_at)
        return [c.describe() for c in conns if c.origin not in (None, "cli")][:MAX_LISTED_CLIENTS]

    def _refresh_stats(self) -> None:
        """A few ms of sampling per turn of this loop, so requests keep being answered meanwhile."""
        try:
            done = self.sup.refresh_stats(budget_s=STATS_SLICE_S)
        except RuntimeError:  # the fleet changed under it; the next status tries again
            return
        if not done:
            self.loop.call_soon(self._refresh_stats)

    async def close(self) -> None:
        """Stop listening, close every connection and the thread (called on the supervisor's loop)."""
        if self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)), 3
                )
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 2)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _shutdown(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)
        # Let connection_lost callbacks and cancelled request tasks finish.
        tasks = [t for c in list(self.connections) for t in c.tasks]
        if tasks:
            await asyncio.wait(tasks, timeout=1)
