"""What ``fleet policy check`` verifies beyond the schema: that every agent can be started.

A fleet.toml can be valid and still name ``run = "agents.nosuchmodule:run"``
or a program that is not installed; today that shows only as a crash loop
once the fleet runs. These checks find both before, without running any of
the fleet's code: an SDK agent's module is located the way the agent will
import it (the fleet directory first on ``sys.path``) with path finders that
never execute a package's ``__init__``, and its function is looked up by
parsing the module's source with ``ast``. A command's program is resolved as
the supervisor will run it: ``${VAR}`` expanded from the agent's environment,
a path relative to the agent's working directory, else a name on ``PATH``.
Each problem is a ``PolicyError`` at the ``run`` or ``command`` value in
fleet.toml, so it prints as ``path:line:col: message`` like any other.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import os
import shutil
import string
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fleet
from fleet.names import closest
from fleet.policy.errors import PolicyError
from fleet.policy.locate import TomlLocator

FLEET_TOML = "fleet.toml"


def preflight(fleet_dir: Path, book: Any) -> list[PolicyError]:
    """Every agent of ``book`` whose module, function or program cannot be found."""
    text = book.files.get(FLEET_TOML, "")
    locator = TomlLocator(text) if text else None
    errors: list[PolicyError] = []
    for index, spec in enumerate(book.agents):
        if spec.run:
            problem = check_run(spec.run, fleet_dir)
            key = "run"
        elif spec.command:
            problem = check_command(spec.command, spec.env or {}, _cwd(fleet_dir, spec.cwd), fleet_dir,
                                    book.fleet.name, spec.name)
            key = "command"
        else:
            continue
        if problem:
            line, col = locator.find(("agent", index, key), value=True) if locator else (1, 1)
            errors.append(PolicyError(FLEET_TOML, line, col, f"agent {spec.name!r}: {problem}", "not_found"))
    return errors


def _cwd(fleet_dir: Path, cwd: str | None) -> Path:
    if not cwd:
        return fleet_dir
    p = Path(cwd).expanduser()
    return p if p.is_absolute() else fleet_dir / p


# --- SDK agents ----------------------------------------------------------------------
def check_run(target: str, fleet_dir: Path) -> str | None:
    """Why ``module:function`` cannot be run from ``fleet_dir``, or None when it can be found."""
    module, _, function = target.partition(":")
    spec, problem = find_module(module, [str(fleet_dir), *sys.path])
    if spec is None:
        return problem
    origin = spec.origin
    if not origin or not origin.endswith(".py"):
        return None  # a namespace package or a compiled module: nothing to parse, trust it
    try:
        source = Path(origin).read_text(encoding="utf-8")
        tree = ast.parse(source, filename=origin)
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        return f"{module} cannot be read: {exc}"
    names, dynamic = top_level_names(tree)
    if function in names or dynamic:
        return None
    functions = [n for n in names if not n.startswith("_")]
    guess = closest(function, functions)
    hint = f"; did you mean {guess!r}?" if guess else ""
    return f"{module} ({_short(origin, fleet_dir)}) has no function {function!r}{hint}"


def find_module(name: str, path: Sequence[str]) -> tuple[importlib.machinery.ModuleSpec | None, str]:
    """Locate ``name`` without importing it or its packages (their ``__init__`` never runs)."""
    parts = name.split(".")
    top = parts[0]
    spec = importlib.machinery.PathFinder.find_spec(top, list(path))
    if spec is None:
        # Installed in editable mode, a package may be found only by its own finder on
        # sys.meta_path; a top-level lookup there imports nothing either.
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
    if spec is None:
        return None, f"no module named {top!r} (looked in the fleet directory, then sys.path)"
    for i in range(1, len(parts)):
        locations = spec.submodule_search_locations
        parent = ".".join(parts[:i])
        if locations is None:
            return None, f"{parent!r} is a module, not a package: no {'.'.join(parts[: i + 1])!r}"
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), list(locations))
        if spec is None:
            return None, f"no module named {'.'.join(parts[: i + 1])!r} (in package {parent!r})"
    return spec, ""


def top_level_names(tree: ast.Module) -> tuple[set[str], bool]:
    """Names a module defines at its top level, and whether it may define others at run time."""
    names: set[str] = set()
    dynamic = False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            if node.name == "__getattr__":
                dynamic = True
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(_targets(target))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            names.update(_targets(node.target))
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.name == "*":
                    dynamic = True
                else:
                    names.add(a.asname or a.name)
        elif isinstance(node, ast.If | ast.Try | ast.With):  # definitions under `if`/`try`: count them too
            body = [*getattr(node, "body", []), *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            for handler in getattr(node, "handlers", []):
                body += handler.body
            more, more_dynamic = top_level_names(ast.Module(body=body, type_ignores=[]))
            names |= more
            dynamic = dynamic or more_dynamic
    return names, dynamic


def _targets(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Tuple | ast.List):
        return {n for elt in node.elts for n in _targets(elt)}
    return set()


def _short(origin: str, fleet_dir: Path) -> str:
    try:
        return str(Path(origin).relative_to(fleet_dir))
    except ValueError:
        return origin


# --- command agents -------------------------------------------------------------------
def check_command(command: list[str], env: dict[str, str], cwd: Path, fleet_dir: Path, fleet_name: str,
                  agent: str) -> str | None:
    """Why ``command``'s program cannot be started, or None when it can be found."""
    environ = {**os.environ, "FLEET_EXAMPLES": str(Path(fleet.__file__).resolve().parent / "examples"),
               "FLEET_DIR": str(fleet_dir), "FLEET_AGENT": agent, "FLEET_NAME": fleet_name,
               "FLEET_PYTHON": sys.executable,
               **{k: str(v) for k, v in env.items()}}
    program = string.Template(command[0]).safe_substitute(environ)
    shown = repr(command[0]) + ("" if program == command[0] else f" (= {program})")
    if "$" in program and "${" in command[0]:
        return f"program {command[0]!r}: a variable it names is not set"
    if "/" in program:
        path = Path(program).expanduser()
        path = path if path.is_absolute() else cwd / path
        if not path.exists():
            return f"program {shown} not found (looked for {path})"
        if path.is_dir() or not os.access(path, os.X_OK):
            return f"program {shown} is not executable ({path})"
        return None
    if shutil.which(program, path=environ.get("PATH")) is None:
        return f"program {shown} not found on PATH"
    return None
