"""``fleet policy check`` / ``fleet policy show`` through click's runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from fleet.cli.policy import policy
from tests.policy.conftest import write_fleet


def run(fleet_dir: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(policy, list(args), obj={"fleet_dir": fleet_dir})
    return result.exit_code, result.stdout, result.stderr


def test_check_ok(fleet_dir: Path) -> None:
    assert run(fleet_dir, "check") == (0, "ok: 2 agents, 3 policies\n", "")


def test_check_errors(fleet_dir: Path) -> None:
    (fleet_dir / "policies/ops.toml").write_text("[budget]\nusd_per_dya = 1\n")
    (fleet_dir / "policies/drafting.toml").write_text("[llm]\nmax_tokens = 0\n")
    code, out, err = run(fleet_dir, "check")
    assert code == 1
    assert out.splitlines() == [
        "policies/drafting.toml:2:14: llm.max_tokens: must be > 0, got 0",
        "policies/ops.toml:2:1: unknown key 'usd_per_dya' in [budget]; did you mean 'usd_per_day'?",
    ]
    assert err == "2 errors\n"


def test_check_without_fleet_toml(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, "check")
    assert code == 1 and out.startswith("fleet.toml:1:1: missing:")


def test_show_json(fleet_dir: Path) -> None:
    code, out, _ = run(fleet_dir, "show", "drafter#2", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"agent", "policy", "origins"}
    assert data["agent"] == "drafter#2"
    assert data["policy"]["budget"]["usd_per_day"] == 4.0
    assert data["origins"]["budget.usd_per_day"] == "fleet.toml"
    assert data["origins"]["llm.max_tokens"] == "policies/drafting.toml"
    assert data["origins"]["alerts.action"] == "built-in"


def test_show_table(fleet_dir: Path) -> None:
    code, out, _ = run(fleet_dir, "show", "watch")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "watch (policy: ops)"
    row = next(line for line in lines if "budget.usd_per_day" in line)
    assert row.split() == ["budget.usd_per_day", "2.0", "policies/ops.toml"]
    row = next(line for line in lines if "budget.on_exhausted" in line)
    assert row.split() == ["budget.on_exhausted", "pause", "built-in"]
    assert next(line for line in lines if "llm.temperature" in line).split()[1] == "off"


def test_show_policy_name_and_unknown(fleet_dir: Path) -> None:
    assert run(fleet_dir, "show", "ops")[1].splitlines()[0] == "policy ops"
    code, _, err = run(fleet_dir, "show", "wacth")
    assert code == 1 and "did you mean 'watch'?" in err


def test_fleet_policy_never_imports_textual() -> None:
    code = (
        "import sys, fleet.policy, fleet.policy.reference, fleet.cli.policy; "
        "assert 'textual' not in sys.modules; assert 'litellm' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_fleet_dir_from_the_main_cli_context_object(fleet_dir: Path) -> None:
    class Ctx:  # the main CLI passes an object with a ``fleet_dir`` attribute
        def __init__(self, path: Path) -> None:
            self.fleet_dir = path

    result = CliRunner().invoke(policy, ["check"], obj=Ctx(fleet_dir))
    assert (result.exit_code, result.stdout) == (0, "ok: 2 agents, 3 policies\n")


def test_check_finds_missing_modules_functions_and_programs_without_running_them(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fleet.cli import main

    d = tmp_path / "f"
    (d / "agents").mkdir(parents=True)
    (d / "agents" / "__init__.py").write_text("raise SystemExit('the package was imported')\n")
    (d / "agents" / "spin.py").write_text("raise SystemExit('the module was imported')\nasync def run(ctx): ...\n")
    (d / "bin").mkdir()
    (d / "bin" / "tool").write_text("#!/bin/sh\n")
    (d / "bin" / "tool").chmod(0o755)
    (d / "fleet.toml").write_text(
        '[[agent]]\nname = "ok"\nrun = "agents.spin:run"\n'
        '[[agent]]\nname = "nomod"\nrun = "agents.nosuchmodule:run"\n'
        '[[agent]]\nname = "nofn"\nrun = "agents.spin:runn"\n'
        '[[agent]]\nname = "noprog"\ncommand = ["no-such-program-here", "x"]\n'
        '[[agent]]\nname = "local"\ncommand = ["./bin/tool"]\n'
        '[[agent]]\nname = "var"\ncommand = ["${TOOLS}/tool"]\nenv = { TOOLS = "bin" }\n'
        '[[agent]]\nname = "stdlib"\nrun = "json:dumps"\n'
        '[[agent]]\nname = "path"\ncommand = ["sh", "-c", "true"]\n'
    )
    r = CliRunner().invoke(main, ["-C", str(d), "policy", "check"])
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("fleet.toml:")]
    assert lines == [
        "fleet.toml:6:7: agent 'nomod': no module named 'agents.nosuchmodule' (in package 'agents')",
        "fleet.toml:9:7: agent 'nofn': agents.spin (agents/spin.py) has no function 'runn'; did you mean 'run'?",
        "fleet.toml:12:11: agent 'noprog': program 'no-such-program-here' not found on PATH",
    ], r.output
    (d / "fleet.toml").write_text('[[agent]]\nname = "ok"\nrun = "agents.spin:run"\n')
    r = CliRunner().invoke(main, ["-C", str(d), "policy", "check"])
    assert r.exit_code == 0 and r.output.startswith("ok: 1 agent"), r.output


def test_policy_set_writes_an_override_without_a_fleet(tmp_path: Path) -> None:
    from fleet.cli import main

    d = write_fleet(tmp_path / "f")
    r = CliRunner().invoke(main, ["-C", str(d), "policy", "set", "watch", "budget.usd_per_day", "0.5"])
    assert r.exit_code == 0 and "watch: budget.usd_per_day = 0.5" in r.output, r.output
    assert "usd_per_day = 0.5" in (d / "policies" / "overrides.toml").read_text()
    r = CliRunner().invoke(main, ["-C", str(d), "policy", "set", "watch", "budget.usd_per_dya", "1"])
    assert r.exit_code == 1 and "usd_per_dya" in r.output
