"""fleet.ansi.sanitize: only SGR survives; every other control is neutralised."""

from __future__ import annotations

import pytest

from fleet.ansi import sanitize, strip_sgr

ESC = "\x1b"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain text", "plain text"),
        ("tab\tkept\nnewline kept\n", "tab\tkept\nnewline kept\n"),
        # SGR colours are kept
        (f"{ESC}[31mred{ESC}[0m", f"{ESC}[31mred{ESC}[0m"),
        (f"{ESC}[1;38;5;208mx{ESC}[m", f"{ESC}[1;38;5;208mx{ESC}[m"),
        (f"{ESC}[38:2:1:2:3mtruecolor", f"{ESC}[38:2:1:2:3mtruecolor"),
        # 8-bit CSI SGR is normalised to 7-bit
        ("\x9b32mgreen", f"{ESC}[32mgreen"),
        # CSI cursor movement and positioning removed
        (f"a{ESC}[2Ab", "ab"),
        (f"a{ESC}[10;20Hb", "ab"),
        (f"a{ESC}[Gb{ESC}[3Cc{ESC}[sd{ESC}[ue", "abcde"),
        # ED / EL clears removed
        (f"{ESC}[2Jcleared{ESC}[K{ESC}[1K{ESC}[0J", "cleared"),
        # private modes (alt screen, hide cursor) and non-SGR 'm' (XTMODKEYS) removed
        (f"{ESC}[?1049h{ESC}[?25lx{ESC}[>4;2m", "x"),
        # OSC 0 (title) with BEL and with ST
        (f"{ESC}]0;pwned title\x07after", "after"),
        (f"{ESC}]0;pwned title{ESC}\\after", "after"),
        # OSC 8 hyperlink: the link target goes, the text stays
        (f"{ESC}]8;;http://evil.example/{ESC}\\click{ESC}]8;;{ESC}\\", "click"),
        # OSC 52 clipboard write
        (f"x{ESC}]52;c;ZWNobyBwd25lZA==\x07y", "xy"),
        # 8-bit OSC terminated by 8-bit ST
        ("a\x9d0;title\x9cb", "ab"),
        # DCS, SOS, PM, APC strings
        (f"a{ESC}P1$r0m{ESC}\\b", "ab"),
        ("a\x90qpayload\x9cb", "ab"),
        (f"a{ESC}Xsos{ESC}\\b{ESC}^pm{ESC}\\c{ESC}_apc{ESC}\\d", "abcd"),
        # other escape sequences: save cursor, reset, charset
        (f"a{ESC}7b{ESC}8c{ESC}cd{ESC}(Be", "abcde"),
        # lone ESC becomes visible
        (f"a{ESC}", "a␛"),
        (f"a{ESC}\nb", "a␛\nb"),
        # stray C0 controls become control pictures
        ("nul\x00bel\x07bs\x08", "nul␀bel␇bs␈"),
        ("progress 10%\rprogress 20%", "progress 10%␍progress 20%"),
        ("vt\x0bff\x0c", "vt␋ff␌"),
        ("del\x7f", "del␡"),
        # CRLF is just a line end
        ("windows\r\nline\r\n", "windows\nline\n"),
        # lone 8-bit C1 controls
        ("a\x85b\x8ec", "a\ufffdb\ufffdc"),
        # partial sequences at the end are dropped, not shown half-parsed
        (f"tail{ESC}[", "tail"),
        (f"tail{ESC}[12;3", "tail"),
        (f"tail{ESC}]0;unterminated title", "tail"),
        (f"tail{ESC}P unterminated dcs", "tail"),
        ("tail\x9b", "tail"),
        # a bad byte inside CSI ends it; the rest is shown as text
        (f"x{ESC}[12\x07y", "x12␇y"),
    ],
)
def test_sanitize(raw: str, expected: str) -> None:
    assert sanitize(raw) == expected


def test_sanitize_without_sgr_removes_colours() -> None:
    assert sanitize(f"{ESC}[31mred{ESC}[0m {ESC}[2Jx\x07", keep_sgr=False) == "red x␇"


def test_fast_path_returns_same_object() -> None:
    text = "no controls at all\n" * 10
    assert sanitize(text) is text


def test_output_has_no_controls_but_sgr() -> None:
    nasty = "".join(chr(c) for c in range(0, 0xA0)) * 3 + f"{ESC}[31m{ESC}]8;;x\x07"
    out = sanitize(nasty)
    for char in strip_sgr(out):
        code = ord(char)
        assert code in (9, 10) or 0x20 <= code < 0x7F or code >= 0xA0 or char == "\ufffd"


def test_nested_escape_in_string_ends_it() -> None:
    # xterm ends an OSC at any ESC; what follows is parsed again.
    assert sanitize(f"{ESC}]0;title{ESC}[31mred") == f"{ESC}[31mred"


def test_strip_sgr() -> None:
    assert strip_sgr(f"{ESC}[1;31mbold red{ESC}[0m") == "bold red"
    assert strip_sgr("plain") == "plain"
