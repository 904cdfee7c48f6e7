"""The fleet's HTTP gateway next to litellm's own proxy, on the same mock.

Why: litellm ships an OpenAI-compatible proxy of its own; the fleet's gateway
should cost less per call and sustain more. Both run here as servers in their
own processes, in front of litellm's ``mock_response`` (no network), and are
measured the same way from outside:

* latency: sequential ``POST /v1/chat/completions`` from one lean keep-alive
  client (p50/p99), next to ``litellm.acompletion`` called directly in this
  process (the floor both are built on);
* throughput: 20 client processes (stdlib keep-alive HTTP) calling as fast as
  they can for a fixed time; each reports its count.

The proxy is never a project dependency: give a Python that has it with
``--proxy-python`` (a bench-only venv, e.g. ``python -m venv ~/.cache/fleet-bench/proxy-venv``
then ``pip install litellm==1.110.2`` and the proxy's own dependencies:
fastapi, uvicorn, orjson, backoff, pyyaml, python-multipart, apscheduler,
cryptography, email-validator, websockets, redis, pyjwt, semver, expression,
fastapi-sso, mcp, soundfile). Without it, only the fleet's side is measured.

Run: ``python -m bench.litellm_proxy [--proxy-python PATH] [--calls N] [--agents A] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench.http_gateway import MESSAGES, MODEL, RawClient, pct

CLIENT = """
import http.client, json, sys, time
port, token, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 16})
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
print("GO", flush=True)
sys.stdin.readline()  # all clients start together
n, stop = 0, time.perf_counter() + seconds
while time.perf_counter() < stop:
    conn.request("POST", "/v1/chat/completions", body, headers)
    resp = conn.getresponse()
    json.loads(resp.read())
    n += resp.status == 200
print(n, flush=True)
"""

PROXY_CONFIG = f"""
model_list:
  - model_name: {MODEL}
    litellm_params:
      model: {MODEL}
      api_key: not-used
      mock_response: ok
litellm_settings:
  drop_params: true
"""

OFFLINE = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_LOG": "ERROR",
    "DISABLE_SCHEMA_UPDATE": "true",
    # The proxy refuses to start without one; every request then checks it (as a real deployment does).
    "LITELLM_MASTER_KEY": "sk-bench-" + "0" * 48,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def latency(port: int, token: str, calls: int) -> tuple[float, float]:
    client = RawClient(port, token, {"model": MODEL, "messages": MESSAGES, "max_tokens": 64})
    for _ in range(30):
        await client.call()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        await client.call()
        times.append(time.perf_counter() - t)
    client.close()
    return statistics.median(times) * 1e3, pct(times, 0.99) * 1e3


async def throughput(port: int, tokens: list[str], seconds: float, agents: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(CLIENT)
    procs = []
    for i in range(agents):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            f.name,
            str(port),
            tokens[i % len(tokens)],
            str(seconds),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        procs.append(proc)
    for proc in procs:
        assert proc.stdout is not None
        await proc.stdout.readline()  # GO
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"\n")
    counts = [int((await proc.communicate())[0].strip() or 0) for proc in procs]
    os.unlink(f.name)
    return sum(counts) / seconds


async def direct(calls: int) -> tuple[float, float]:
    from fleet.gateway.loader import load_litellm

    litellm = await asyncio.to_thread(load_litellm)
    for _ in range(30):
        await litellm.acompletion(model=MODEL, messages=MESSAGES, mock_response="ok", max_tokens=64)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        await litellm.acompletion(model=MODEL, messages=MESSAGES, mock_response="ok", max_tokens=64)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, pct(times, 0.99) * 1e3


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def main(proxy_python: str | None, calls: int, agents: int, seconds: float) -> None:
    d50, d99 = await direct(calls)
    print(f"litellm.acompletion direct (in process)   p50 {d50:.3f} ms   p99 {d99:.3f} ms")
    rows = []
    port = free_port()
    fleet = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.http_gateway",
        "--serve",
        str(port),
        "--agents",
        str(agents),
        stdout=asyncio.subprocess.PIPE,
    )
    assert fleet.stdout is not None
    ready = (await fleet.stdout.readline()).decode().split()
    tokens = ready[2:]
    try:
        rows.append(
            (
                "fleet gateway (aiohttp)",
                *await latency(port, tokens[0], calls),
                await throughput(port, tokens, seconds, agents),
            )
        )
    finally:
        await stop(fleet)
    if proxy_python:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.yaml"
            config.write_text(textwrap.dedent(PROXY_CONFIG))
            port = free_port()
            proxy = await asyncio.create_subprocess_exec(
                proxy_python,
                "-m",
                "litellm.proxy.proxy_cli",
                "--config",
                str(config),
                "--port",
                str(port),
                "--num_workers",
                "1",
                cwd=tmp,
                env={**os.environ, **OFFLINE},
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                await wait_ready(port)
                rows.append(
                    (
                        "litellm proxy (1 worker)",
                        *await latency(port, OFFLINE["LITELLM_MASTER_KEY"], calls),
                        await throughput(port, [OFFLINE["LITELLM_MASTER_KEY"]], seconds, agents),
                    )
                )
            finally:
                await stop(proxy)
    else:
        print("(no --proxy-python: litellm's proxy not measured)")
    for name, p50, p99, rate in rows:
        print(
            f"{name:<28} p50 {p50:.3f} ms (+{p50 - d50:.3f})   p99 {p99:.3f} ms (+{p99 - d99:.3f})   "
            f"{agents} clients: {rate:.0f} calls/s"
        )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proxy-python", default=os.environ.get("LITELLM_PROXY_PYTHON"))
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=8)
    a = ap.parse_args()
    asyncio.run(main(a.proxy_python, a.calls, a.agents, a.seconds))
