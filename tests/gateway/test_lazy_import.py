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


def test_a_process_exits_without_waiting_for_the_provider_to_load() -> None:
    # The litellm import takes 5-15 s on a loaded machine. A supervisor stopped (SIGTERM)
    # or dying of a bug meanwhile must still exit at once: its watchdog only reaps the
    # agents once it has exited. Here the load would take a minute.
    code = (
        "import asyncio\n"
        "from fleet.gateway import Gateway, FakeProvider\n"
        "async def main():\n"
        "    gw = Gateway(provider=FakeProvider(load_delay_s=60))\n"
        "    gw.start()\n"
        "    await asyncio.sleep(0.2)\n"
        "    assert gw.state == 'loading'\n"
        "    raise SystemExit(3)\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 3, out.stderr
