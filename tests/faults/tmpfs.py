"""A private tmpfs for the tests that need a disk of their own (full, read-only).

Mounting needs root and CAP_SYS_ADMIN; where the test runs without them it is
skipped, said so, rather than failed.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(disk: Path, options: str) -> Iterator[Path]:
    """``disk`` (created) with a tmpfs mounted on it with ``options``, unmounted on exit."""
    disk.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
