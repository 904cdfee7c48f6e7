"""``fleet alerts``, ``fleet events``, ``fleet usage``: what the console's screens show, for a shell.

The console's alert toasts, its events screen (``E``) and the recent LLM
calls of its detail view each have a command here, so that nothing an
operator can see or do in the console needs the console. Text from agents is
sanitised before it reaches the terminal; ``--json`` prints what the control
API returned.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from fleet.cli import Ctx, pass_ctx, run_client


def _clock(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts or 0))


def _text(value: Any, width: int) -> str:
    from fleet.ansi import sanitize

    return sanitize(str(value or ""), keep_sgr=False).replace("\n", " ")[:width]


@click.command()
@click.argument("agent", required=False)
@click.option("--open", "open_only", is_flag=True, help="Only the alerts still open.")
@click.option("-n", "count", default=50, show_default=True, help="How many of the latest alerts.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def alerts(ctx: Ctx, agent: str | None, open_only: bool, count: int, as_json: bool) -> None:
    """List alerts, newest last.

    Of AGENT, or of every agent; --open for those still open.
    """
    res = run_client(ctx, lambda c: c.call("alerts", open_only=open_only, n=count, agent=agent))
    items = res.get("alerts", [])
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    if not items:
        click.echo("no open alerts" if open_only else "no alerts")
        return
    for a in items:
        if a.get("event") == "alert_cleared":
            click.echo(f"{_clock(a.get('ts'))}  {a.get('agent') or 'fleet'}  cleared  {a.get('rule', '')}")
            continue
        times = f" ×{a['count']}" if int(a.get("count") or 1) > 1 else ""
        click.echo(f"{_clock(a.get('ts') or a.get('last') or a.get('opened'))}  {a.get('agent') or 'fleet'}  "
                   f"{a.get('severity', '')}  {a.get('rule', '')}  {a.get('state', '')}{times}  "
                   f"{_text(a.get('message'), 160)}")
    click.echo(f"{res.get('open', 0)} open")


@click.command()
@click.option("-n", "count", default=50, show_default=True, help="How many of the latest events.")
@click.option("--kind", "kinds", multiple=True,
              help="Only events of this kind (state, alert, policy_applied, approval, audit, task...); repeatable.")
@click.option("--agent", default=None, help="Only events about this agent.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def events(ctx: Ctx, count: int, kinds: tuple[str, ...], agent: str | None, as_json: bool) -> None:
    """List the fleet's recent events, newest last.

    State changes, alerts, policy versions, approvals, the audit of operator actions.
    """
    res = run_client(ctx, lambda c: c.call("events", n=count, kinds=list(kinds) or None, agent=agent))
    items = res.get("events", [])
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for e in items:
        data = {k: v for k, v in (e.get("data") or {}).items() if k not in ("agent", "ts")}
        click.echo(f"{_clock(e.get('ts'))}  {e.get('kind', ''):<15} {e.get('agent') or '-':<20} "
                   f"{_text(json.dumps(data, ensure_ascii=False, default=str), 120)}")


@click.command()
@click.argument("agent", required=False)
@click.option("-n", "count", default=20, show_default=True, help="How many of the latest calls.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def usage(ctx: Ctx, agent: str | None, count: int, as_json: bool) -> None:
    """List recent LLM calls, with tokens and cost.

    Of AGENT, or of every agent: model, tokens in and out, cost, latency, outcome.
    """
    res = run_client(ctx, lambda c: c.call("usage", agent=agent, n=count))
    calls = res.get("calls", [])
    if as_json:
        click.echo(json.dumps(calls, indent=2))
        return
    if not calls:
        click.echo("no LLM calls yet")
        return
    for u in calls:
        err = f"  {_text(u.get('error'), 80)}" if u.get("error") else ""
        click.echo(f"{_clock(u.get('ts'))}  {u.get('agent', ''):<20} {u.get('model', ''):<16} "
                   f"{u.get('tokens_in', 0):>6}+{u.get('tokens_out', 0):<6} ${u.get('cost_usd', 0.0):.5f}  "
                   f"{u.get('latency_s', 0.0) * 1000:6.0f} ms  {u.get('outcome', '')}{err}")


@click.command()
@click.argument("agent", required=False)
@click.option("--json", "as_json", is_flag=True, help="Every recent point, machine-readable.")
@pass_ctx
def metrics(ctx: Ctx, agent: str | None, as_json: bool) -> None:
    """Show the agents' metrics (the console's sparklines).

    Each ctx.metric series: its latest value, range and number of points.
    """
    res = run_client(ctx, lambda c: c.call("metrics", agent=agent))
    series = res.get("metrics", {})
    if as_json:
        click.echo(json.dumps(series, indent=2))
        return
    if not any(series.values()):
        click.echo("no metrics yet")
        return
    for name, by_metric in series.items():
        for metric, points in by_metric.items():
            if not points:
                continue
            values = [v for _, v in points]
            click.echo(f"{_clock(points[-1][0])}  {name:<20} {_text(metric, 30):<20} last {values[-1]:<12.6g} "
                       f"min {min(values):<12.6g} max {max(values):<12.6g} {len(values)} points")
