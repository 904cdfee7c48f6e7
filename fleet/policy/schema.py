"""The typed shape of ``fleet.toml`` and ``policies/*.toml``.

Every model is frozen, strict and rejects unknown keys, because a policy is a
contract: a typo such as ``usd_per_dya`` must be an error with a line number,
never a silently ignored budget. Every field carries a ``description``; the
README's policy reference is generated from them (:mod:`fleet.policy.reference`).

Every policy field has a default, so an empty policy file is valid and every
layer (``default.toml``, a named policy, an agent's own tables, overrides) can be
validated on its own and hold only the keys it sets: layering works on the
keys a layer *set* (``model_dump(exclude_unset=True)``), not on filled-in
defaults. Checks that involve several keys (``llm.model`` allowed by
``llm.models``, backoff bounds) only make sense on the layered result, so they
live in :meth:`Policy.conflicts`, which :func:`fleet.policy.load_book` runs on
every effective policy.

TOML has no null: a field whose "no limit" is ``None`` accepts the strings
``"off"``, ``"unlimited"`` or ``"none"`` so that a higher layer can lift a limit
a lower layer set.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

#: Strings that mean "no value" for fields whose ``None`` means unlimited/off.
OFF_WORDS = frozenset({"off", "unlimited", "none"})

#: Policy sections, in document order.
SECTIONS = ("llm", "budget", "tools", "restart", "alerts", "tasks", "limits")


def _off_to_none(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in OFF_WORDS:
        return None
    return value


Off = BeforeValidator(_off_to_none)
NonNegFloat = Annotated[float, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
PosInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Temperature = Annotated[float, Field(ge=0, le=2)]
Percent = Annotated[float, Field(ge=0, le=100)]


class _Model(BaseModel):
    """Frozen, strict (TOML is typed: ``"5"`` is not a number), no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class LLMPolicy(_Model):
    """Which models an agent may call through the gateway, and how."""

    models: list[str] = Field(
        default_factory=lambda: ["*"],
        description='Allow-list of model names; shell-style globs such as "anthropic/*".',
    )
    model: str = Field("fleet/demo", description="Model used when the agent does not name one.")
    temperature: Annotated[Temperature | None, Off] = Field(
        None, description='Sampling temperature, 0 to 2; "off" leaves it to the provider.'
    )
    max_tokens: PosInt = Field(512, description="Upper bound on completion tokens per call.")
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description='Model names an agent\'s own client asks for over HTTP, mapped to a model: '
        '{ "gpt-*" = "fleet/demo" }. Keys are globs; an exact name wins, then the longest pattern. '
        "The allow-list (models) then applies to the result.",
    )
    inject_env: bool = Field(
        True,
        description="Start the agent with OPENAI_BASE_URL, OPENAI_API_KEY, ANTHROPIC_BASE_URL ... "
        "pointing its client at the fleet's gateway (with a per-run token instead of a real key).",
    )


class BudgetPolicy(_Model):
    """Spending and rate limits the gateway enforces before a call is made."""

    usd_per_day: Annotated[NonNegFloat | None, Off] = Field(
        None,
        description='US dollars per agent per local calendar day (midnight on the supervisor\'s clock); '
        '"unlimited" for no cap.',
    )
    tokens_per_minute: Annotated[PosInt | None, Off] = Field(
        None, description='Tokens (prompt + completion) per rolling minute; "off" for no limit.'
    )
    requests_per_minute: Annotated[PosInt | None, Off] = Field(
        None, description='LLM calls per rolling minute; "off" for no limit.'
    )
    on_exhausted: Literal["pause", "block"] = Field(
        "pause",
        description='When the daily budget runs out: "pause" the agent, or "block" further calls only.',
    )


class ToolsPolicy(_Model):
    """Which tools an agent may use. Deny wins over approve, approve over allow."""

    allow: list[str] = Field(default_factory=lambda: ["*"], description="Tools allowed without asking (globs).")
    deny: list[str] = Field(default_factory=list, description="Tools always refused (globs); checked first.")
    approve: list[str] = Field(default_factory=list, description="Tools that need a human yes in the console (globs).")
    approval_timeout_s: PosFloat = Field(900, description="Seconds an approval may wait; then the request is denied.")


