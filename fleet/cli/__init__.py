"""The ``fleet`` command: one entry point for the console, the headless fleet and scripts.

Every command works on the fleet of the current directory, or of ``-C DIR``
(as ``git -C``). Commands that need a running fleet talk to its control
socket and, when nothing answers, say so in one line and exit 2. Heavy
imports (Textual, pydantic, the store) happen inside the commands that need
them, so ``fleet status`` answers quickly.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from fleet.errors import FleetError, FleetNotRunning

if TYPE_CHECKING:
    from fleet.wire import AgentsTouched, Approvals, Status

T = TypeVar("T")
EXIT_NOT_RUNNING = 2


class Ctx:
    """What every command needs: where the fleet is and how to reach it."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._resolved: tuple[Path, bool] | None = None

    @property
    def fleet_dir(self) -> Path:
        return self.resolve()[0]

    @property
    def is_demo(self) -> bool:
        return self.resolve()[1]

    def resolve(self) -> tuple[Path, bool]:
        if self._resolved is None:
            from fleet.paths import resolve_fleet_dir

            self._resolved = resolve_fleet_dir(self.directory)
        return self._resolved

    def state_dir(self) -> Path:
        from fleet.paths import state_dir

        return state_dir(self.fleet_dir, _configured_state_dir(self.fleet_dir))

    def socket(self) -> Path:
        return self.state_dir() / "control.sock"


def _configured_state_dir(fleet_dir: Path) -> str | None:
    """Read ``[fleet].state_dir`` cheaply (no pydantic) for clients."""
    import tomllib

    try:
        data = tomllib.loads((fleet_dir / "fleet.toml").read_text())
    except (OSError, ValueError):
        return None
    value = data.get("fleet", {}).get("state_dir") if isinstance(data.get("fleet"), dict) else None
    return value if isinstance(value, str) else None


def fail(message: str, code: int = 1) -> None:
    click.echo(f"fleet: {message}", err=True)
    sys.exit(code)


def run_client(ctx: Ctx, fn: Callable[[Any], T]) -> T:
    """Connect to the fleet's socket, return ``fn(client)``, map errors to exit codes.

    ``client.call(op, **args)`` blocks: one-shot commands need no event loop
    (and importing asyncio would be a third of their run time).
    """
    from fleet.control.blocking import BlockingClient

    try:
        with BlockingClient(ctx.socket(), origin="cli") as client:
            return fn(client)
    except FleetNotRunning:
        fail(f"no fleet is running in {ctx.fleet_dir} (start it with `fleet up`, `fleet run` or `fleet`)",
             EXIT_NOT_RUNNING)
    except FleetError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    raise AssertionError("unreachable")


pass_ctx = click.make_pass_decorator(Ctx)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Run as if started in DIR (the fleet directory).")
@click.version_option(package_name="fleet-console", prog_name="fleet")
@click.pass_context
def main(cx: click.Context, directory: Path | None) -> None:
    """Fleet Console: supervise, govern and account for a fleet of local AI agents.

    With no command, opens the console on the fleet of this directory (the
    bundled demo when there is no fleet.toml), starting the fleet in the
    background if it is not running. The fleet outlives the console: `fleet`
    attaches again, `fleet down` stops it; `fleet up` starts it without a
    console, `fleet run` in the foreground.
    """
    cx.obj = Ctx(directory)
    if cx.invoked_subcommand is None:
        cx.invoke(console)


@main.command()
@click.option("--attach-only", is_flag=True, help="Only attach to a running fleet; never start one.")
@pass_ctx
def console(ctx: Ctx, attach_only: bool) -> None:
    """Open the console (starts the fleet first if needed).

    Attaches to the running fleet, or starts it in the background first. The
    fleet outlives the console: `q` offers to detach or to stop it.
    """
    from fleet.cli.launch import open_console

    sys.exit(open_console(ctx, attach_only=attach_only))


@main.command()
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--logs", "with_logs", is_flag=True, help="Also print every agent's output, prefixed by its name.")
@click.option("--started-by", type=click.Choice(["run", "up", "console"]), default="run", hidden=True)
@pass_ctx
def run(ctx: Ctx, quiet: bool, with_logs: bool, started_by: str) -> None:
    """Run the fleet in the foreground until Ctrl-C.

    On SIGINT/SIGTERM (or `fleet down`) every agent is stopped gracefully.
    Prints each agent's state changes and alerts as they happen (and its
    output with --logs), one line each, prefixed by the agent's name.
    """
    from fleet.supervisor.hardening import make_undumpable

    make_undumpable()  # first of all: this process is about to hold the provider keys
    from fleet.control.server import AlreadyRunning
    from fleet.policy import PolicyErrors
    from fleet.runtime import run_until_signal

    printer = None
    if not quiet:
        from fleet.cli.run_output import EventPrinter

        printer = EventPrinter(sys.stdout, logs=with_logs)
    try:
        import asyncio

        code = asyncio.run(run_until_signal(ctx.fleet_dir, quiet=quiet, started_by=started_by,
                                            on_started=printer.attach if printer else None))
    except PolicyErrors as exc:
        for e in exc.errors:
            click.echo(str(e), err=True)
        sys.exit(1)
    except (AlreadyRunning, FleetError) as exc:  # e.g. StoreUnavailable: one line, what to do
        fail(str(exc))
    except Exception:  # the supervisor died: its agents are already killed (run_until_signal)
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        if printer is not None:
            printer.close()
    # Everything is on disk and every process stopped. Leave now, without the
    # interpreter's shutdown: it would join the worker thread that may still be
    # importing litellm (seconds of CPU), and `fleet down` waits for this exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# --- status ---------------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def status(ctx: Ctx, as_json: bool) -> None:
    """Show the daemon, its consoles and every agent.

    The daemon's pid, uptime, how it was started and its state directory; the
    consoles attached; each agent's state, pid, restarts, uptime and spend.
    """
    st: Status = run_client(ctx, lambda c: c.call("status"))
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    from fleet.ansi import sanitize
    from fleet.humanize import duration, size

    click.echo(
        f"fleet {st['fleet']}  policy v{st['policy_version']}  gateway {st['gateway']}"
        f"{' ' + st['gateway_url'] + '/v1' if st.get('gateway_url') else ''}  "
        f"approvals pending {st.get('approvals_pending', 0)}"
    )
    from fleet.cli.daemon import describe_clients, describe_daemon

    click.echo(describe_daemon(st))
    click.echo(describe_clients(st))
    store = st.get("store") or {}
    if store.get("error"):
        import time

        since = f" for {duration(time.time() - store['since'])}" if store.get("since") else ""
        click.echo(f"store: writes failing{since}: {sanitize(str(store['error']), keep_sgr=False)}; "
                   "log pipes paused (nothing is lost), retrying")
    rows = [("AGENT", "STATE", "PID", "RESTARTS", "UPTIME", "CPU%", "MEM", "TOKENS", "COST $", "ALERTS",
             "LAST LINE")]
    for a in st["agents"]:
        state = a["state"] + (f" ({sanitize(a['reason'], keep_sgr=False)})" if a.get("reason") else "")
        rows.append((
            a["name"], _clip(state, 48), str(a["pid"] or "-"), str(a["restarts"]), duration(a["uptime_s"]),
            f"{a['cpu_pct']:.0f}", size(a["rss_bytes"]), str(a["tokens"]), f"{a['cost_usd']:.4f}",
            str(a.get("alerts") or "-"), sanitize(a.get("last_line") or "", keep_sgr=False)[:50],
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])


