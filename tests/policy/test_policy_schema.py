"""The schema: defaults, strictness, helpers, and the generated reference."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fleet.policy import POLICY_DOC_MODELS, AgentSpec, FleetSettings, Policy
from fleet.policy.reference import render_reference
from fleet.policy.schema import policy_keys


def test_empty_policy_is_valid_with_documented_defaults() -> None:
    p = Policy.model_validate({})
    assert p.llm.models == ["*"]
    assert p.llm.model == "fleet/demo"
    assert p.llm.temperature is None
    assert p.llm.max_tokens == 512
    assert p.budget.usd_per_day is None
    assert p.budget.tokens_per_minute is None and p.budget.requests_per_minute is None
    assert p.budget.on_exhausted == "pause"
    assert p.tools.allow == ["*"] and p.tools.deny == [] and p.tools.approve == []
    assert p.tools.approval_timeout_s == 900
    assert p.restart.mode == "on-failure"
    assert (p.restart.backoff_initial_s, p.restart.backoff_max_s) == (0.5, 30)
    assert (p.restart.max_restarts, p.restart.window_s, p.restart.stop_grace_s) == (5, 60, 5)
    assert p.alerts.silence_s is None and p.alerts.error_rate is None
    assert (p.alerts.error_window_s, p.alerts.budget_warn_pct, p.alerts.action) == (300, 80, "notify")
    assert p.alerts.cost_per_hour_usd is None
    assert p.tasks.kinds == [] and p.tasks.concurrency == 1 and p.tasks.priority == 0
    assert p.goal == ""
    assert p.conflicts() == []


def test_fleet_settings_defaults() -> None:
    s = FleetSettings()
    assert (s.name, s.state_dir, s.allocation) == ("", ".fleet", "least-loaded")
    assert s.log_retention_days is None and s.log_retention_mb is None
    assert (s.task_max_attempts, s.task_lease_s) == (3, 30)


def test_policy_is_frozen_strict_and_closed() -> None:
    p = Policy()
    with pytest.raises(ValidationError):
        p.goal = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Policy.model_validate({"budget": {"usd_per_day": "2"}})  # TOML strings are not numbers
    with pytest.raises(ValidationError):
        Policy.model_validate({"llm": {"max_tokens": True}})
    with pytest.raises(ValidationError):
        Policy.model_validate({"budget": {"usd_per_dya": 1}})
    assert Policy.model_validate({"budget": {"usd_per_day": 2}}).budget.usd_per_day == 2.0


@pytest.mark.parametrize("word", ["off", "unlimited", "none", "OFF"])
def test_off_words_lift_nullable_limits(word: str) -> None:
    p = Policy.model_validate({"budget": {"usd_per_day": word}, "alerts": {"silence_s": word}})
    assert p.budget.usd_per_day is None and p.alerts.silence_s is None
    with pytest.raises(ValidationError):
        Policy.model_validate({"llm": {"max_tokens": word}})  # not nullable


def test_every_field_is_documented() -> None:
    for model in POLICY_DOC_MODELS.values():
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"


def test_model_allowed_globs() -> None:
    p = Policy.model_validate({"llm": {"models": ["fleet/demo", "anthropic/*"]}})
    assert p.model_allowed("fleet/demo")
    assert p.model_allowed("anthropic/claude-3-5-haiku")
    assert not p.model_allowed("gpt-4o")
    assert not p.model_allowed("Fleet/demo")


def test_tool_decision_order() -> None:
    p = Policy.model_validate(
        {
            "tools": {
                "allow": ["read_*", "publish_now"],
                "deny": ["shell", "publish_now"],
                "approve": ["publish_*"],
            }
        }
    )
    assert p.tool_decision("shell") == "deny"
    assert p.tool_decision("publish_now") == "deny"  # deny beats approve and allow
    assert p.tool_decision("publish_later") == "approve"  # approve needs no allow entry
    assert p.tool_decision("read_file") == "allow"
    assert p.tool_decision("launch_rocket") == "deny"  # named by no list
    assert Policy().tool_decision("anything") == "allow"


def test_agent_instances_and_target() -> None:
    assert AgentSpec(name="w", run="m:f").instances() == ["w"]
    assert AgentSpec(name="w", run="m:f", replicas=3).instances() == ["w#1", "w#2", "w#3"]
    with pytest.raises(ValidationError, match="exactly one"):
        AgentSpec(name="w")
    with pytest.raises(ValidationError, match="exactly one"):
        AgentSpec(name="w", run="m:f", command=["x"])
    with pytest.raises(ValidationError):
        AgentSpec(name="w#1", run="m:f")


def test_agent_own_policy_holds_only_what_it_sets() -> None:
    spec = AgentSpec.model_validate(
        {"name": "w", "run": "m:f", "budget": {"usd_per_day": 3}, "goal": "g", "tools": {"approve": ["x"]}}
    )
    assert spec.own_policy() == {"budget": {"usd_per_day": 3.0}, "tools": {"approve": ["x"]}, "goal": "g"}


def test_conflicts() -> None:
    p = Policy.model_validate({"llm": {"models": ["gpt-*"]}, "restart": {"backoff_initial_s": 10, "backoff_max_s": 5}})
    keys = [k for k, _ in p.conflicts()]
    assert keys == [("llm.model", "llm.models"), ("restart.backoff_initial_s", "restart.backoff_max_s")]


def test_reference_lists_every_key() -> None:
    text = render_reference()
    for key in policy_keys():
        assert f"| `{key.rpartition('.')[2]}` |" in text
    assert "### `[budget]`" in text
    assert '| `on_exhausted` | "pause" \\| "block" | `"pause"` |' in text
    assert '| `usd_per_day` | number ≥ 0 or "off" |' in text
