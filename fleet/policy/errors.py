"""Policy errors as a user reads them: ``path:line:col: message``.

One error type for every failure (syntax, type, range, unknown key, missing
policy, missing file) so the CLI, the console's editor and the control socket
print and transport them the same way. ``code`` tells them apart for programs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from fleet.errors import FleetError


@dataclass(frozen=True, slots=True)
class PolicyError:
    """One problem in one policy file; ``line`` and ``col`` are 1-based.

    ``code`` is one of ``syntax``, ``type``, ``value``, ``unknown_key``,
    ``unknown_name``, ``duplicate``, ``conflict``, ``missing_file``, ``unreadable``,
    ``not_found`` (an agent's module, function or program, from ``fleet policy check``).
    """

    path: str
    line: int
    col: int
    message: str
    code: str = "value"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_wire(self) -> dict[str, Any]:
        """The ``fleet.wire.PolicyError`` record: what the control socket sends and pushes."""
        return {"path": str(self.path), "line": self.line, "col": self.col, "message": self.message,
                "text": str(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyError:
        return cls(
            str(data["path"]),
            int(data["line"]),
            int(data["col"]),
            str(data["message"]),
            data.get("code", "value"),
        )


class PolicyErrors(FleetError):
    """Every error found in a policy book (all files, not just the first)."""

    code = "policy_invalid"

    def __init__(self, errors: Iterable[PolicyError]) -> None:
        self.errors: list[PolicyError] = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors) or "invalid policy")