def _clip(text: str, width: int) -> str:
    """``text`` cut at a word boundary to fit ``width``, marked with an ellipsis when cut."""
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > width // 2 else cut).rstrip(" ,;(") + "…"


def _agent_command(op: str, done: str) -> Callable[..., None]:
    """``fleet pause|resume|restart|stop|start``: ``op`` is the verb, ``done`` its past participle."""

    @click.argument("names", nargs=-1)
    @click.option("--all", "all_", is_flag=True, help=f"{op.capitalize()} every agent.")
    @pass_ctx
    def command(ctx: Ctx, names: tuple[str, ...], all_: bool) -> None:
        if not names and not all_:
            fail(f"name the agents to {op}, or use --all")
        res: AgentsTouched = run_client(ctx, lambda c: c.call(op, names=list(names), all=all_))
        click.echo(f"{done}: {', '.join(res['agents'])}")

    return command


_AGENT_HELP = {
    "pause": "Pause agents.\n\nSDK agents pause at their next checkpoint, others get SIGSTOP.",
    "resume": "Resume paused agents.",
    "restart": "Restart agents (stop gracefully, then start).",
    "stop": "Stop agents; the fleet keeps running.\n\nSIGTERM, then SIGKILL after stop_grace_s.",
    "start": "Start stopped agents (also clears a crash loop).",
}
#: The commands that act on agents by name: control op (and command name) -> the word of their reply.
AGENT_COMMANDS = {"pause": "paused", "resume": "resumed", "restart": "restarted", "stop": "stopped",
                  "start": "started"}

for _op, _done in AGENT_COMMANDS.items():
    _help = f"{_AGENT_HELP[_op]}\n\nNAMES are groups or single name#N instances; --all is every agent."
    main.command(name=_op, help=_help)(_agent_command(_op, _done))


# --- approvals ----------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--all", "all_", is_flag=True, help="Include decided approvals.")
@pass_ctx
def approvals(ctx: Ctx, as_json: bool, all_: bool) -> None:
    """List approval requests (pending ones unless --all)."""
    res: Approvals = run_client(ctx, lambda c: c.call("approvals", pending_only=not all_))
    items = res["approvals"]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no pending approvals")
    import time

    from fleet.humanize import duration

    for a in items:
        age = time.time() - float(a.get("created") or a.get("requested_at") or time.time())
        click.echo(f"#{a['id']}  {a['agent']}  {a['action']}  {a.get('status')}  {duration(age)} ago  "
                   f"{json.dumps({k: v for k, v in (a.get('details') or {}).items() if k != 'context'})[:80]}")


@main.command()
@click.argument("approval_id", type=int)
@pass_ctx
def approve(ctx: Ctx, approval_id: int) -> None:
    """Approve a pending request."""
    run_client(ctx, lambda c: c.call("approve", id=approval_id, by="cli"))
    click.echo(f"approved #{approval_id}")


@main.command()
@click.argument("approval_id", type=int)
@click.option("--reason", default="", help="Why (sent back to the agent).")
@pass_ctx
def deny(ctx: Ctx, approval_id: int, reason: str) -> None:
    """Deny a pending request."""
    run_client(ctx, lambda c: c.call("deny", id=approval_id, reason=reason, by="cli"))
    click.echo(f"denied #{approval_id}")


def _register_subcommands() -> None:
    """Add the commands defined in the submodules (an import error there is an error, not a missing command)."""
    from fleet.cli.asking import answer, questions, send
    from fleet.cli.attach import attach
    from fleet.cli.daemon import down, up
    from fleet.cli.logs import logs
    from fleet.cli.observe import alerts, events, metrics, usage
    from fleet.cli.policy import policy
    from fleet.cli.tasks import report, task, tasks

    for command in (up, down, logs, send, questions, answer, alerts, events, usage, metrics, attach, policy, task,
                    tasks, report):
        main.add_command(command)


_register_subcommands()
