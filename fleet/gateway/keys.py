"""Provider keys: who holds them, and how they never leak.

The gateway is the only component that talks to LLM providers, so it is the
only one that holds keys. They come from the supervisor's environment and,
optionally, from a ``.env`` file whose path is given to the gateway; that file
is parsed here into the gateway's own dict and never copied into
``os.environ`` (agents inherit the supervisor's environment, so writing keys
there would hand them to every agent). :func:`strip_provider_keys` gives the
supervisor an environment for agents with the keys removed, and
:class:`Redactor` scrubs keys out of provider error messages before they reach
an agent, a log line or the store.

A key need not appear verbatim to be shown: an agent can print it with
escape sequences, bidi or zero-width characters between its letters (the
terminal paints them as nothing, so the operator reads the key), or let the
64 KiB line cut fall inside it. The redactor matches what is *painted* (the
text with those invisible pieces taken out) and the part of a key left
before a cut marker. Everything an agent sends that can be stored or shown
(log lines, alerts, metric names, task payloads and results, approval
arguments) goes through it: ``scrub`` for output bytes, ``value`` for the
JSON it sends over its channel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: Environment variable names that carry provider credentials or endpoints.
_KEY_NAME = re.compile(
    r"^[A-Z0-9_]*("
    r"_API_KEY|_API_BASE|_API_VERSION|_API_TOKEN|_ACCESS_KEY_ID|_SECRET_ACCESS_KEY|_SESSION_TOKEN"
    r"|_SECRET_KEY|_AUTH_TOKEN|_PROJECT_ID|_ORG_ID|_ORGANIZATION"
    r")$"
)
#: Strings that look like secrets whatever their origin (OpenAI/Anthropic style ``sk-...``).
_SECRET_LOOKING = re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}|\b[Bb]earer\s+[A-Za-z0-9._\-]{8,}")
#: Literal key values shorter than this are not redacted (they would mangle ordinary words).
MIN_LITERAL_LEN = 8
REDACTED = "[REDACTED]"


#: Whole provider namespaces (any variable of theirs may carry a credential) and generic secrets.
_PROVIDER_PREFIX = re.compile(
    r"^(OPENAI|ANTHROPIC|AZURE_OPENAI|GEMINI|GOOGLE_API|COHERE|MISTRAL|GROQ|TOGETHER|DEEPSEEK|XAI|HF|"
    r"HUGGINGFACE|AWS)_|_SECRET$"
)


def is_provider_key_name(name: str) -> bool:
    """True for names like ``OPENAI_API_KEY``, ``AZURE_API_BASE``, ``AWS_SECRET_ACCESS_KEY``."""
    upper = name.upper()
    return (
        bool(_KEY_NAME.match(upper))
        or bool(_PROVIDER_PREFIX.search(upper))
        or upper in {"HF_TOKEN", "HUGGINGFACE_API_KEY"}
    )


#: Of those, the names whose value is a credential (what the redactor must hide): not a
#: region, a profile, an endpoint or a CA bundle path, which would otherwise be cut out
#: of ordinary log text (``AWS_CA_BUNDLE=/etc/ssl/...`` turned every mention of that
#: path into ``[REDACTED]``) and cost a scan of every log chunk for nothing.
_SECRET_WORD = re.compile(r"(?:^|_)(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)(?:$|_)|_KEY_ID$")


def is_secret_name(name: str) -> bool:
    """True for provider variables holding a credential: ``OPENAI_API_KEY``, ``HF_TOKEN``, ``AWS_SESSION_TOKEN``."""
    upper = name.upper()
    return is_provider_key_name(upper) and bool(_SECRET_WORD.search(upper))


def strip_provider_keys(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` without provider credentials: the environment to give agents."""
    return {k: v for k, v in env.items() if not is_provider_key_name(k)}


