"""Who is calling: the per-run tokens that stand in for provider keys.

Every agent instance is started with a fresh random token in the variables its
client reads as an API key (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``). The
token names the instance to the gateway and is worth nothing anywhere else: it
is replaced when the instance starts again and revoked when its run ends, so a
token leaked in a log dies with the process that printed it. The table holds
one token per instance, never more.

Lookups go through a SHA-256 of the presented token (the dict never compares
secrets byte by byte) and end with :func:`hmac.compare_digest` against the
stored token, so the time taken does not reveal how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

#: Prefix of every token: recognisable in a leaked log, and never a real provider's.
TOKEN_PREFIX = "fleet-"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class _Entry:
    agent: str
    token: str


class AgentTokens:
    """Token table: at most one live token per agent instance."""

    def __init__(self) -> None:
        self._by_digest: dict[bytes, _Entry] = {}
        self._by_agent: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._by_agent)

    def issue(self, agent: str) -> str:
        """A new token for ``agent``'s next run (256 random bits); its previous token stops working."""
        self.revoke(agent)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = _digest(token)
        self._by_digest[digest] = _Entry(agent, token)
        self._by_agent[agent] = digest
        return token

    def revoke(self, agent: str) -> None:
        """``agent``'s run ended: its token no longer authenticates anything."""
        digest = self._by_agent.pop(agent, None)
        if digest is not None:
            self._by_digest.pop(digest, None)

    def resolve(self, token: str | None) -> str | None:
        """The agent instance holding ``token``, or None (no token, unknown, or revoked)."""
        if not token or len(token) > 256:
            return None
        entry = self._by_digest.get(_digest(token))
        if entry is None or not hmac.compare_digest(entry.token.encode(), token.encode("utf-8", "replace")):
            return None
        return entry.agent


def token_from_headers(authorization: str | None, api_key: str | None) -> str | None:
    """The token a client sent: ``Authorization: Bearer T`` (OpenAI clients) or ``x-api-key: T`` (Anthropic)."""
    if api_key:
        return api_key.strip()
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None
