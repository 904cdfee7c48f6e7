"""Importing the gateway must not import litellm (a ~4 s, ~200 MB import)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_fleet_gateway_does_not_import_litellm() -> None:
    code = (
        "import sys\n"
        "import fleet.gateway, fleet.gateway.gateway, fleet.gateway.provider, fleet.gateway.approvals\n"
        "import fleet.gateway.demo_provider, fleet.gateway.loader, fleet.gateway.keys, fleet.gateway.tools\n"
        "from fleet.gateway import Gateway, FakeProvider\n"
        "Gateway(provider=FakeProvider())\n"
        "bad = [m for m in ('litellm', 'openai', 'textual', 'tiktoken') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