def parse_env_file(path: str | Path) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=value`` lines, ``export`` prefixes, quotes, ``#`` comments.

    Deliberately small (no interpolation): keys are data, not shell.
    Raises ``OSError`` when the file cannot be read.
    """
    out: dict[str, str] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].rstrip()
        out[name] = value
    return out


def collect_keys(environ: Mapping[str, str], env_file: str | Path | None = None) -> dict[str, str]:
    """Provider keys from the environment, overridden by the ``.env`` file if given."""
    keys = {k: v for k, v in environ.items() if is_provider_key_name(k) and v}
    if env_file is not None:
        keys.update({k: v for k, v in parse_env_file(env_file).items() if v})
    return keys


_REDACTED_RAW = REDACTED.encode()

try:  # a view of a pipe read has no ``in``: search it without copying it
    from stringzilla import find as _sz_find

    def _contains(data: bytes | memoryview, needle: bytes) -> bool:
        return bool(_sz_find(data, needle) != -1)
except ImportError:  # pragma: no cover - stringzilla is a dependency

    def _contains(data: bytes | memoryview, needle: bytes) -> bool:
        return needle in bytes(data)


#: What a terminal paints as nothing: escape sequences (7-bit, and 8-bit C1 forms after
#: decoding), bidi controls and zero-width characters. A key with these between its
#: letters is shown as the key.
_INVISIBLE = re.compile(
    "(?:\x1b\\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI, complete or cut short
    "|(?:\x1b[\\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\\\|\x9c)?"  # OSC, DCS, ...
    "|\x1b[ -/]*[0-~]"  # other escapes
    "|[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]"
)
#: The first byte of everything ``_INVISIBLE`` matches, as UTF-8 (ESC; U+0080-U+00BF; U+2000-U+206F;
#: the BOM): between two letters of a key hidden from the eye there is always one of them.
_INTRODUCERS = (b"\x1b", b"\xc2", b"\xe2", b"\xef")
#: The same pieces as bytes, for the one regex pass over a chunk that may hide a key.
_INVISIBLE_B = (
    rb"(?:\x1b(?:\[[0-?]*[ -/]*[@-~]?|[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[ -/]*[0-~])"
    rb"|\xc2\x9b[0-?]*[ -/]*[@-~]?|\xc2[\x90\x98\x9d\x9e\x9f][^\x07\x1b\n]*(?:\x07|\x1b\\|\xc2\x9c)?"
    rb"|\xc2[\x80-\x9f\xad]|\xe2\x80[\x8b-\x8f\xaa-\xae]|\xe2\x81[\xa0-\xa4\xa6-\xa9]|\xef\xbb\xbf)"
)
#: Places in a key whose neighbourhood is probed before the regex runs.
_PROBES = 4
#: The marker the log pipe puts after a line cut at 64 KiB (see ``fleet.supervisor.logpipe``).
_CUT_MARKER = b" [\xe2\x80\xa6 line cut at 64 KiB]"
#: The shortest part of a key, left before a cut, that is redacted.
MIN_CUT_PREFIX = 4


def _probes(raw: bytes) -> list[tuple[bytes, ...]]:
    """For a few letters of a key: the pair it makes with the next one, and it before an introducer."""
    n = len(raw)
    places = sorted({min(n - 2, (n - 1) * j // _PROBES) for j in range(_PROBES)})
    return [(raw[i : i + 2], *(raw[i : i + 1] + b for b in _INTRODUCERS)) for i in places]


def _hidden_pattern(raw: bytes) -> re.Pattern[bytes]:
    """The key's letters with any run of invisible pieces between them."""
    return re.compile(f"{_INVISIBLE_B.decode('latin-1')}*".encode("latin-1").join(
        re.escape(raw[i : i + 1]) for i in range(len(raw))))


