"""set_override: validated, atomic, layered last, and never touching human files."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.policy import PolicyErrors, clear_override, load_book, set_override
from fleet.policy.overrides import resolve_target

from .conftest import write_fleet

OVERRIDES = "policies/overrides.toml"


def human_files(fleet_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(fleet_dir)): p.read_bytes()
        for p in [fleet_dir / "fleet.toml", *sorted((fleet_dir / "policies").glob("*.toml"))]
        if p.name != "overrides.toml"
    }


def test_agent_override(fleet_dir: Path) -> None:
    before = human_files(fleet_dir)
    path = set_override(fleet_dir, "watch", "budget.usd_per_day", 3.5)
    assert path == fleet_dir / OVERRIDES
    data = tomllib.loads(path.read_text())
    assert data == {"agent": {"watch": {"budget": {"usd_per_day": 3.5}}}}
    book = load_book(fleet_dir)
    assert book.policy_for("watch").budget.usd_per_day == 3.5
    assert book.origins_for("watch")["budget.usd_per_day"] == OVERRIDES
    assert book.policy_for("drafter").budget.usd_per_day == 4.0
    assert human_files(fleet_dir) == before
    assert not list((fleet_dir / "policies").glob(".*"))  # no temp file left behind


def test_policy_override_applies_to_every_agent_using_it(fleet_dir: Path) -> None:
    text = (fleet_dir / "fleet.toml").read_text() + '\n[[agent]]\nname = "watch2"\ncommand = ["x"]\npolicy = "ops"\n'
    (fleet_dir / "fleet.toml").write_text(text)
    set_override(fleet_dir, "ops", "restart.max_restarts", 1)
    set_override(fleet_dir, "watch2", "restart.max_restarts", 2)  # the agent's wins
    book = load_book(fleet_dir)
    assert book.policy_for("watch").restart.max_restarts == 1
    assert book.policy_for("watch2").restart.max_restarts == 2
    assert book.policy_for("drafter").restart.max_restarts == 5


def test_targets(fleet_dir: Path) -> None:
    assert resolve_target(fleet_dir, "watch") == ("agent", "watch")
    assert resolve_target(fleet_dir, "drafter") == ("agent", "drafter")  # every replica
    assert resolve_target(fleet_dir, "drafter#2") == ("agent", "drafter#2")  # that one only
    assert resolve_target(fleet_dir, "drafting") == ("policy", "drafting")
    assert resolve_target(fleet_dir, "policy:ops") == ("policy", "ops")
    assert resolve_target(fleet_dir, "*") == ()
    with pytest.raises(PolicyErrors, match="did you mean 'watch'"):
        resolve_target(fleet_dir, "wacth")
    with pytest.raises(PolicyErrors, match="unknown policy 'watch'"):
        resolve_target(fleet_dir, "policy:watch")


def test_replica_override_changes_that_replica_only(fleet_dir: Path) -> None:
    """``drafter#1`` is one replica: its quick edit must not change ``drafter#2`` (the console's scope)."""
    set_override(fleet_dir, "drafter#1", "budget.usd_per_day", 9.0)
    data = tomllib.loads((fleet_dir / OVERRIDES).read_text())
    assert data == {"agent": {"drafter#1": {"budget": {"usd_per_day": 9.0}}}}
    book = load_book(fleet_dir)
    assert book.policy_for("drafter#1").budget.usd_per_day == 9.0
    assert book.origins_for("drafter#1")["budget.usd_per_day"] == OVERRIDES
    assert book.policy_for("drafter#2").budget.usd_per_day == 4.0
    assert book.policy_for("drafter").budget.usd_per_day == 4.0
    assert book.describe("drafter#1")["policy"]["budget"]["usd_per_day"] == 9.0
    set_override(fleet_dir, "drafter", "budget.usd_per_day", 5.0)  # the group: below the replica's own
    book = load_book(fleet_dir)
    assert (book.policy_for("drafter#1").budget.usd_per_day, book.policy_for("drafter#2").budget.usd_per_day) == (
        9.0,
        5.0,
    )
    with pytest.raises(PolicyErrors, match="drafter#3"):
        set_override(fleet_dir, "drafter#3", "budget.usd_per_day", 1.0)


def test_everyone_override(fleet_dir: Path) -> None:
    set_override(fleet_dir, "*", "alerts.action", "pause")
    book = load_book(fleet_dir)
    assert {book.policy_for(n).alerts.action for n in ("watch", "drafter")} == {"pause"}


def test_none_lifts_a_limit(fleet_dir: Path) -> None:
    set_override(fleet_dir, "watch", "budget.usd_per_day", None)
    assert 'usd_per_day = "off"' in (fleet_dir / OVERRIDES).read_text()
    assert load_book(fleet_dir).policy_for("watch").budget.usd_per_day is None
    with pytest.raises(PolicyErrors):
        set_override(fleet_dir, "watch", "llm.max_tokens", None)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "budget.usd_per_dya",
            1,
            "unknown policy key 'budget.usd_per_dya'; did you mean 'budget.usd_per_day'?",
        ),
        ("budget.usd_per_day", -1, "greater than or equal to 0"),
        ("budget.usd_per_day", "2", "valid number"),
        ("budget.on_exhausted", "explode", "'pause' or 'block'"),
        ("llm.model", "claude", "not allowed by llm.models"),  # valid alone, conflicts in the book
    ],
)
def test_invalid_values_are_refused_and_nothing_is_written(fleet_dir: Path, key: str, value: Any, message: str) -> None:
    set_override(fleet_dir, "watch", "goal", "keep")
    before = (fleet_dir / OVERRIDES).read_bytes()
    with pytest.raises(PolicyErrors, match=message.replace("(", r"\(").replace("?", r"\?")):
        set_override(fleet_dir, "watch", key, value)
    assert (fleet_dir / OVERRIDES).read_bytes() == before


