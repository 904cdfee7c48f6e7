"""Terminal agents: the pseudo-terminal the supervisor holds, and ``fleet attach`` to it.

A ``tty = true`` agent runs on a pty whose master the supervisor keeps: its
output is read like any agent's (into the log, escape sequences neutralised
where shown) and also fanned out, as the raw bytes, to every attached client.

Attaching goes through one unix socket, ``<state_dir>/attach.sock`` (0600 in
the 0700 state dir, the control socket's rule), served on the supervisor's
loop where the pty is read, rather than through the control socket: the control
protocol is JSON lines answered on another thread, so a keystroke would cross
two event loops and be JSON-encoded both ways; here it is a few bytes on a
socket that go straight to the pty, and the screen comes back as the program
wrote it. One socket rather than one per agent: nothing to create or remove as
agents come and go (names may hold ``#``), and the hello names the agent.

Wire: the client sends one JSON line ``{"agent", "cols", "rows", "write"}``;
the server answers one JSON line ``{"ok": true, "mode": "rw"|"ro"}`` (or
``{"ok": false, "error"}``) and then streams the terminal's output. After its
hello the client sends frames: ``0x00 len:u16 data`` (keystrokes) and
``0x01 cols:u16 rows:u16`` (its window was resized). Only one client writes at
a time (the first that asked to); the others watch read-only, and a watcher's
keystrokes and sizes are ignored. On attach the last ``REPLAY_BYTES`` of output
are replayed, and a full-screen program redraws on the resize that follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import struct
import termios
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.errors import AgentError, FleetError

if TYPE_CHECKING:
    from fleet.supervisor.core import Supervisor
    from fleet.supervisor.instance import AgentInstance

#: Output kept per tty agent for a client that attaches later.
REPLAY_BYTES = 64 * 1024
#: Output queued for one slow client before it is cut off (it can attach again).
CLIENT_HIGH_WATER = 4 * 1024 * 1024
MAX_HELLO = 4096
FRAME_INPUT = 0
FRAME_RESIZE = 1


def attach_socket_path(state_dir: Path) -> Path:
    return state_dir / "attach.sock"


def set_winsize(fd: int, cols: int, rows: int) -> None:
    """Set a terminal's size (the kernel signals SIGWINCH to its foreground group)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def make_controlling_tty() -> None:
    """In the child, after ``setsid``: its stdin (the pty's slave) becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class TtySession:
    """One tty agent's attached clients, writer and recent output (lives across its restarts)."""

    def __init__(self, inst: AgentInstance) -> None:
        self.inst = inst
        self.clients: list[asyncio.StreamWriter] = []
        self.writer: asyncio.StreamWriter | None = None
        self._tail: deque[bytes] = deque()
        self._tail_bytes = 0

    def output(self, data: bytes) -> None:
        """Raw bytes the agent wrote to its terminal (called from the pipe reader)."""
        self._tail.append(data)
        self._tail_bytes += len(data)
        while self._tail_bytes > REPLAY_BYTES and len(self._tail) > 1:
            self._tail_bytes -= len(self._tail.popleft())
        for client in list(self.clients):
            self._send(client, data)

    def notice(self, text: str) -> None:
        """A line from the fleet to every attached client (the agent exited, restarted)."""
        data = f"\r\n[fleet: {text}]\r\n".encode()
        for client in list(self.clients):
            self._send(client, data)

    def _send(self, client: asyncio.StreamWriter, data: bytes) -> None:
        if client.is_closing():
            return
        if client.transport.get_write_buffer_size() > CLIENT_HIGH_WATER:
            client.close()  # a client that does not read cannot hold the fleet's memory
            return
        client.write(data)

    def replay(self) -> bytes:
        return b"".join(self._tail)

    def resize(self, client: asyncio.StreamWriter, cols: int, rows: int) -> None:
        if client is not self.writer or not (1 <= cols <= 1000 and 1 <= rows <= 1000):
            return
        fd = self.inst.input_fd
        if fd is not None:
            with contextlib.suppress(OSError):
                set_winsize(fd, cols, rows)

    def keys(self, client: asyncio.StreamWriter, data: bytes) -> None:
        if client is not self.writer or not data:
            return
        with contextlib.suppress(FleetError):
            self.inst.write_input(data)

    def add(self, client: asyncio.StreamWriter, write: bool) -> str:
        self.clients.append(client)
        if write and self.writer is None:
            self.writer = client
            return "rw"
        return "ro"

    def remove(self, client: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ValueError):
            self.clients.remove(client)
        if self.writer is client:
            self.writer = None


class AttachServer:
    """Serves ``attach.sock`` on the supervisor's loop."""

    def __init__(self, sup: Supervisor, state_dir: Path) -> None:
        self.sup = sup
        self.path = attach_socket_path(state_dir)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _find(self, name: Any) -> AgentInstance:
        from fleet.asking import one_instance

        if not isinstance(name, str):
            raise FleetError("attach: name an agent")
        inst = one_instance(self.sup, name)
        if inst.tty is None:
            raise AgentError(f"{inst.name} is not a terminal agent: `fleet logs -f {inst.name}` is the way "
                             f"to follow it (and `fleet send {inst.name} TEXT` to type to it)")
        return inst

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        session: TtySession | None = None
        try:
            try:
                line = await asyncio.wait_for(reader.readline(), 10)
                if len(line) > MAX_HELLO:
                    raise FleetError("attach: hello too long")
                hello = json.loads(line or b"null")
                if not isinstance(hello, dict):
                    raise FleetError("attach: the first line must be a JSON object")
                inst = self._find(hello.get("agent"))
            except (FleetError, ValueError, TimeoutError) as exc:
                writer.write(json.dumps({"ok": False, "error": str(exc)}).encode() + b"\n")
                await writer.drain()
                return
            session = inst.tty
            assert session is not None
            mode = session.add(writer, bool(hello.get("write", True)))
            writer.write(json.dumps({"ok": True, "mode": mode, "agent": inst.name,
                                     "state": inst.state.value}).encode() + b"\n")
            writer.write(session.replay())
            how = "read-write" if mode == "rw" else "read-only"
            self.sup.note(inst.name, f"operator attached to its terminal ({how})")
            self.sup.publish("audit", None, {"action": "attach", "target": inst.name, "origin": "attach",
                                             "details": {"mode": mode}})
            cols, rows = hello.get("cols"), hello.get("rows")
            if isinstance(cols, int) and isinstance(rows, int):
                session.resize(writer, cols, rows)
            await self._frames(reader, writer, session)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if session is not None:
                session.remove(writer)
                self.sup.note(session.inst.name, "operator detached from its terminal")
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _frames(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: TtySession) -> None:
        while True:
            kind = await reader.readexactly(1)
            if kind[0] == FRAME_INPUT:
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                session.keys(writer, await reader.readexactly(size))
            elif kind[0] == FRAME_RESIZE:
                cols, rows = struct.unpack("!HH", await reader.readexactly(4))
                session.resize(writer, cols, rows)
            else:
                return  # not our protocol: hang up
