"""The Fleet Console application: the one owner of the client and fleet data.

Why the app owns everything that comes from the fleet: there is one
subscription (one stream of pushed events) and one place that calls the
client, so screens stay views. Screens ask the app for actions
(``agent_op``, ``open_detail`` ...) and reads (``policy_show`` ...) through
the ``console.contract.ConsoleApp`` protocol — they never import this module
— and the app calls back the screens in the stack that care about an event
(``fleet_event``), synchronously, so a ``state`` push reaches the table cell
without a message hop. ``self.agents`` is the one copy of every agent's
figures: the table reads it and is told which names changed.

Anything that came from a file, an agent or a user is shown as text, never
as Rich markup: notifications carrying such text pass ``markup=False``.

Nothing in ``compose``/``on_mount`` awaits the client: the first frame is
painted at once and data arrives through workers, so a supervisor still
importing litellm never delays the console. All workers report failures in
one place, ``on_worker_state_changed``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, ClassVar

from textual import events, work
from textual.app import App
from textual.command import Provider
from textual.worker import Worker, WorkerState

from console import format as fmt
from console.commands import FleetCommands
from console.gc_pacing import GcPacer
from console.keymap import APP_BINDINGS
from console.logring import MERGED, Block, LogRings
from console.screen_warmer import warm
from console.screens.agent import AgentScreen
from console.screens.approvals import ApprovalsScreen
from console.screens.events import EventsScreen
from console.screens.fleet import FleetScreen
from console.screens.help import HelpScreen
from console.screens.modals import AgentCounts, ChoicePrompt, ConfirmAction, ConfirmQuit, TextPrompt
from console.screens.policy import PolicyScreen
from console.screens.send_input import SendInput, SentInput
from console.widgets.log_pane import LogPane
from fleet.control.api import FleetClient
from fleet.errors import FleetError, FleetNotRunning
from fleet.wire import Status

#: Pushed kinds that go to the events list (and some to notifications).
EVENT_KINDS = frozenset({"alert", "policy_applied", "policy_error", "approval", "question", "state", "budget",
                         "fleet", "store"})
#: Shortest time between two "lines not shown live" notices.
SKIP_NOTICE_S = 10.0
#: How often the console looks whether a full garbage collection is due (``console.gc_pacing``).
GC_TICK_S = 1.0
#: Log text pushed to the console per second at most (~670 lines of 100 bytes): what a
#: pane repainted 15 times a second can show (its ~40 rows each time), so a flood past it
#: is skipped by the fleet before it is encoded (measured: the supervisor's CPU with a
#: console attached 1.35x headless at 256 KiB/s, see BENCHMARKS.md).
LIVE_LOG_RATE = 64 * 1024
#: Agent detail screens kept installed for a quick return.
DETAIL_SCREENS = 4
#: State changes worth a notification.
ALARM_STATES = {"crashed": "error", "crash-loop": "error", "backoff": "warning"}

PAST_TENSE = {
    "pause": "Pausing",
    "resume": "Resuming",
    "restart": "Restarting",
    "stop": "Stopping",
    "start": "Starting",
}


class FleetConsole(App[None]):
    """Watch and steer a fleet through a ``FleetClient``.

    Args:
        client: the fleet (embedded ``LocalClient`` or ``SocketClient``).
        embedded: this console started the fleet: its quit dialog offers to stop the fleet
            first (otherwise to detach first); either way it asks.
        fleet_name: shown until the first status arrives.
        clock: wall clock for ages (tests freeze it).
        log_lines: lines kept per log ring (per agent, and for the merged view).
    """

    TITLE = "Fleet Console"
    CSS_PATH = "console.tcss"
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {
        *App.COMMANDS,
        FleetCommands,
    }
    BINDINGS = APP_BINDINGS  # declared with the help that lists them (console.keymap)

    def __init__(
        self,
        client: FleetClient,
        *,
        embedded: bool,
        fleet_name: str = "fleet",
        clock: Callable[[], float] = time.time,
        log_lines: int = 10_000,
    ) -> None:
        super().__init__()
        self.client = client
        self.embedded = embedded
        self.fleet_name = fleet_name
        self.clock = clock
        self.hub = LogRings(log_lines)
        self._skipped_lines = 0  # live lines the fleet did not push (a flood), since the last notice
        self._skip_notice_at = -SKIP_NOTICE_S
        self.status: dict[str, Any] = {}
        self.agents: dict[str, dict[str, Any]] = {}
        self.approvals: dict[int, dict[str, Any]] = {}
        #: Open questions of SDK agents (``ctx.ask``), by id: the "needs you" queue with approvals.
        self.questions: dict[int, dict[str, Any]] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=1000)
        self.events_loaded = False
        self._history_loaded: set[str] = set()
        #: Installed agent detail screens, least recently opened first (see ``open_detail``).
        self._detail_screens: OrderedDict[str, None] = OrderedDict()
        #: The detail screen built ahead for the agent under the cursor (see ``prepare_detail``).
        self._spare_detail: AgentScreen | None = None
        self._spare_ready = False  # it has been composed, laid out and rendered
        self.title = f"Fleet Console — {fleet_name}"
        self._stopping_fleet = False  # this console asked the fleet to stop
        self._fleet_stopping = False  # the fleet said it is stopping (whoever asked)
        self._gc_pacer = GcPacer()

    # -- lifecycle ---------------------------------------------------------------

    def on_mount(self) -> None:
        self.push_screen(FleetScreen())
        self.subscribe_events()
        self.load_initial()
        self._gc_pacer.start()
        self.set_interval(GC_TICK_S, self._gc_pacer.tick)

    def on_unmount(self) -> None:
        self._gc_pacer.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._gc_pacer.key()  # a full garbage collection waits until the keyboard is quiet
        await super().on_event(event)

    @property
    def fleet_screen(self) -> FleetScreen:
        """The fleet screen, wherever it is in the stack (found by its type)."""
        for screen in self.screen_stack:
            if isinstance(screen, FleetScreen):
                return screen
        raise LookupError("the fleet screen is not mounted")

    def _update_fleet_screen(self, names: list[str]) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, FleetScreen):
                screen.update_agents(names)

    @property
    def pending_approvals(self) -> int:
        return sum(1 for a in self.approvals.values() if a.get("status") == "pending")

    @property
    def open_questions(self) -> list[dict[str, Any]]:
        """Questions nobody answered yet, oldest first."""
        return sorted((q for q in self.questions.values() if q.get("status") == "pending"), key=lambda q: q["id"])

    @work(group="subscribe", exclusive=True, exit_on_error=False)
    async def subscribe_events(self) -> None:
        """Consume pushed events for the life of the app (reconnecting on error)."""
        delay = 0.5
        while True:
            try:
                async for event in self.client.subscribe(None, logs_max_rate=LIVE_LOG_RATE):
                    delay = 0.5
                    self.dispatch_event(event)
                self.fleet_gone()  # the fleet closed the stream: it stopped
                return
            except FleetNotRunning:
                if self._fleet_stopping:  # it said it was stopping: this is not a passing loss
                    self.fleet_gone()
                    return
                self.notify("Event stream lost: the fleet does not answer; retrying", severity="warning",
                            timeout=3)
            except (FleetError, OSError) as exc:
                self.notify(f"Event stream lost: {exc}; retrying", severity="warning", timeout=3, markup=False)
            await asyncio.sleep(delay)  # reconnect backoff, not a test wait
            delay = min(delay * 2, 10.0)

    @work(group="load", exclusive=True, exit_on_error=False)
    async def load_initial(self) -> None:
        status: Status = await self.client.call("status")
        self.apply_status(status)
        approvals = await self.client.call("approvals")
        for approval in approvals.get("approvals", []):
            self.approvals[approval["id"]] = approval
        await self._load_questions()
        self._broadcast("approvals_changed", {})
        lines = (await self.client.call("logs", agent=None, n=500)).get("lines", [])
        self._prepend(MERGED, lines)
        self._refresh_panes(MERGED)

    def apply_status(self, status: Status) -> None:
        self.status = status
        self.fleet_name = status.get("fleet", self.fleet_name)
        self.title = f"Fleet Console — {self.fleet_name}"
        agents = self._stamp(status.get("agents", []))
        for agent in agents:
            self.agents.setdefault(agent["name"], {}).update(agent)
        self._update_fleet_screen([a["name"] for a in agents])

    def _stamp(self, agents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Note when each uptime was received: screens advance it from there (``fmt.live_uptime``)."""
        now = self.clock()
        for agent in agents:
            if "uptime_s" in agent:
                agent["uptime_at"] = now
        return agents

    # -- pushed events -------------------------------------------------------------

    def _note_skipped(self, lines: int) -> None:
        """Say, at most every ``SKIP_NOTICE_S``, that a flood outran the live view (nothing is lost)."""
        self._skipped_lines += lines
        now = time.monotonic()
        if now - self._skip_notice_at < SKIP_NOTICE_S:
            return
        self._skip_notice_at = now
        n, self._skipped_lines = self._skipped_lines, 0
        self.notify(
            f"{n:,} lines not shown live: output is faster than a screen can follow. "
            "Every line is in the store: `fleet logs NAME --since 5m`.",
            title="Log flood",
            severity="warning",
            timeout=5,
        )

    def dispatch_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("data") or {}
        if kind == "logs":
            self.hub.ingest(data)
            return
        if kind == "fleet" and "stopping" in str(data.get("message", "")):
            self._fleet_stopping = True
        if kind == "logs_skipped":
            self._note_skipped(int(data.get("lines") or 0))
            return
        if kind == "stats":
            # Only the agents whose figures changed since the last push (all of them in the first).
            agents = self._stamp(data.get("agents", []))
            for agent in agents:
                self.agents.setdefault(agent["name"], {}).update(agent)
            # idle -> loading -> ready, and the policy version, arrive here: no polling
            changed = False
            for key in ("gateway", "policy_version"):
                value = data.get(key)
                if value is not None and self.status and self.status.get(key) != value:
                    self.status[key] = value
                    changed = True
            self._update_fleet_screen([a["name"] for a in agents])
            if changed:
                self._broadcast("policy_version", data)
            self._broadcast("stats", data)
            return
        if kind == "state":
            name = data.get("agent", "")
            if data.get("state") == "removed":
                self.agents.pop(name, None)
            else:
                fields = {k: v for k, v in data.items() if k not in ("agent", "prev", "ts")}
                self.agents.setdefault(name, {"name": name}).update(fields)
            level = ALARM_STATES.get(data.get("state", ""))
            if level:
                reason = f": {data['reason']}" if data.get("reason") else ""
                self.notify(f"{name} {data['state']}{reason}", severity=level, markup=False)  # type: ignore[arg-type]
        elif kind == "alert":
            self.notify(
                f"{data.get('agent')}: {data.get('message')}",
                title=f"Alert {data.get('rule', '')}",
                severity="error" if data.get("severity") == "critical" else "warning",
                markup=False,
            )
        elif kind == "policy_applied":
            self.status["policy_version"] = data.get("version")
            self.notify(f"policy v{data.get('version')} applied", title="Policy")
        elif kind == "policy_error":
            errors = data.get("errors") or []
            first = errors[0] if errors else {}
            where = f"{first.get('path')}:{first.get('line')}:{first.get('col')}: " if first else ""
            self.notify(
                f"{where}{first.get('message', 'invalid policy')}",
                title="Policy not applied",
                severity="error",
                markup=False,
            )
        elif kind == "question":
            known = self.questions.get(data["id"])
            self.questions[data["id"]] = data
            if data.get("status") == "pending" and known is None:
                self.notify(f"{data.get('agent')} asks: {data.get('question')} (a)", title="Question", markup=False)
        elif kind == "store":  # the store's writes failing (disk full...) or resumed
            self.status["store"] = {"ok": bool(data.get("ok")), "error": data.get("error"), "since": data.get("since")}
            self.fleet_screen.update_info()
            severity = "information" if data.get("ok") else "error"
            self.notify(str(data.get("message", "")), title="Store", severity=severity, markup=False)
        elif kind == "approval":
            known = self.approvals.get(data["id"])
            self.approvals[data["id"]] = {**(known or {}), **data}
            if data.get("status") == "pending" and known is None:
                self.notify(
                    f"{data.get('agent')} asks to {data.get('action')} (a)", title="Approval needed", markup=False
                )
        if kind in EVENT_KINDS:
            self.events.append({"id": None, "kind": kind, "agent": data.get("agent"), "data": data, "ts": self.clock()})
        self._broadcast(kind, data)

    def _broadcast(self, kind: str, data: dict[str, Any]) -> None:
        for screen in self.screen_stack:
            handler = getattr(screen, "fleet_event", None)
            if handler is not None:
                handler(kind, data)

    # -- logs history ----------------------------------------------------------------

    def _prepend(self, source: str, lines: list[dict[str, Any]]) -> int:
        ring = self.hub.ring(source)
        if ring.blocks:
            if source == MERGED:
                head = ring.blocks[0]
                cursor = (head.ts, head.agent, head.first_seq)
                lines = [row for row in lines if (row["ts"], row["agent"], row["seq"]) < cursor]
            else:
                first_seq = ring.blocks[0].first_seq
                lines = [row for row in lines if row["seq"] < first_seq]
        return ring.prepend(Block.from_lines(lines))

    def _refresh_panes(self, source: str) -> None:
        for screen in self.screen_stack:
            for pane in screen.query(LogPane):
                if pane.source == source and pane.view.active:
                    pane.view.rebuild()

    def ensure_history(self, agent: str) -> None:
        """Load the last lines of ``agent`` from the store once, when first shown."""
        if agent not in self._history_loaded:
            self._history_loaded.add(agent)
            self.load_history(agent)

    @work(group="history", exit_on_error=False)
    async def load_history(self, agent: str) -> None:
        lines = (await self.client.call("logs", agent=agent, n=500)).get("lines", [])
        if self._prepend(agent, lines):
            self._refresh_panes(agent)

    def on_log_pane_history_wanted(self, message: LogPane.HistoryWanted) -> None:
        self.load_older(message.pane, message.agent, message.before_seq, message.cursor)

    @work(group="history", exit_on_error=False)
    async def load_older(
        self, pane: LogPane, agent: str, before_seq: int, cursor: tuple[float, str, int] | None = None
    ) -> None:
        try:
            if agent == MERGED:
                result = await self.client.call("logs", agent=None, n=500, before=list(cursor or ()))
            else:
                result = await self.client.call("logs", agent=agent, n=500, before_seq=before_seq)
        except FleetError:
            pane.history_loaded(agent, 0)
            raise
        added = self._prepend(agent, result.get("lines", []))
        pane.history_loaded(agent, added)

    def on_log_pane_tail_wanted(self, message: LogPane.TailWanted) -> None:
        self.reload_tail(message.pane, message.agent)

    @work(group="history", exit_on_error=False)
    async def reload_tail(self, pane: LogPane, agent: str) -> None:
        lines = (await self.client.call("logs", agent=agent, n=500)).get("lines", [])
        ring = self.hub.ring(agent)
        ring.clear()
        ring.prepend(Block.from_lines(lines))
        pane.tail_loaded(agent)

    # -- actions on agents ---------------------------------------------------------------

    def agent_op(self, op: str, names: list[str] | None) -> None:
        """Run ``op`` (pause/resume/restart/stop/start) on ``names`` or, with None, all."""
        self._agent_op(op, names)

    @work(group="ops", exit_on_error=False)
    async def _agent_op(self, op: str, names: list[str] | None) -> None:
        args: dict[str, Any] = {"all": True} if names is None else {"names": names}
        try:
            result = await self.client.call(op, **args)
        except FleetError as exc:
            self.notify(f"{op} failed: {exc}", severity="error", markup=False)
            return
        affected = result.get("agents", names or [])
        if affected:
            who = ", ".join(affected) if len(affected) <= 3 else f"{len(affected)} agents"
            self.notify(f"{PAST_TENSE.get(op, op)} {who}", timeout=2, markup=False)
        else:
            target = "all agents" if names is None else ", ".join(names)
            self.notify(f"Nothing to {op} in {target}", severity="warning", timeout=2, markup=False)

    def request_op(self, op: str, names: list[str]) -> None:
        """``op`` on ``names``, asking first when it is hard to undo.

        Stopping a live agent, and stopping or restarting more than one, asks
        for ``y`` in a dialog that names them; pause, resume, start and a
        single restart go ahead at once.
        """
        live = [n for n in names if self.agents.get(n, {}).get("state") in fmt.STOPPABLE]
        if op == "stop" and live:
            question = f"Stop {live[0]}?" if len(names) == 1 else f"Stop {len(names)} agents?"
            detail = "Its process gets SIGTERM, then SIGKILL after the grace period. s starts it again."
        elif op == "restart" and len(names) > 1:
            question, detail = f"Restart {len(names)} agents?", "Each process is stopped and started again."
        else:
            self.agent_op(op, names)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.agent_op(op, names)

        self.push_screen(ConfirmAction(question, names, detail=detail, yes=op.capitalize()), answered)

    def open_detail(self, agent: str) -> None:
        """Show ``agent``'s detail screen, reusing it if it was open lately.

        Building the screen (forty-odd widgets, their styles, the first layouts)
        is most of the ~0.5 s an ``enter`` took here; an operator goes in and out
        of the same few agents, so the last ``DETAIL_SCREENS`` stay installed and
        come back at the cost of a resume (they catch up with what they missed).
        """
        name = f"agent:{agent}"
        screens = self._detail_screens
        if name in screens:
            screens.move_to_end(name)
        else:
            self.install_screen(self._take_spare_detail(agent) or AgentScreen(agent), name)
            screens[name] = None
            for old in list(screens)[: max(0, len(screens) - DETAIL_SCREENS)]:
                kept = self.get_screen(old)
                if all(s is not kept for s in self.screen_stack):
                    self.uninstall_screen(old)
                    kept.remove()
                    del screens[old]
        self.push_screen(name)

    def prepare_detail(self, agent: str) -> None:
        """Build and warm ``agent``'s detail screen before it is asked for (the cursor rests on it).

        The screen is composed, laid out and rendered off the stack
        (``console.screen_warmer``), so ``enter`` costs a repaint, ~25 ms, not a
        build, ~100 ms of CPU (and more under a flood, when the console shares
        the cores). One prepared screen at most: the one for another agent is
        dropped first. A kept screen (``open_detail``) needs none.
        """
        name = f"agent:{agent}"
        spare = self._spare_detail
        if name in self._detail_screens or (spare is not None and spare.agent == agent):
            return
        self._drop_spare_detail()
        spare = self._spare_detail = AgentScreen(agent)
        self._spare_ready = False
        self.install_screen(spare, name)
        self._warm_detail(spare)

    @work(group="warm-detail", exclusive=True, exit_on_error=False)
    async def _warm_detail(self, screen: AgentScreen) -> None:
        warmed = await warm(self, screen)
        if screen is self._spare_detail:
            self._spare_ready = warmed

    def _take_spare_detail(self, agent: str) -> AgentScreen | None:
        """The prepared screen, uninstalled, to show ``agent``: its own, or a warmed one of another agent.

        A screen still being prepared for another agent is dropped (it would be built anyway).
        """
        spare = self._spare_detail
        if spare is None:
            return None
        # Not one caught between Textual registering it and its messages running (pushing it
        # then would register it twice); another agent's only once warmed.
        settled = spare.is_running or not spare.is_attached
        if not settled or (spare.agent != agent and not self._spare_ready):
            self._drop_spare_detail()
            return None
        self.workers.cancel_group(self, "warm-detail")  # from here on the push mounts it
        self._spare_detail, self._spare_ready = None, False
        self.uninstall_screen(spare)
        if spare.agent != agent:
            # Prepared for the row the cursor rested on before it moved on: show this agent in it.
            spare.retarget(agent)
        return spare

    def _drop_spare_detail(self) -> None:
        spare, self._spare_detail, self._spare_ready = self._spare_detail, None, False
        if spare is None:
            return
        self.workers.cancel_group(self, "warm-detail")
        if all(s is not spare for s in self.screen_stack):
            self.uninstall_screen(spare)
            if spare.is_attached:
                spare.remove()

    ATTACH = "attach to its terminal (ctrl+] comes back)"
    DETAIL = "open its detail"

    def offer_attach(self, agent: str) -> None:
        """``enter`` on a tty agent: attach to its terminal, or open its detail as for any agent."""

        def chosen(choice: str | None) -> None:
            if choice == self.ATTACH:
                self.attach_terminal(agent)
            elif choice == self.DETAIL:
                self.open_detail(agent)

        self.push_screen(ChoicePrompt(f"{agent} runs on a terminal", [self.ATTACH, self.DETAIL], self.ATTACH), chosen)

    def attach_terminal(self, agent: str) -> None:
        """Hand the terminal to ``fleet attach`` (as lazygit hands it to an editor) and take it back after."""
        import subprocess
        import sys

        from textual.app import SuspendNotSupported

        fleet_dir = self.status.get("fleet_dir")
        if not fleet_dir:
            self.notify("Not connected to a fleet yet", severity="warning")
            return
        try:
            with self.suspend():
                subprocess.run([sys.executable, "-m", "fleet.cli", "-C", str(fleet_dir), "attach", agent], check=False)
        except SuspendNotSupported:
            self.notify(f"This terminal cannot be handed over: run `fleet attach {agent}` in a shell",
                        severity="warning")

    # -- quick edits (written by the fleet to policies/overrides.toml) ----------------------

    def _replicas(self, agent: str) -> list[str]:
        """The instances of ``agent``'s group, when it has more than one."""
        group = self.agents.get(agent, {}).get("group") or agent.rpartition("#")[0] or agent
        mates = [n for n, a in self.agents.items() if (a.get("group") or n) == group]
        return mates if len(mates) > 1 else []

    def _with_scope(self, agent: str, what: str, then: Callable[[str, str], None]) -> None:
        """Ask whether an edit is for this replica or its group (if it has replicas), then ``then(target, scope)``."""
        mates = self._replicas(agent)
        if not mates:
            then(agent, agent)
            return
        group = self.agents.get(agent, {}).get("group") or agent.rpartition("#")[0]
        labels = {agent: f"{agent}: this replica only", group: f"{group}: the group ({len(mates)} replicas)"}
        scopes = {agent: f"{agent} (this replica only)", group: f"{group} (all {len(mates)} replicas)"}

        def chosen(target: str | None) -> None:
            if target:
                then(target, scopes[target])

        self.push_screen(ChoicePrompt(f"{what}: for which agents?", [agent, group], None, labels=labels), chosen)

    def quick_budget(self, agent: str) -> None:
        self._with_scope(agent, f"Daily budget of {agent}", self._budget_for)

    @work(group="quick", exclusive=True, exit_on_error=False)
    async def _budget_for(self, target: str, scope: str) -> None:
        shown = await self.client.call("policy_show", name=target)
        current = shown.get("policy", {}).get("budget", {}).get("usd_per_day")

        def chosen(value: str | None) -> None:
            if value:
                self.set_override(target, "budget.usd_per_day", float(value), scope)

        self.push_screen(
            TextPrompt(
                f"Daily budget (USD) for {scope} (now {fmt.off(current)})",
                placeholder="e.g. 5.0",
                value="" if current is None else str(current),
                number=True,
            ),
            chosen,
        )

    def quick_model(self, agent: str) -> None:
        self._with_scope(agent, f"Model of {agent}", self._model_for)

    @work(group="quick", exclusive=True, exit_on_error=False)
    async def _model_for(self, target: str, scope: str) -> None:
        shown = await self.client.call("policy_show", name=target)
        llm = shown.get("policy", {}).get("llm", {})
        models = [m for m in llm.get("models", []) if "*" not in m] or [llm.get("model", "")]
        unavailable: dict[str, str] = shown.get("unavailable") or {}

        def chosen(model: str | None) -> None:
            if model:
                self.set_override(target, "llm.model", model, scope)

        self.push_screen(
            ChoicePrompt(f"Model for {scope}", models, llm.get("model"), unavailable=unavailable), chosen
        )

    @work(group="override", exit_on_error=False)
    async def set_override(self, target: str, key: str, value: Any, scope: str | None = None) -> None:
        """Write one quick edit for ``target`` (an instance or a group, as the operator chose)."""
        scope = scope or target
        try:
            await self.client.call("set_override", target=target, key=key, value=value)
        except FleetError as exc:
            self.notify(f"Could not set {key} for {scope}: {exc}", severity="error", markup=False)
            return
        self.notify(f"{scope}: {key} = {value} (waiting for the fleet to apply)", timeout=3, markup=False)
        if key == "budget.usd_per_day":
            self._offer_resume(target)

    def _offer_resume(self, target: str) -> None:
        """After a budget raise, offer to resume the agents its budget had paused."""
        paused = [
            n
            for n, a in self.agents.items()
            if (n == target or a.get("group") == target)
            and a.get("state") in fmt.RESUMABLE
            and a.get("reason_kind") == "budget"
        ]
        if not paused:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.agent_op("resume", paused)

        question = f"Resume {paused[0]}?" if len(paused) == 1 else f"Resume {len(paused)} agents?"
        detail = "Paused by the budget you just raised."
        self.push_screen(ConfirmAction(question, paused, detail=detail, yes="Resume"), answered)

    # -- reads a screen awaits (the app alone calls the client) -----------------------------

    async def policy_show(self, agent: str) -> dict[str, Any]:
        return await self.client.call("policy_show", name=agent)

    async def usage(self, agent: str, n: int) -> dict[str, Any]:
        return await self.client.call("usage", agent=agent, n=n)

    async def metrics(self, agent: str) -> dict[str, Any]:
        return await self.client.call("metrics", agent=agent)

    async def policy_files(self) -> dict[str, Any]:
        return await self.client.call("policy_files")

    async def policy_check(self, path: str, text: str) -> dict[str, Any]:
        return await self.client.call("policy_check", path=path, text=text)

    async def policy_write(self, path: str, text: str) -> dict[str, Any]:
        return await self.client.call("policy_write", path=path, text=text)

    # -- approvals -----------------------------------------------------------------------

    @work(group="approvals", exit_on_error=False)
    async def decide(self, approval_id: int, approve: bool, reason: str = "") -> None:
        try:
            if approve:
                await self.client.call("approve", id=approval_id)
            else:
                await self.client.call("deny", id=approval_id, reason=reason)
        except FleetError as exc:
            self.notify(f"Approval {approval_id}: {exc}", severity="error", markup=False)
            return
        self.notify(f"{'Approved' if approve else 'Denied'} request {approval_id}", timeout=2)

    @work(group="approvals-load", exclusive=True, exit_on_error=False)
    async def reload_approvals(self) -> None:
        result = await self.client.call("approvals")
        self.approvals = {a["id"]: a for a in result.get("approvals", [])}
        await self._load_questions()
        self._broadcast("approvals_changed", {})

    async def _load_questions(self) -> None:
        try:
            result = await self.client.call("questions")
        except FleetError:  # a fleet from before questions existed
            return
        self.questions = {q["id"]: q for q in result.get("questions", [])}

    # -- agents waiting for their operator ---------------------------------------------

    def ask_input(self, agent: str) -> None:
        """``i``: answer ``agent``'s open question, or write a line to its input."""
        question = next((q for q in self.open_questions if q.get("agent") == agent), None)
        if question is not None:
            self.ask_answer(question)
            return
        prompt = (self.agents.get(agent) or {}).get("reason") or ""
        if (self.agents.get(agent) or {}).get("state") != "waiting":
            prompt = ""

        def typed(sent: SentInput | None) -> None:
            if sent is not None:
                self.send_input(agent, sent.text, sent.eof)

        self.push_screen(SendInput(agent, prompt), typed)

    def ask_answer(self, question: dict[str, Any]) -> None:
        """Prompt for the answer to an agent's question (a pick when it gave choices)."""
        qid = question["id"]

        def answered(text: str | None) -> None:
            if text is not None:
                self.answer_question(qid, text)

        title = f"{question.get('agent')} asks: {question.get('question')}"
        if question.get("choices"):
            self.push_screen(ChoicePrompt(title, list(question["choices"])), answered)
        else:
            self.push_screen(TextPrompt(title, placeholder="your answer"), answered)

    @work(group="input", exit_on_error=False)
    async def send_input(self, agent: str, text: str, eof: bool = False) -> None:
        try:
            result = await self.client.call("send", name=agent, text=text, eof=eof, by="console")
        except FleetError as exc:
            self.notify(f"{agent}: {exc}", severity="error")
            return
        what = "end of input" if eof and not text else "input" + (" and end of input" if eof else "")
        if result.get("waiting"):
            self.notify(f"Sent {what} to {agent}", timeout=2)
        else:
            self.notify(f"Sent {what} to {agent}; it was not waiting for input", severity="warning", timeout=4)

    @work(group="input", exit_on_error=False)
    async def answer_question(self, question_id: int, text: str) -> None:
        try:
            result = await self.client.call("answer", id=question_id, text=text, by="console")
        except FleetError as exc:
            self.notify(f"Question {question_id}: {exc}", severity="error")
            return
        self.notify(f"Answered {result.get('agent')}: {result.get('answer')}", timeout=2)

    @work(group="events-load", exclusive=True, exit_on_error=False)
    async def load_events(self) -> None:
        result = await self.client.call("events", n=200)
        stored = result.get("events", [])
        newest = max((e.get("ts") or 0.0 for e in stored), default=0.0)
        live = [e for e in self.events if (e.get("ts") or 0.0) > newest]  # the rest is in the store too
        self.events.clear()
        self.events.extend(stored)
        self.events.extend(live)
        self.events_loaded = True
        self._broadcast("events_loaded", {})

    # -- app-level actions ------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_approvals(self) -> None:
        if not isinstance(self.screen, ApprovalsScreen):
            self.push_screen(ApprovalsScreen())

    def action_events(self) -> None:
        if not isinstance(self.screen, EventsScreen):
            self.push_screen(EventsScreen())

    def action_edit_policy(self) -> None:
        if not isinstance(self.screen, PolicyScreen):
            self.push_screen(PolicyScreen())

    async def action_quit(self) -> None:
        """``q``/``ctrl+c``: ask whether to detach (agents keep running) or stop the fleet."""
        if isinstance(self.screen, ConfirmQuit):
            return  # the dialog's own q/ctrl+c binding answers
        counts = AgentCounts.of(self.agents.values())
        running = counts.running

        def answered(choice: str | None) -> None:
            if choice == "stop":
                self.shutdown_and_exit()
            elif choice == "detach":
                self.exit(message=self.detach_message(running))

        self.push_screen(
            ConfirmQuit(self.fleet_name, running, paused=counts.paused, stopped=counts.stopped,
                        started_here=self.embedded,
                        fleet_dir=str(self.status.get("fleet_dir") or "")),
            answered,
        )

    def detach_message(self, running: int) -> str:
        """What the terminal says once the console has detached."""
        where = self.status.get("fleet_dir")
        again = f"`fleet -C {where}`" if where else "`fleet` in its directory"
        return (f"Detached from fleet {self.fleet_name}: {running} agent{'s' if running != 1 else ''} still "
                f"running. {again} attaches again, `fleet down` stops it.")

    def fleet_gone(self) -> None:
        """The fleet stopped under this console (``fleet down`` elsewhere, or it died): say so and exit."""
        if self._stopping_fleet:
            return  # this console asked for it: shutdown_and_exit says so
        self.exit(return_code=0, message=f"Fleet {self.fleet_name} stopped; `fleet` starts it again.")

    @work(group="shutdown", exclusive=True, exit_on_error=False)
    async def shutdown_and_exit(self) -> None:
        self._stopping_fleet = True
        self.notify("Stopping agents…", timeout=10)
        try:
            await asyncio.wait_for(self.client.call("shutdown"), timeout=30)
        finally:
            self.exit(message=f"Fleet {self.fleet_name} stopped.")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures surface: as an error notification."""
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            self.notify(f"{event.worker.name}: {error}", title="Error", severity="error", timeout=6, markup=False)
