"""The gateway's HTTP stack (aiohttp) starts with its first client, not with the fleet.

``GatewayServer.start`` binds the port itself and watches the socket; the first
connection waiting in the backlog imports aiohttp in a thread and hands the
socket to aiohttp's server. Here: the port is taken at once; clients that
connect while aiohttp loads are all served, by one server started once; a
server closed before (or while) any client came frees its port and leaves no
task; and a real ``fleet up`` has no aiohttp in its memory until an agent's
``openai`` client makes its first call, which then succeeds.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import frozenlist
import multidict
import pytest
import yarl

import fleet.gateway.http.server as server_mod
from tests.conftest import write_fleet
from tests.fleet.test_cli_and_orphans import fleet_cmd, wait_until

from .conftest import make_served


class GatedLoad:
    """Replaces ``load_http``: counts its calls and holds each until ``release``."""

    def __init__(self) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.entered.set()
        if not self.gate.wait(30):
            raise TimeoutError("the test never released the load")

    def release(self) -> None:
        self.gate.set()


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedLoad]:
    load = GatedLoad()
    monkeypatch.setattr(server_mod, "load_http", load)
    try:
        yield load
    finally:
        load.release()  # never leave the loader thread blocked


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            assert exc.errno == errno.EADDRINUSE
            return False
        return True


def other_tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


async def test_clients_arriving_while_aiohttp_loads_are_all_served_by_one_server(gated: GatedLoad) -> None:
    served = await make_served()
    try:
        port = served.server.port
        assert port and not port_is_free(port)  # bound at start: the URL is final at once
        assert served.server.connections == 0 and gated.calls == 0
        request = f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {served.token}\r\n\r\n"
        conns = []
        for _ in range(6):  # accepted by the kernel into the backlog while nothing serves yet
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request.encode())
            await writer.drain()
            conns.append((reader, writer))
        await asyncio.to_thread(gated.entered.wait, 10)
        # The loop runs on while aiohttp loads (this test's own awaits prove it).
        await asyncio.sleep(0)
        assert gated.calls == 1
        gated.release()
        for reader, writer in conns:
            async with asyncio.timeout(10):
                status = await reader.readuntil(b"\r\n")
            assert status.startswith(b"HTTP/1.1 200"), status
            writer.close()
        assert gated.calls == 1  # one import and one server for all of them
        client = served.async_client()
        reply = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "hello from the fake model"
        await client.close()
        assert gated.calls == 1
    finally:
        await served.server.close()
    assert port_is_free(port)


async def test_closed_before_any_client_frees_its_port_and_leaves_no_task(gated: GatedLoad) -> None:
    served = await make_served()
    port = served.server.port
    assert not port_is_free(port)
    await served.server.close()
    assert gated.calls == 0 and served.server.connections == 0
    assert port_is_free(port)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    assert not other_tasks()
    await served.server.close()  # twice is harmless


async def test_closed_while_aiohttp_loads_refuses_the_waiting_client_and_leaves_no_task(gated: GatedLoad) -> None:
    served = await make_served()
    port = served.server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await asyncio.to_thread(gated.entered.wait, 10)
    async with asyncio.timeout(5):  # does not wait for the import to finish
        await served.server.close()
    assert not other_tasks()
    assert port_is_free(port)
    gated.release()
    async with asyncio.timeout(10):  # the waiting client is dropped, not left hanging
        try:
            assert await reader.read() == b""
        except ConnectionResetError:
            pass
    writer.close()
    assert served.server.connections == 0


async def test_a_taken_port_is_an_oserror_at_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as err:
            await make_served(port=port)
        assert err.value.errno == errno.EADDRINUSE
    assert not other_tasks()


# --- a real fleet ------------------------------------------------------------------------

AGENT = """
import os, sys
from openai import OpenAI

print("READY", os.environ["OPENAI_BASE_URL"], flush=True)
sys.stdin.readline()
print("MODELS", [m.id for m in OpenAI(max_retries=0).models.list()], flush=True)
sys.stdin.readline()
"""

#: Packages of the HTTP stack whose compiled modules show in a process's memory map.
HTTP_STACK = tuple(str(Path(m.__file__).parent) + "/" for m in (aiohttp, multidict, yarl, frozenlist))


def mapped_files(pid: int | str) -> set[str]:
    with open(f"/proc/{pid}/maps") as f:
        return {parts[5] for line in f if len(parts := line.split(maxsplit=5)) == 6}


def http_stack_in(pid: int | str) -> set[str]:
    return {p.strip() for p in mapped_files(pid) if p.startswith(HTTP_STACK)}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/maps")
def test_a_fleet_loads_aiohttp_only_when_an_agent_first_calls_its_gateway(tmp_path: Path) -> None:
    import aiohttp.web  # noqa: F401  (what the supervisor would have mapped, for comparison)

    if not http_stack_in("self"):
        pytest.skip("this aiohttp has no compiled modules to see in a memory map")
    d = write_fleet(
        tmp_path / "f",
        f'[[agent]]\nname = "caller"\ncommand = ["{sys.executable}", "agent.py"]\n'
        '[agent.llm]\nmodels = ["fleet/demo"]\n[agent.restart]\nmode = "never"\n',
        {"agent.py": AGENT},
    )

    def logs() -> str:
        return fleet_cmd(d, "logs", "caller").stdout

    try:
        assert fleet_cmd(d, "up", timeout=60).returncode == 0
        st = json.loads(fleet_cmd(d, "status", "--json").stdout)
        pid = st["daemon"]["pid"]
        wait_until(lambda: "READY" in logs(), 60, "the agent to start")
        assert f"READY {st['gateway_url']}/v1" in logs()  # the URL was given before any HTTP stack
        assert http_stack_in(pid) == set()
        assert fleet_cmd(d, "send", "caller", "go").returncode == 0
        wait_until(lambda: "MODELS" in logs(), 60, "the agent's first call")
        assert "MODELS ['fleet/demo']" in logs()
        assert http_stack_in(pid)  # the check above could fail: now it is there
    finally:
        fleet_cmd(d, "down", timeout=60)

