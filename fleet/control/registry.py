"""The registry of control operations: each one declared once, everything else derived.

An operation is an ``async def`` in :mod:`fleet.control.ops` decorated with
:func:`operation`. That one declaration says all there is to know about it:

- its **name** (the function's, or ``name=``) and its **doc** (the first line
  of the docstring);
- its **arguments**, typed, from the signature after the supervisor (the
  server validates every request against them: a wrong type, a missing or an
  unknown argument is a ``protocol_error`` naming the op, before anything runs);
- its **result**, from the return annotation: a record of :mod:`fleet.wire`;
- ``read_only``: it answers from immutable snapshots the supervisor's loop
  publishes and changes nothing, so the control socket answers it on its own
  thread even while the loop is busy with a flood (``status``, ``ping``);
  every other op runs on the supervisor's loop;
- ``audited``: it changes the fleet and is written to the audit log with its
  origin (console, cli, api) before its reply goes out (its arguments, but a
  ``text`` only with ``audit_text=N``: its first N characters);
- ``cli``: the ``fleet`` command that exposes it (``"fleet pause"``), or None
  with ``why_no_cli`` saying why not (the console's editor writes policy files
  over the socket; people use their editor).

What is derived from it: the server's dispatch and argument checks
(:mod:`fleet.control.ops`), which ops the control thread answers
(:mod:`fleet.control.server`), the README's control API table
(``python -m fleet.control.registry --update README.md``), and the tests that
fail when the CLI, the README or the console's fake client disagree with it
(tests/control/test_registry.py).

Adding an operation (the one place is :mod:`fleet.control.ops`)::

    @operation(cli="fleet hello", audited=False)
    async def hello(sup: Supervisor, name: str, times: int = 1) -> wire.Hello:
        \"\"\"Say hello to an agent.\"\"\"
        return {"text": f"hello {name}" * times}

then add its record to :mod:`fleet.wire` if it is new, its command to the CLI
if ``cli`` names one, and run the ``--update README.md`` line above.
"""

from __future__ import annotations

