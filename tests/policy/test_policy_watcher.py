"""Live reload end to end: real files, real inotify, every way an editor saves.

Each watcher test runs on both backends: ``inotify`` (the default on Linux: a
descriptor on the event loop) and ``watchfiles`` (the fallback). Every wait is
on an event (a queue fed by the callbacks) with a timeout; nothing sleeps to
synchronise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fleet.policy import PolicyBook, PolicyError, PolicyWatcher, load_book, set_override
from fleet.policy.watcher import Backend

from .conftest import write_fleet

TIMEOUT = 5.0


@dataclass
class Watched:
    watcher: PolicyWatcher
    changes: asyncio.Queue[PolicyBook] = field(default_factory=asyncio.Queue)
    errors: asyncio.Queue[list[PolicyError]] = field(default_factory=asyncio.Queue)
    recovered: asyncio.Queue[PolicyBook] = field(default_factory=asyncio.Queue)

    async def change(self) -> PolicyBook:
        return await asyncio.wait_for(self.changes.get(), TIMEOUT)

    async def error(self) -> list[PolicyError]:
        return await asyncio.wait_for(self.errors.get(), TIMEOUT)


@pytest.fixture(params=["auto", "watchfiles"], ids=["inotify", "watchfiles"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def watched(fleet_dir: Path, backend: Backend) -> AsyncIterator[Watched]:
    w = Watched(watcher=None)  # type: ignore[arg-type]

    async def on_change(book: PolicyBook) -> None:  # a coroutine callback
        await w.changes.put(book)

    w.watcher = PolicyWatcher(
        fleet_dir,
        on_change,
        w.errors.put_nowait,  # a plain callback
        book=load_book(fleet_dir),
        on_recover=w.recovered.put_nowait,
        backend=backend,
    )
    task = asyncio.create_task(w.watcher.run())
    await asyncio.wait_for(w.watcher.ready.wait(), TIMEOUT)
    yield w
    w.watcher.stop()
    await asyncio.wait_for(task, TIMEOUT)


def ops_text(usd: float) -> str:
    return f'[budget]\nusd_per_day = {usd}\ntokens_per_minute = 20000\n\n[restart]\nmode = "always"\n'


def usd(book: PolicyBook) -> float | None:
    return book.policy_for("watch").budget.usd_per_day


async def test_in_place_write(watched: Watched, fleet_dir: Path) -> None:
    with open(fleet_dir / "policies/ops.toml", "w") as f:  # noqa: ASYNC230 - the point: a plain in-place write
        f.write(ops_text(7.0))
    book = await watched.change()
    assert usd(book) == 7.0
    assert watched.watcher.book is book
    assert watched.errors.empty()


async def test_rename_and_replace_like_vim(watched: Watched, fleet_dir: Path) -> None:
    path = fleet_dir / "policies/ops.toml"
    (fleet_dir / "policies/4913").write_text("")  # vim's probe file
    os.unlink(fleet_dir / "policies/4913")
    os.rename(path, fleet_dir / "policies/ops.toml~")  # backup
    (fleet_dir / "policies/.ops.toml.swp").write_bytes(b"\0swap")
    path.write_text(ops_text(8.0))
    os.unlink(fleet_dir / "policies/ops.toml~")
    book = await watched.change()
    assert usd(book) == 8.0
    assert watched.errors.empty()


async def test_write_temp_then_rename(watched: Watched, fleet_dir: Path) -> None:
    tmp = fleet_dir / "policies/ops.toml.tmp"
    tmp.write_text(ops_text(9.0))
    os.rename(tmp, fleet_dir / "policies/ops.toml")
    assert usd(await watched.change()) == 9.0
    assert watched.errors.empty()


async def test_atomic_os_replace(watched: Watched, fleet_dir: Path) -> None:
    before = watched.watcher.book
    tmp = fleet_dir / ".fleet.toml.new"
    tmp.write_text((fleet_dir / "fleet.toml").read_text().replace("replicas = 2", "replicas = 3"))
    os.replace(tmp, fleet_dir / "fleet.toml")
    book = await watched.change()
    assert book.agent("drafter").replicas == 3
    assert book.changes_from(before).scaled == ("drafter",)


async def test_delete_and_recreate(watched: Watched, fleet_dir: Path) -> None:
    path = fleet_dir / "policies/ops.toml"
    os.unlink(path)
    path.write_text(ops_text(10.0))
    assert usd(await watched.change()) == 10.0
    assert watched.errors.empty()  # no spurious "missing file"


async def test_delete_default_then_recreate_applies_no_intermediate_book(watched: Watched, fleet_dir: Path) -> None:
    path = fleet_dir / "policies/default.toml"
    text = path.read_text()
    os.unlink(path)
    path.write_text(text.replace("requests_per_minute = 60", "requests_per_minute = 61"))
    book = await watched.change()
    # a book without default.toml would have been valid; it must not have been applied
    assert book.policy_for("watch").budget.requests_per_minute == 61
    assert watched.changes.empty()


async def test_a_real_deletion_is_reported(watched: Watched, fleet_dir: Path) -> None:
    os.unlink(fleet_dir / "policies/ops.toml")
    errors = await watched.error()
    assert [str(e) for e in errors] == ["fleet.toml:7:10: unknown policy 'ops': there is no policies/ops.toml"]


async def test_invalid_then_fixed(watched: Watched, fleet_dir: Path) -> None:
    good = watched.watcher.book
    path = fleet_dir / "policies/ops.toml"
    # two changes in one save, one of them invalid: none applies
    path.write_text('[budget]\nusd_per_day = 50.0\non_exhausted = "explode"\n')
    errors = await watched.error()
    assert [str(e) for e in errors] == [
        "policies/ops.toml:3:16: budget.on_exhausted: must be 'pause' or 'block', got string \"explode\""
    ]
    assert watched.watcher.book is good and watched.changes.empty()
    assert watched.watcher.errors == errors
    path.write_text('[budget]\nusd_per_day = 50.0\non_exhausted = "block"\n')
    book = await watched.change()
    assert usd(book) == 50.0 and book.policy_for("watch").budget.on_exhausted == "block"
    assert watched.watcher.errors == []


async def test_syntax_error_then_back_to_the_same_content_recovers(watched: Watched, fleet_dir: Path) -> None:
    path = fleet_dir / "policies/ops.toml"
    original = path.read_text()
    path.write_text("[budget\n")
    assert (await watched.error())[0].code == "syntax"
    path.write_text(original)
    book = await asyncio.wait_for(watched.recovered.get(), TIMEOUT)
    assert book.content_hash == watched.watcher.book.content_hash  # type: ignore[union-attr]
    assert watched.changes.empty()


async def test_unchanged_content_is_not_a_change(watched: Watched, fleet_dir: Path) -> None:
    path = fleet_dir / "policies/ops.toml"
    path.write_text(path.read_text())  # saved without edits
    path.touch()
    (fleet_dir / "policies/ops.toml.swp").write_text("x")  # droppings are ignored
    # the next change delivered is the real edit: the no-op save produced none
    (fleet_dir / "policies/drafting.toml").write_text("[llm]\nmax_tokens = 99\n")
    book = await watched.change()
    assert book.policy_for("drafter#1").llm.max_tokens == 99


async def test_concurrent_saves(watched: Watched, fleet_dir: Path) -> None:
    first = watched.watcher.book
    assert first is not None

    def save(rel: str, text: str) -> None:
        tmp = fleet_dir / f"{rel}.tmp"
        tmp.write_text(text)
        os.replace(tmp, fleet_dir / rel)

    await asyncio.gather(
        asyncio.to_thread(save, "policies/ops.toml", ops_text(11.0)),
        asyncio.to_thread(save, "policies/drafting.toml", "[llm]\nmax_tokens = 77\n"),
        asyncio.to_thread((fleet_dir / "policies/default.toml").write_text, "[budget]\nusd_per_day = 0.5\n"),
    )
    hashes = {first.content_hash}
    while True:
        book = await watched.change()
        assert book.content_hash not in hashes  # every applied version is new
        hashes.add(book.content_hash)
        if book.files == load_book(fleet_dir).files:
            break
    assert usd(book) == 11.0
    assert book.policy_for("drafter#2").llm.max_tokens == 77
    assert book.policy_for("drafter#2").budget.usd_per_day == 4.0
    assert book.policy_for("watch").budget.requests_per_minute is None
    assert watched.errors.empty()


async def test_set_override_reloads_like_any_save(watched: Watched, fleet_dir: Path) -> None:
    await asyncio.to_thread(set_override, fleet_dir, "watch", "budget.usd_per_day", 12.5)
    book = await watched.change()
    assert usd(book) == 12.5
    assert book.origins_for("watch")["budget.usd_per_day"] == "policies/overrides.toml"


async def test_policies_directory_created_later(tmp_path: Path, backend: Backend) -> None:
    (tmp_path / "fleet.toml").write_text('[[agent]]\nname = "a"\ncommand = ["true"]\n')
    changes: asyncio.Queue[PolicyBook] = asyncio.Queue()
    watcher = PolicyWatcher(tmp_path, changes.put_nowait, lambda errors: None, backend=backend)
    task = asyncio.create_task(watcher.run())
    await asyncio.wait_for(watcher.ready.wait(), TIMEOUT)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies/default.toml").write_text("[llm]\nmax_tokens = 5\n")
    while True:
        book = await asyncio.wait_for(changes.get(), TIMEOUT)
        if book.files.get("policies/default.toml"):
            break
    assert book.policy_for("a").llm.max_tokens == 5
    # and saves inside it are seen afterwards
    (tmp_path / "policies/default.toml").write_text("[llm]\nmax_tokens = 6\n")
    assert (await asyncio.wait_for(changes.get(), TIMEOUT)).policy_for("a").llm.max_tokens == 6
    watcher.stop()
    await asyncio.wait_for(task, TIMEOUT)


async def test_initial_load_and_errors_without_a_book(tmp_path: Path, backend: Backend) -> None:
    errors: asyncio.Queue[list[PolicyError]] = asyncio.Queue()
    changes: asyncio.Queue[PolicyBook] = asyncio.Queue()
    watcher = PolicyWatcher(tmp_path, changes.put_nowait, errors.put_nowait, backend=backend)
    task = asyncio.create_task(watcher.run())
    assert (await asyncio.wait_for(errors.get(), TIMEOUT))[0].code == "missing_file"
    await asyncio.wait_for(watcher.ready.wait(), TIMEOUT)
    (tmp_path / "fleet.toml").write_text('[[agent]]\nname = "a"\ncommand = ["true"]\n')
    book = await asyncio.wait_for(changes.get(), TIMEOUT)
    assert book.agent("a").command == ["true"]
    watcher.stop()
    await asyncio.wait_for(task, TIMEOUT)


async def test_a_failing_callback_does_not_stop_the_watcher(fleet_dir: Path, backend: Backend) -> None:
    seen: asyncio.Queue[PolicyBook] = asyncio.Queue()

    def on_change(book: PolicyBook) -> None:
        seen.put_nowait(book)
        raise RuntimeError("supervisor bug")

    watcher = PolicyWatcher(fleet_dir, on_change, lambda errors: None, book=load_book(fleet_dir), backend=backend)
    task = asyncio.create_task(watcher.run())
    await asyncio.wait_for(watcher.ready.wait(), TIMEOUT)
    (fleet_dir / "policies/ops.toml").write_text(ops_text(1.5))
    await asyncio.wait_for(seen.get(), TIMEOUT)
    (fleet_dir / "policies/ops.toml").write_text(ops_text(2.5))
    assert usd(await asyncio.wait_for(seen.get(), TIMEOUT)) == 2.5
    watcher.stop()
    await asyncio.wait_for(task, TIMEOUT)


async def test_reload_settles_a_vanished_file_before_reporting(fleet_dir: Path) -> None:
    """The settle path, deterministically: the file is back before the one retry."""
    errors: list[list[PolicyError]] = []
    changes: list[PolicyBook] = []
    watcher = PolicyWatcher(fleet_dir, changes.append, errors.append, book=load_book(fleet_dir), settle_s=0.05)
    path = fleet_dir / "policies/ops.toml"
    os.unlink(path)
    reload = asyncio.create_task(watcher.reload())
    await asyncio.sleep(0)  # one loop turn: it loads (ops.toml missing) and starts settling
    path.write_text(ops_text(13.0))
    book = await asyncio.wait_for(reload, TIMEOUT)
    assert book is not None and usd(book) == 13.0
    assert changes == [book] and errors == []


async def test_reload_reports_a_deletion_that_stays(fleet_dir: Path) -> None:
    errors: list[list[PolicyError]] = []
    watcher = PolicyWatcher(fleet_dir, lambda book: None, errors.append, book=load_book(fleet_dir), settle_s=0)
    os.unlink(fleet_dir / "policies/drafting.toml")
    assert await watcher.reload() is None
    assert [e.code for e in errors[0]] == ["unknown_name"]


async def test_policies_directory_removed_and_restored(watched: Watched, fleet_dir: Path) -> None:
    saved = {p.name: p.read_text() for p in (fleet_dir / "policies").glob("*.toml")}
    shutil.rmtree(fleet_dir / "policies")
    assert {e.code for e in await watched.error()} == {"unknown_name"}
    (fleet_dir / "policies").mkdir()
    for name, text in saved.items():
        (fleet_dir / "policies" / name).write_text(text)
    # back to the last good content: nothing to apply, the error is cleared
    await asyncio.wait_for(watched.recovered.get(), TIMEOUT)
    # and the re-created directory is watched
    (fleet_dir / "policies/ops.toml").write_text(ops_text(14.0))
    assert usd(await watched.change()) == 14.0


async def test_fleet_directory_removed_and_restored(watched: Watched, fleet_dir: Path) -> None:
    shutil.rmtree(fleet_dir)
    assert "missing_file" in {e.code for e in await watched.error()}
    # Reported once per outage, not at every retry (one each 0.5 s would flood events and logs).
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(watched.errors.get(), 1.5)
    write_fleet(fleet_dir, {"policies/ops.toml": ops_text(15.0)})
    assert usd(await watched.change()) == 15.0


async def test_policies_directory_replaced_by_rename(watched: Watched, fleet_dir: Path) -> None:
    """A directory swapped in by rename is watched; the one moved aside is not."""
    staged = fleet_dir / "policies.new"
    shutil.copytree(fleet_dir / "policies", staged)
    (staged / "ops.toml").write_text(ops_text(16.0))
    os.rename(fleet_dir / "policies", fleet_dir / "policies.old")
    os.rename(staged, fleet_dir / "policies")
    assert usd(await watched.change()) == 16.0
    (fleet_dir / "policies.old/ops.toml").write_text(ops_text(99.0))  # no longer the fleet's
    (fleet_dir / "policies/ops.toml").write_text(ops_text(17.0))
    assert usd(await watched.change()) == 17.0
    assert watched.changes.empty() and watched.errors.empty()


async def test_the_polling_fallback(fleet_dir: Path) -> None:
    """force_polling (as WATCHFILES_FORCE_POLLING or WSL would) keeps watchfiles, polling."""
    # Its poller compares whole-second mtimes: files saved in the same second as the
    # fixture wrote them would look unchanged. Real policy files are older than that.
    for path in [fleet_dir / "fleet.toml", *(fleet_dir / "policies").iterdir()]:
        os.utime(path, (1e9, 1e9))
    changes: asyncio.Queue[PolicyBook] = asyncio.Queue()
    watcher = PolicyWatcher(
        fleet_dir, changes.put_nowait, lambda errors: None, book=load_book(fleet_dir), force_polling=True
    )
    task = asyncio.create_task(watcher.run())
    await asyncio.wait_for(watcher.ready.wait(), TIMEOUT)
    assert watcher.active_backend == "watchfiles"
    (fleet_dir / "policies/ops.toml").write_text(ops_text(18.0))
    assert usd(await asyncio.wait_for(changes.get(), TIMEOUT)) == 18.0
    watcher.stop()
    await asyncio.wait_for(task, TIMEOUT)
