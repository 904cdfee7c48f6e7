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


# --- issue 22: keys hidden by formatting, cut at the line limit, inside agent JSON ---------------

KEY22 = "sk-hidden-0123456789abcdef"


@pytest.mark.parametrize(
    "line",
    [
        f"{KEY22[:8]}\x1b[0m{KEY22[8:]}",  # SGR between its letters
        f"{KEY22[:5]}\x1b]0;title\x07{KEY22[5:]}",  # OSC
        f"{KEY22[:5]}\x1b[2K{KEY22[5:12]}\x1b7{KEY22[12:]}",  # CSI and ESC 7
        f"{KEY22[:4]}\u200b{KEY22[4:]}",  # zero-width space
        f"{KEY22[:4]}\u202e{KEY22[4:]}",  # bidi override
    ],
)
def test_a_key_split_by_invisible_pieces_is_redacted(line: str) -> None:
    from fleet.ansi import sanitize
    from fleet.gateway.keys import Redactor

    r = Redactor([KEY22])
    out = r.scrub(f"before\n{line} after\nclean \x1b[31mred\x1b[0m\n".encode())
    text = bytes(out).decode()
    assert KEY22 not in sanitize(text, keep_sgr=False)
    assert "[REDACTED] after" in text
    assert "clean \x1b[31mred\x1b[0m" in text  # other lines keep their colours
    assert KEY22 not in sanitize(r.text(line), keep_sgr=False)


def test_the_head_of_a_key_left_by_the_line_cut_is_redacted() -> None:
    from fleet.gateway.keys import Redactor
    from fleet.supervisor.logpipe import CUT_MARKER, MAX_LINE, LogPipe

    r = Redactor([KEY22])
    out: list[bytes] = []
    pipe = LogPipe("stdout", lambda stream, count, data, ts: out.append(bytes(r.scrub(data))))
    pipe.feed(b"x" * (MAX_LINE - 10) + KEY22.encode() + b" rest\nnext\n")
    data = b"".join(out)
    assert CUT_MARKER in data and b"next\n" in data
    assert KEY22[:10].encode() not in data and b"[REDACTED]" + CUT_MARKER in data
    # A line that merely ends like a key's first bytes (shorter than MIN_CUT_PREFIX) is left alone.
    assert r.scrub(b"abc sk-" + CUT_MARKER + b"\n") == b"abc sk-" + CUT_MARKER + b"\n"


def test_agent_json_is_redacted_keys_and_values_however_deep() -> None:
    from fleet.gateway.keys import Redactor

    r = Redactor([KEY22])
    deep: list = []
    node = deep
    for _ in range(5000):  # deeper than the recursion limit
        node.append([])
        node = node[0]
    node.append(KEY22)
    out = r.value({"payload": deep, KEY22: {"x": [1, 2.5, None, True, f"k={KEY22}"]}})
    assert "[REDACTED]" in out and out["[REDACTED]"]["x"] == [1, 2.5, None, True, "k=[REDACTED]"]
    node = out["payload"]
    for _ in range(5000):
        node = node[0]
    assert node == ["[REDACTED]"]
    assert Redactor([]).value(deep) is deep  # no keys: the identity, no copy
