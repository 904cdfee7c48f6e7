"""``fleet policy check`` and ``fleet policy show``: policies, as written and as in force.

``check`` reads the files directly (no running fleet needed), so a policy
can be checked in CI or before starting the fleet. ``show`` asks the running
fleet for the policy in force, because that is what governs the agents: a
save that does not validate is refused and the last good policy stays, so
the files can say something else. It then reads the files too and says,
under the table, where they differ or why they do not validate. With no
fleet running it reads the files. Errors print as ``path:line:col: message``
— the form editors and terminals turn into links.
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
    """Validate fleet.toml and policies/*.toml; exit 1 on any error.

    Also checks that every agent's module and function (run) or program
    (command) can be found, without running any of them.
    """
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
    from fleet.policy.preflight import preflight

    missing = preflight(fleet_dir, book)
    if missing:
        for error in missing:
            click.echo(str(error))
        n = len(missing)
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
    """Show NAME's effective policy and where each value comes from.

    NAME is an agent, an instance or a policy. With a fleet running, the policy in force in it, and under it how the
    files on disk differ from it or why they do not validate.
    """
    fleet_dir = _fleet_dir(ctx)
    live = _ask_fleet(ctx, name)
    if live is None:
        _show_from_files(ctx, fleet_dir, name, as_json)
        return
    disk_errors: list[Any] = []
    differs: list[tuple[str, Any, Any]] = []
    try:
        on_disk = _load(fleet_dir).describe(name)
    except _errors() as exc:
        disk_errors = list(exc.errors)
    except UnknownAgent:
        on_disk = None
        differs.append(("agent", name, "not in the files"))
    else:
        differs = _differences(live["policy"], on_disk["policy"])
    if as_json:
        out = {**live, "disk": {"errors": [e.to_dict() for e in disk_errors],
                                "differs": [{"key": k, "in_force": a, "on_disk": b} for k, a, b in differs]}}
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    _table(f"{name}: policy v{live.get('version', '?')}, in force in the running fleet", live)
    if disk_errors:
        n = len(disk_errors)
        click.secho(f"\nThe files on disk are not valid ({n} error{'s' if n != 1 else ''}); the policy above "
                    "stays in force until they are fixed:", fg="red")
        for error in disk_errors:
            click.echo(f"  {error}")
    elif differs:
        click.secho("\nThe files on disk differ from the policy in force (not applied yet):", fg="yellow")
        for key, in_force, on_disk_value in differs:
            click.echo(f"  {key}: {_format(in_force)} in force, {_format(on_disk_value)} on disk")


def _ask_fleet(ctx: click.Context, name: str) -> dict[str, Any] | None:
    """The running fleet's ``policy_show`` for NAME, or None when no fleet runs here."""
    from fleet.control.blocking import BlockingClient
    from fleet.errors import FleetError, FleetNotRunning

    obj = ctx.find_root().obj
    socket = obj.socket() if hasattr(obj, "socket") else None
    if socket is None:
        return None
    try:
        with BlockingClient(socket, origin="cli", timeout=30) as client:
            return dict(client.call("policy_show", name=name))
    except FleetNotRunning:
        return None
    except FleetError as exc:
        click.echo(f"fleet: {exc}", err=True)
        ctx.exit(1)
    return None


def _differences(in_force: dict[str, Any], on_disk: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    out = []
    for section in sorted(set(in_force) | set(on_disk)):
        a, b = in_force.get(section), on_disk.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [(f"{section}.{k}", a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append((section, a, b))
    return out


def _show_from_files(ctx: click.Context, fleet_dir: Path, name: str, as_json: bool) -> None:
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
    try:
        title = f"{name} (policy: {book.agent(name).policy or 'default'})"
    except UnknownAgent:
        title = f"policy {name}"
    _table(title, described)


def _table(title: str, described: dict[str, Any]) -> None:
    origins: dict[str, str] = described["origins"]
    data: dict[str, Any] = described["policy"]
    rows = []
    for key, origin in origins.items():
        section, _, leaf = key.partition(".")
        rows.append((key, _format(data[section][leaf] if leaf else data[section]), origin))
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


@policy.command("set")
@click.argument("name")
@click.argument("key")
@click.argument("value")
@click.pass_context
def set_(ctx: click.Context, name: str, key: str, value: str) -> None:
    """Set one policy KEY of NAME in policies/overrides.toml.

    The console's quick edits (b and M) do the same. VALUE is read as TOML (5.0, true, "text"; a bare word is a string):
    `fleet policy set campaign-optimizer budget.usd_per_day 0.5`. The running
    fleet validates and applies it, as a save from the policy editor.
    """
    import tomllib


    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    from fleet.control.blocking import BlockingClient
    from fleet.errors import FleetError, FleetNotRunning

    obj = ctx.find_root().obj
    try:
        if not hasattr(obj, "socket"):
            raise FleetNotRunning("no socket")
        with BlockingClient(obj.socket(), origin="cli", timeout=30) as client:
            client.call("set_override", target=name, key=key, value=parsed)
        where = "applied by the running fleet"
    except FleetNotRunning:  # no fleet: write the file; it applies when the fleet starts
        from fleet.policy import set_override

        try:
            set_override(_fleet_dir(ctx), name, key, parsed)
        except FleetError as exc:
            click.echo(f"fleet: {exc}", err=True)
            ctx.exit(1)
            return
        where = "applies when the fleet starts"
    except FleetError as exc:
        click.echo(f"fleet: {exc}", err=True)
        ctx.exit(1)
        return
    click.echo(f"{name}: {key} = {_format(parsed)} in policies/overrides.toml ({where})")
