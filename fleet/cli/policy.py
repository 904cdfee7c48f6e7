"""``fleet policy check`` and ``fleet policy show``: policies, offline.

Both read the files directly (no running fleet needed), so a policy can be
checked in CI or before starting the fleet. Errors print as
``path:line:col: message`` — the form editors and terminals turn into links.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from fleet.errors import UnknownAgent


def _fleet_dir(ctx: click.Context) -> Path:
    """The fleet directory the main CLI resolved (``-C DIR``), else the current one.

    Accepts ``ctx.obj["fleet_dir"]`` (a dict) or ``ctx.obj.fleet_dir`` (the main
    CLI's context object), so the group also runs on its own in tests.
    """
    obj = ctx.find_object(object) if ctx.obj is None else ctx.obj
    if isinstance(obj, dict) and obj.get("fleet_dir"):
        return Path(obj["fleet_dir"])
    fleet_dir = getattr(obj, "fleet_dir", None)
    return Path(fleet_dir) if fleet_dir else Path.cwd()


@click.group("policy")
def policy() -> None:
    """Check policies and show what an agent is allowed to do."""


@policy.command("check")
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate fleet.toml and policies/*.toml; exit 1 on any error."""
    fleet_dir = _fleet_dir(ctx)
    try:
        book = _load(fleet_dir)
    except _errors() as exc:
        for error in exc.errors:
            click.echo(str(error))
        n = len(exc.errors)
        click.echo(f"{n} error{'s' if n != 1 else ''}", err=True)
        ctx.exit(1)
        return
    n_agents, n_policies = len(book.agents), len(book.policy_names)
    agents = f"{n_agents} agent{'s' if n_agents != 1 else ''}"
    click.echo(f"ok: {agents}, {n_policies} polic{'ies' if n_policies != 1 else 'y'}")


def _format(value: Any) -> str:
    if value is None:
        return "off"
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) or not value else value


@policy.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print {agent, policy, origins} as JSON.")
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show NAME's effective policy (an agent, instance or policy) and where each value comes from."""
    fleet_dir = _fleet_dir(ctx)
    try:
        book = _load(fleet_dir)
        described = book.describe(name)
    except _errors() as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        ctx.exit(1)
        return
    except UnknownAgent as exc:
        click.echo(f"{exc}; policies: {', '.join(book.policy_names) or 'none'}", err=True)
        ctx.exit(1)
        return
    if as_json:
        click.echo(json.dumps(described, indent=2, ensure_ascii=False))
        return
    origins: dict[str, str] = described["origins"]
    data: dict[str, Any] = described["policy"]
    rows = []
    for key, origin in origins.items():
        section, _, leaf = key.partition(".")
        rows.append((key, _format(data[section][leaf] if leaf else data[section]), origin))
    try:
        title = f"{name} (policy: {book.agent(name).policy or 'default'})"
    except UnknownAgent:
        title = f"policy {name}"
    width_key = max(len(r[0]) for r in rows)
    width_value = min(48, max(len(r[1]) for r in rows))
    click.secho(title, bold=True)
    for key, value, origin in rows:
        click.echo(f"  {key:<{width_key}}  {value:<{width_value}}  ", nl=False)
        click.secho(origin, dim=origin == "built-in")


def _load(fleet_dir: Path) -> Any:
    # pydantic is imported here, not at module level: every ``fleet`` command
    # imports this module, and most of them never read a policy.
    from fleet.policy import load_book

    return load_book(fleet_dir)


def _errors() -> type[Exception]:
    from fleet.policy import PolicyErrors

    return PolicyErrors
