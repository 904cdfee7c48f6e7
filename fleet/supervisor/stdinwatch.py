"""Which agents are blocked reading their input: the ``waiting`` state, seen from the kernel.

A command agent that prints a question and reads its stdin looks exactly like
one that is thinking: silent. Asking the agent is not possible (it is any
program), so the supervisor looks at the process itself. On Linux, for the
agent's process and its descendants: ``/proc/<pid>/wchan`` names the kernel
function it sleeps in (``anon_pipe_read``/``pipe_read`` for a pipe,
``n_tty_read``/``wait_woken`` for a terminal); only then is
``/proc/<pid>/syscall`` read, whose first two fields are the system call number
(``read``, ``readv``) and its first argument, the fd; ``/proc/<pid>/fd/<fd>``
says whether that fd is the agent's stdin (the pipe's inode, or the agent's
pseudo-terminal). Three small reads per process, done only for agents that have
been silent (see ``StdinWatch``), never for one whose output is flowing.

Elsewhere (no /proc) nothing is ever reported waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import sys
import time
from typing import TYPE_CHECKING

from fleet.records import AgentState

if TYPE_CHECKING:
    from fleet.supervisor.core import Supervisor
    from fleet.supervisor.instance import AgentInstance

S = AgentState
_LINUX = sys.platform.startswith("linux")
#: ``read`` and ``readv`` system call numbers of this machine's architecture.
READ_SYSCALLS: frozenset[int] = {
    "x86_64": frozenset({0, 19}),
    "aarch64": frozenset({63, 65}),
    "arm64": frozenset({63, 65}),
    "riscv64": frozenset({63, 65}),
    "i686": frozenset({3, 145}),
    "armv7l": frozenset({3, 145}),
}.get(platform.machine(), frozenset())
#: Substrings of ``wchan`` that mean "asleep reading a pipe or a terminal".
READ_WCHANS = (b"pipe_read", b"pipe_wait", b"n_tty_read", b"wait_woken", b"tty_read")
#: How often the watch looks; an agent is looked at once its output has been quiet this long.
TICK_S = 0.25
QUIET_S = 0.2
#: A silent agent that was not waiting is looked at again after this long; after
#: ``PATIENT_LOOKS`` such looks in a row (silent ~10 s), only every ``PATIENT_RECHECK_S``.
RECHECK_S = 1.0
PATIENT_LOOKS = 10
PATIENT_RECHECK_S = 3.0
#: Processes looked at per agent (its tree), at most.
MAX_TREE = 64


def _read(path: str, size: int = 256) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def process_tree(pid: int, limit: int = MAX_TREE) -> list[int]:
    """``pid`` and its descendants (children of each main thread), breadth first."""
    out = [pid]
    i = 0
    while i < len(out) and len(out) < limit:
        p = out[i]
        i += 1
        data = _read(f"/proc/{p}/task/{p}/children", 4096)
        if data:
            out.extend(int(c) for c in data.split()[: limit - len(out)])
    return out


def reading_fd(pid: int) -> int | None:
    """The fd ``pid`` is blocked reading, if it sleeps in a pipe or terminal read."""
    wchan = _read(f"/proc/{pid}/wchan", 128)
    if not wchan or not any(w in wchan for w in READ_WCHANS):
        return None
    sc = _read(f"/proc/{pid}/syscall", 256)  # needs ptrace access: our own descendants
    if not sc:
        return None
    fields = sc.split()
    try:
        if int(fields[0]) not in READ_SYSCALLS:
            return None
        return int(fields[1], 16)
    except (IndexError, ValueError):
        return None


def blocked_on_input(pid: int, stdin_link: str) -> bool:
    """Whether ``pid`` or a descendant is blocked reading the file whose fd link is ``stdin_link``.

    ``stdin_link`` is what ``readlink /proc/<pid>/fd/N`` shows for the agent's input:
    ``pipe:[INODE]`` or ``/dev/pts/N``.
    """
    if not _LINUX or not READ_SYSCALLS:
        return False
    for p in process_tree(pid):
        fd = reading_fd(p)
        if fd is None:
            continue
        try:
            if os.readlink(f"/proc/{p}/fd/{fd}") == stdin_link:
                return True
        except OSError:
            continue
    return False


class StdinWatch:
    """Looks, about four times a second, at the agents whose output went quiet.

    An agent is looked at when its output has been quiet for ``QUIET_S`` after
    it printed something (the usual prompt-then-read: detected in ~0.2-0.5 s),
    and every ``RECHECK_S`` while it stays silent; a waiting agent every tick,
    so an answer it read clears ``waiting`` within a tick. An agent whose output
    keeps flowing is never looked at, and a fleet without input-capable agents
    alive never wakes this loop. A probe costs ~50 µs (a shell and its child,
    on a loaded 2-core machine): 200 agents silent for a while cost ~3 ms a
    second, because an agent silent for over ~10 s is looked at every 3 s (one
    that prompts first is still seen at once: its prompt is new output).
    """

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._wake = asyncio.Event()
        #: name -> (monotonic time of the last look, last_output seen then, looks in a row
        #: that found it silent and not waiting)
        self._looked: dict[str, tuple[float, float, int]] = {}
        self.probes = 0

    def wake(self) -> None:
        """An agent with an input came up (or was written to): start looking."""
        self._wake.set()

    def soon(self, inst: AgentInstance, delay: float = 0.03) -> None:
        """Look at ``inst`` shortly (after ``fleet send``: did it read?)."""
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().call_later(delay, self.look, inst)
        self.wake()

    def _watched(self) -> list[AgentInstance]:
        return [i for i in self.sup.instances.values()
                if i.input_link is not None and i.state in (S.RUNNING, S.WAITING) and i.pid is not None]

    async def run(self) -> None:
        while True:
            if not self._watched():
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(TICK_S)  # the cadence of the watch, not a wait for an event
            try:
                self.tick()
            except Exception as exc:  # never let one odd /proc entry stop the watch
                print(f"fleet: input watch failed: {exc!r}", file=sys.stderr)

    def tick(self) -> None:
        now = time.monotonic()
        wall = time.time()
        last_output = self.sup.loghub.last_output
        watched = self._watched()
        names = {i.name for i in watched}
        for name in [n for n in self._looked if n not in names]:
            del self._looked[name]
        for inst in watched:
            out = last_output.get(inst.name, 0.0)
            if inst.state is S.WAITING:
                self.look(inst)
                continue
            if wall - out < QUIET_S:
                continue  # output flowing: not waiting for anyone
            at, seen, quiet = self._looked.get(inst.name, (0.0, -1.0, 0))
            every = PATIENT_RECHECK_S if quiet >= PATIENT_LOOKS else RECHECK_S
            if seen != out or now - at >= every:
                self.look(inst)

    def look(self, inst: AgentInstance) -> bool:
        """Probe ``inst`` now and set or clear its ``waiting`` state; True if waiting."""
        if inst.input_link is None or inst.pid is None or inst.state not in (S.RUNNING, S.WAITING):
            return False
        self.probes += 1
        out = self.sup.loghub.last_output.get(inst.name, 0.0)
        _, seen, quiet = self._looked.get(inst.name, (0.0, -1.0, 0))
        waiting = blocked_on_input(inst.pid, inst.input_link)
        self._looked[inst.name] = (time.monotonic(), out, quiet + 1 if seen == out and not waiting else 0)
        inst.set_input_waiting(waiting)
        return waiting
