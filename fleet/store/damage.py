"""A damaged or unwritable store: one clear line, and the old file kept.

``fleet.db`` can be damaged (truncated by a full disk or a copy cut short,
overwritten, a bad sector) or sit where it cannot be written (a read-only
mount, another user's directory). Both used to end in a raw SQLite traceback.
Here the supervisor checks the file before opening it (its header, and its
size against the page count the header states: cheap, no full scan) and
classifies what SQLite raises while opening:

- damaged: the file, its WAL and shm, and the log segments that belong to it
  are moved aside with a ``.damaged-<time>`` suffix (kept, never deleted) and a
  new store is started; the fleet says so in one line and in an event.
- unwritable or unreadable: a ``StoreUnavailable`` error whose message is
  one line saying what is wrong, which file, and what to do.

Read-only commands (``fleet logs``, ``fleet report``) never move anything:
they read what they can and say in one line what they could not.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import struct
import time
from pathlib import Path

from fleet.errors import FleetError
from fleet.store.segments import LOGS_DIR

#: SQLite primary result codes.
SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_NOTADB = 3, 8, 10, 11, 14, 26
_HEADER = b"SQLite format 3\x00"


class StoreUnavailable(FleetError):
    """The store cannot be opened or read; the message is one line: what, which file, what to do."""

    code = "store_unavailable"


def probe(path: Path) -> str | None:
    """What is wrong with the database file at ``path`` as far as its header tells, or None.

    Checks the magic string and that the file holds the pages its header counts
    (a truncated file does not); an empty or missing file is fine (a new store).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(_HEADER):
        return "not a SQLite database"
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    change = struct.unpack_from(">I", header, 24)[0]
    pages = struct.unpack_from(">I", header, 28)[0]  # "in-header database size", valid if the next matches
    valid_for = struct.unpack_from(">I", header, 92)[0]
    if page_size < 512 or page_size & (page_size - 1):
        return "damaged header (impossible page size)"
    if change == valid_for and pages and pages * page_size > size:
        return f"truncated: {size} bytes where its header counts {pages} pages of {page_size} bytes"
    return None


def is_damage(exc: BaseException) -> bool:
    """Whether SQLite says the file itself is damaged (not merely unreachable)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)


def move_aside(path: Path) -> tuple[Path, Path | None]:
    """Rename the database (with its WAL and shm) and its log segments to ``*.damaged-<time>``.

    Returns the new names of the database and of the segment directory (None if
    there was none). Nothing is deleted.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S")
    moved = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while moved.exists():
        n += 1
        moved = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    suffix = moved.name[len(path.name):]
    for extra in ("-wal", "-shm"):
        side = path.with_name(path.name + extra)
        if side.exists():
            os.rename(side, moved.with_name(moved.name + extra))
    os.rename(path, moved)
    logs = path.parent / LOGS_DIR
    logs_moved = None
    if logs.exists():
        logs_moved = logs.with_name(LOGS_DIR + suffix)
        os.rename(logs, logs_moved)
    return moved, logs_moved


def explain_unwritable(path: Path, exc: BaseException) -> str:
    """One line for a store that cannot be opened for writing: what, which file, what to do."""
    where = path.parent
    if isinstance(exc, OSError):
        what = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return (f"cannot write the fleet's store {path} ({what}): make {where} writable, "
                    "or set [fleet] state_dir in fleet.toml to a writable directory")
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"cannot write the fleet's store {path} ({what}): free some space on its disk"
        return f"cannot open the fleet's store {path} ({what})"
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM):
        return (f"cannot write the fleet's store {path} ({exc}): make {where} and the files in it writable, "
                "or set [fleet] state_dir in fleet.toml to a writable directory")
    if code == SQLITE_IOERR:
        return f"cannot open the fleet's store {path} ({exc}): the disk reports an I/O error; check it"
    return f"cannot open the fleet's store {path} ({exc})"


def explain_unreadable(path: Path, exc: BaseException) -> str:
    """One line for a read-only command that could not read (all of) the store."""
    if is_damage(exc):
        return (f"cannot read all of {path}: {exc} — the store is damaged; `fleet run` moves it aside "
                "(keeping it) and starts a new one")
    return f"cannot read {path}: {exc}"


def moved_message(path: Path, why: str, moved: Path, logs_moved: Path | None) -> str:
    logs = f" and its logs to {logs_moved.name}/" if logs_moved else ""
    return (f"the fleet's store {path} was damaged ({why}): moved it aside to {moved.name}{logs} "
            "and started a new one; the old one is kept (try `sqlite3 OLD .recover` to salvage it)")


#: Largest damaged database ``salvage_connection`` loads into memory.
SALVAGE_MAX_BYTES = 1 << 30


def salvage_connection(path: Path) -> sqlite3.Connection:
    """A read-only, in-memory copy of a damaged database that yields what its pages still hold.

    SQLite refuses every query on a file shorter than the size its header states
    (a truncated store): the copy's header is set to the pages actually there, so
    queries that touch only those pages work again. The file is never written.
    Raises ``sqlite3.DatabaseError`` when even that does not open.
    """
    size = path.stat().st_size
    if size > SALVAGE_MAX_BYTES:
        raise sqlite3.DatabaseError(f"too large to salvage in memory ({size} bytes)")
    data = bytearray(path.read_bytes())
    page_size = 0
    if len(data) >= 100 and data.startswith(_HEADER):
        page_size = struct.unpack_from(">H", data, 16)[0]
        page_size = 65536 if page_size == 1 else page_size
        if page_size >= 512:
            pages = len(data) // page_size
            del data[pages * page_size:]
            struct.pack_into(">I", data, 28, pages)
            data[18:20] = b"\x01\x01"  # not WAL: an in-memory copy has no WAL to open
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    try:
        conn.deserialize(bytes(data))
        pages = len(data) // max(page_size, 1) if len(data) >= 100 else 0
        # Tables and indexes whose root page is gone would stop SQLite from reading the
        # schema at all: drop them from the copy's schema (the file is never touched).
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("DELETE FROM sqlite_master WHERE rootpage > ?", (pages,))
        conn.execute("PRAGMA writable_schema = OFF")
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn
