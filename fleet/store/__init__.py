"""Persistence of the fleet: one SQLite file, ``<state_dir>/fleet.db``, in WAL mode.

Logs (chunked rows + FTS5), events, LLM usage, approvals, audit, policy
versions and tasks. The supervisor is the only writer (``Store``); the CLI and
a console attached from elsewhere read with ``open_readonly`` and the functions
of ``fleet.store.readers``, or ``await Store.open(path, readonly=True)``.
"""

from __future__ import annotations

from fleet.store.damage import StoreUnavailable
from fleet.store.readers import open_readonly
from fleet.store.schema import SCHEMA_VERSION
from fleet.store.store import DB_NAME, Store, StoreError

__all__ = ["DB_NAME", "SCHEMA_VERSION", "Store", "StoreError", "StoreUnavailable", "open_readonly"]
