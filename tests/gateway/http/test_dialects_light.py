"""The dialects are imported by the supervisor before the gateway loads: they must stay light."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import asyncio, sys
from fleet.gateway.http import anthropic, responses

req = anthropic.DIALECT.parse({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
anthropic.DIALECT.render(req, {"choices": [{"message": {"content": "y"}, "finish_reason": "stop"}], "usage": {}})
anthropic.count_tokens({"model": "m", "messages": [{"role": "user", "content": "x"}]})
req = responses.DIALECT.parse({"model": "m", "input": "x"})
responses.DIALECT.render(req, {"choices": [{"message": {"content": "y"}, "finish_reason": "stop"}], "usage": {}})

async def drain():
    async def none():
        return
        yield
    async for _ in responses.DIALECT.render_stream(req, none()):
        pass

asyncio.run(drain())
print(",".join(m for m in ("litellm", "openai", "anthropic", "agents", "textual", "aiohttp") if m in sys.modules))
"""


def test_dialects_import_and_translate_without_heavy_modules() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
