"""An SDK agent's log lines (its fd-3 channel) obey store backpressure like its pipes.

While the store cannot write, the supervisor stops reading the agent's channel
too (the agent's writes block), so its ``sdk`` lines are not piled up in memory
and dropped at the hard limit; once the store writes again, every line is there.
"""

from __future__ import annotations

import errno

from fleet.store import segments as segments_module

AGENT = """
import os
async def run(ctx):
    for i in range(1, 50_001):
        ctx.log.info(f"sdk line {i}")
        if i == 1000:
            while not os.path.exists("gate"):
                await ctx.sleep(0.01)
        if i % 200 == 0:
            await ctx.sleep(0)
    ctx.log.info("last")
    while True:
        await ctx.sleep(1)
"""
N = 50_000


async def test_sdk_lines_wait_for_a_failing_store(fleet_factory, monkeypatch):
    broken = False
    real = segments_module._pwritev

    def pwritev(fd, buffers, offset):  # type: ignore[no-untyped-def]
        if broken:
            raise OSError(errno.ENOSPC, "injected")
        return real(fd, buffers, offset)

    monkeypatch.setattr(segments_module, "_pwritev", pwritev)
    f = await fleet_factory('[[agent]]\nname = "s"\nrun = "chatty:run"\n', {"chatty.py": AGENT})
    await f.events.wait_for(lambda e: e["event"] == "logs" and "sdk line 1000\n" in e["data"]["text"])
    broken = True
    (f.dir / "gate").touch()
    await f.events.wait_for(lambda e: e["event"] == "store" and e["data"]["ok"] is False)
    link = f.sup.instances["s"]._link
    assert f.sup.loghub.paused and link._gate.read_paused
    broken = False
    await f.events.wait_for(lambda e: e["event"] == "store" and e["data"]["ok"] is True)
    await f.events.wait_for(lambda e: e["event"] == "logs" and "INFO last\n" in e["data"]["text"], 60)
    await f.sup.store.flush()
    lines = await f.sup.store.tail("s", n=N + 100, streams=["sdk"])
    texts = [ln.text for ln in lines if "sdk line" in ln.text]
    assert texts == [f"INFO sdk line {i}" for i in range(1, N + 1)]
    assert f.sup.store.stats()["dropped"] == 0
