"""A request nested 100 000 levels deep gets an error reply, and the connection goes on."""

from __future__ import annotations

import asyncio
import json

import pytest

from fleet.jsonlines import MAX_DEPTH, loads


def test_loads_bounds_nesting_and_ignores_brackets_in_strings():
    with pytest.raises(ValueError, match="nested deeper"):
        loads(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ValueError, match="nested deeper"):
        loads(b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1))
    deep_ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert loads(deep_ok) is not None
    assert loads(b'{"text": "' + b"[{" * 1000 + b'\\"]"}') == {"text": "[{" * 1000 + '"]'}


async def test_deep_request_gets_an_error_reply(fleet_factory):
    f = await fleet_factory('[[agent]]\nname = "s"\ncommand = ["sleep", "60"]\n')
    reader, writer = await asyncio.open_unix_connection(str(f.runtime.server.path), limit=1 << 20)
    try:
        writer.write(b"[" * 100_000 + b"\n")
        reply = json.loads(await asyncio.wait_for(reader.readline(), 10))
        assert reply["ok"] is False
        assert reply["error"]["code"] == "protocol_error"
        assert "nested deeper" in reply["error"]["message"]
        # The same connection still answers.
        writer.write(json.dumps({"id": 7, "op": "ping"}).encode() + b"\n")
        reply = json.loads(await asyncio.wait_for(reader.readline(), 10))
        assert reply["id"] == 7 and reply["ok"] is True
    finally:
        writer.close()
