"""Make agent output safe to paint: keep colours, neutralise everything else.

Agents are arbitrary programs. Their stdout may hold cursor moves, screen
clears, window-title changes (OSC 0), hyperlinks (OSC 8), clipboard writes
(OSC 52), device control strings or raw 8-bit C1 codes. Painted as-is into a
terminal UI they would corrupt the display or worse. ``sanitize`` keeps only
SGR colour/attribute sequences (so coloured output stays coloured) and turns
every other control into either nothing (complete escape sequences, whose
effect we refuse) or a visible picture (``␛``, ``␇``, ``␈``, ``␍`` ...) for
stray control characters, so that nothing is silently hidden from the operator.

Pure stdlib. It runs once per log *chunk*, but cleans line by line: no
sequence runs across a newline (an unterminated OSC or DCS ends with its
line, as the store's line numbers say it must), and every ``\\n`` in is a
``\\n`` out, so a chunk of N lines stays N lines. Two more ways of hiding text
from the operator are neutralised: concealed text (SGR 8) is shown, and
bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069), which
reorder what is painted, are removed. A fast path skips text without any
control character.
"""

from __future__ import annotations

import re

__all__ = ["BIDI_CONTROLS", "sanitize", "strip_sgr"]

#: Bidirectional embeddings, overrides and isolates: they reorder the text painted around them.
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")

# Any C0 control but \t and \n, DEL, any C1 control or a bidi control: the fast-path test.
_ANY_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}]")

# String introducers: OSC, DCS, SOS, PM, APC (7-bit ESC x and 8-bit forms).
# Their bodies run to ST (ESC \\ or 0x9c) or, for OSC, BEL; an unterminated one
# is swallowed up to the end of its line (a partial sequence is not text), never
# further: the next line is the next line whatever the previous one held.
_STRING = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c|(?=\n)|\Z)"
# A nested ESC inside a string that is not ST ends the string early (as xterm does).
_STRING_BROKEN = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?=\x1b)"
# CSI: parameters, intermediates, final byte; or a partial CSI at the end of its line.
_CSI = r"(?:\x1b\[|\x9b)[0-?]*[ -/]*(?:[@-~]|(?=\n)|\Z)"
# Other escape sequences: ESC, intermediates, final (ESC 7, ESC c, ESC ( B ...).
_ESC = r"\x1b[ -/]*[0-~]"

_TOKEN = re.compile(
    f"({_STRING}|{_STRING_BROKEN}|{_CSI}|{_ESC})|([\x00-\x08\x0b-\x1f\x7f-\x9f])|([{BIDI_CONTROLS}])"
)
_SGR = re.compile(r"(?:\x1b\[|\x9b)([0-9;:]*)m\Z")
_SGR_ANYWHERE = re.compile(r"\x1b\[[0-9;:]*m")
# An SGR that could conceal text: a parameter 8 (or 08) somewhere in it.
_MAYBE_CONCEAL = re.compile(r"\x1b\[[0-9;:]*(?<![0-9])0*8(?![0-9])[0-9;:]*m")

# Visible stand-ins for stray controls: Unicode "Control Pictures" for C0/DEL.
_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)}
_PICTURES[0x7F] = "\u2421"  # ␡


def _unconceal(params: str) -> str | None:
    """``params`` of an SGR without its "conceal" (8); None when nothing else is left.

    The 8 in ``38;5;8`` (colour number 8) is an argument, not a conceal: the
    extended colour forms (38/48/58 followed by ;5;N or ;2;R;G;B) are skipped whole.
    """
    parts = params.split(";")
    kept: list[str] = []
    i = 0
    while i < len(parts):
        part = parts[i]
        head = part.split(":", 1)[0].lstrip("0")
        if head in ("38", "48", "58") and ":" not in part and i + 1 < len(parts):
            span = 3 if parts[i + 1] == "5" else 5 if parts[i + 1] == "2" else 1
            kept.extend(parts[i : i + span])
            i += span
            continue
        if head != "8" or ":" in part:
            kept.append(part)
        i += 1
    if len(kept) == len(parts):
        return params
    return ";".join(kept) if kept else None


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
    8-bit C1 forms) are removed; an unterminated one ends with its line. The
    conceal attribute (8) is dropped from SGR sequences and bidi controls are
    removed. The result holds exactly as many ``\\n`` as ``text``.
    """
    if not _ANY_CONTROL.search(text):
        return text
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    # Second fast path, the common case for coloured output: nothing but
    # well-formed 7-bit SGR sequences (checked with one C-level sub), none concealing.
    if keep_sgr and not _ANY_CONTROL.search(_SGR_ANYWHERE.sub("", text)) and not _MAYBE_CONCEAL.search(text):
        return text

    def replace(match: re.Match[str]) -> str:
        sequence, control = match.group(1), match.group(2)
        if sequence is not None:
            if keep_sgr:
                sgr = _SGR.match(sequence)
                if sgr is not None:
                    params = _unconceal(sgr.group(1))
                    return "" if params is None else f"\x1b[{params}m"
            return ""
        if control is None:  # a bidi control: reorders the line, shows nothing
            return ""
        return _picture(control)

    return _TOKEN.sub(replace, text)


def strip_sgr(text: str) -> str:
    """Remove the SGR sequences ``sanitize`` kept: the plain text to measure or search."""
    if "\x1b" not in text:
        return text
    return _SGR_ANYWHERE.sub("", text)
