"""Start an SDK agent: ``python -m fleet.agent module:function``.

Order matters for the no-orphans promise and for start-up time: ask the
kernel to kill us if the supervisor dies (PR_SET_PDEATHSIG), take the control
channel from the fd the supervisor passed, import the agent's module, say
hello, and only then hand control to ``run(ctx)``. A closed channel means the
supervisor is gone, and the agent exits at once.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
import traceback
from typing import Any

CONTROL_FD = 3


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:  # the supervisor died before we got here
            os._exit(1)
    except Exception:  # pragma: no cover - best effort; the channel EOF still ends us
        pass


def _take_control_fd() -> int:
    """The supervisor names the fd in FLEET_CONTROL_FD; move it to fd 3 as documented."""
    fd = int(os.environ.get("FLEET_CONTROL_FD", CONTROL_FD))
    if fd != CONTROL_FD:
        os.dup2(fd, CONTROL_FD)
        os.close(fd)
    os.environ["FLEET_CONTROL_FD"] = str(CONTROL_FD)
    return CONTROL_FD


def _load(target: str) -> Any:
    fleet_dir = os.environ.get("FLEET_DIR")
    if fleet_dir and fleet_dir not in sys.path:
        sys.path.insert(0, fleet_dir)
    module_name, _, func_name = target.partition(":")
    if not module_name or not func_name:
        raise SystemExit(f"fleet.agent: expected module:function, got {target!r}")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise SystemExit(f"fleet.agent: {module_name!r} has no attribute {func_name!r}") from None


async def _main(target: str, fd: int) -> int:
    from fleet.agent.channel import Channel
    from fleet.agent.context import Context

    loop = asyncio.get_running_loop()
    init: asyncio.Future[dict[str, Any]] = loop.create_future()
    ctx_box: list[Context] = []
    main_task = asyncio.current_task()

    early: list[dict[str, Any]] = []  # arrived with init, before the context exists

    def on_message(msg: dict[str, Any]) -> None:
        if msg.get("t") == "init" and not init.done():
            init.set_result(msg)
        elif ctx_box:
            ctx_box[0]._on_message(msg)
        else:
            early.append(msg)

    def on_lost() -> None:
        # No supervisor, no agent: leave now, whatever the agent is doing.
        if not finished:
            os._exit(70)

    finished = False

    channel = await Channel.connect(fd, on_message, on_lost)
    func = _load(target)
    channel.send({"t": "hello", "pid": os.getpid()})
    ctx = Context(channel, await init)
    ctx_box.append(ctx)
    for msg in early:
        ctx._on_message(msg)
    early.clear()

    stopping = False

    def on_term() -> None:
        nonlocal stopping
        stopping = True
        if main_task is not None:
            main_task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGINT, on_term)
    try:
        await func(ctx)
    except asyncio.CancelledError:
        if not stopping:
            raise
        return 0
    finally:
        finished = True
        # Let queued log/metric lines reach the supervisor before we go.
        if channel.transport is not None and not channel.transport.is_closing():
            channel.transport.close()
            await asyncio.sleep(0)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fleet.agent module:function", file=sys.stderr)
        return 2
    _die_with_parent()
    fd = _take_control_fd()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        return asyncio.run(_main(args[0], fd))
    except KeyboardInterrupt:
        return 0
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        return 1
