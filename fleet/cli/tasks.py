"""``fleet task add``, ``fleet tasks`` and ``fleet report``.

Adding a task needs the running fleet (the queue lives in its supervisor).
Listing asks the running fleet, and reads the store read-only when none runs,
so last night's queue can be inspected in the morning. ``fleet report`` always
reads the store directly: it must work with no fleet running, and reading the
file costs the fleet nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from fleet.cli import Ctx, fail, pass_ctx, run_client
from fleet.cli.timeparse import parse_since
from fleet.humanize import duration

STATES = ("queued", "leased", "done", "failed", "dead")


@click.group()
def task() -> None:
    """Queue work for the fleet's agents (`fleet tasks` lists it)."""


@task.command("add")
@click.argument("kind")
@click.option("--priority", "-p", type=int, default=0, show_default=True, help="Higher runs first.")
@click.option("--payload", default=None, help="The task's data, as JSON (a bare word is taken as a string).")
@pass_ctx
def task_add(ctx: Ctx, kind: str, priority: int, payload: str | None) -> None:
    """Queue a task of KIND.

    Any agent whose policy accepts KIND (tasks.kinds) may take it.
    """
    data: Any = None
    if payload is not None:
        try:
            data = json.loads(payload)
        except ValueError as exc:
            if payload.strip()[:1] in ("{", "[", '"', ""):
                fail(f"--payload is not valid JSON: {exc}")
            data = payload
    res = run_client(ctx, lambda c: c.call("task_add", kind=kind, payload=data, priority=priority))
    click.echo(f"queued task #{res['id']} ({res.get('kind', kind)}, priority {res.get('priority', priority)})")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--state", type=click.Choice(STATES), multiple=True, help="Only tasks in this state (repeatable).")
@click.option("--kind", default=None, help="Only tasks of this kind.")
@click.option("-n", "limit", default=50, show_default=True, help="How many of the newest tasks.")
@pass_ctx
def tasks(ctx: Ctx, as_json: bool, state: tuple[str, ...], kind: str | None, limit: int) -> None:
    """List tasks, newest last: state, attempts, holder, age."""
    items, stats = _list(ctx, list(state), kind, limit)
    if as_json:
        click.echo(json.dumps({"tasks": items, "stats": stats}, indent=2, ensure_ascii=False))
        return
    if stats is not None:
        click.echo(
            f"queued {stats.get('queued', 0)}  leased {stats.get('leased', 0)}  "
            f"agents waiting {stats.get('waiting_agents', 0)}  allocation {stats.get('strategy', '?')}"
        )
    else:
        click.echo("(no fleet running: read from the store)")
    if not items:
        click.echo("no tasks")
        return
    now = time.time()
    rows = [("ID", "KIND", "PRIO", "STATE", "TRY", "AGENT", "AGE", "PAYLOAD / ERROR")]
    for t in items:
        detail = (
            t.get("error")
            if t["state"] in ("dead", "failed") or (t["state"] == "queued" and t.get("error"))
            else json.dumps(t.get("payload"), ensure_ascii=False)
        )
        rows.append(
            (
                str(t["id"]),
                t["kind"],
                str(t["priority"]),
                t["state"],
                str(t.get("attempt") or 0),
                t.get("agent") or "-",
                duration(now - float(t["created"])),
                str(detail or "")[:60],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])


def _list(ctx: Ctx, states: list[str], kind: str | None, n: int) -> tuple[list[dict], dict | None]:
    from fleet.control.blocking import BlockingClient
    from fleet.errors import FleetError, FleetNotRunning

    try:
        client = BlockingClient(ctx.socket(), origin="cli")
    except FleetNotRunning:
        return _from_store(ctx, states, kind, n), None
    try:
        res = client.call("tasks", state=states or None, kind=kind, n=n)
    except FleetError as exc:
        fail(str(exc))
        raise AssertionError("unreachable") from None
    finally:
        client.close()
    return res["tasks"], res.get("stats")


def _from_store(ctx: Ctx, states: list[str], kind: str | None, n: int) -> list[dict]:
    from fleet.store import open_readonly
    from fleet.store import tasks as tasks_sql

    db = ctx.state_dir() / "fleet.db"
    if not db.exists():
        return []
    conn = open_readonly(db)
    try:
        return tasks_sql.list_tasks(conn, states or None, kind, n)
    finally:
        conn.close()


@click.command()
@click.option(
    "--since",
    default=None,
    help="Start of the window (30m, 2h, yesterday, ISO time); default: the start of the last run, or 24 h.",
)
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE instead of standard output.",
)
@pass_ctx
def report(ctx: Ctx, since: str | None, fmt: str, output: Path | None) -> None:
    """Write the morning report of the last run.

    Runs, crashes, alerts, approvals, spend, task outcomes, the slowest and
    costliest agents.
    """
    from fleet import report as rpt
    from fleet.store import SCHEMA_VERSION, open_readonly

    try:
        since_ts = parse_since(since)
    except ValueError as exc:
        fail(str(exc))
        return
    db = ctx.state_dir() / "fleet.db"
    if not db.exists():
        fail(f"no fleet database at {db}: this fleet has not run yet")
    import sqlite3


    try:
        conn = open_readonly(db)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                fail(
                    f"{db} has schema version {version}, this fleet reads {SCHEMA_VERSION}; "
                    "start the fleet once with this version to upgrade it"
                )
            rep = rpt.build(conn, since_ts, None, _fleet_name(ctx))
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:  # damaged: report on what can still be read, else one line
        rep = _salvaged_report(db, exc, since_ts, _fleet_name(ctx))
    text = rpt.render(rep, fmt)
    if output is None:
        click.echo(text)
        return
    output.write_text(text + ("\n" if not text.endswith("\n") else ""))
    click.echo(f"report written to {output}", err=True)


def _salvaged_report(db: Path, exc: Exception, since_ts: float | None, name: str | None) -> dict:
    """The report from what a damaged store still holds, with one line saying so; else fail in one line."""
    import sqlite3

    from fleet import report as rpt
    from fleet.store.damage import explain_unreadable, is_damage, salvage_connection

    if not is_damage(exc):
        fail(explain_unreadable(db, exc))
    try:
        conn = salvage_connection(db)
    except (sqlite3.DatabaseError, OSError):
        fail(explain_unreadable(db, exc))
        raise AssertionError("unreachable") from None
    try:
        rep = rpt.build(conn, since_ts, None, name)
    except sqlite3.DatabaseError as again:
        fail(explain_unreadable(db, again))
        raise AssertionError("unreachable") from None
    finally:
        conn.close()
    click.echo(f"fleet: {explain_unreadable(db, exc)}; this report covers what could still be read", err=True)
    return rep


def _fleet_name(ctx: Ctx) -> str | None:
    import tomllib

    try:
        data = tomllib.loads((ctx.fleet_dir / "fleet.toml").read_text())
    except (OSError, ValueError):
        return None
    name = data.get("fleet", {}).get("name") if isinstance(data.get("fleet"), dict) else None
    return name if isinstance(name, str) and name else None


__all__ = ["report", "task", "tasks"]