class Redactor:
    """Replace anything that looks like a key, or equals a loaded one, with ``[REDACTED]``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._literals: list[str] = []
        self._raw: list[bytes] = []
        self._hidden: list[tuple[list[tuple[bytes, ...]], re.Pattern[bytes]]] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        found = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_LITERAL_LEN}
        # Longest first, so a key that contains another is replaced whole.
        self._literals = sorted(set(self._literals) | found, key=len, reverse=True)
        self._raw = [s.encode() for s in self._literals]
        self._hidden = [(_probes(raw), _hidden_pattern(raw)) for raw in self._raw]

    def scrub(self, data: bytes | memoryview) -> bytes | memoryview:
        """``__call__`` for the log hot path, on the bytes as read: the known secrets only.

        Searching for a long literal skips ahead by its length and costs a few
        microseconds per 256 KiB; the short needles of the key-shaped heuristic
        ("sk-", "Bearer") cost ~250 µs per 256 KiB, a third of a CPU-second over a
        400 MB flood. Agents never receive the keys the gateway holds, so those
        literals are what could leak; the heuristic stays on gateway messages.
        """
        if not self._raw:
            return data
        for secret in self._raw:
            if _contains(data, secret):
                data = bytes(data).replace(secret, _REDACTED_RAW)
        data = self._scrub_hidden(data)
        if _contains(data, _CUT_MARKER):
            data = self._scrub_cut(bytes(data))
        return data

    def _scrub_hidden(self, data: bytes | memoryview) -> bytes | memoryview:
        """Redact keys split by invisible pieces (escape sequences, zero-width or bidi characters).

        Where a key is painted whole, each of its letters is followed in the raw
        bytes by the next letter or by the first byte of an invisible piece. So
        a few of its letter pairs are probed first (~5 SIMD searches each): a
        coloured flood that holds no key fails there in microseconds
        (~0.1 ms per 256 KiB in all). Only a chunk that passes is searched with
        the key's own pattern (its letters, any invisible pieces between them),
        and each match, pieces and all, becomes ``[REDACTED]``.
        """
        if not any(_contains(data, b) for b in _INTRODUCERS):  # plain text hides nothing
            return data
        for probes, pattern in self._hidden:
            if all(any(_contains(data, needle) for needle in needles) for needles in probes):
                raw = data if isinstance(data, bytes) else bytes(data)
                redacted, n = pattern.subn(_REDACTED_RAW, raw)
                if n:
                    data = redacted
        return data

    def _hides_secret(self, text: str) -> bool:
        if not _INVISIBLE.search(text):
            return False
        painted = _INVISIBLE.sub("", text)
        return any(secret in painted for secret in self._literals)

    def _scrub_cut(self, data: bytes) -> bytes:
        """Redact the head of a key left right before a line-cut marker."""
        longest = max(len(s) for s in self._raw)
        out = bytearray()
        pos = 0
        while True:
            cut = data.find(_CUT_MARKER, pos)
            if cut == -1:
                break
            head = data[pos:cut]
            for secret in self._raw:
                k = next((k for k in range(min(len(secret) - 1, longest, len(head)), MIN_CUT_PREFIX - 1, -1)
                          if head.endswith(secret[:k])), 0)
                if k:
                    head = head[:-k] + _REDACTED_RAW
                    break
            out += head + _CUT_MARKER
            pos = cut + len(_CUT_MARKER)
        if not out:
            return data
        out += data[pos:]
        return bytes(out)

    def text(self, text: str) -> str:
        """The known keys out of ``text``, also where invisible pieces split them (no heuristic)."""
        if not self._literals:
            return text
        for secret in self._literals:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if self._hides_secret(text):
            painted = _INVISIBLE.sub("", text)
            for secret in self._literals:
                painted = painted.replace(secret, REDACTED)
            text = painted
        return text

    def value(self, value: Any) -> Any:
        """``value`` (JSON from an agent: dicts, lists, strings...) with every string through ``text``.

        Dict keys too. Walks without recursion, so however deep an agent nests
        its JSON the walk cannot overflow the stack. Without keys loaded it is
        the identity.
        """
        if not self._literals:
            return value
        if isinstance(value, str):
            return self.text(value)
        if not isinstance(value, dict | list):
            return value
        root: list[Any] = [value]
        stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]  # (parent, key in parent, node)
        while stack:
            parent, key, node = stack.pop()
            if isinstance(node, dict):
                new: dict[Any, Any] = {}
                for k, v in node.items():
                    new[self.text(k) if isinstance(k, str) else k] = v
                parent[key] = new
                for k, v in new.items():
                    if isinstance(v, str):
                        new[k] = self.text(v)
                    elif isinstance(v, dict | list):
                        stack.append((new, k, v))
            elif isinstance(node, list):
                items = list(node)
                parent[key] = items
                for i, v in enumerate(items):
                    if isinstance(v, str):
                        items[i] = self.text(v)
                    elif isinstance(v, dict | list):
                        stack.append((items, i, v))
        return root[0]

    def __call__(self, text: str, extra: Iterable[str] = ()) -> str:
        for secret in (*self._literals, *(s for s in extra if s and len(s) >= MIN_LITERAL_LEN)):
            text = text.replace(secret, REDACTED)
        return _SECRET_LOOKING.sub(REDACTED, text)


#: Provider -> the variables any one of which carries its key (what litellm reads).
PROVIDER_KEY_VARS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "cohere": ("COHERE_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY"),
}
#: Bare model names whose provider is known by their prefix.
_BARE_PREFIXES = (("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"),
                  ("chatgpt-", "openai"), ("claude", "anthropic"), ("gemini", "gemini"))  # fmt: skip


def missing_key(model: str, keys: Mapping[str, str]) -> str | None:
    """Why ``model`` cannot be called with ``keys``, or None (it can, or its provider is unknown here).

    A cheap check without importing litellm, for the console's model list and
    the quick edit that switches a model: ``"no OPENAI_API_KEY set (...)"``.
    """
    provider, sep, _rest = model.partition("/")
    if not sep:
        provider = next((p for prefix, p in _BARE_PREFIXES if model.startswith(prefix)), "")
    wanted = PROVIDER_KEY_VARS.get(provider)
    if not wanted or any(keys.get(name) for name in wanted):
        return None
    return f"no {' or '.join(wanted)} set (fleet environment or .env)"
