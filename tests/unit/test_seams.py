"""The real collaborators, and the in-memory stand-ins tests inject, satisfy the seams they are used through.

No type checker runs on this project, so the check is made here: every member
a Protocol names exists on the class, and a method takes the Protocol's
parameters by the same names in the same order (extra optional ones allowed).
"""

from __future__ import annotations

import inspect

import pytest

from fleet.gateway import Gateway
from fleet.gateway.approvals import ApprovalStore, InMemoryApprovalStore
from fleet.gateway.provider import FakeProvider, LiteLLMProvider, Provider
from fleet.policy import PolicyBook
from fleet.store import Store
from fleet.supervisor.core import Supervisor
from fleet.supervisor.seams import BookSeam, GatewaySeam, InstanceHost, StoreSeam


def _members(proto: type) -> dict[str, object]:
    names = {n for n in vars(proto) if not n.startswith("_")} | set(getattr(proto, "__annotations__", {}))
    return {n: getattr(proto, n, None) for n in names}


def unmet(cls: type, proto: type) -> list[str]:
    problems = []
    fields = set(getattr(cls, "__dataclass_fields__", {})) | set(getattr(cls, "__annotations__", {}))
    try:  # attributes a hand-written __init__ sets
        init = inspect.getsource(cls.__init__)
    except (OSError, TypeError):  # generated (dataclass) or inherited from object
        init = ""
    fields |= {n for n in _members(proto) if f"self.{n} =" in init or f"self.{n}:" in init}
    for name, member in _members(proto).items():
        if not hasattr(cls, name) and name not in fields:
            problems.append(f"{cls.__name__} has no {name}")
            continue
        if inspect.isfunction(member):
            want = [p.name for p in inspect.signature(member).parameters.values()][1:]
            real = getattr(cls, name)
            if not callable(real):
                problems.append(f"{cls.__name__}.{name} is not a method")
                continue
            params = list(inspect.signature(real).parameters.values())[1:]
            have = [p.name for p in params]
            if have[: len(want)] != want or any(p.default is inspect.Parameter.empty for p in params[len(want):]
                                                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)):
                problems.append(f"{cls.__name__}.{name}{tuple(have)} does not take {tuple(want)}")
    return problems


@pytest.mark.parametrize(
    ("cls", "proto"),
    [
        (Store, StoreSeam),
        (Gateway, GatewaySeam),
        (PolicyBook, BookSeam),
        (Supervisor, InstanceHost),
        (Store, ApprovalStore),
        (InMemoryApprovalStore, ApprovalStore),
        (LiteLLMProvider, Provider),
        (FakeProvider, Provider),
    ],
)
def test_class_satisfies_its_seam(cls: type, proto: type) -> None:
    assert unmet(cls, proto) == []


def test_the_check_notices_a_missing_or_renamed_member() -> None:
    class Half:
        def totals(self, name: str) -> dict:
            return {}

    problems = unmet(Half, GatewaySeam)
    assert "Half has no start" in problems
    assert any("Half.totals" in p for p in problems)
