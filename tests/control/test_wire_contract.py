"""The contract: a real fleet and the console's fake answer the same calls with the same records.

One small scenario (look at the fleet, pause and resume an agent, read logs,
events, approvals, usage, policy, approve a request, set an override) runs
against both. Every answer, and every event either side pushes meanwhile, is
validated against its record (``fleet.wire``; unknown keys are errors), and the
two sides must give the same fields at every level: the fake cannot lag behind
a column the supervisor added, nor show one it never sends.
"""

from __future__ import annotations

import asyncio
import types
import typing
from typing import Any

from fleet import wire
from fleet.control.registry import operations
from tests.console.fake_client import FakeFleetClient

AGENT = """
    async def run(ctx):
        await ctx.llm("hello", max_tokens=20)
        ctx.metric("depth", 3)
        await ctx.approve("send_email", {"to": "cfo@example.com"})
        await ctx.sleep(60)
"""

SCENARIO: list[tuple[str, dict[str, Any]]] = [
    ("ping", {}),
    ("status", {}),
    ("pause", {"names": ["ticker"]}),
    ("resume", {"names": ["ticker"]}),
    ("logs", {"agent": "ticker", "n": 5}),
    ("logs", {"n": 5}),
    ("events", {"n": 20}),
    ("approvals", {}),
    ("usage", {"n": 10}),
    ("metrics", {}),
    ("policy_show", {"name": "ticker"}),
    ("policy_files", {}),
    ("policy_check", {"path": "policies/default.toml", "text": "[budget]\nusd_per_dya = 1\n"}),
    ("approve", {"id": 1}),
    ("send", {"name": "ticker", "text": "hello"}),
    ("questions", {}),
    ("set_override", {"target": "ticker", "key": "budget.usd_per_day", "value": 3.0}),
]


def shape(value: Any) -> Any:
    """The field names of a record, recursively (lists by their first item); leaves by JSON type."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "null" if value is None else "value"


def same_fields(real: Any, fake: Any, path: str = "") -> list[str]:
    """Where the two records differ in their fields (not their values; a null matches anything)."""
    if isinstance(real, dict) and isinstance(fake, dict):
        out = [f"{path}.{k}: only in the real fleet" for k in real.keys() - fake.keys()]
        out += [f"{path}.{k}: only in the fake" for k in fake.keys() - real.keys()]
        for k in real.keys() & fake.keys():
            out += same_fields(real[k], fake[k], f"{path}.{k}")
        return out
    if isinstance(real, list) and isinstance(fake, list):
        return same_fields(real[0], fake[0], f"{path}[0]") if real and fake else []
    return []


OPEN_ENDED = {"policy", "origins", "data", "metrics", "details", "params", "fields"}


def _strip_open(value: Any) -> Any:
    """Leave out what is free-form by design (a policy's tables, an event's data, metric names)."""
    if isinstance(value, dict):
        return {k: ("…" if k in OPEN_ENDED else _strip_open(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_open(v) for v in value]
    return value


async def _run(client: Any) -> dict[str, Any]:
    out = {}
    for op, args in SCENARIO:
        key = f"{op}{sorted(args)}"
        out[key] = await client.call(op, **args)
        wire.check(operations()[op].result, out[key])
    return out


def _check_pushes(pushes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Validate every pushed event against its record; return one of each kind."""
    first: dict[str, dict[str, Any]] = {}
    for msg in pushes:
        kind = msg["event"]
        assert kind in wire.PUSHES, f"a {kind!r} push has no record in fleet.wire.PUSHES"
        wire.check(wire.PUSHES[kind], msg["data"])
        first.setdefault(kind, msg["data"])
    return first


async def test_the_fake_and_a_real_fleet_answer_with_the_same_records(fleet_factory):
    f = await fleet_factory(
        """
        [[agent]]
        name = "ticker"
        command = ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]

        [[agent]]
        name = "asker"
        run = "agents.asker:run"
        [agent.tools]
        approve = ["send_email"]
        """,
        {"agents/asker.py": AGENT},
        watch=True,
    )
    await f.events.wait_for(lambda e: e["event"] == "approval")
    await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["agent"] == "ticker")
    await f.sup.store.flush()
    real = await _run(f.client)
    fake_client = FakeFleetClient()
    fake_pushes: list[dict[str, Any]] = []
    all_pushed = asyncio.Event()  # state, approval, policy_applied: the fake pushes them after its replies

    async def collect() -> None:
        async for msg in fake_client.subscribe():
            fake_pushes.append(msg)
            if {"state", "approval", "policy_applied"} <= {m["event"] for m in fake_pushes}:
                all_pushed.set()

    collector = asyncio.ensure_future(collect())
    await asyncio.sleep(0)  # one turn: the collector subscribes before the scenario, as the real client did
    fake = await _run(fake_client)
    await f.events.wait_for(lambda e: e["event"] == "approval" and e["data"]["status"] == "approved")
    await f.events.wait_for(lambda e: e["event"] == "policy_applied")  # the override, reloaded
    await asyncio.wait_for(all_pushed.wait(), 10)
    collector.cancel()
    await fake_client.close()
    real_pushed, fake_pushed = _check_pushes(f.events.events), _check_pushes(fake_pushes)
    assert {"state", "logs", "approval", "usage", "audit"} <= set(real_pushed)
    assert {"state", "approval", "policy_applied"} <= set(real_pushed) & set(fake_pushed)
    for kind in set(real_pushed) & set(fake_pushed):
        real[f"push {kind}"], fake[f"push {kind}"] = real_pushed[kind], fake_pushed[kind]

    assert real["events['n']"]["events"] and real["usage['n']"]["calls"] and real["approvals[]"]["approvals"]
    problems = []
    for key in real:
        # Fields one side happens to fill and the other not (pause's "changed", a decided
        # approval's decision, an error's "text") are the records' NotRequired ones.
        record = wire.PUSHES[key[5:]] if key.startswith("push ") else operations()[key.split("[")[0]].result
        optional = _optional_fields(record, key)
        found = same_fields(_strip_open(real[key]), _strip_open(fake[key]), key)
        problems += [p for p in found if p.split(":")[0] not in optional]
    assert not problems, "\n".join(problems)


def _optional_fields(t: Any, path: str) -> set[str]:
    """Paths (as ``same_fields`` writes them) of the NotRequired fields of a record and those it holds."""
    origin = typing.get_origin(t)
    if origin is list:
        return _optional_fields(typing.get_args(t)[0], f"{path}[0]")
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_optional_fields(a, path) for a in typing.get_args(t)))
    if not (isinstance(t, type) and hasattr(t, "__required_keys__")):
        return set()
    out = {f"{path}.{k}" for k in t.__optional_keys__}
    for k, hint in typing.get_type_hints(t).items():
        out |= _optional_fields(hint, f"{path}.{k}")
    return out
