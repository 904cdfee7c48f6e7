"""Quick edits from code: ``policies/overrides.toml``, the one file the program writes.

Human-written files are never rewritten (that would lose their comments and
layout); every edit the console makes lands here instead, layered last. The
file is rewritten whole with tomli-w into a temporary file beside it and
swapped in with ``os.replace``, so the watcher — and any reader — sees the old
file or the new one, never half of it; the save then reloads like any other.

Structure (layered in this order, all above every other file)::

    [budget]                          # top-level sections: every agent
    usd_per_day = 5.0

    [policy.ops.tools]                # agents using policies/ops.toml
    deny = ["shell"]                  # ([policy.default] = every agent)

    [agent.report-drafter.budget]     # one agent (all its replicas)
    usd_per_day = 3.0

    [agent."optimizer#2".llm]         # one replica
    model = "gpt-4o-mini"

Targets are an agent name (all its replicas), a replica (``watch#2``: that
one only), else a policy name; ``agent:NAME`` / ``policy:NAME`` say which when both exist, and
``*`` means every agent. A value of ``None`` is written as ``"off"``, which
nullable keys (limits) read as "no limit".
"""

from __future__ import annotations

import difflib
import os
import tempfile
import threading
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from fleet.policy.book import (
    FLEET_FILE,
    OVERRIDES_FILE,
    OVERRIDES_NAME,
    POLICY_DIR,
    POLICY_KEYS,
    validate_text,
)
from fleet.policy.errors import PolicyError, PolicyErrors
from fleet.policy.schema import Policy

HEADER = (
    "# Written by fleet (set_override / the console's quick edits), layered above every other file.\n"
    "# Edits by hand are kept, comments are not. See fleet/policy/overrides.py for its structure.\n\n"
)

_lock = threading.Lock()


def _fail(message: str, code: str = "value") -> PolicyErrors:
    return PolicyErrors([PolicyError(OVERRIDES_FILE, 1, 1, message, code)])


def _names(fleet_dir: Path) -> tuple[list[str], list[str]]:
    """Agent (and replica) and policy names, read leniently (the book may be invalid right now)."""
    agents: list[str] = []
    try:
        data = tomllib.loads((fleet_dir / FLEET_FILE).read_text("utf-8"))
        for a in data.get("agent", []):
            if isinstance(a, dict) and isinstance(a.get("name"), str):
                agents.append(a["name"])
                replicas = a.get("replicas", 1)
                if isinstance(replicas, int) and not isinstance(replicas, bool) and 1 < replicas <= 10_000:
                    agents.extend(f"{a['name']}#{n}" for n in range(1, replicas + 1))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        pass
    policies: list[str] = []
    try:
        policies = sorted(
            p.stem
            for p in (fleet_dir / POLICY_DIR).iterdir()
            if p.suffix == ".toml" and not p.name.startswith(".") and p.stem != OVERRIDES_NAME
        )
    except OSError:
        pass
    return agents, policies


def resolve_target(fleet_dir: Path, target: str) -> tuple[str, ...]:
    """The table path in overrides.toml for ``target``: ``()``, ``("agent", n)`` or ``("policy", n)``."""
    if target == "*":
        return ()
    agents, policies = _names(Path(fleet_dir))
    kind, sep, name = target.partition(":")
    if sep and kind in ("agent", "policy"):
        pool = agents if kind == "agent" else policies
        if name not in pool:
            raise _fail(f"unknown {kind} {name!r}" + _hint(name, pool), "unknown_name")
        return (kind, name)
    if target in agents:  # an agent (all its replicas) or one replica: exactly that
        return ("agent", target)
    if target in policies:
        return ("policy", target)
    raise _fail(f"no agent or policy named {target!r}" + _hint(target, agents + policies), "unknown_name")


def _hint(name: str, pool: list[str]) -> str:
    near = difflib.get_close_matches(name, pool, n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def _check_key(key: str) -> tuple[str, ...]:
    if key not in POLICY_KEYS:
        near = difflib.get_close_matches(key, POLICY_KEYS, n=1)
        raise _fail(f"unknown policy key {key!r}" + (f"; did you mean {near[0]!r}?" if near else ""), "unknown_key")
    return tuple(key.split("."))


def _check_value(parts: tuple[str, ...], value: Any) -> Any:
    data: dict[str, Any] = {parts[0]: value} if len(parts) == 1 else {parts[0]: {parts[1]: value}}
    try:
        Policy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise _fail(f"{'.'.join(parts)}: {err['msg']}, got {value!r}") from None
    if isinstance(value, tuple):
        value = list(value)
    return value


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(f"cannot update: {OVERRIDES_FILE} is not valid TOML ({exc})", "syntax") from None


def _write(fleet_dir: Path, data: dict[str, Any]) -> Path:
    """Validate the whole book with the new text, then swap the file in atomically."""
    text = HEADER + tomli_w.dumps(_prune(data))
    own = [e for e in validate_text(fleet_dir, OVERRIDES_FILE, text) if e.path == OVERRIDES_FILE]
    if own:
        raise PolicyErrors(own)
    path = fleet_dir / OVERRIDES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".overrides.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _prune(data: dict[str, Any]) -> dict[str, Any]:
    """Drop empty tables so removing the last key leaves no ``[agent.x]`` husk."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            value = _prune(value)
            if not value:
                continue
        out[key] = value
    return out


def set_override(fleet_dir: Path, target: str, key: str, value: Any) -> Path:
    """Set ``key`` (dotted, e.g. ``"budget.usd_per_day"``) to ``value`` for ``target``.

    The value is validated against the schema, and the whole book against the
    new file, before anything is written; errors raise :class:`PolicyErrors`.
    Returns the path written. Thread-safe within one process.
    """
    fleet_dir = Path(fleet_dir)
    parts = _check_key(key)
    value = _check_value(parts, value)
    toml_value = "off" if value is None else value
    with _lock:
        table = resolve_target(fleet_dir, target)
        data = _read(fleet_dir / OVERRIDES_FILE)
        node = data
        for part in (*table, *parts[:-1]):
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = toml_value
        return _write(fleet_dir, data)


def clear_override(fleet_dir: Path, target: str, key: str | None = None) -> Path | None:
    """Remove one override (or, with ``key`` None, all of ``target``'s); None if nothing was set."""
    fleet_dir = Path(fleet_dir)
    parts = _check_key(key) if key is not None else ()
    with _lock:
        table = resolve_target(fleet_dir, target)
        data = _read(fleet_dir / OVERRIDES_FILE)
        path = (*table, *parts)
        if not path:
            if not data:
                return None
            return _write(fleet_dir, {k: v for k, v in data.items() if k in ("agent", "policy")})
        node: Any = data
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or path[-1] not in node:
            return None
        del node[path[-1]]
        return _write(fleet_dir, data)