import inspect
import json
import sys
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fleet.errors import ProtocolError

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Param:
    name: str
    annotation: Any
    default: Any  # inspect.Parameter.empty when required

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass(frozen=True)
class Op:
    """One declared control operation."""

    name: str
    handler: Handler
    doc: str
    cli: str | None
    read_only: bool
    audited: bool
    why_no_cli: str = ""
    #: Answered only on a streaming connection (``subscribe``), never by ``call``.
    streaming: bool = False
    #: Audited ops whose ``text`` argument (what an operator told an agent) is audited, cut to this length.
    audit_text: int = 0
    _checker: list[Any] = field(default_factory=list, repr=False, compare=False)

    @property
    def params(self) -> tuple[Param, ...]:
        hints = _hints(self.handler)
        out = []
        for p in list(inspect.signature(self.handler).parameters.values())[1:]:
            out.append(Param(p.name, hints.get(p.name, Any), p.default))
        return tuple(out)

    @property
    def result(self) -> Any:
        return _hints(self.handler).get("return", Any)

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments of one request, checked and converted to their declared types."""
        if not self._checker:
            self._checker.append(_arguments_model(self))
        model = self._checker[0]
        from pydantic import ValidationError

        try:
            checked = model.model_validate(args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'args'}: {e['msg']}" for e in exc.errors()
            )
            raise ProtocolError(f"bad arguments for {self.name!r}: {problems}") from None
        return {name: getattr(checked, name) for name in type(checked).model_fields}


#: Every operation by name, in declaration order (filled when fleet.control.ops is imported).
REGISTRY: dict[str, Op] = {}


def operation(
    *,
    cli: str | None,
    read_only: bool = False,
    audited: bool = False,
    why_no_cli: str = "",
    name: str | None = None,
    streaming: bool = False,
    audit_text: int = 0,
) -> Callable[[Handler], Handler]:
    """Declare the decorated ``async def op(sup, **args) -> Record`` as a control operation."""

    def register(fn: Handler) -> Handler:
        op_name = name or fn.__name__.removeprefix("op_")
        if op_name in REGISTRY:
            raise ValueError(f"control operation {op_name!r} is declared twice")
        if cli is None and not why_no_cli:
            raise ValueError(f"control operation {op_name!r}: give cli= or why_no_cli=")
        if read_only and audited:
            raise ValueError(f"control operation {op_name!r}: a read-only op has nothing to audit")
        doc = (inspect.getdoc(fn) or "").strip().split("\n", 1)[0]
        if not doc:
            raise ValueError(f"control operation {op_name!r} needs a one-line docstring")
        if audit_text and not audited:
            raise ValueError(f"control operation {op_name!r}: audit_text needs audited=True")
        REGISTRY[op_name] = Op(op_name, fn, doc, cli, read_only, audited, why_no_cli, streaming, audit_text)
        return fn

    return register


def operations() -> dict[str, Op]:
    """The complete registry (imports the module that declares the operations)."""
    import fleet.control.ops  # noqa: F401  (declares them)

    return REGISTRY


def _hints(fn: Handler) -> dict[str, Any]:
    module = sys.modules[fn.__module__]
    ns = {**vars(module), "Supervisor": Any}
    return typing.get_type_hints(fn, globalns=ns, include_extras=True)


def _arguments_model(op: Op) -> Any:
    from pydantic import ConfigDict, create_model

    fields: dict[str, Any] = {}
    for p in op.params:
        fields[p.name] = (p.annotation, ... if p.required else p.default)
    return create_model(
        f"{op.name}_args", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True), **fields
    )


# --- the README's table ------------------------------------------------------------------------
START = "<!-- control-api:start (generated by `python -m fleet.control.registry --update README.md`) -->"
END = "<!-- control-api:end -->"


def _type_name(t: Any) -> str:
    if t is Any:
        return "any"
    if t is type(None):
        return "null"
    origin = typing.get_origin(t)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return " \\| ".join(_type_name(a) for a in typing.get_args(t))
    if origin is typing.Literal:
        return " \\| ".join(f'"{a}"' for a in typing.get_args(t))
    if origin in (list, tuple):
        args = typing.get_args(t)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "object"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(t, getattr(t, "__name__", str(t)))


def _args_text(op: Op) -> str:
    parts = []
    for p in op.params:
        text = f"`{p.name}`: {_type_name(p.annotation)}"
        if not p.required:
            text += f" = `{json.dumps(p.default)}`"
        parts.append(text)
    return ", ".join(parts) or "—"


def reference() -> str:
    """The README's control API section, generated from the registry."""
    lines = [
        START,
        "## Control API",
        "",
        "Every client (the console, the CLI, scripts) speaks JSON lines on",
        "`<state_dir>/control.sock`: a request `{\"id\": 7, \"op\": \"pause\", \"args\": {\"names\": [\"ticker\"]},",
        "\"origin\": \"cli\"}` is answered by `{\"id\": 7, \"ok\": true, \"result\": {...}}` or",
        "`{\"id\": 7, \"ok\": false, \"error\": {\"code\": \"unknown_agent\", \"message\": \"...\"}}`.",
        "Arguments are checked against the types below before anything runs. *Read-only* operations",
        "are answered on the socket's own thread, from snapshots, even under a log flood; *audited*",
        "ones are written to the audit log with their origin. The result records are in `fleet/wire.py`.",
        "",
        "| op | arguments | result | | command | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for op in operations().values():
        flags = ", ".join(f for f, on in (("read-only", op.read_only), ("audited", op.audited),
                                            ("streaming", op.streaming)) if on)
        cli = f"`{op.cli}`" if op.cli else "—"
        lines.append(
            f"| `{op.name}` | {_args_text(op)} | `{_type_name(op.result)}` | {flags} | {cli} | {op.doc} |"
        )
    from fleet.wire import PUSHES

    kinds = ", ".join(f"`{k}` ({v.__name__})" for k, v in PUSHES.items())
    lines += [
        "",
        "After `subscribe`, the fleet pushes `{\"event\": kind, \"data\": {...}}` lines; the data of each",
        f"kind is a record of `fleet/wire.py`: {kinds}.",
        "",
        END,
    ]
    return "\n".join(lines)


def update(path: str) -> bool:
    """Rewrite the section between the markers in ``path``; True if it changed."""
    from pathlib import Path

    p = Path(path)
    text = p.read_text()
    start, end = text.index(START), text.index(END) + len(END)
    new = text[:start] + reference() + text[end:]
    if new != text:
        p.write_text(new)
    return new != text


if __name__ == "__main__":
    # Run as a script this module is __main__; the ops register in fleet.control.registry.
    from fleet.control import registry as _registry

    if sys.argv[1:2] == ["--update"]:
        print("updated" if _registry.update(sys.argv[2]) else "up to date")
    else:
        print(_registry.reference())
