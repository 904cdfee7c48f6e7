"""Import litellm once, offline and quietly, off the event loop.

Importing litellm takes ~3.5 s and ~200 MB, and with default settings it
fetches a remote cost map, loads any ``.env`` it finds into ``os.environ`` and
prints banners. So the import lives in this one function, which sets the
environment variables that switch those behaviours off *before* the first
import, and the gateway runs it in a daemon thread (``in_daemon_thread``) so
the supervisor keeps serving while it loads. Not ``asyncio.to_thread``: the
default executor's threads are joined by ``asyncio.run`` and at interpreter
exit, so a supervisor stopped or dying during the import (5-15 s on a loaded
machine) stayed alive until it finished, and its watchdog reaped the agents
only then. Nothing else in ``fleet`` imports litellm at module level; a test
checks that.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType

#: Set before the first ``import litellm`` (see shared/litellm-notes.md).
LITELLM_ENV: dict[str, str] = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the remote cost map
    "LITELLM_OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",  # token_counter would otherwise download tokenizers
    "LITELLM_MODE": "PRODUCTION",  # else litellm loads a .env into os.environ
    "LITELLM_LOG": "ERROR",
}

_lock = threading.Lock()
_configured = False


def load_litellm() -> ModuleType:
    """Import and configure litellm (blocking; call it in a thread). Idempotent.

    Registers the embedded ``fleet/demo`` provider and its prices too, so a
    fleet works with no key and no network.
    """
    global _configured
    with _lock:
        if _configured and "litellm" in sys.modules:
            return sys.modules["litellm"]
        if "litellm" not in sys.modules:
            os.environ.update(LITELLM_ENV)
        import litellm

        litellm.suppress_debug_info = True
        if hasattr(litellm, "telemetry"):
            litellm.telemetry = False
        from fleet.gateway import demo_provider

        demo_provider.register(litellm)
        _configured = True
        return litellm


async def in_daemon_thread(fn: Callable[[], object], name: str = "fleet-gateway-load") -> None:
    """Run ``fn`` in a daemon thread and await it; the process's exit never waits for it."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(exc: BaseException | None) -> None:
        if done.done():  # the awaiting task was cancelled
            return
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the awaiting task
            result: BaseException | None = exc
        else:
            result = None
        try:
            loop.call_soon_threadsafe(settle, result)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    threading.Thread(target=run, name=name, daemon=True).start()
    await done
