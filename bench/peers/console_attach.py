"""A headless Fleet Console attached to a running fleet, probing key press → screen.

Run by the ``fleet+console`` adapter as
``python -m bench.peers.console_attach FLEET_DIR OUT_JSON``. It attaches over the
control socket exactly as ``fleet console`` does when a fleet already runs,
with Textual's headless driver (no terminal, same widgets, timers and
refreshes). Why headless rather than a pty: the cost being measured is the
console's work (subscription, log rings, batched pane writes, layout), not a
terminal emulator's. While it runs it presses ``enter`` (open the agent detail
with its live log) then ``escape`` every ``PERIOD`` seconds and records how long
until the new screen is on top (``screen_ms``) and until its first frame is
painted (``paint_ms``: the compositor refreshed the new screen). Keys go to the
driver as a terminal's would; Pilot's ``press`` is not used because it waits
for the whole process to be idle, which under a flood it never is (it then
measured up to a second of waiting, not the key). ``OUT_JSON`` gets the samples,
each with its wall-clock time ``t`` (the bench keeps the ones inside the flood),
when it is told to stop (``OUT_JSON.stop`` appears, or SIGTERM).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

PERIOD = 0.5


def _exists(path: Path) -> bool:
    return path.exists()


def _write(path: Path, text: str) -> None:
    path.write_text(text)


async def _probe(app: Any, key: str, want_detail: bool, detail_type: type) -> dict[str, float]:
    """Send ``key`` as the terminal would; time the screen switch and the new screen's first paint."""
    from textual import events

    t_wall = time.time()
    t0 = time.perf_counter()
    event = events.Key(key, "\r" if key == "enter" else None)
    event.set_sender(app)
    app._driver.send_message(event)
    deadline = t0 + 5
    # Polling on purpose: the screen switch is the app's own business, not an event of ours.
    while isinstance(app.screen, detail_type) != want_detail and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    t_screen = time.perf_counter()
    painted = asyncio.Event()
    app.screen.call_after_refresh(painted.set)
    try:
        await asyncio.wait_for(painted.wait(), 5)
    except TimeoutError:
        pass
    t_paint = time.perf_counter()
    return {"t": t_wall, "key": key == "enter", "screen_ms": (t_screen - t0) * 1e3,
            "paint_ms": (t_paint - t0) * 1e3, "ok": float(isinstance(app.screen, detail_type) == want_detail)}


async def main(fleet_dir: Path, out: Path) -> None:
    from console.app import FleetConsole
    from console.screens.agent import AgentScreen
    from fleet.control.client import SocketClient

    client = await SocketClient.connect(fleet_dir / ".fleet" / "control.sock", origin="console")
    app = FleetConsole(client, embedded=False, fleet_name="bench")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    samples: list[dict[str, float]] = []
    async with app.run_test(headless=True, size=(160, 48)) as pilot:
        await pilot.pause()
        _write(Path(str(out) + ".ready"), "1")
        stop_file = Path(str(out) + ".stop")
        probe_file = Path(str(out) + ".probe")
        while not stop.is_set() and not _exists(stop_file):
            if _exists(probe_file):
                for key, want_detail in (("enter", True), ("escape", False)):
                    samples.append(await _probe(app, key, want_detail, AgentScreen))
            try:
                await asyncio.wait_for(stop.wait(), PERIOD)
            except TimeoutError:
                pass
    _write(out, json.dumps({"samples": samples}))
    await client.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
