"""The contract: a real fleet and the console's fake answer the same calls with the same records.

One small scenario (look at the fleet, pause and resume an agent, read logs,
events, approvals, usage, policy) runs against both. Every answer is validated
against the record its op declares (``fleet.wire``, unknown keys are errors),
and the two answers must have the same fields at every level: the fake cannot
lag behind a column the supervisor added, nor show one it never sends.
"""

from __future__ import annotations

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
    )
    await f.events.wait_for(lambda e: e["event"] == "approval")
    await f.events.wait_for(lambda e: e["event"] == "logs" and e["data"]["agent"] == "ticker")
    await f.sup.store.flush()
    real = await _run(f.client)
    fake_client = FakeFleetClient()
    fake = await _run(fake_client)
    await fake_client.close()

    assert real["events['n']"]["events"] and real["usage['n']"]["calls"] and real["approvals[]"]["approvals"]
    problems = []
    for key in real:
        # Fields one side happens to fill and the other not (pause's "changed", a decided
        # approval's decision, an error's "text") are the records' NotRequired ones.
        optional = _optional_fields(operations()[key.split("[")[0]].result, key)
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
