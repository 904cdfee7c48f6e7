"""The CLI and the console read status rows by the names ``fleet.wire`` gives them.

Adding a column used to touch five files with nothing checking that the names
agreed. The readers still index JSON dicts, so here the keys each one reads
(``row["k"]``, ``row.get("k")``) are collected from its source and checked
against the record: a typo, or a field renamed on one side only, fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fleet import wire

ROOT = Path(__file__).resolve().parents[2]

#: Keys the console adds to a row it keeps (stamped on receipt, never sent by the fleet).
CONSOLE_LOCAL = {"uptime_at"}


def keys_read(path: Path, var: str, function: str | None = None) -> set[str]:
    """String keys read from the variable ``var`` (in ``function`` only, if given)."""
    tree = ast.parse(path.read_text())
    scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
              and (function is None or n.name == function)]
    keys: set[str] = set()
    for scope in scopes:
        for node in ast.walk(scope):
            if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == var
                    and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
                keys.add(node.slice.value)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == var
                    and node.args and isinstance(node.args[0], ast.Constant)):
                keys.add(node.args[0].value)
    return keys


@pytest.mark.parametrize(
    ("path", "var", "function", "record"),
    [
        ("fleet/cli/__init__.py", "st", "status", wire.Status),
        ("fleet/cli/__init__.py", "a", "status", wire.AgentRow),
        ("console/widgets/agent_table.py", "agent", None, wire.AgentRow),
        ("console/format.py", "agent", None, wire.AgentRow),
        ("console/app.py", "status", "apply_status", wire.Status),
        ("fleet/cli/tasks.py", "t", "tasks", wire.Task),
        ("fleet/cli/tasks.py", "stats", "tasks", wire.TaskStats),
        ("fleet/cli/__init__.py", "a", "approvals", wire.Approval),
        ("fleet/cli/daemon.py", "d", None, wire.Daemon),
        ("fleet/cli/daemon.py", "c", "describe_clients", wire.Client),
        ("fleet/cli/daemon.py", "st", None, wire.Status),
        ("fleet/cli/observe.py", "a", "alerts", wire.Alert),
        ("fleet/cli/observe.py", "u", "usage", wire.Usage),
        ("fleet/cli/observe.py", "e", "events", wire.Event),
        ("fleet/cli/asking.py", "res", "send", wire.Sent),
        ("fleet/cli/asking.py", "q", "questions", wire.Question),
        ("fleet/cli/asking.py", "res", "answer", wire.Answered),
    ],
)
def test_readers_use_the_record_field_names(path: str, var: str, function: str | None, record: type) -> None:
    read = keys_read(ROOT / path, var, function)
    assert read, f"found no keys read from {var!r} in {path}: the check is looking in the wrong place"
    unknown = read - set(record.__annotations__) - CONSOLE_LOCAL
    assert not unknown, f"{path} reads {sorted(unknown)} from a {record.__name__}, which has no such field"
