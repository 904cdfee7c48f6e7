"""Live reload: watch ``fleet.toml`` and ``policies/``, publish whole books only.

Editors save in many ways — in place, vim's rename-and-replace (with ``4913``
probe and ``~`` backup files), atomic ``os.replace``, delete then re-create —
so the *directories* are watched (non-recursively, keeping ``.fleet/``'s
database churn out) and every batch of changes reloads the whole book. A valid
book whose content hash differs goes to ``on_change``; an invalid one goes to
``on_error`` and the caller keeps its last good book.

A policy edit must apply in well under 100 ms, so a batch of changes ends as
soon as one 10 ms step passes without new events (debounce 30 ms caps how long
a burst of events may delay it) — watchfiles' defaults (1.6 s debounce, 50 ms
step) are tuned for restarting dev servers. Yet an idle supervisor must cost
~0 % CPU, and watchfiles' Rust thread wakes at every step to take the GIL
(~0.6 % of a core). So on Linux the directories are watched by an inotify
descriptor on the event loop (:mod:`fleet.policy.inotify`), which wakes
nothing until the kernel has an event; watchfiles remains the fallback (other
platforms, inotify limits reached, ``force_polling``, ``backend="watchfiles"``)
and both feed the same loop. A load that finds a file of the last
good book gone or just emptied — whether the book then fails (unknown policy)
or, worse, passes (no ``default.toml``) — is retried once after ``settle_s``
before anything is published, since a rename-and-replace or delete+re-create
is two events that may straddle batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import platform
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from fleet.policy import inotify
from fleet.policy.book import FLEET_FILE, POLICY_DIR, PolicyBook, load_book
from fleet.policy.errors import PolicyError, PolicyErrors
from fleet.policy.inotify import Change

log = logging.getLogger(__name__)

OnChange = Callable[[PolicyBook], Awaitable[Any] | Any]
OnError = Callable[[list[PolicyError]], Awaitable[Any] | Any]

_IGNORED_SUFFIXES = (".swp", ".swo", ".swx", "~", ".tmp", ".bak", ".orig")

Backend = Literal["auto", "watchfiles"]


def is_watched(fleet_dir: Path, path: str) -> bool:
    """Whether a changed path can affect the book (editor droppings are not)."""
    p = Path(path)
    name = p.name
    if name.startswith((".", "#")) or name == "4913" or name.endswith(_IGNORED_SUFFIXES):
        return False
    parent = p.parent
    if parent == fleet_dir:
        return name in (FLEET_FILE, POLICY_DIR)
    return parent == fleet_dir / POLICY_DIR and name.endswith(".toml")


class PolicyWatcher:
    """Reload a fleet's policy book on every save; see the module docstring.

    ``on_change(book)`` and ``on_error(errors)`` may be plain or coroutine
    functions; they run in the watcher's task, one at a time, in save order.
    ``on_recover(book)`` (optional) is called when a save makes an invalid book
    valid again with the same content as the last good one (nothing to apply,
    but the error shown can be cleared).

    ``book`` is the last good book: pass the one the supervisor started with,
    or None to load it when ``run`` starts (without calling ``on_change``).
    ``ready`` is set once the OS watch is in place: saves after it are seen.

    ``backend="auto"`` watches with inotify on the event loop where it can (see
    the module docstring), ``"watchfiles"`` always with watchfiles; so does
    ``auto`` wherever watchfiles would poll (``force_polling``, its
    ``WATCHFILES_FORCE_POLLING`` variable, WSL). ``active_backend`` says which
    one the current watch uses.
    """

    def __init__(
        self,
        fleet_dir: Path,
        on_change: OnChange,
        on_error: OnError,
        *,
        book: PolicyBook | None = None,
        on_recover: OnChange | None = None,
        debounce_ms: int = 30,
        step_ms: int = 10,
        settle_s: float = 0.1,
        rust_timeout_ms: int = 5000,
        force_polling: bool | None = None,
        backend: Backend = "auto",
    ) -> None:
        self.fleet_dir = Path(fleet_dir).resolve()
        self.on_change = on_change
        self.on_error = on_error
        self.on_recover = on_recover
        self.book = book
        self.errors: list[PolicyError] = []
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.settle_s = settle_s
        self.rust_timeout_ms = rust_timeout_ms
        self.force_polling = force_polling
        self._inotify = backend == "auto" and inotify.available() and not _watchfiles_polls(force_polling)
        self.active_backend: Literal["inotify", "watchfiles"] | None = None
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask ``run`` to return (within one ``step_ms``)."""
        self._stop.set()

    async def run(self) -> None:
        """Watch until ``stop()`` (or cancellation)."""
        # The book is (re)loaded once the OS watch is in place, never before:
        # a save landing between a load and the start of watching would be lost.
        catch_up = True
        baseline = self.book is None  # the first load only sets the baseline, if no book was given
        failing = False
        while not self._stop.is_set():
            policies = self.fleet_dir / POLICY_DIR
            had_policies = policies.is_dir()
            paths = [self.fleet_dir, policies] if had_policies else [self.fleet_dir]
            restart = False
            watch = self._watch(paths)
            try:
                async with contextlib.aclosing(watch):
                    # Both backends build their OS watch synchronously, before their
                    # first await: once the first __anext__ has run one step, saves are
                    # seen (or it failed, and awaiting it raises). So readiness needs no
                    # timeout, and watchfiles can sleep in Rust for seconds at a time.
                    pending = asyncio.ensure_future(anext(watch))
                    try:
                        await asyncio.sleep(0)
                        while True:
                            if catch_up:
                                catch_up = False
                                await self.reload(initial=baseline, repeat=False)
                                baseline = False
                            if not _failed(pending):  # the watch is in place: an outage, if any, is over
                                failing = False
                                self.ready.set()
                            try:
                                changes = await pending
                            except StopAsyncIteration:
                                break
                            if policies.is_dir() != had_policies or any(
                                Path(p) == policies and c != Change.modified for c, p in changes
                            ):
                                restart = catch_up = True  # policies/ appeared, vanished or was replaced
                                break
                            if changes:
                                await self.reload(initial=baseline)
                                baseline = False
                            pending = asyncio.ensure_future(anext(watch))
                    finally:
                        # The generator cannot be closed while a step of it is running.
                        if not pending.done():
                            pending.cancel()
                        with contextlib.suppress(BaseException):
                            await pending
            except inotify.WatchLost as exc:  # a watched directory went, or events were dropped
                log.debug("policy watch of %s lost (%s); re-watching", self.fleet_dir, exc)
                restart = catch_up = True
            except inotify.InotifyUnavailable as exc:  # limits reached: the fallback costs CPU, hence a warning
                log.warning("inotify unavailable (%s); watching %s with watchfiles", exc, self.fleet_dir)
                self._inotify = False
                restart = catch_up = True
            except Exception as exc:  # the fleet directory itself went away, ... (the watcher must not die)
                if not failing:  # once per outage: report what the book looks like now
                    failing = True
                    log.warning("policy watch of %s failed (%s); retrying", self.fleet_dir, exc)
                    await self.reload(initial=baseline, repeat=False)
                    baseline = False
                restart = catch_up = True
                with contextlib.suppress(TimeoutError):  # not wait_for: 3.11's can swallow a cancel
                    async with asyncio.timeout(0.5):
                        await self._stop.wait()
            if not restart:
                return

    def _watch(self, paths: list[Path]) -> AsyncGenerator[set[tuple[Change, str]], None]:
        """A not yet started watch of ``paths`` (non-recursive): batches of filtered changes."""
        if self._inotify:
            self.active_backend = "inotify"
            return inotify.awatch(
                *paths,
                watch_filter=self._filter,
                stop_event=self._stop,
                step_ms=self.step_ms,
                debounce_ms=self.debounce_ms,
            )
        self.active_backend = "watchfiles"
        from watchfiles import awatch  # the fallback only: most supervisors never load it

        return awatch(
            *paths,
            watch_filter=self._filter,
            debounce=self.debounce_ms,
            step=self.step_ms,
            stop_event=self._stop,
            rust_timeout=self.rust_timeout_ms,
            yield_on_timeout=True,
            recursive=False,
            force_polling=self.force_polling,
        )

    def _filter(self, change: Change, path: str) -> bool:
        return is_watched(self.fleet_dir, path)

    async def reload(self, *, initial: bool = False, repeat: bool = True) -> PolicyBook | None:
        """Load the whole book now and publish the outcome; returns the new book if one applied.

        ``repeat=False`` does not report errors identical to those already reported
        (a vanished directory is seen as deleted files, as a broken watch and again
        at every retry of the watch).
        """
        try:
            try:
                book = await self._load_settled()
            except PolicyErrors:
                raise
            except Exception as exc:  # the watcher must outlive anything a file can do to a load
                log.warning("loading the policy book of %s failed", self.fleet_dir, exc_info=True)
                raise PolicyErrors([PolicyError(FLEET_FILE, 1, 1, f"cannot be loaded: {exc!r}", "unreadable")]) from exc
        except PolicyErrors as exc:
            if not repeat and [str(e) for e in exc.errors] == [str(e) for e in self.errors]:
                return None
            self.errors = exc.errors
            await _call(self.on_error, exc.errors)
            return None
        had_errors = bool(self.errors)
        self.errors = []
        if initial:
            self.book = book
            return None
        if self.book is not None and book.content_hash == self.book.content_hash:
            if had_errors and self.on_recover is not None:
                await _call(self.on_recover, book)
            return None
        self.book = book
        await _call(self.on_change, book)
        return book

    async def _load_settled(self) -> PolicyBook:
        try:
            book = load_book(self.fleet_dir)
        except PolicyErrors as exc:
            vanished = any(e.code in ("missing_file", "unreadable") for e in exc.errors)
            if not (vanished or self._missing() or self._truncated()):
                raise
        else:
            if not (self._missing(book) or self._truncated(book)):
                return book
        # A file of the last good book vanished or was just emptied: most likely
        # mid-save (rename-and-replace, delete + re-create). Look again once.
        await asyncio.sleep(self.settle_s)
        return load_book(self.fleet_dir)

    def _missing(self, book: PolicyBook | None = None) -> bool:
        """Whether a file of the last good book is absent now."""
        if self.book is None:
            return False
        if book is not None:
            return any(rel not in book.files for rel in self.book.files)
        return any(not (self.fleet_dir / rel).exists() for rel in self.book.files)

    def _truncated(self, book: PolicyBook | None = None) -> bool:
        """Whether a file that had content in the last good book is empty now (mid-write?)."""
        if self.book is None:
            return False
        for rel, text in self.book.files.items():
            if not text.strip():
                continue
            if book is not None:
                if rel in book.files and not book.files[rel].strip():
                    return True
            else:
                with contextlib.suppress(OSError):
                    if os.path.getsize(self.fleet_dir / rel) == 0:
                        return True
        return False


def _watchfiles_polls(force_polling: bool | None) -> bool:
    """Whether watchfiles would poll rather than use inotify (its own rule); where it would, so does ``auto``.

    WSL is such a place: inotify there does not see changes made from Windows.
    """
    if force_polling is not None:
        return force_polling
    env = os.getenv("WATCHFILES_FORCE_POLLING")
    if env:
        return env.lower() not in {"false", "disable", "disabled"}
    return sys.platform.startswith("linux") and "microsoft-standard" in platform.release().lower()


def _failed(future: asyncio.Future[Any]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is not None


async def _call(callback: Callable[..., Any], *args: Any) -> None:
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("policy watcher callback %r failed", callback)
