"""What ``fleet run`` prints: state changes and alerts as they happen, and with ``--logs`` every line.

One line per event, prefixed by the agent's name in a colour of its own (on a
terminal), as ``docker compose up`` and honcho do, so a crash loop or an
alert shows in the terminal that runs the fleet and a log of it reads well.

The printer subscribes to the supervisor in-process. It never writes on the
supervisor's loop: a terminal that scrolls slowly (or a paused ``less``)
would stall every agent's pipes. Events go into a bounded queue that a
thread writes out; when the terminal falls that far behind, lines are
counted instead of queued and the count is printed once it catches up
(every line is in the store: ``fleet logs``).
"""

from __future__ import annotations

import os
import queue
import threading
from typing import IO, Any

from fleet.ansi import sanitize

#: Events the printer holds for a slow terminal before it starts counting instead.
QUEUE_MAX = 10_000
#: Colours of the agents' names (cycled in fleet.toml order), as compose does.
PALETTE = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")
STATE_COLOURS = {"running": "32", "crashed": "31", "crash-loop": "1;31", "backoff": "33", "paused": "36",
                 "pausing": "36", "stopped": "2", "exited": "2", "stopping": "2", "starting": "2", "removed": "2"}
SEVERITY_COLOURS = {"info": "36", "warning": "33", "error": "31", "critical": "1;31"}
KINDS = ("state", "alert", "policy_applied", "policy_error", "approval", "fleet")


def use_colour(stream: IO[str]) -> bool:
    """Colour on a terminal, unless ``NO_COLOR`` is set (https://no-color.org)."""
    return hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("NO_COLOR")


class EventPrinter:
    """Formats pushed events as lines and writes them from a thread of its own."""

    def __init__(self, out: IO[str], *, logs: bool = False, colour: bool | None = None) -> None:
        self.out = out
        self.logs = logs
        self.colour = use_colour(out) if colour is None else colour
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE_MAX)
        self._skipped = 0
        self._skip_lock = threading.Lock()
        self._width = 0
        self._colours: dict[str, str] = {}
        self._unsubscribe: Any = None
        self._thread = threading.Thread(target=self._write_loop, name="fleet-run-output", daemon=True)
        self._thread.start()

    # --- wiring ---------------------------------------------------------------------
    def attach(self, runtime: Any) -> None:
        """Subscribe to the runtime's supervisor (called on its loop once it answers)."""
        from fleet.supervisor.core import Subscriber

        sup = runtime.sup
        names = [n for spec in sup.book.agents for n in spec.instances()]
        self._width = min(24, max((len(n) for n in names), default=5))
        for spec in sup.book.agents:
            self._group_colour(spec.name)
        kinds = {*KINDS, "logs"} if self.logs else set(KINDS)
        self._unsubscribe = sup.subscribe(Subscriber(self.offer, kinds))

    def offer(self, msg: dict[str, Any]) -> bool:
        """Called on the supervisor's loop: queue, never block."""
        try:
            self._queue.put_nowait(msg)
        except queue.Full:
            with self._skip_lock:
                self._skipped += 1
        return True  # skipped lines are reported here, not as the socket's "dropped"

    def close(self) -> None:
        """Write out what is queued, then stop the thread."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        try:
            self._queue.put(None, timeout=2)
        except queue.Full:
            return
        self._thread.join(timeout=5)

    # --- writing -----------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            msg = self._queue.get()
            batch = [msg]
            while msg is not None and not self._queue.empty() and len(batch) < 1000:
                msg = self._queue.get_nowait()
                batch.append(msg)
            lines: list[str] = []
            for m in batch:
                if m is not None:
                    lines.extend(self.format(m))
            with self._skip_lock:
                skipped, self._skipped = self._skipped, 0
            if skipped:
                lines.append(self._prefix(None) + f"… {skipped} events not printed (the terminal fell behind; "
                             "`fleet logs` has every line)")
            if lines:
                try:
                    self.out.write("".join(line + "\n" for line in lines))
                    self.out.flush()
                except (OSError, ValueError):  # the terminal went away: keep the fleet running
                    pass
            if batch[-1] is None:
                return

    def _paint(self, code: str | None, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and code else text

    def _group_colour(self, group: str) -> str:
        if group not in self._colours:
            self._colours[group] = PALETTE[len(self._colours) % len(PALETTE)]
        return self._colours[group]

    def _prefix(self, agent: str | None) -> str:
        name = agent or "fleet"
        code = self._group_colour(agent.split("#", 1)[0]) if agent else "1"
        return self._paint(code, f"{name:<{self._width}} |") + " "

    def format(self, msg: dict[str, Any]) -> list[str]:
        """The lines one pushed event prints as (none for kinds not shown)."""
        kind = msg.get("event")
        data = msg.get("data") or {}
        agent = data.get("agent")
        if kind == "logs":
            prefix = self._prefix(agent)
            red = data.get("stream") == "stderr"
            text = str(data.get("text") or "")
            return [prefix + (self._paint("31", line) if red and self.colour else line)
                    for line in sanitize(text, keep_sgr=self.colour).split("\n")[: int(data.get("count") or 1)]]
        if kind == "state":
            state = str(data.get("state", ""))
            extra = []
            if state == "running" and data.get("pid"):
                extra.append(f"pid {data['pid']}")
            if not data.get("reason") and data.get("exit_code") not in (None, 0) and state in (
                    "crashed", "exited", "backoff", "crash-loop"):
                extra.append(f"exit {data['exit_code']}")
            if data.get("reason"):
                extra.append(_clean(data["reason"]))
            tail = f" ({'; '.join(extra)})" if extra else ""
            return [self._prefix(agent) + self._paint(STATE_COLOURS.get(state), state) + tail]
        if kind == "alert":
            sev = str(data.get("severity", "warning"))
            return [self._prefix(agent) + self._paint(SEVERITY_COLOURS.get(sev, "33"), f"ALERT {sev}")
                    + f" {data.get('rule', '')}: {_clean(data.get('message', ''))}"]
        if kind == "policy_applied":
            files = ", ".join(data.get("files") or []) or "no file changed"
            return [self._prefix(None) + f"policy v{data.get('version')} applied ({files})"]
        if kind == "policy_error":
            errors = data.get("errors") or []
            lines = [self._prefix(None) + self._paint("31", "policy not applied") + " (the last good one stays):"]
            for e in errors[:10]:
                lines.append(self._prefix(None) + f"  {e.get('path')}:{e.get('line')}:{e.get('col')}: "
                             f"{_clean(e.get('message', ''))}")
            return lines
        if kind == "approval" and data.get("status") == "pending":
            return [self._prefix(agent) + self._paint("35", "approval") +
                    f" #{data.get('id')} asks to {data.get('action')} (`fleet approve {data.get('id')}`)"]
        if kind == "approval":
            return [self._prefix(agent) + f"approval #{data.get('id')} {data.get('status')}"]
        if kind == "fleet":
            return [self._prefix(None) + _clean(data.get("message", ""))]
        return []


def _clean(value: Any) -> str:
    return sanitize(str(value), keep_sgr=False).replace("\n", " ")