class RestartPolicy(_Model):
    """How the supervisor restarts an agent process that exits."""

    mode: Literal["always", "on-failure", "never"] = Field(
        "on-failure", description='"always", "on-failure" (non-zero exit or signal) or "never".'
    )
    backoff_initial_s: NonNegFloat = Field(0.5, description="First restart delay; doubles on each restart.")
    backoff_max_s: PosFloat = Field(30, description="Ceiling of the restart delay.")
    max_restarts: Annotated[int, Field(ge=0)] = Field(
        5, description="More restarts than this within window_s marks the agent crash-loop."
    )
    window_s: PosFloat = Field(60, description="Window, in seconds, for counting restarts.")
    stop_grace_s: NonNegFloat = Field(5, description="Seconds between SIGTERM and SIGKILL on stop.")


class AlertsPolicy(_Model):
    """When the console raises an alert about an agent, and what it does then."""

    silence_s: Annotated[PosFloat | None, Off] = Field(
        None, description='No output for this many seconds raises a "stalled" alert; "off" to disable.'
    )
    waiting_s: Annotated[PosFloat | None, Off] = Field(
        300,
        description='An agent waiting for its operator (reading its input, or asking with ctx.ask) '
        'this many seconds raises a "waiting" alert; "off" to disable.',
    )
    error_rate: Annotated[Fraction | None, Off] = Field(
        None, description="Share of failed LLM calls (0 to 1) within error_window_s that raises an alert."
    )
    error_window_s: PosFloat = Field(300, description="Window, in seconds, for error_rate.")
    cost_per_hour_usd: Annotated[NonNegFloat | None, Off] = Field(
        None, description="Spending faster than this many dollars per hour raises an alert."
    )
    budget_warn_pct: Percent = Field(80, description="Alert when this percentage of usd_per_day is spent.")
    action: Literal["notify", "pause"] = Field(
        "notify", description='What an alert does: "notify" only, or also "pause" the agent.'
    )


class TasksPolicy(_Model):
    """Which queued tasks an agent takes, and how many at once."""

    kinds: list[str] = Field(default_factory=list, description="Task kinds this agent accepts (empty: none).")
    concurrency: Annotated[int, Field(ge=1)] = Field(1, description="Tasks one instance works on at once.")
    priority: int = Field(0, description="Higher-priority agents are offered tasks first.")


class LimitsPolicy(_Model):
    """What an agent and all its children together may use of the machine.

    Enforced by the kernel through the agent's own cgroup where the system has
    one, else measured each second and acted upon.
    """

    memory_mb: Annotated[PosFloat | None, Off] = Field(
        None,
        description="Resident memory of the agent and all its children, in MiB; a process that needs more is "
        "killed by the kernel (cgroup) or the action is taken when crossed (measured).",
    )
    cpu_percent: Annotated[PosFloat | None, Off] = Field(
        None, description="CPU of the agent and its children, in percent of one core (200 = two cores)."
    )
    open_files: Annotated[PosInt | None, Off] = Field(
        None, description="Open files per process (RLIMIT_NOFILE); applies from the next start."
    )
    max_processes: Annotated[PosInt | None, Off] = Field(
        None, description="Processes and threads of the agent and its children at once; further forks fail."
    )
    action: Literal["restart", "pause", "alert"] = Field(
        "alert",
        description="When a limit is crossed (an event and an alert either way): \"restart\" the agent, "
        "\"pause\" it, or only \"alert\".",
    )


