"""The registry of control operations is the one place that names them: everything else agrees.

What is checked against it: the server (an op nobody declared, or a bad
argument, is refused before anything runs), the CLI (every op has a command or
says why not; every command names a declared op), the README's table (generated
from it) and the console's fake client (every op the console calls exists in
the fake with the same arguments).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import click
import pytest

from fleet.cli import AGENT_COMMANDS, main
from fleet.control.registry import END, START, operations, reference
from fleet.errors import ProtocolError
from tests.console.fake_client import FakeFleetClient

ROOT = Path(__file__).resolve().parents[2]
OPS = operations()


def _called_ops(folder: Path) -> dict[str, list[str]]:
    """Literal op names passed to ``something.call("op", ...)`` in a folder's modules -> where."""
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "call"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.setdefault(node.args[0].value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def _commands(group: click.Group, prefix: str = "fleet") -> set[str]:
    out = set()
    for name, cmd in group.commands.items():
        out.add(f"{prefix} {name}")
        if isinstance(cmd, click.Group):
            out |= _commands(cmd, f"{prefix} {name}")
    return out


def test_every_op_has_a_cli_command_or_says_why_not():
    commands = _commands(main)
    for op in OPS.values():
        if op.cli is None:
            assert op.why_no_cli, op.name
        else:
            assert op.cli in commands, f"{op.name}: no command {op.cli!r} (commands: {sorted(commands)})"


def test_the_cli_names_only_declared_ops():
    called = _called_ops(ROOT / "fleet" / "cli")
    unknown = {op: where for op, where in called.items() if op not in OPS}
    assert not unknown, f"the CLI calls ops nobody declared: {unknown}"
    assert set(AGENT_COMMANDS) <= set(OPS)
    for name in AGENT_COMMANDS:
        assert OPS[name].cli == f"fleet {name}"
    # and what it calls is declared as exposed by some command
    assert {op for op in called if OPS[op].cli is None} == set(), "an op the CLI calls declares no command"


def test_the_console_names_only_declared_ops():
    called = _called_ops(ROOT / "console")
    assert called, "the console calls no op? the scan is broken"
    unknown = {op: where for op, where in called.items() if op not in OPS}
    assert not unknown, f"the console calls ops nobody declared: {unknown}"


def test_the_fake_client_has_every_op_the_console_calls_with_the_same_arguments():
    for name in sorted(_called_ops(ROOT / "console")):
        fake = getattr(FakeFleetClient, f"_op_{name}", None)
        assert fake is not None, f"the console calls {name!r} but FakeFleetClient has no _op_{name}"
        declared = {p.name: p.required for p in OPS[name].params}
        faked = {
            p.name: p.default is inspect.Parameter.empty
            for p in list(inspect.signature(fake).parameters.values())[1:]
        }
        assert faked == declared, f"{name}: the fake takes {faked}, the registry declares {declared}"


def test_readme_control_api_table_is_generated_from_the_registry():
    text = (ROOT / "README.md").read_text()
    assert START in text and END in text
    section = text[text.index(START) : text.index(END) + len(END)]
    assert section == reference(), "run: python -m fleet.control.registry --update README.md"
    for op in OPS:
        assert f"| `{op}` |" in section


def test_every_op_is_declared_with_a_doc_a_result_record_and_consistent_flags():
    assert {"status", "ping"} <= {op.name for op in OPS.values() if op.read_only}
    for op in OPS.values():
        assert op.doc and op.doc[0].isupper(), op.name
        assert getattr(op.result, "__module__", "") == "fleet.wire", f"{op.name} returns {op.result!r}"
        assert not (op.read_only and op.audited)
    audited = {op.name for op in OPS.values() if op.audited}
    assert audited == {"pause", "resume", "restart", "stop", "start", "approve", "deny", "policy_write",
                       "set_override", "task_add", "shutdown", "send", "answer"}


def test_arguments_are_checked_against_the_declared_types():
    pause = OPS["pause"]
    assert pause.validate({"names": ["a"]}) == {"names": ["a"], "all": False}
    assert OPS["approve"].validate({"id": "7"})["id"] == 7  # JSON clients may send numbers as text
    with pytest.raises(ProtocolError, match="bad arguments for 'pause': bogus"):
        pause.validate({"bogus": 1})
    with pytest.raises(ProtocolError, match="bad arguments for 'approve': id"):
        OPS["approve"].validate({})
    with pytest.raises(ProtocolError, match="bad arguments for 'logs': n"):
        OPS["logs"].validate({"n": "many"})


def test_declaring_an_op_twice_or_without_a_doc_is_refused():
    from fleet.control.registry import operation

    with pytest.raises(ValueError, match="declared twice"):
        operation(cli="fleet status")(OPS["status"].handler)

    async def op_nodoc(sup: object) -> None:
        pass

    with pytest.raises(ValueError, match="docstring"):
        operation(cli=None, why_no_cli="test")(op_nodoc)
    with pytest.raises(ValueError, match="why_no_cli"):
        operation(cli=None)(op_nodoc)
