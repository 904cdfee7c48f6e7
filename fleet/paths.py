"""Where a fleet lives: its directory, its state directory, the bundled demo.

``fleet`` in a directory without ``fleet.toml`` opens the bundled demo. The
demo is copied once into a per-user directory, so that its policies can be
edited (and the edits kept) even when the package is installed read-only,
and so that following the tour in a source checkout never edits its tracked
files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import fleet


def bundled_demo() -> Path:
    """The demo fleet shipped with the package (a source checkout or the wheel's copy)."""
    pkg = Path(fleet.__file__).resolve().parent
    checkout = pkg.parent
    if (checkout / "fleet.toml").is_file() and (checkout / "policies").is_dir():
        return checkout
    return pkg / "demo"


def user_demo_dir() -> Path:
    base = os.environ.get("FLEET_DEMO_DIR")
    if base:
        return Path(base)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "fleet-console" / "demo"


def ensure_demo() -> Path:
    """Seed the user's demo copy from the bundle (once) and return it."""
    target = user_demo_dir()
    if (target / "fleet.toml").is_file():
        return target
    src = bundled_demo()
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "fleet.toml", target / "fleet.toml")
    shutil.copytree(src / "policies", target / "policies", dirs_exist_ok=True)
    return target


def resolve_fleet_dir(path: Path | None) -> tuple[Path, bool]:
    """(fleet directory, is_demo). A directory without fleet.toml means the demo.

    So does the bundled demo itself (a source checkout's root): its files are
    tracked, and the tour edits policies, so the demo always runs from the
    per-user copy, as it does when the package is installed.
    """
    d = (path or Path.cwd()).resolve()
    if (d / "fleet.toml").is_file():
        if d == bundled_demo().resolve():
            return ensure_demo(), True
        return d, False
    if path is not None and (d.is_file() and d.name == "fleet.toml"):
        return d.parent, False
    return ensure_demo(), True


def state_dir(fleet_dir: Path, configured: str | None = None) -> Path:
    p = Path(configured or ".fleet").expanduser()
    return p if p.is_absolute() else fleet_dir / p


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` as the operator's own directory (0700), fixing looser modes."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
