"""Import hygiene: the domain never loads Textual; agents load only the stdlib and fleet.agent."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import importlib, json, pkgutil, sys
import fleet
for m in pkgutil.walk_packages(fleet.__path__, "fleet."):
    if m.name.endswith("__main__"):
        continue
    importlib.import_module(m.name)
print(json.dumps(sorted(sys.modules)))
"""


def _modules(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_fleet_never_imports_textual_or_litellm_at_import_time():
    mods = _modules(PROBE)
    assert not any(m == "textual" or m.startswith("textual.") for m in mods)
    assert "litellm" not in mods, "litellm must be imported lazily, inside the gateway"


def test_agent_processes_import_only_the_stdlib_and_fleet_agent():
    mods = _modules("import json, sys; import fleet.agent.runner, fleet.agent; print(json.dumps(sorted(sys.modules)))")
    allowed = set(sys.stdlib_module_names) | {"fleet", "__main__", "_distutils_hack"}  # setuptools .pth shim
    third_party = {m.split(".")[0] for m in mods} - allowed
    assert not third_party, f"agent processes import {sorted(third_party)}"
    fleet_mods = {m for m in mods if m.startswith("fleet.")}
    assert fleet_mods <= {"fleet.agent", "fleet.agent.channel", "fleet.agent.context", "fleet.agent.runner",
                          "fleet.errors", "fleet.jsonlines"}, fleet_mods