def test_a_broken_overrides_file_is_not_clobbered(fleet_dir: Path) -> None:
    (fleet_dir / OVERRIDES).write_text("[agent\n")
    with pytest.raises(PolicyErrors, match="not valid TOML"):
        set_override(fleet_dir, "watch", "goal", "x")
    assert (fleet_dir / OVERRIDES).read_text() == "[agent\n"


def test_clear_override(fleet_dir: Path) -> None:
    set_override(fleet_dir, "watch", "budget.usd_per_day", 3.0)
    set_override(fleet_dir, "watch", "goal", "g")
    clear_override(fleet_dir, "watch", "budget.usd_per_day")
    assert tomllib.loads((fleet_dir / OVERRIDES).read_text()) == {"agent": {"watch": {"goal": "g"}}}
    clear_override(fleet_dir, "watch")
    assert tomllib.loads((fleet_dir / OVERRIDES).read_text()) == {}
    assert clear_override(fleet_dir, "watch", "goal") is None
    assert load_book(fleet_dir).policy_for("watch").budget.usd_per_day == 2.0


def test_agent_names_that_need_quoting(tmp_path: Path) -> None:
    write_fleet(tmp_path, {"fleet.toml": '[[agent]]\nname = "my.agent-1"\ncommand = ["x"]\n'})
    set_override(tmp_path, "my.agent-1", "tasks.priority", 3)
    assert '[agent."my.agent-1".tasks]' in (tmp_path / OVERRIDES).read_text()
    assert load_book(tmp_path).policy_for("my.agent-1").tasks.priority == 3


# -- round trips -------------------------------------------------------------------

globs = st.lists(st.from_regex(r"[a-z_*][a-z0-9_*/.-]{0,12}", fullmatch=True), max_size=4)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
finite = {"allow_nan": False, "allow_infinity": False}

VALUES: dict[str, st.SearchStrategy[Any]] = {
    "llm.temperature": st.none() | st.floats(0, 2, **finite),
    "llm.max_tokens": st.integers(1, 2**31),
    "budget.usd_per_day": st.none() | st.floats(0, 1e9, **finite),
    "budget.tokens_per_minute": st.none() | st.integers(1, 10**9),
    "budget.requests_per_minute": st.none() | st.integers(1, 10**6),
    "budget.on_exhausted": st.sampled_from(["pause", "block"]),
    "tools.allow": globs,
    "tools.deny": globs,
    "tools.approve": globs,
    "tools.approval_timeout_s": st.floats(0.001, 1e7, **finite),
    "restart.mode": st.sampled_from(["always", "on-failure", "never"]),
    "restart.max_restarts": st.integers(0, 1000),
    "restart.window_s": st.floats(0.001, 1e7, **finite),
    "restart.stop_grace_s": st.floats(0, 1e4, **finite),
    "alerts.silence_s": st.none() | st.floats(0.001, 1e7, **finite),
    "alerts.error_rate": st.none() | st.floats(0, 1, **finite),
    "alerts.budget_warn_pct": st.floats(0, 100, **finite),
    "alerts.action": st.sampled_from(["notify", "pause"]),
    "tasks.kinds": globs,
    "tasks.concurrency": st.integers(1, 1000),
    "tasks.priority": st.integers(-(2**31), 2**31),
    "goal": texts,
}


def _get(policy: Any, key: str) -> Any:
    for part in key.split("."):
        policy = getattr(policy, part)
    return policy


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(["watch", "drafter#1", "ops", "*"]), st.sampled_from(sorted(VALUES))).flatmap(
            lambda tk: st.tuples(st.just(tk[0]), st.just(tk[1]), VALUES[tk[1]])
        ),
        min_size=1,
        max_size=4,
    )
)
def test_set_override_round_trips(tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, str, Any]]) -> None:
    fleet_dir = write_fleet(tmp_path_factory.mktemp("fleet"))
    before = human_files(fleet_dir)
    for i, (target, key, value) in enumerate(edits):
        set_override(fleet_dir, target, key, value)
        book = load_book(fleet_dir)
        agent = {"ops": "watch", "*": "drafter"}.get(target, target)
        policy = book.policy_for(agent)
        got = _get(policy, key)
        # an agent override set earlier in this example outranks a later policy/global one
        earlier = edits[:i]
        own = {"watch": "watch", "drafter#1": "drafter#1"}
        shadowed = target not in own and any(own.get(t) == agent and k == key for t, k, _ in earlier)
        if not shadowed:
            assert got == pytest.approx(value) if isinstance(value, float) else got == value
            assert book.origins_for(agent)[key] == OVERRIDES
    assert human_files(fleet_dir) == before