class Policy(_Model):
    """The effective rules for one agent: what it may call, spend, use, and how it is kept alive."""

    llm: LLMPolicy = Field(default_factory=LLMPolicy, description="Model allow-list and defaults.")
    budget: BudgetPolicy = Field(default_factory=BudgetPolicy, description="Spending and rate limits.")
    tools: ToolsPolicy = Field(default_factory=ToolsPolicy, description="Tool allow/deny/approve lists.")
    restart: RestartPolicy = Field(default_factory=RestartPolicy, description="Restart behaviour.")
    alerts: AlertsPolicy = Field(default_factory=AlertsPolicy, description="Alert thresholds.")
    tasks: TasksPolicy = Field(default_factory=TasksPolicy, description="Task queue participation.")
    limits: LimitsPolicy = Field(default_factory=LimitsPolicy, description="Memory, CPU, files and processes.")
    goal: str = Field("", description="What the agent is for; shown in the console and given to the agent.")

    def model_allowed(self, model: str) -> bool:
        """Whether ``model`` matches one of the ``llm.models`` globs (case-sensitive)."""
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.llm.models)

    def tool_decision(self, name: str) -> Literal["allow", "deny", "approve"]:
        """Deny first, then approve, then allow; a tool no list names is denied."""
        tools = self.tools
        if any(fnmatch.fnmatchcase(name, p) for p in tools.deny):
            return "deny"
        if any(fnmatch.fnmatchcase(name, p) for p in tools.approve):
            return "approve"
        if any(fnmatch.fnmatchcase(name, p) for p in tools.allow):
            return "allow"
        return "deny"

    def conflicts(self) -> list[tuple[tuple[str, ...], str]]:
        """Inconsistencies between keys, as ``(dotted keys involved, message)``.

        Checked on the layered result only (one layer may set ``llm.models`` and
        another ``llm.model``), so the loader can blame the file that set the
        last of the involved keys.
        """
        out: list[tuple[tuple[str, ...], str]] = []
        if not self.model_allowed(self.llm.model):
            out.append(
                (
                    ("llm.model", "llm.models"),
                    f"llm.model {self.llm.model!r} is not allowed by llm.models {self.llm.models!r}",
                )
            )
        for pattern, target in self.llm.aliases.items():
            if not self.model_allowed(target):
                out.append(
                    (
                        ("llm.aliases", "llm.models"),
                        f"llm.aliases maps {pattern!r} to {target!r}, which llm.models {self.llm.models!r} "
                        "does not allow",
                    )
                )
        if self.restart.backoff_initial_s > self.restart.backoff_max_s:
            out.append(
                (
                    ("restart.backoff_initial_s", "restart.backoff_max_s"),
                    f"restart.backoff_initial_s ({self.restart.backoff_initial_s:g}) is greater than "
                    f"restart.backoff_max_s ({self.restart.backoff_max_s:g})",
                )
            )
        return out


def policy_keys() -> list[str]:
    """Every leaf key of a policy, dotted (``"budget.usd_per_day"``), in document order."""
    keys: list[str] = []
    for name in Policy.model_fields:
        if name in SECTIONS:
            section = Policy.model_fields[name].annotation
            assert isinstance(section, type) and issubclass(section, BaseModel)
            keys.extend(f"{name}.{field}" for field in section.model_fields)
        else:
            keys.append(name)
    return keys


class FleetSettings(_Model):
    """The ``[fleet]`` table of ``fleet.toml``: fleet-wide settings."""

    name: str = Field("", description="Display name of the fleet; defaults to the directory's name.")
    state_dir: str = Field(
        ".fleet",
        description="Where the database, the log segments (logs/) and the control socket live, relative to fleet.toml.",
    )
    allocation: Literal["least-loaded", "round-robin"] = Field(
        "least-loaded", description='How tasks are offered among agents: "least-loaded" or "round-robin".'
    )
    log_retention_days: Annotated[PosFloat | None, Off] = Field(
        None, description='Delete stored log lines older than this; "off" keeps them.'
    )
    log_retention_mb: Annotated[PosFloat | None, Off] = Field(
        None, description='Trim the oldest stored log lines beyond this size; "off" for no cap.'
    )
    task_max_attempts: Annotated[int, Field(ge=1)] = Field(
        3, description="A task that failed this many times is given up."
    )
    task_lease_s: PosFloat = Field(
        30, description="An agent holding a task must report within this many seconds or lose it."
    )
    gateway_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        0,
        description="TCP port of the gateway's OpenAI/Anthropic-compatible HTTP endpoints, on 127.0.0.1 "
        "only; 0 picks a free port (shown by fleet status).",
    )


AGENT_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
RUN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"


