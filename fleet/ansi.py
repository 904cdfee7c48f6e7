"""Make agent output safe to paint: keep colours, neutralise everything else.

Agents are arbitrary programs. Their stdout may hold cursor moves, screen
clears, window-title changes (OSC 0), hyperlinks (OSC 8), clipboard writes
(OSC 52), device control strings or raw 8-bit C1 codes. Painted as-is into a
terminal UI they would corrupt the display or worse. ``sanitize`` keeps only
SGR colour/attribute sequences (so coloured output stays coloured) and turns
every other control into either nothing (complete escape sequences, whose
effect we refuse) or a visible picture (``␛``, ``␇``, ``␈``, ``␍`` ...) for
stray control characters, so that nothing is silently hidden from the operator.

Pure stdlib and line-agnostic: it runs once per log *chunk* (``\\n`` is kept),
with a fast path for the common case of text without any control character.
"""

from __future__ import annotations

import re

__all__ = ["sanitize", "strip_sgr"]

# Any C0 control but \t and \n, DEL, or any C1 control: the fast-path test.
_ANY_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# String introducers: OSC, DCS, SOS, PM, APC (7-bit ESC x and 8-bit forms).
# Their bodies run to ST (ESC \\ or 0x9c) or, for OSC, BEL; an unterminated one
# at the end of the text is swallowed whole (a partial sequence is not text).
_STRING = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c|\Z)"
# A nested ESC inside a string that is not ST ends the string early (as xterm does).
_STRING_BROKEN = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?=\x1b)"
# CSI: parameters, intermediates, final byte; or a partial CSI at the end.
_CSI = r"(?:\x1b\[|\x9b)[0-?]*[ -/]*(?:[@-~]|\Z)"
# Other escape sequences: ESC, intermediates, final (ESC 7, ESC c, ESC ( B ...).
_ESC = r"\x1b[ -/]*[0-~]"

_TOKEN = re.compile(f"({_STRING}|{_STRING_BROKEN}|{_CSI}|{_ESC})|([\x00-\x08\x0b-\x1f\x7f-\x9f])")
_SGR = re.compile(r"(?:\x1b\[|\x9b)([0-9;:]*)m\Z")
_SGR_ANYWHERE = re.compile(r"\x1b\[[0-9;:]*m")

# Visible stand-ins for stray controls: Unicode "Control Pictures" for C0/DEL.
_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)}
_PICTURES[0x7F] = "\u2421"  # ␡


def _picture(char: str) -> str:
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return _PICTURES[code]
    return "\ufffd"  # a lone C1 control has no picture of its own


def sanitize(text: str, keep_sgr: bool = True) -> str:
    """Return ``text`` with only SGR sequences (or none) left as controls.

    Args:
        text: decoded output of an agent; may hold many lines.
        keep_sgr: keep ``ESC [ … m`` colour sequences (normalised to 7-bit);
            with ``False`` they are removed too, leaving plain text.

    ``\\t`` and ``\\n`` pass through. A ``\\r`` right before ``\\n`` (CRLF) is
    dropped; any other ``\\r``, BEL, backspace, NUL, a lone ESC ... becomes its
    control picture (``␍ ␇ ␈ ␀ ␛``). Complete or truncated escape sequences
    other than SGR (cursor moves, clears, OSC titles/links/clipboard, DCS,
    8-bit C1 forms) are removed.
    """
    if not _ANY_CONTROL.search(text):
        return text
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    # Second fast path, the common case for coloured output: nothing but
    # well-formed 7-bit SGR sequences (checked with one C-level sub).
    if keep_sgr and not _ANY_CONTROL.search(_SGR_ANYWHERE.sub("", text)):
        return text

    def replace(match: re.Match[str]) -> str:
        sequence, control = match.group(1), match.group(2)
        if sequence is not None:
            if keep_sgr:
                sgr = _SGR.match(sequence)
                if sgr is not None:
                    return f"\x1b[{sgr.group(1)}m"
            return ""
        return _picture(control)

    return _TOKEN.sub(replace, text)


def strip_sgr(text: str) -> str:
    """Remove the SGR sequences ``sanitize`` kept: the plain text to measure or search."""
    if "\x1b" not in text:
        return text
    return _SGR_ANYWHERE.sub("", text)
