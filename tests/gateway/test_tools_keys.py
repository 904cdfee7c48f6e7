"""Tool decisions (deny, then approve, then allow; unknown denied) and key hygiene."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.gateway import Gateway, Redactor, check_tool, parse_env_file, strip_provider_keys
from fleet.gateway.keys import is_provider_key_name, is_secret_name

from .helpers import make_policy


def test_tool_rule_order() -> None:
    policy = make_policy(
        tools={"allow": ["*"], "deny": ["shell", "rm_*"], "approve": ["send_email", "publish_*"]}
    )
    assert check_tool(policy, "shell") == "deny"
    assert check_tool(policy, "rm_rf") == "deny"
    assert check_tool(policy, "send_email") == "approve"
    assert check_tool(policy, "publish_post") == "approve"
    assert check_tool(policy, "search") == "allow"


def test_unknown_tool_is_denied_and_deny_beats_everything() -> None:
    policy = make_policy(tools={"allow": ["search"], "deny": ["publish_*"], "approve": ["publish_*"]})
    assert check_tool(policy, "whatever") == "deny"
    assert check_tool(policy, "publish_now") == "deny"


def test_policy_tool_decision_method_wins() -> None:
    policy = SimpleNamespace(tool_decision=lambda name: "approve", tools=None)
    assert check_tool(policy, "anything") == "approve"


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=20))
def test_empty_rules_deny_everything(name: str) -> None:
    assert check_tool(make_policy(tools={}), name) == "deny"


def test_env_file_parsing(tmp_path: Path) -> None:
    f = tmp_path / ".env"
    f.write_text(
        "# comment\n"
        "OPENAI_API_KEY=sk-plain # trailing comment\n"
        "export ANTHROPIC_API_KEY='sk-ant-quoted # not a comment'\n"
        'AZURE_API_BASE="https://x.example"\n'
        "not a line\n"
        "EMPTY=\n"
    )
    env = parse_env_file(f)
    assert env["OPENAI_API_KEY"] == "sk-plain"
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-quoted # not a comment"
    assert env["AZURE_API_BASE"] == "https://x.example"
    assert env["EMPTY"] == ""
    assert "not a line" not in env


def test_strip_provider_keys_for_agent_environments() -> None:
    env = {
        "PATH": "/bin",
        "OPENAI_API_KEY": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "HOME": "/root",
        "HF_TOKEN": "t",
    }
    assert strip_provider_keys(env) == {"PATH": "/bin", "HOME": "/root"}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("OPENAI_API_KEY", True),
        ("ANTHROPIC_API_KEY", True),
        ("HF_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("AWS_ACCESS_KEY_ID", True),
        ("AWS_SESSION_TOKEN", True),
        ("AZURE_OPENAI_AD_TOKEN", True),
        ("MY_SERVICE_SECRET", True),
        ("AWS_CA_BUNDLE", False),
        ("AWS_REGION", False),
        ("AWS_PROFILE", False),
        ("OPENAI_API_BASE", False),
        ("AZURE_API_VERSION", False),
        ("OPENAI_ORGANIZATION", False),
        ("PATH", False),
    ],
)
def test_only_credentials_are_redacted(name: str, secret: bool) -> None:
    """Provider variables are all kept from agents, but only credentials are cut out of logs."""
    assert is_secret_name(name) is secret
    assert strip_provider_keys({name: "v"}) == ({} if is_provider_key_name(name) else {name: "v"})


def test_gateway_redacts_keys_not_paths() -> None:
    gw = Gateway(environ={"OPENAI_API_KEY": "sk-live-0123456789", "AWS_CA_BUNDLE": "/etc/ssl/certs/ca.pem"})
    line = "loaded /etc/ssl/certs/ca.pem, key sk-live-0123456789\n"
    assert gw.redactor.scrub(line.encode()) == b"loaded /etc/ssl/certs/ca.pem, key [REDACTED]\n"
    # The log path hands over views of pipe reads: searched in place, copied only to cut a key out.
    assert gw.redactor.scrub(memoryview(line.encode())) == b"loaded /etc/ssl/certs/ca.pem, key [REDACTED]\n"
    clean = memoryview(b"nothing secret here\n")
    assert gw.redactor.scrub(clean) is clean


def test_redactor() -> None:
    r = Redactor(["literal-key-0001", "short"])
    out = r(
        "key literal-key-0001 and sk-abcdef123456 and Bearer abcdefghijkl, short stays",
        extra=["extra-secret-1"],
    )
    assert "literal-key" not in out and "sk-abc" not in out and "abcdefghijkl" not in out
    assert "short stays" in out
    assert r("extra-secret-1 here", extra=["extra-secret-1"]) == "[REDACTED] here"


def test_missing_key_names_the_variable_a_model_needs() -> None:
    from fleet.gateway.keys import missing_key

    assert missing_key("fleet/demo", {}) is None  # offline: no key
    assert missing_key("ollama/llama3", {}) is None  # unknown here: not refused
    assert "OPENAI_API_KEY" in (missing_key("gpt-4o-mini", {}) or "")
    assert "ANTHROPIC_API_KEY" in (missing_key("anthropic/claude-3-5-haiku", {}) or "")
    assert missing_key("claude-3-5-haiku", {"ANTHROPIC_API_KEY": "sk-x"}) is None
    assert missing_key("gemini/gemini-1.5-flash", {"GOOGLE_API_KEY": "k"}) is None
