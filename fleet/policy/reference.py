"""The README's policy reference, generated from the schema so it cannot drift.

``python -m fleet.policy.reference`` prints it; one markdown table per TOML
table (key, type, default, description), from ``POLICY_DOC_MODELS``.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from fleet.policy.schema import POLICY_DOC_MODELS, SECTIONS, _off_to_none

_INTRO = """\
Policies live in `policies/*.toml`; `fleet.toml` names the agents. Layering,
lowest first: built-in defaults < `policies/default.toml` < the agent's named
policy < the agent's own tables in `fleet.toml` (`[agent.budget]` ...) <
`policies/overrides.toml`. Tables merge key by key; a list replaces the lower
layer's list. Keys marked *or "off"* accept `"off"` (or `"unlimited"`) to lift a
limit set by a lower layer. Unknown keys are errors.
"""


def _bounds(metadata: list[Any]) -> str:
    parts = []
    for m in metadata:
        if isinstance(m, Ge):
            parts.append(f"≥ {m.ge:g}" if isinstance(m.ge, float) else f"≥ {m.ge}")
        elif isinstance(m, Gt):
            parts.append(f"> {m.gt:g}" if isinstance(m.gt, float) else f"> {m.gt}")
        elif isinstance(m, Le):
            parts.append(f"≤ {m.le:g}" if isinstance(m.le, float) else f"≤ {m.le}")
        elif isinstance(m, Lt):
            parts.append(f"< {m.lt}")
        elif isinstance(m, MinLen) and m.min_length:
            parts.append("not empty")
    return ", ".join(parts)


def type_name(tp: Any, metadata: list[Any] | None = None) -> str:
    """A reader's name for a field type: ``number ≥ 0``, ``list of strings``, ``"pause" | "block"``."""
    metadata = list(metadata or [])
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(tp)
        for item in extra:
            metadata.extend(getattr(item, "metadata", []) if isinstance(item, FieldInfo) else [item])
        return type_name(inner, metadata)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = type_name(args[0], metadata) if len(args) == 1 else " or ".join(type_name(a) for a in args)
        offable = any(getattr(m, "func", None) is _off_to_none for m in metadata)
        return f'{inner} or "off"' if offable else f"{inner} (optional)"
    bounds = _bounds(metadata)
    suffix = f" {bounds}" if bounds else ""
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {type_name(typing.get_args(tp)[0])}s" + (f" ({bounds})" if bounds else "")
    if origin is dict:
        return "table of strings"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "table"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(tp, getattr(tp, "__name__", str(tp))) + suffix


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if value is None:
        return '`"off"`' if any(getattr(m, "func", None) is _off_to_none for m in info.metadata) else "—"
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{json.dumps(value)}`"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render_reference() -> str:
    """The policy reference as markdown."""
    out = ["## Policy reference", "", _INTRO]
    for header, model in POLICY_DOC_MODELS.items():
        doc = _md((model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ").replace("``", "`"))
        out += [f"### `{header}`" if header.startswith("[") else f"### {header}", "", doc, ""]
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            if header == "top level" and name in SECTIONS:
                continue
            kind = type_name(info.annotation, list(info.metadata))
            description = _md(info.description or "")
            out.append(f"| `{name}` | {kind} | {_default(info)} | {description} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render_reference())