class AgentSpec(_Model):
    """One ``[[agent]]`` of ``fleet.toml``.

    The agent's own policy settings are tables of the agent itself
    (``[agent.budget]``, ``[agent.tools]`` ...), layered above its named policy.
    They cannot live under ``[agent.policy]`` because ``policy = "ops"`` already
    names the policy and TOML forbids a key that is both a string and a table.
    """

    name: Annotated[str, Field(pattern=AGENT_NAME_PATTERN)] = Field(
        description="Unique name: letters, digits, '_', '.', '-'. Replicas are named name#1..name#N."
    )
    run: Annotated[str, Field(pattern=RUN_PATTERN)] | None = Field(
        None, description='SDK agent: "module:function", imported with the fleet directory on sys.path.'
    )
    command: Annotated[list[str], Field(min_length=1)] | None = Field(
        None, description="Any other program, as an argument list. Give exactly one of run and command."
    )
    replicas: Annotated[int, Field(ge=1)] = Field(1, description="How many instances to run.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    cwd: str | None = Field(None, description="Working directory, relative to fleet.toml; default its directory.")
    tty: bool = Field(
        False,
        description="Run a command agent on a pseudo-terminal the supervisor holds (for programs that need "
        "one); `fleet attach NAME` gives a live terminal to it.",
    )
    tty_cols: Annotated[int, Field(ge=10, le=1000)] = Field(120, description="Columns of a tty agent's terminal.")
    tty_rows: Annotated[int, Field(ge=2, le=1000)] = Field(40, description="Rows of a tty agent's terminal.")
    policy: str | None = Field(None, description="Name of a policy in policies/<name>.toml; must exist.")
    goal: str | None = Field(None, description="The agent's goal; overrides the policy's goal.")
    llm: LLMPolicy | None = Field(None, description="[agent.llm]: this agent's own llm settings.")
    budget: BudgetPolicy | None = Field(None, description="[agent.budget]: this agent's own limits.")
    tools: ToolsPolicy | None = Field(None, description="[agent.tools]: this agent's own tool lists.")
    restart: RestartPolicy | None = Field(None, description="[agent.restart]: this agent's own restart rules.")
    alerts: AlertsPolicy | None = Field(None, description="[agent.alerts]: this agent's own alert thresholds.")
    tasks: TasksPolicy | None = Field(None, description="[agent.tasks]: this agent's own task settings.")
    limits: LimitsPolicy | None = Field(None, description="[agent.limits]: this agent's own resource limits.")

    @field_validator("policy", mode="before")
    @classmethod
    def _policy_is_a_name(cls, value: Any) -> Any:
        if isinstance(value, dict):
            raise PydanticCustomError(
                "policy_table",
                "'policy' names a file in policies/; put this agent's own settings in "
                "[agent.llm], [agent.budget], [agent.tools] ... directly",
            )
        return value

    @model_validator(mode="after")
    def _one_target(self) -> AgentSpec:
        if self.tty and self.run is not None:
            raise PydanticCustomError(
                "agent_tty",
                "'tty' is for command agents; an SDK agent talks to its operator with ctx.ask",
                {"key": "tty"},
            )
        if (self.run is None) == (self.command is None):
            both = self.run is not None
            raise PydanticCustomError(
                "agent_target",
                "give exactly one of 'run' (module:function) and 'command' (argument list)"
                + ("; this agent has both" if both else "; this agent has neither"),
                {"key": "command" if both else ""},
            )
        return self

    def instances(self) -> list[str]:
        """Instance names: ``name`` alone, or ``name#1 .. name#N`` for replicas."""
        if self.replicas == 1:
            return [self.name]
        return [f"{self.name}#{i}" for i in range(1, self.replicas + 1)]

    def own_policy(self) -> dict[str, Any]:
        """The policy keys this agent sets itself (only those), as a partial policy dict."""
        out: dict[str, Any] = {}
        for section in SECTIONS:
            value = getattr(self, section)
            if value is not None:
                out[section] = value.model_dump(exclude_unset=True)
        if self.goal is not None:
            out["goal"] = self.goal
        return out


class FleetFile(_Model):
    """The whole of ``fleet.toml``."""

    fleet: FleetSettings = Field(default_factory=FleetSettings, description="Fleet-wide settings.")
    agent: list[AgentSpec] = Field(default_factory=list, description="The agents, one [[agent]] each.")


class OverridesFile(Policy):
    """``policies/overrides.toml``, written by the program (``set_override``).

    Top-level sections apply to every agent; ``[policy.<name>.<section>]`` to
    every agent using that policy (``policy.default`` to every agent);
    ``[agent.<name>.<section>]`` to one agent (all its replicas), and
    ``[agent."<name>#<i>".<section>]`` to one replica. Layered in that order, last of all.
    """

    agent: dict[str, Policy] = Field(default_factory=dict, description="Overrides per agent or replica name.")
    policy: dict[str, Policy] = Field(default_factory=dict, description="Overrides per policy name.")


#: Models documented in the README's policy reference, by the TOML table they describe.
POLICY_DOC_MODELS: dict[str, type[BaseModel]] = {
    "[fleet]": FleetSettings,
    "[[agent]]": AgentSpec,
    "[llm]": LLMPolicy,
    "[budget]": BudgetPolicy,
    "[tools]": ToolsPolicy,
    "[restart]": RestartPolicy,
    "[alerts]": AlertsPolicy,
    "[tasks]": TasksPolicy,
    "[limits]": LimitsPolicy,
    "top level": Policy,
}
