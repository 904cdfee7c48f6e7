"""Agents written only against real clients, run as ``command`` agents by a real fleet.

No agent here imports ``fleet``: each is a plain script using the official
``openai`` client or the OpenAI Agents SDK, pointed at the gateway by the
variables the fleet injects. One runs through litellm and the offline
``fleet/demo`` model (the real path end to end); a held tool call is released
with ``fleet approve`` and another refused with ``fleet deny``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx
import pytest

from fleet.gateway import Gateway

from .conftest import ToolingFake

OPENAI_AGENT = """
    import json, os, time
    import openai
    from openai import OpenAI

    client = OpenAI(max_retries=0)  # OPENAI_BASE_URL and OPENAI_API_KEY come from the fleet
    print("ENV", os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_AGENTS_DISABLE_TRACING"],
          os.environ["ANTHROPIC_BASE_URL"], os.environ["OPENAI_API_KEY"] == os.environ["ANTHROPIC_API_KEY"],
          flush=True)
    print("MODELS", json.dumps([m.id for m in client.models.list()]), flush=True)
    r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Any anomaly?"}])
    print("REPLY", r.model, r.usage.total_tokens, r.choices[0].message.content[:30], flush=True)
    tools = [{"type": "function", "function": {"name": "publish_report", "parameters": {
        "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}}}]
    for turn in ("first", "second"):
        r = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"publish the {turn} report"}], tools=tools)
        m = r.choices[0].message
        print("TOOL", turn, json.dumps([c.function.name for c in m.tool_calls or []]), r.choices[0].finish_reason,
              (m.content or "").replace(chr(10), " "), flush=True)
    try:
        OpenAI(api_key="fleet-guessed", max_retries=0).models.list()
    except openai.AuthenticationError as exc:
        print("WRONGKEY", exc.status_code, flush=True)
    time.sleep(600)
"""


def _logs(f: Any) -> str:
    return "".join(e["data"]["text"] for e in f.events.events if e["event"] == "logs")


async def _cli(f: Any, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleet.cli",
        "-C",
        str(f.dir),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def _next_approval(f: Any, seen: set[int]) -> dict[str, Any]:
    ev = await f.events.wait_for(
        lambda e: e["event"] == "approval" and e["data"].get("state") == "pending" and e["data"]["id"] not in seen,
        timeout=60,
    )
    seen.add(ev["data"]["id"])
    return ev["data"]


async def test_openai_client_agent_through_litellm_and_fleet_demo(fleet_factory, litellm_loaded) -> None:
    f = await fleet_factory(
        f"""
        [[agent]]
        name = "writer"
        command = ["{sys.executable}", "agent.py"]
        [agent.llm]
        models = ["fleet/demo"]
        aliases = {{ "*" = "fleet/demo" }}
        [agent.tools]
        approve = ["publish_*"]
        """,
        {"agent.py": OPENAI_AGENT},
        gateway=Gateway(environ={}),
    )
    seen: set[int] = set()
    first = await _next_approval(f, seen)
    assert first["agent"] == "writer" and first["action"] == "publish_report"
    assert first["details"]["arguments"] == {"title": "demo title"}
    listed = await _cli(f, "approvals")
    assert f"#{first['id']}" in listed and "publish_report" in listed
    await _cli(f, "approve", str(first["id"]))
    second = await _next_approval(f, seen)
    await _cli(f, "deny", str(second["id"]), "--reason", "not on a Friday")
    await f.events.wait_for(lambda e: e["event"] == "logs" and "WRONGKEY" in e["data"]["text"], timeout=60)
    text = _logs(f)
    st = await f.call("status")
    assert st["gateway_url"].startswith("http://127.0.0.1:")
    assert f"ENV {st['gateway_url']}/v1 1 {st['gateway_url']} True" in text
    assert 'MODELS ["fleet/demo"]' in text
    assert "REPLY fleet/demo" in text
    assert 'TOOL first ["publish_report"] tool_calls' in text
    assert "TOOL second [] stop" in text and "not on a Friday" in text
    assert "WRONGKEY 401" in text
    a = next(a for a in st["agents"] if a["name"] == "writer")
    assert a["tokens"] > 0 and a["cost_usd"] > 0
    calls = (await f.call("usage", agent="writer"))["calls"]
    assert {c["endpoint"] for c in calls} == {"openai.chat"} and {c["outcome"] for c in calls} == {"ok"}
    assert all(c["model"] == "fleet/demo" for c in calls)
    report = json.loads(await _cli(f, "report", "--format", "json"))
    assert any(m["model"] == "fleet/demo" and m["calls"] == len(calls) for m in report["spend"]["by_model"])
    assert [e["endpoint"] for e in report["spend"]["by_endpoint"]] == ["openai.chat"]


AGENTS_SDK_AGENT = """
    import sys
    from agents import Agent, Runner, function_tool, set_default_openai_api

    set_default_openai_api(sys.argv[1])  # "responses" is the SDK's default

    @function_tool
    def lookup_sales(region: str) -> str:
        \"\"\"Sales figures of a region.\"\"\"
        print("TOOL RAN", region, flush=True)
        return f"sales in {region}: 42 units"

    agent = Agent(name="analyst", instructions="Answer with figures.", tools=[lookup_sales], model="gpt-4o-mini")
    result = Runner.run_sync(agent, "How are sales in EMEA?")
    print("FINAL", result.final_output, flush=True)
"""


@pytest.mark.parametrize(("api", "endpoint"), [("responses", "openai.responses"), ("chat_completions", "openai.chat")])
async def test_openai_agents_sdk_runs_unchanged_as_a_command_agent(fleet_factory, api: str, endpoint: str) -> None:
    provider = ToolingFake(["EMEA sold 42 units."])
    f = await fleet_factory(
        f"""
        [[agent]]
        name = "analyst"
        command = ["{sys.executable}", "agent.py", "{api}"]
        [agent.llm]
        models = ["fake/*"]
        model = "fake/model"
        aliases = {{ "gpt-*" = "fake/model" }}
        [agent.restart]
        mode = "never"
        """,
        {"agent.py": AGENTS_SDK_AGENT},
        gateway=Gateway(provider, environ={}),
    )
    await f.events.state("analyst", "exited", timeout=60)
    text = _logs(f)
    assert "TOOL RAN demo region" in text and "FINAL EMEA sold 42 units." in text
    assert [c[0] for c in provider.calls] == ["fake/model", "fake/model"]
    assert provider.calls[1][1][-1]["role"] == "tool"  # the framework sent the tool's result back
    calls = (await f.call("usage", agent="analyst"))["calls"]
    assert [c["endpoint"] for c in calls] == [endpoint, endpoint]


TOKEN_AGENT = """
    import os
    print("TOKEN", os.environ.get("OPENAI_API_KEY"), os.environ.get("FLEET_GATEWAY_TOKEN"),
          os.environ.get("OPENAI_BASE_URL"), flush=True)
"""


async def test_tokens_die_with_their_run_and_inject_env_false_opts_out(fleet_factory) -> None:
    f = await fleet_factory(
        f"""
        [[agent]]
        name = "plain"
        command = ["{sys.executable}", "agent.py"]
        [agent.restart]
        mode = "never"

        [[agent]]
        name = "optout"
        command = ["{sys.executable}", "agent.py"]
        [agent.llm]
        inject_env = false
        [agent.restart]
        mode = "never"
        """,
        {"agent.py": TOKEN_AGENT},
    )
    await f.events.state("plain", "exited")
    await f.events.state("optout", "exited")
    lines = {
        e["data"]["agent"]: e["data"]["text"]
        for e in f.events.events
        if e["event"] == "logs" and "TOKEN" in e["data"]["text"]
    }
    _, key, token, base = lines["plain"].split()
    assert key == token and key.startswith("fleet-") and len(key) > 40 and base.endswith("/v1")
    _, key2, token2, base2 = lines["optout"].split()
    assert key2 == "None" and base2 == "None" and token2.startswith("fleet-")
    url = (await f.call("status"))["gateway_url"]
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401  # the run is over: so is its token
    assert len(f.sup.services.http_gateway.tokens) == 0


async def test_status_stays_fast_with_200_open_gateway_connections(fleet_factory) -> None:
    f = await fleet_factory(
        """
        [[agent]]
        name = "idle"
        command = ["sleep", "600"]
        """
    )
    http = f.sup.services.http_gateway
    conns = [await asyncio.open_connection("127.0.0.1", http.port) for _ in range(200)]
    try:
        for _, writer in conns[:100]:  # half of them mid-request, the rest silent
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
            await writer.drain()
        started = time.perf_counter()
        st = await f.call("status")
        elapsed = time.perf_counter() - started
        assert st["agents"][0]["name"] == "idle"
        assert elapsed < 0.5, f"status took {elapsed:.3f}s with 200 open connections"
        out = await _cli(f, "status")
        assert f"gateway idle {st['gateway_url']}/v1" in out
    finally:
        for _, writer in conns:
            writer.close()


async def test_a_fixed_gateway_port_is_used_and_a_taken_one_is_a_clear_error(tmp_path) -> None:
    import socket

    from fleet.errors import FleetError
    from fleet.runtime import FleetRuntime
    from tests.conftest import write_fleet

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = write_fleet(tmp_path / "f", f'[fleet]\ngateway_port = {port}\n[[agent]]\nname = "a"\ncommand = ["true"]\n')
    rt = FleetRuntime(d, gateway=Gateway(ToolingFake(), environ={}), watch=False)
    await rt.start(spawn=False)
    try:
        assert rt.sup.status()["gateway_url"] == f"http://127.0.0.1:{port}"
        d2 = write_fleet(tmp_path / "g", f'[fleet]\ngateway_port = {port}\n[[agent]]\nname = "a"\ncommand = ["true"]\n')
        other = FleetRuntime(d2, gateway=Gateway(ToolingFake(), environ={}), watch=False)
        try:
            await other.start(spawn=False)
            raise AssertionError("a second fleet got the same port")
        except FleetError as exc:
            assert f"port {port}" in str(exc) and "gateway_port" in str(exc)
    finally:
        await rt.stop()
