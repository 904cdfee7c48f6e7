"""Escape cleaning is per line: whatever one line holds, the next line survives.

Regressions of issue 22 (an unterminated OSC/DCS made the console's live pane
drop every following line of the chunk; concealed text and bidi overrides
reached the screen) and property tests: as many lines out as in, and no
ESC (but SGR), C1 or bidi control survives.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.logring import Block
from fleet.ansi import BIDI_CONTROLS, sanitize

ESC = "\x1b"

_PIECES = [
    "a", "line", " ", "\t", "\n", "\r\n", "\r", "\x07", "\x00", "\x7f", ESC, f"{ESC}[", f"{ESC}]", f"{ESC}]0;",
    f"{ESC}P", f"{ESC}X", f"{ESC}^", f"{ESC}_", f"{ESC}\\", "\x9b", "\x9d", "\x90", "\x9c", "\x85", "\x9f",
    f"{ESC}[31m", f"{ESC}[8m", f"{ESC}[1;8m", f"{ESC}[38;5;8m", f"{ESC}[0m", f"{ESC}[2J", "m", ";", "8", "[",
    "\u202e", "\u202a", "\u2066", "\u2069", "é", "界", "😀",
]
texts = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join) | st.text(max_size=200)

_C1 = re.compile("[\x80-\x9f]")
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")
_SGR = re.compile(r"\x1b\[([0-9;:]*)m")


@settings(max_examples=400, deadline=None)
@given(texts)
def test_line_count_in_is_line_count_out(text: str) -> None:
    for keep in (True, False):
        assert sanitize(text, keep_sgr=keep).count("\n") == text.count("\n")


@settings(max_examples=400, deadline=None)
@given(texts)
def test_no_escape_c1_or_bidi_survives(text: str) -> None:
    plain = sanitize(text, keep_sgr=False)
    assert ESC not in plain and not _C1.search(plain) and not _BIDI.search(plain)
    coloured = sanitize(text)
    assert not _C1.search(coloured) and not _BIDI.search(coloured)
    # The only escapes left are SGR sequences, and none of them conceals.
    rest = _SGR.sub("", coloured)
    assert ESC not in rest
    for params in _SGR.findall(coloured):
        parts = params.split(";")
        i = 0
        while i < len(parts):
            if parts[i] in ("38", "48", "58") and i + 1 < len(parts):
                i += 3 if parts[i + 1] == "5" else 5 if parts[i + 1] == "2" else 1
                continue
            assert parts[i].lstrip("0") != "8", coloured
            i += 1


@settings(max_examples=200, deadline=None)
@given(st.lists(texts, min_size=1, max_size=8))
def test_each_line_is_cleaned_as_if_alone(lines: list[str]) -> None:
    """Cleaning a chunk is cleaning its lines one by one: nothing runs across a newline."""
    lines = [ln.replace("\n", "").replace("\r", "") for ln in lines]
    chunk = "\n".join(lines) + "\n"
    assert sanitize(chunk) == "\n".join(sanitize(ln) for ln in lines) + "\n"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"a{ESC}]0;unterminated title\nsecond\nthird\n", "a\nsecond\nthird\n"),
        (f"a{ESC}P unterminated dcs\nsecond\n", "a\nsecond\n"),
        ("a\x9d8-bit osc\nsecond\n", "a\nsecond\n"),
        (f"a{ESC}_apc{ESC}\nb\n", "a␛\nb\n"),  # the stray ESC that broke the string is shown
        (f"{ESC}[8msecret{ESC}[0m", f"secret{ESC}[0m"),
        (f"{ESC}[1;8;31mx", f"{ESC}[1;31mx"),
        (f"{ESC}[38;5;8mgrey", f"{ESC}[38;5;8mgrey"),
        ("\u202eevil\u202c txt", "evil txt"),
        ("\u2066iso\u2069", "iso"),
    ],
)
def test_regressions(raw: str, expected: str) -> None:
    assert sanitize(raw) == expected


def test_the_live_pane_keeps_every_line_after_an_unterminated_osc() -> None:
    text = f"one{ESC}]8;;http://x\ntwo\nthree{ESC}P\nfour\n"
    block = Block.from_chunk({"agent": "a", "stream": "stdout", "first_seq": 10, "count": 4, "ts": 0.0,
                              "text": text})
    assert block.lines == ["one", "two", "three", "four"]
    assert block.first_seq + len(block.lines) - 1 == 13  # the block still matches its line numbers
