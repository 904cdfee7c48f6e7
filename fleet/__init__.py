"""Fleet: supervise, govern and account for a fleet of local AI agents.

This package is imported by every agent process (through ``fleet.agent``), so it
must stay light: nothing here may import more than the standard library. The
heavy parts (pydantic policies, the litellm gateway, the SQLite store) live in
subpackages that only the supervisor and the CLI import.
"""

from __future__ import annotations

__version__ = "0.1.0"
