"""Loading a fleet directory into one validated, immutable :class:`PolicyBook`.

The book is built whole or not at all: every file is parsed and validated,
every cross-reference checked (policy names, agent names, duplicates), and
every agent's effective policy layered and checked for conflicts before a
book exists. A caller therefore either holds a complete, consistent snapshot
or a :class:`PolicyErrors` listing *every* problem in every file with its
``path:line:col`` — the live reloader relies on this to apply all of a save or
none of it.

Layering, lowest first: built-in defaults < ``policies/default.toml`` < the
agent's named policy < the agent's own tables in ``fleet.toml`` <
``policies/overrides.toml`` (its top level, then ``[policy.default]``, then
``[policy.<name>]``, then ``[agent.<name>]``, then ``[agent."<name>#<i>"]``
for one replica). Tables merge key by key; a list
(``tools.deny``) is one value and replaces the lower layer's list whole, so a
layer can always shorten a list.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from fleet.errors import UnknownAgent
from fleet.policy.errors import PolicyError, PolicyErrors
from fleet.policy.locate import TomlLocator
from fleet.policy.schema import (
    SECTIONS,
    AgentSpec,
    FleetFile,
    FleetSettings,
    OverridesFile,
    Policy,
    policy_keys,
)

FLEET_FILE = "fleet.toml"
POLICY_DIR = "policies"
DEFAULT_NAME = "default"
OVERRIDES_NAME = "overrides"
DEFAULT_FILE = f"{POLICY_DIR}/{DEFAULT_NAME}.toml"
OVERRIDES_FILE = f"{POLICY_DIR}/{OVERRIDES_NAME}.toml"
#: The origin of a value no file set.
BUILTIN = "built-in"
POLICY_KEYS: tuple[str, ...] = tuple(policy_keys())

Loc = tuple[str | int, ...]


def policy_file(name: str) -> str:
    """Relative path of the named policy."""
    return f"{POLICY_DIR}/{name}.toml"


def is_policy_path(rel: str) -> bool:
    """Whether ``rel`` (relative, POSIX) is a file the book reads."""
    if rel == FLEET_FILE:
        return True
    parent, _, name = rel.rpartition("/")
    return parent == POLICY_DIR and name.endswith(".toml") and not name.startswith(".") and len(name) > 5


# -- the book ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookChanges:
    """What differs between two books, for the supervisor to act on.

    ``respawn``: agents whose process definition changed (run, command, env,
    cwd, tty and its size); ``scaled``: agents whose replica count changed; ``policy``: agent →
    dotted policy keys whose effective value changed; ``fleet``: changed
    ``[fleet]`` keys; ``files``: the files whose text changed (a comment too).
    ``Supervisor.apply_book`` acts on these.
    """

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    respawn: tuple[str, ...] = ()
    scaled: tuple[str, ...] = ()
    policy: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fleet: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.respawn or self.scaled or self.policy or self.fleet)


@dataclass(frozen=True, eq=False, slots=True)
class PolicyBook:
    """One validated snapshot of a fleet's ``fleet.toml`` and ``policies/``.

    Immutable: a reload builds a new book and the supervisor swaps the
    reference, so a reader never sees half of a save. ``files`` maps each
    file read (relative POSIX path) to its text; treat it as read-only.
    """

    fleet: FleetSettings
    agents: tuple[AgentSpec, ...]
    fleet_dir: Path
    files: dict[str, str]
    content_hash: str
    effective: Mapping[str, tuple[Policy, Mapping[str, str]]] = field(repr=False)
    named: Mapping[str, tuple[Policy, Mapping[str, str]]] = field(repr=False)
    #: Replicas with overrides of their own (``[agent."name#2"]``): their whole effective policy.
    replica_effective: Mapping[str, tuple[Policy, Mapping[str, str]]] = field(default_factory=dict, repr=False)

    # -- agents ----------------------------------------------------------

    def _base(self, name: str) -> str:
        """The agent (spec) name of an agent or instance name (``watch#2`` → ``watch``)."""
        if name in self.effective:
            return name
        base, sep, number = name.rpartition("#")
        if sep and base in self.effective and number.isdigit():
            spec = self.agent(base)
            if spec.replicas > 1 and 1 <= int(number) <= spec.replicas:
                return base
        hint = difflib.get_close_matches(name, list(self.effective), n=1)
        raise UnknownAgent(f"no agent named {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))

    def agent(self, name: str) -> AgentSpec:
        """The spec of an agent, by agent or instance name; raises ``UnknownAgent``."""
        for spec in self.agents:
            if spec.name == name:
                return spec
        return self.agent(self._base(name))

    def instances(self) -> list[str]:
        """Every instance name of every agent, in ``fleet.toml`` order."""
        return [instance for spec in self.agents for instance in spec.instances()]

    def _effective(self, agent_name: str) -> tuple[Policy, Mapping[str, str]]:
        own = self.replica_effective.get(agent_name)
        return own if own is not None else self.effective[self._base(agent_name)]

    def policy_for(self, agent_name: str) -> Policy:
        """The effective (layered) policy of an agent or instance; computed once, at load."""
        return self._effective(agent_name)[0]

    def origins_for(self, agent_name: str) -> dict[str, str]:
        """Dotted key → the relative file that set its effective value, or ``"built-in"``."""
        return dict(self._effective(agent_name)[1])

    # -- policies --------------------------------------------------------

    @property
    def policy_names(self) -> tuple[str, ...]:
        """Names of the policies in ``policies/`` (``overrides`` excluded)."""
        return tuple(sorted(self.named))

    def named_policy(self, name: str) -> Policy:
        """A named policy as an agent using it (with no tables of its own) would get it."""
        return self.named[name][0]

    def describe(self, name: str) -> dict[str, Any]:
        """``{"agent", "policy", "origins"}`` for an agent, an instance, or else a policy name.

        The shape of the ``policy_show`` control reply and ``fleet policy show --json``.
        """
        try:
            policy, origins = self._effective(name)
        except UnknownAgent:
            if name not in self.named:
                raise
            policy, origins = self.named[name]
        return {"agent": name, "policy": policy.model_dump(mode="json"), "origins": dict(origins)}

    # -- versions --------------------------------------------------------

    def snapshot(self) -> str:
        """Canonical content of every file (JSON, sorted keys); ``content_hash`` is its SHA-256."""
        return _snapshot(self.files)

    def changes_from(self, old: PolicyBook | None) -> BookChanges:
        """What this book changes relative to ``old`` (everything is added if ``old`` is None)."""
        return book_changes(old, self)


def _snapshot(files: Mapping[str, str]) -> str:
    return json.dumps(dict(files), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _flatten(policy: Policy) -> dict[str, Any]:
    data = policy.model_dump(mode="json")
    out: dict[str, Any] = {}
    for key in POLICY_KEYS:
        section, _, leaf = key.partition(".")
        out[key] = data[section][leaf] if leaf else data[section]
    return out


def _process(spec: AgentSpec) -> tuple[object, ...]:
    """What defines an agent's process: a change of any of it restarts the agent."""
    return (spec.run, spec.command, spec.env, spec.cwd, spec.tty, spec.tty_cols, spec.tty_rows)


def book_changes(old: PolicyBook | None, new: PolicyBook) -> BookChanges:
    """What ``new`` changes relative to ``old``; see :class:`BookChanges`."""
    old_specs = {a.name: a for a in old.agents} if old else {}
    new_specs = {a.name: a for a in new.agents}
    respawn, scaled = [], []
    policy: dict[str, tuple[str, ...]] = {}
    for name, spec in new_specs.items():
        before = old_specs.get(name)
        if before is None or old is None:
            continue
        if _process(before) != _process(spec):
            respawn.append(name)
        if before.replicas != spec.replicas:
            scaled.append(name)
        a, b = _flatten(old.policy_for(name)), _flatten(new.policy_for(name))
        changed = tuple(k for k in POLICY_KEYS if a[k] != b[k])
        if changed:
            policy[name] = changed
    before_files = old.files if old is not None else {}
    fleet_changed: tuple[str, ...] = ()
    if old is not None:
        fleet_changed = tuple(k for k in FleetSettings.model_fields if getattr(old.fleet, k) != getattr(new.fleet, k))
    return BookChanges(
        added=tuple(n for n in new_specs if n not in old_specs),
        removed=tuple(n for n in old_specs if n not in new_specs),
        respawn=tuple(respawn),
        scaled=tuple(scaled),
        policy=policy,
        fleet=fleet_changed,
        files=tuple(sorted(p for p in set(before_files) | set(new.files) if before_files.get(p) != new.files.get(p))),
    )


def book_diff(old: PolicyBook | None, new: PolicyBook) -> str:
    """A unified diff of every file between two books (``old`` None: everything added)."""
    before = old.files if old is not None else {}
    out: list[str] = []
    for path in sorted(set(before) | set(new.files)):
        a, b = before.get(path), new.files.get(path)
        if a == b:
            continue
        out.extend(
            difflib.unified_diff(
                _lines(a),
                _lines(b),
                fromfile=f"a/{path}" if a is not None else "/dev/null",
                tofile=f"b/{path}" if b is not None else "/dev/null",
            )
        )
    return "".join(out)


def _lines(text: str | None) -> list[str]:
    if not text:
        return []
    lines = text.splitlines(keepends=True)
    if not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


# -- loading -----------------------------------------------------------------


def read_files(fleet_dir: Path) -> tuple[dict[str, str], list[PolicyError]]:
    """The text of ``fleet.toml`` and every ``policies/*.toml``, and the errors reading them."""
    fleet_dir = Path(fleet_dir)
    files: dict[str, str] = {}
    errors: list[PolicyError] = []
    candidates = [FLEET_FILE]
    policies = fleet_dir / POLICY_DIR
    try:
        candidates += sorted(f"{POLICY_DIR}/{p.name}" for p in policies.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        pass
    for rel in candidates:
        if not is_policy_path(rel):
            continue
        try:
            files[rel] = (fleet_dir / rel).read_bytes().decode("utf-8")
        except FileNotFoundError:
            message = f"missing: {fleet_dir / rel} does not exist" if rel == FLEET_FILE else "file vanished"
            errors.append(PolicyError(rel, 1, 1, message, "missing_file"))
        except IsADirectoryError:
            continue
        except UnicodeDecodeError as exc:
            errors.append(PolicyError(rel, 1, 1, f"not UTF-8 text ({exc.reason} at byte {exc.start})", "unreadable"))
        except OSError as exc:
            errors.append(PolicyError(rel, 1, 1, f"cannot read: {exc.strerror or exc}", "unreadable"))
    return files, errors


def load_book(fleet_dir: Path) -> PolicyBook:
    """Read and validate a fleet directory; raises :class:`PolicyErrors` listing every error.

    Nothing else escapes: whatever goes wrong while reading or checking a file
    (a ``RecursionError``, a bug in a check) is a :class:`PolicyError` too, so the
    live reload and ``fleet policy check`` report it like any other error.
    """
    fleet_dir = Path(fleet_dir)
    try:
        files, errors = read_files(fleet_dir)
    except Exception as exc:  # e.g. policies/ unreadable (EACCES), an odd file system
        raise PolicyErrors([PolicyError(POLICY_DIR, 1, 1, f"cannot read: {_describe(exc)}", "unreadable")]) from exc
    try:
        return build_book(fleet_dir, files, errors)
    except PolicyErrors:
        raise
    except Exception as exc:
        raise PolicyErrors([*errors, _unexpected(files, exc)]) from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _unexpected(files: dict[str, str], exc: BaseException) -> PolicyError:
    """An error no check expected, outside any one file's checks (those name their file)."""
    return PolicyError(FLEET_FILE, 1, 1, f"cannot be checked: {_describe(exc)}", "unreadable")


#: Nesting depth named in the error for a too deeply nested file (tomllib's own limit is
#: Python's recursion limit, far above anything a policy needs).
_DEPTH_SHOWN = 100


def _too_deep_at(text: str) -> tuple[int, int]:
    """Line and column where arrays/inline tables first nest deeper than ``_DEPTH_SHOWN``.

    An approximation (strings and comments are not skipped) good enough to point at the
    place; 1:1 when nothing that deep is found.
    """
    depth = 0
    line, col = 1, 0
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
        elif ch in "[{":
            depth += 1
            if depth > _DEPTH_SHOWN:
                return line, col
        elif ch in "]}":
            depth = max(0, depth - 1)
    return 1, 1


def validate_text(fleet_dir: Path, rel_path: str, text: str) -> list[PolicyError]:
    """Errors of the whole book if ``rel_path`` (relative to ``fleet_dir``) held ``text``.

    For editors that validate as the user types: a change to one file can
    break another (an agent's ``policy =`` naming a policy being renamed).
    """
    fleet_dir = Path(fleet_dir)
    rel = _relative(fleet_dir, rel_path)
    if not is_policy_path(rel):
        return [PolicyError(rel, 1, 1, f"not a policy file: expected {FLEET_FILE} or {POLICY_DIR}/*.toml", "value")]
    files, errors = read_files(fleet_dir)
    files[rel] = text
    errors = [e for e in errors if e.path != rel]
    try:
        build_book(fleet_dir, files, errors)
    except PolicyErrors as exc:
        return exc.errors
    return []


def _relative(fleet_dir: Path, path: str | Path) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(fleet_dir.resolve())
        except ValueError:
            return p.as_posix()
    return p.as_posix().removeprefix("./")


class _File:
    """One parsed file: its text, data, and (lazily) the positions of its keys."""

    def __init__(self, rel: str, text: str, data: dict[str, Any]) -> None:
        self.rel = rel
        self.text = text
        self.data = data
        self._locator: TomlLocator | None = None

    @property
    def locator(self) -> TomlLocator:
        if self._locator is None:
            self._locator = TomlLocator(self.text)
        return self._locator

    def error(self, loc: Loc, message: str, code: str, *, value: bool = True) -> PolicyError:
        line, col = self.locator.find(loc, value=value)
        return PolicyError(self.rel, line, col, message, code)


def build_book(fleet_dir: Path, files: dict[str, str], errors: list[PolicyError] | None = None) -> PolicyBook:
    """Validate ``files`` (relative path → text) as one book; raises :class:`PolicyErrors`."""
    errors = list(errors or [])
    parsed: dict[str, _File] = {}
    for rel, text in files.items():
        try:
            parsed[rel] = _File(rel, text, tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            errors.append(_syntax_error(rel, text, exc))
        except RecursionError:  # tomllib recurses per level of nested arrays and inline tables
            line, col = _too_deep_at(text)
            message = f"TOML syntax error: arrays or inline tables nested deeper than {_DEPTH_SHOWN} levels"
            errors.append(PolicyError(rel, line, col, message, "syntax"))

    present = set(files) | {e.path for e in errors if e.code == "unreadable"}  # exists, even if unreadable
    policy_names = {rel[len(POLICY_DIR) + 1 : -5] for rel in present if rel not in (FLEET_FILE, OVERRIDES_FILE)}
    fleet_file = _validate(FleetFile, parsed.get(FLEET_FILE), errors)
    policies: dict[str, Policy] = {}
    overrides: OverridesFile | None = None
    for rel in sorted(parsed):
        if rel == FLEET_FILE:
            continue
        if rel == OVERRIDES_FILE:
            overrides = _validate(OverridesFile, parsed[rel], errors)
        else:
            policy = _validate(Policy, parsed[rel], errors)
            if policy is not None:
                policies[rel[len(POLICY_DIR) + 1 : -5]] = policy

    # Cross-references are checked on the raw data, so they are reported even
    # when other keys of the same file are invalid.
    agent_names: list[str] = []
    replica_names: list[str] = []  # name#i of agents with replicas (an override may name one)
    raw_fleet = parsed.get(FLEET_FILE)
    if raw_fleet is not None:
        f = raw_fleet
        first: dict[str, int] = {}
        raw_agents = f.data.get("agent")
        for i, raw in enumerate(raw_agents if isinstance(raw_agents, list) else []):
            if not isinstance(raw, dict):
                continue
            name, policy_name = raw.get("name"), raw.get("policy")
            if isinstance(name, str):
                agent_names.append(name)
                replicas = raw.get("replicas", 1)
                if isinstance(replicas, int) and not isinstance(replicas, bool) and 1 < replicas <= 10_000:
                    replica_names.extend(f"{name}#{n}" for n in range(1, replicas + 1))
                if name in first:
                    line = f.locator.find(("agent", first[name], "name"), value=True)[0]
                    message = f"duplicate agent name {name!r} (first defined on line {line})"
                    errors.append(f.error(("agent", i, "name"), message, "duplicate"))
                else:
                    first[name] = i
            if isinstance(policy_name, str) and policy_name not in policy_names:
                message = f"unknown policy {policy_name!r}: there is no {policy_file(policy_name)}"
                errors.append(
                    f.error(("agent", i, "policy"), message + _hint(policy_name, policy_names), "unknown_name")
                )
    elif FLEET_FILE not in files and not any(e.path == FLEET_FILE for e in errors):
        message = f"missing: {fleet_dir / FLEET_FILE} does not exist"
        errors.append(PolicyError(FLEET_FILE, 1, 1, message, "missing_file"))

    raw_overrides = parsed.get(OVERRIDES_FILE)
    if raw_overrides is not None:
        f = raw_overrides
        for kind, pool in (("agent", agent_names + replica_names), ("policy", policy_names)):
            table = f.data.get(kind)
            if kind == "agent" and raw_fleet is None:
                continue  # fleet.toml is broken: its agents are unknown, not these
            for name in table if isinstance(table, dict) else {}:
                if name not in pool:
                    message = f"unknown {kind} {name!r}" + _hint(name, pool)
                    errors.append(f.error((kind, name), message, "unknown_name", value=False))

    if errors or fleet_file is None:
        raise PolicyErrors(_tidy(errors))

    # -- layering, and conflicts between keys of the layered result ----------
    seen: set[tuple[str, int, int, str]] = set()

    def layered(
        policy_name: str | None, index: int | None, spec: AgentSpec | None, replica: str | None = None
    ) -> tuple[Policy, dict[str, str]]:
        layers: list[tuple[str, Loc, dict[str, Any]]] = []
        if DEFAULT_NAME in policies:
            layers.append((DEFAULT_FILE, (), policies[DEFAULT_NAME].model_dump(exclude_unset=True)))
        if policy_name and policy_name != DEFAULT_NAME:
            layers.append((policy_file(policy_name), (), policies[policy_name].model_dump(exclude_unset=True)))
        if spec is not None and index is not None:
            layers.append((FLEET_FILE, ("agent", index), spec.own_policy()))
        if overrides is not None:
            top = overrides.model_dump(exclude_unset=True, exclude={"agent", "policy"})
            layers.append((OVERRIDES_FILE, (), top))
            names = [DEFAULT_NAME] + ([policy_name] if policy_name and policy_name != DEFAULT_NAME else [])
            for name in names:
                if name in overrides.policy:
                    layers.append(
                        (
                            OVERRIDES_FILE,
                            ("policy", name),
                            overrides.policy[name].model_dump(exclude_unset=True),
                        )
                    )
            if spec is not None and spec.name in overrides.agent:
                layers.append(
                    (
                        OVERRIDES_FILE,
                        ("agent", spec.name),
                        overrides.agent[spec.name].model_dump(exclude_unset=True),
                    )
                )
            if replica is not None and replica in overrides.agent:
                layers.append(
                    (OVERRIDES_FILE, ("agent", replica), overrides.agent[replica].model_dump(exclude_unset=True))
                )
        policy, origins, where = _merge(layers)
        for keys, message in policy.conflicts():
            set_keys = [k for k in keys if k in where]
            if not set_keys:  # the built-in defaults are consistent; nothing to blame
                continue
            _rank, rel, loc = max(where[k] for k in set_keys)
            err = parsed[rel].error(loc, message, "conflict")
            ident = (err.path, err.line, err.col, err.message)
            if ident not in seen:
                seen.add(ident)
                if spec is not None:
                    err = PolicyError(
                        err.path,
                        err.line,
                        err.col,
                        f"{message} (effective policy of agent {spec.name!r})",
                        "conflict",
                    )
                errors.append(err)
        return policy, origins

    named = {name: layered(name, None, None) for name in sorted(policy_names)}
    effective = {spec.name: layered(spec.policy, i, spec) for i, spec in enumerate(fleet_file.agent)}
    replica_effective = {
        name: layered(spec.policy, i, spec, name)
        for i, spec in enumerate(fleet_file.agent)
        for name in spec.instances()
        if overrides is not None and name != spec.name and name in overrides.agent
    }
    if errors:
        raise PolicyErrors(_tidy(errors))

    settings = fleet_file.fleet
    if not settings.name:
        settings = settings.model_copy(update={"name": Path(fleet_dir).resolve().name})
    snapshot = _snapshot(files)
    return PolicyBook(
        fleet=settings,
        agents=tuple(fleet_file.agent),
        fleet_dir=Path(fleet_dir),
        files=dict(sorted(files.items())),
        content_hash=hashlib.sha256(snapshot.encode()).hexdigest(),
        effective=effective,
        named=named,
        replica_effective=replica_effective,
    )


def _merge(
    layers: list[tuple[str, Loc, dict[str, Any]]],
) -> tuple[Policy, dict[str, str], dict[str, tuple[int, str, Loc]]]:
    """Layer partial policies; return the policy, origins, and where each set key was set."""
    merged: dict[str, Any] = {}
    where: dict[str, tuple[int, str, Loc]] = {}
    for rank, (rel, prefix, data) in enumerate(layers):
        for key, value in data.items():
            if key in SECTIONS:
                section = merged.setdefault(key, {})
                for leaf, leaf_value in value.items():
                    section[leaf] = leaf_value
                    where[f"{key}.{leaf}"] = (rank, rel, (*prefix, key, leaf))
            else:
                merged[key] = value
                where[key] = (rank, rel, (*prefix, key))
    policy = Policy.model_validate(merged)
    origins = {key: where[key][1] if key in where else BUILTIN for key in POLICY_KEYS}
    return policy, origins, where


def _tidy(errors: list[PolicyError]) -> list[PolicyError]:
    """Deduplicated, sorted by file (fleet.toml first), line and column."""
    unique = {(e.path, e.line, e.col, e.message): e for e in errors}
    return sorted(unique.values(), key=lambda e: (e.path != FLEET_FILE, e.path, e.line, e.col, e.message))


def _hint(name: str, candidates: Any) -> str:
    near = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean {near[0]!r}?" if near else ""


_SYNTAX_AT = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.S)


def _syntax_error(rel: str, text: str, exc: tomllib.TOMLDecodeError) -> PolicyError:
    message = str(exc)
    m = _SYNTAX_AT.match(message)
    if m:
        line, col, message = int(m["line"]), int(m["col"]), m["msg"]
    else:
        message = message.replace(" (at end of document)", "")
        lines = text.split("\n")
        line, col = len(lines), len(lines[-1]) + 1
    return PolicyError(rel, line, col, f"TOML syntax error: {message[:1].lower()}{message[1:]}", "syntax")


# -- pydantic errors → path:line:col -----------------------------------------


def _validate(model: type[BaseModel], file: _File | None, errors: list[PolicyError]) -> Any:
    if file is None:
        return None
    try:
        return model.model_validate(file.data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            errors.append(_from_pydantic(model, file, err))
        return None
    except Exception as exc:  # RecursionError on absurd nesting, a bug in a validator: still this file's error
        errors.append(PolicyError(file.rel, 1, 1, f"cannot be checked: {_describe(exc)}", "unreadable"))
        return None


def _unwrap(tp: Any) -> Any:
    import types
    import typing

    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model that validates the table at ``loc``, if any (for "did you mean")."""
    import typing

    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = tp.model_fields.get(part) if isinstance(part, str) else None
            if info is None:
                return None
            tp = info.annotation
        elif typing.get_origin(tp) in (list, tuple):
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _table(loc: Loc) -> str:
    return ".".join(p if _BARE_KEY.match(p) else json.dumps(p) for p in loc if isinstance(p, str))


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + (part if _BARE_KEY.match(part) else json.dumps(part))
    return out


def _label(loc: Loc, data: dict[str, Any]) -> str:
    """``"budget.usd_per_day: "``, ``"agent 'watch' replicas: "`` ... (empty for the document)."""
    prefix = ""
    rest = loc
    if len(loc) >= 2 and loc[0] == "agent" and isinstance(loc[1], int):
        agents = data.get("agent")
        name = None
        if isinstance(agents, list) and loc[1] < len(agents) and isinstance(agents[loc[1]], dict):
            name = agents[loc[1]].get("name")
        prefix = f"agent {name!r}" if isinstance(name, str) else f"agent #{loc[1] + 1}"
        rest = loc[2:]
    dotted = _dotted(rest)
    if prefix:
        return f"{prefix} {dotted}: " if dotted else f"{prefix}: "
    return f"{dotted}: " if dotted else ""


def _toml_repr(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'float'} {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "an array",
    "tuple_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_PATTERN_RULES = {
    "run": 'must be "module:function"',
    "name": "may hold only letters, digits, '_', '.' and '-'",
}
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
_BOUND_CTX = {"greater_than_equal": "ge", "greater_than": "gt", "less_than_equal": "le", "less_than": "lt"}


def _from_pydantic(model: type[BaseModel], file: _File, err: Mapping[str, Any]) -> PolicyError:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "extra_forbidden":
        key, parent = str(loc[-1]), loc[:-1]
        target = _model_at(model, parent)
        candidates = list(target.model_fields) if target is not None else []
        near = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
        if isinstance(value, dict):
            message = f"unknown table [{_table(loc)}]"
            if near:
                message += f"; did you mean [{_table((*parent, near[0]))}]?"
        else:
            where = f"in [{_table(parent)}]" if _table(parent) else "at the top level"
            message = f"unknown key {key!r} {where}"
            if near:
                message += f"; did you mean {near[0]!r}?"
        return file.error(loc, message, "unknown_key", value=False)
    if kind == "missing":
        return file.error(
            loc[:-1], f"{_label(loc[:-1], file.data)}missing required key {loc[-1]!r}", "value", value=False
        )
    if kind in _EXPECTED:
        return file.error(loc, f"{_label(loc, file.data)}expected {_EXPECTED[kind]}, got {_toml_repr(value)}", "type")
    if kind in _BOUNDS:
        bound = _num(ctx.get(_BOUND_CTX[kind]))
        return file.error(loc, f"{_label(loc, file.data)}must be {_BOUNDS[kind]} {bound}, got {_num(value)}", "value")
    if kind == "literal_error":
        return file.error(
            loc, f"{_label(loc, file.data)}must be {ctx.get('expected')}, got {_toml_repr(value)}", "value"
        )
    if kind == "string_pattern_mismatch":
        rule = _PATTERN_RULES.get(str(loc[-1]), f"must match {ctx.get('pattern')}")
        return file.error(loc, f"{_label(loc, file.data)}{rule}, got {_toml_repr(value)}", "value")
    if kind == "too_short":
        return file.error(loc, f"{_label(loc, file.data)}must not be empty", "value")
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    key = ctx.get("key")
    target = (*loc, *str(key).split(".")) if key else loc
    return file.error(target, f"{_label(loc, file.data)}{message}", "value")
