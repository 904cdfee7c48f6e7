"""Fixtures: a small fleet directory written fresh for each test."""

from __future__ import annotations

from pathlib import Path

import pytest

FLEET_TOML = """\
[fleet]
name = "t"

[[agent]]
name = "watch"
run = "pkg.watch:run"
policy = "ops"

[[agent]]
name = "drafter"
run = "pkg.draft:run"
policy = "drafting"
replicas = 2

[agent.budget]
usd_per_day = 4.0
"""

DEFAULT_TOML = """\
[llm]
models = ["fleet/demo", "gpt-*"]

[budget]
usd_per_day = 1.0
requests_per_minute = 60

[tools]
deny = ["shell"]
"""

OPS_TOML = """\
[budget]
usd_per_day = 2.0
tokens_per_minute = 20000

[restart]
mode = "always"
"""

DRAFTING_TOML = """\
[llm]
max_tokens = 2048

[tools]
approve = ["publish_*"]
"""


def write_fleet(root: Path, files: dict[str, str] | None = None) -> Path:
    """Write the standard test fleet, with ``files`` replacing or adding files (None value: omit)."""
    content: dict[str, str | None] = {
        "fleet.toml": FLEET_TOML,
        "policies/default.toml": DEFAULT_TOML,
        "policies/ops.toml": OPS_TOML,
        "policies/drafting.toml": DRAFTING_TOML,
        # The agents fleet.toml names, so that `fleet policy check` finds them.
        "pkg/__init__.py": "",
        "pkg/watch.py": "async def run(ctx): ...\n",
        "pkg/draft.py": "async def run(ctx): ...\n",
    }
    content.update(files or {})
    for rel, text in content.items():
        if text is None:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    return write_fleet(tmp_path / "myfleet")
