"""The morning report: what the fleet did since a moment (by default the start of its last run).

Built only from what the store keeps — state and alert events, LLM usage, task
attempts, approvals, audit, policy versions — with plain synchronous queries,
so ``fleet report`` works on last night's database with no fleet running (a
read-only connection), and the ``report`` control op (:mod:`fleet.control.ops`)
runs the very same code on the store's reader thread. Outcome metrics (tasks done and failed, success
rate, lease→done latency p50/p95, tokens, cost per successful task, LLM
latency) come from the per-attempt rows of ``task_attempts`` and the ``usage``
rows, which is what keeps them available over time rather than only live.

Each supervisor start writes a ``run`` event (:func:`attach`); the default
window starts at the latest one, or 24 h ago when there is none.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from fleet.records import Event
from fleet.store import tasks as tasks_sql

if TYPE_CHECKING:
    from fleet.supervisor.core import Supervisor

DEFAULT_WINDOW_S = 86400.0
TOP = 3
#: A spawn is a move to one of these states from one of ``_DOWN``.
_DOWN = {"stopped", "exited", "crashed", "backoff", "crash-loop", "removed"}


def last_run_start(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT MAX(ts) FROM events WHERE kind = 'run'").fetchone()
    return float(row[0]) if row and row[0] is not None else None


def default_since(conn: sqlite3.Connection, now: float | None = None) -> float:
    """The start of the last run, or 24 h ago."""
    start = last_run_start(conn)
    return start if start is not None else (now or time.time()) - DEFAULT_WINDOW_S


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100) of unsorted ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(x, nd)


def _events(conn: sqlite3.Connection, kinds: tuple[str, ...], since: float, until: float) -> list[Event]:
    rows = conn.execute(
        f"SELECT id, ts, kind, agent, data FROM events WHERE kind IN ({','.join('?' * len(kinds))})"
        " AND ts >= ? AND ts < ? ORDER BY id",
        (*kinds, since, until),
    ).fetchall()
    return [Event(k, a, json.loads(d), ts, i) for i, ts, k, a, d in rows]


def build(
    conn: sqlite3.Connection, since: float | None = None, until: float | None = None, fleet: str | None = None
) -> dict[str, Any]:
    """The report as a JSON-ready dict (see the README for its fields)."""
    now = time.time()
    until = until if until is not None else now + 1.0
    since = since if since is not None else default_since(conn, now)
    agents: dict[str, dict[str, Any]] = defaultdict(_blank_agent)

    # --- what happened: runs, restarts, crashes ------------------------------------------
    runs = _events(conn, ("run",), since, until)
    if fleet is None and runs:
        fleet = runs[-1].data.get("fleet")
    timeline = sorted([*runs, *_events(conn, ("state",), since, until)], key=lambda e: (e.ts, e.id or 0))
    spawned: set[str] = set()
    for ev in timeline:
        if ev.kind == "run":
            spawned = set()
            continue
        name = ev.agent or "?"
        a = agents[name]
        state, prev = ev.data.get("state"), ev.data.get("prev")
        a["last_state"] = state
        if state == "starting" or (state == "running" and prev in _DOWN):
            a["runs"] += 1
            if name in spawned:
                a["restarts"] += 1
            spawned.add(name)
        elif state == "crashed":
            a["crashes"] += 1
        elif state == "crash-loop":
            a["crash_loops"] += 1

    # --- alerts ------------------------------------------------------------------------------
    grouped: dict[tuple[str | None, str], dict[str, Any]] = {}
    for ev in _events(conn, ("alert", "alert_cleared"), since, until):
        rule = str(ev.data.get("rule", ""))
        g = grouped.get((ev.agent, rule))
        if ev.kind == "alert_cleared":
            # Repeats inside the cool-down are not events of their own; the clearing carries their count.
            if g is not None:
                g["occurrences"] = max(g["occurrences"], int(ev.data.get("count") or 1))
                g["cleared"] = ev.ts
            continue
        if g is None:
            g = grouped[(ev.agent, rule)] = {
                "agent": ev.agent,
                "rule": rule,
                "severity": ev.data.get("severity"),
                "count": 0,
                "occurrences": 0,
                "first": ev.ts,
                "last": ev.ts,
                "cleared": None,
                "message": "",
            }
        g["count"] += 1  # firings (a first one, and reminders after the cool-down)
        g["occurrences"] = max(g["occurrences"], int(ev.data.get("count") or 1))
        g["last"] = ev.ts
        g["cleared"] = None
        g["message"] = str(ev.data.get("message", ""))[:300]
        if ev.agent:
            agents[ev.agent]["alerts"] += 1
    alerts = sorted(grouped.values(), key=lambda g: (-_sev(g["severity"]), -g["count"], g["first"]))

    # --- approvals -------------------------------------------------------------------------
    approvals = []
    for row in conn.execute(
        "SELECT id, agent, action, status, created, decided_at, decided_by, reason FROM approvals"
        " WHERE (created >= ? AND created < ?) OR (decided_at >= ? AND decided_at < ?) ORDER BY id",
        (since, until, since, until),
    ):
        keys = ("id", "agent", "action", "status", "created", "decided_at", "decided_by", "reason")
        approvals.append(dict(zip(keys, row, strict=True)))

    # --- spend and LLM latency --------------------------------------------------------------
    llm_lat: dict[str, list[float]] = defaultdict(list)
    by_model: dict[str, dict[str, Any]] = defaultdict(lambda: {"calls": 0, "tokens": 0, "cost_usd": 0.0})
    for agent, model, tin, tout, cost, lat, outcome in conn.execute(
        "SELECT agent, model, tokens_in, tokens_out, cost_usd, latency_s, outcome FROM usage WHERE ts >= ? AND ts < ?",
        (since, until),
    ):
        a = agents[agent]
        a["llm_calls"] += 1
        a["tokens"] += tin + tout
        a["cost_usd"] += cost
        if outcome in ("error", "timeout"):
            a["llm_errors"] += 1
        elif outcome == "denied":
            a["llm_denied"] += 1
        if outcome == "ok":
            llm_lat[agent].append(lat)
        m = by_model[model]
        m["calls"] += 1
        m["tokens"] += tin + tout
        m["cost_usd"] += cost
    # Which API the calls came through: SDK agents (sdk) or their own clients over HTTP.
    by_endpoint: dict[str, dict[str, Any]] = {}
    try:
        for endpoint, calls, tokens, cost in conn.execute(
            "SELECT endpoint, COUNT(*), SUM(tokens_in + tokens_out), SUM(cost_usd) FROM usage"
            " WHERE ts >= ? AND ts < ? GROUP BY endpoint ORDER BY SUM(cost_usd) DESC, endpoint",
            (since, until),
        ):
            by_endpoint[endpoint] = {"calls": calls, "tokens": tokens or 0, "cost_usd": round(cost or 0.0, 6)}
    except sqlite3.OperationalError:  # a file from before store v5: every call came from the SDK
        pass

    # --- task outcomes --------------------------------------------------------------------------
    task_lat: dict[str, list[float]] = defaultdict(list)
    for att in tasks_sql.attempts(conn, since, until):
        a = agents[att["agent"]]
        if att["outcome"] == "done":
            a["tasks_done"] += 1
            task_lat[att["agent"]].append(att["ended_at"] - att["leased_at"])
        else:
            a["tasks_failed"] += 1
            if att["outcome"] == "lost":
                a["tasks_lost"] += 1
    dead = [
        {"id": r["id"], "kind": r["kind"], "agent": r["agent"], "attempts": r["attempt"], "reason": r["error"]}
        for r in tasks_sql.list_tasks(conn, ["dead"], None, 10_000)
        if r["finished_at"] is not None and since <= r["finished_at"] < until
    ]
    queue_now = tasks_sql.counts(conn)

    # --- per agent and fleet figures ------------------------------------------------------------
    all_task_lat: list[float] = []
    all_llm_lat: list[float] = []
    rows = []
    for name in sorted(agents):
        a = agents[name]
        _finish_metrics(a, task_lat.get(name, []), llm_lat.get(name, []))
        all_task_lat += task_lat.get(name, [])
        all_llm_lat += llm_lat.get(name, [])
        rows.append({"name": name, **a})
    total = _blank_agent()
    for r in rows:
        for k in (
            "runs",
            "restarts",
            "crashes",
            "crash_loops",
            "alerts",
            "llm_calls",
            "llm_errors",
            "llm_denied",
            "tokens",
            "cost_usd",
            "tasks_done",
            "tasks_failed",
            "tasks_lost",
        ):
            total[k] += r[k]
    total.pop("last_state", None)
    _finish_metrics(total, all_task_lat, all_llm_lat)

    def slowness(r: dict[str, Any]) -> float:
        return r["task_latency_p95_s"] if r["task_latency_p95_s"] is not None else (r["llm_latency_p95_s"] or 0.0)

    slowest = [_brief(r) for r in sorted(rows, key=slowness, reverse=True) if slowness(r) > 0][:TOP]
    costliest = [_brief(r) for r in sorted(rows, key=lambda r: r["cost_usd"], reverse=True) if r["cost_usd"] > 0][:TOP]

    policy = [
        {"version": v, "applied_at": t}
        for v, t in conn.execute(
            "SELECT version, applied_at FROM policy_versions WHERE applied_at >= ? AND applied_at < ? ORDER BY version",
            (since, until),
        )
    ]
    actions = Counter(
        f"{a} ({o})"
        for a, o in conn.execute("SELECT action, origin FROM audit WHERE ts >= ? AND ts < ?", (since, until))
    )
    return {
        "fleet": fleet or "",
        "since": since,
        "until": min(until, now),
        "generated": now,
        "runs": [{"started": e.ts, **{k: v for k, v in e.data.items() if k != "agents"}} for e in runs],
        "fleet_metrics": total,
        "agents": rows,
        "alerts": alerts,
        "approvals": approvals,
        "spend": {
            "cost_usd": round(total["cost_usd"], 6),
            "tokens": total["tokens"],
            "by_model": [
                {"model": k, **v, "cost_usd": round(v["cost_usd"], 6)}
                for k, v in sorted(by_model.items(), key=lambda kv: -kv[1]["cost_usd"])
            ],
            "by_endpoint": [{"endpoint": k, **v} for k, v in by_endpoint.items()],
        },
        "tasks": {"now": queue_now, "dead": dead},
        "slowest": slowest,
        "costliest": costliest,
        "policy_versions": policy,
        "operator_actions": dict(actions.most_common()),
    }


def _blank_agent() -> dict[str, Any]:
    return {
        "last_state": None,
        "runs": 0,
        "restarts": 0,
        "crashes": 0,
        "crash_loops": 0,
        "alerts": 0,
        "llm_calls": 0,
        "llm_errors": 0,
        "llm_denied": 0,
        "tokens": 0,
        "cost_usd": 0.0,
        "tasks_done": 0,
        "tasks_failed": 0,
        "tasks_lost": 0,
    }


def _finish_metrics(a: dict[str, Any], task_lat: list[float], llm_lat: list[float]) -> None:
    tried = a["tasks_done"] + a["tasks_failed"]
    a["success_rate"] = _r(a["tasks_done"] / tried) if tried else None
    a["task_latency_p50_s"] = _r(percentile(task_lat, 50))
    a["task_latency_p95_s"] = _r(percentile(task_lat, 95))
    a["llm_latency_p50_s"] = _r(percentile(llm_lat, 50))
    a["llm_latency_p95_s"] = _r(percentile(llm_lat, 95))
    a["cost_usd"] = round(a["cost_usd"], 6)
    a["cost_per_success_usd"] = _r(a["cost_usd"] / a["tasks_done"], 6) if a["tasks_done"] else None


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    return {
        k: r[k]
        for k in (
            "name",
            "task_latency_p95_s",
            "llm_latency_p95_s",
            "cost_usd",
            "tokens",
            "tasks_done",
            "cost_per_success_usd",
        )
    }


def _sev(s: Any) -> int:
    return {"info": 0, "warning": 1, "error": 2, "critical": 3}.get(str(s), 1)


# --------------------------------------------------------------------------- markdown


def _t(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:.4f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_md(rep: dict[str, Any]) -> str:
    """The report as Markdown, for a terminal, a file or a chat message."""
    f = rep["fleet_metrics"]
    out = [
        f"# Fleet report: {rep['fleet'] or 'fleet'}",
        "",
        f"{_t(rep['since'])} → {_t(rep['until'])} "
        f"({len(rep['runs'])} supervisor start{'s' if len(rep['runs']) != 1 else ''} in this window)",
        "",
        "## What happened",
        "",
    ]
    out += [
        f"- **{len(rep['agents'])} agents**: {f['runs']} process runs, {f['restarts']} restarts, "
        f"{f['crashes']} crashes, {f['crash_loops']} crash-loops",
        f"- **Tasks**: {f['tasks_done']} done, {f['tasks_failed']} failed attempts ({f['tasks_lost']} lost with "
        f"their agent), success rate {_pct(f['success_rate'])}, latency p50 {_s(f['task_latency_p50_s'])}, "
        f"p95 {_s(f['task_latency_p95_s'])}; {len(rep['tasks']['dead'])} dead",
        f"- **LLM**: {f['llm_calls']} calls ({f['llm_errors']} errors, {f['llm_denied']} refused by policy), "
        f"{f['tokens']} tokens, {_usd(f['cost_usd'])}, latency p50 {_s(f['llm_latency_p50_s'])}, "
        f"p95 {_s(f['llm_latency_p95_s'])}; cost per successful task {_usd(f['cost_per_success_usd'])}",
        f"- **Alerts**: {sum(a['count'] for a in rep['alerts'])} ({len(rep['alerts'])} distinct); "
        f"**approvals**: {len(rep['approvals'])}; **policy versions applied**: {len(rep['policy_versions'])}",
    ]
    if rep["operator_actions"]:
        out.append("- **Operator actions**: " + ", ".join(f"{k} ×{v}" for k, v in rep["operator_actions"].items()))
    out += [
        "",
        "## Agents",
        "",
        "| agent | state | runs | restarts | crashes | tasks done | failed | success | p50 | p95 | tokens "
        "| cost | $/task | alerts |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for a in rep["agents"]:
        out.append(
            f"| {_cell(a['name'])} | {a['last_state'] or '-'} | {a['runs']} | {a['restarts']} | {a['crashes']} "
            f"| {a['tasks_done']} | {a['tasks_failed']} | {_pct(a['success_rate'])} | {_s(a['task_latency_p50_s'])} "
            f"| {_s(a['task_latency_p95_s'])} | {a['tokens']} | {_usd(a['cost_usd'])} "
            f"| {_usd(a['cost_per_success_usd'])} | {a['alerts']} |"
        )
    out += ["", "## Alerts", ""]
    if not rep["alerts"]:
        out.append("No alerts.")
    for al in rep["alerts"]:
        seen = max(al["count"], al["occurrences"])
        times = f"seen {seen} times, " if seen > 1 else ""
        out.append(
            f"- **{al['severity']}** `{al['rule']}` on {al['agent'] or 'fleet'} ({times}first "
            f"{_t(al['first'])}): {_cell(al['message'])}"
        )
    out += ["", "## Approvals", ""]
    if not rep["approvals"]:
        out.append("No approval requests.")
    for ap in rep["approvals"]:
        who = f" by {ap['decided_by']}" if ap["decided_by"] and ap["status"] in ("approved", "denied") else ""
        why = f" — {ap['reason']}" if ap["reason"] else ""
        out.append(
            f"- #{ap['id']} {ap['agent']}: `{ap['action']}` **{ap['status']}**{who} "
            f"(asked {_t(ap['created'])}){_cell(why)}"
        )
    out += ["", "## Spend", "", f"Total {_usd(rep['spend']['cost_usd'])}, {rep['spend']['tokens']} tokens.", ""]
    for m in rep["spend"]["by_model"]:
        out.append(f"- `{m['model']}`: {m['calls']} calls, {m['tokens']} tokens, {_usd(m['cost_usd'])}")
    endpoints = rep["spend"].get("by_endpoint") or []
    if len(endpoints) > 1 or any(e["endpoint"] != "sdk" for e in endpoints):
        out.append("")
        out.append(
            "Through: "
            + ", ".join(f"{e['endpoint']} {e['calls']} calls, {_usd(e['cost_usd'])}" for e in endpoints)
            + "."
        )
    out += ["", "## Slowest agents", ""]
    out += [
        f"{i}. {r['name']}: task p95 {_s(r['task_latency_p95_s'])}, LLM p95 {_s(r['llm_latency_p95_s'])}"
        for i, r in enumerate(rep["slowest"], 1)
    ] or ["Nothing measured."]
    out += ["", "## Costliest agents", ""]
    out += [
        f"{i}. {r['name']}: {_usd(r['cost_usd'])} ({r['tokens']} tokens, {r['tasks_done']} tasks done, "
        f"{_usd(r['cost_per_success_usd'])} per task)"
        for i, r in enumerate(rep["costliest"], 1)
    ] or ["Nothing spent."]
    if rep["tasks"]["dead"]:
        out += ["", "## Dead tasks", ""]
        out += [
            f"- #{d['id']} `{d['kind']}` (last held by {d['agent'] or '-'}, {d['attempts']} attempts): "
            f"{_cell(d['reason'])}"
            for d in rep["tasks"]["dead"][:50]
        ]
    now = rep["tasks"]["now"]
    out += ["", "## Queue now", "", ", ".join(f"{k}: {v}" for k, v in sorted(now.items())) or "empty", ""]
    return "\n".join(out)


def render(rep: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rep, indent=2, ensure_ascii=False)
    if fmt == "md":
        return render_md(rep)
    raise ValueError(f"unknown report format {fmt!r} (md or json)")


# --------------------------------------------------------------------------- in the supervisor


async def attach(sup: Supervisor) -> None:
    """Mark this supervisor start: the default start of a report (the op is ``report``)."""
    from fleet import __version__

    store = sup.store
    if store is not None:
        await store.add_event(
            Event(
                "run",
                None,
                {
                    "fleet": sup.fleet_name,
                    "pid": os.getpid(),
                    "version": __version__,
                    "agents": [a.name for a in sup.book.agents],
                },
            )
        )
