"""The waiting probe on real processes, and the checks on what an operator sends or answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from fleet.asking import check_question, control_chars, match_choice
from fleet.errors import FleetError, ProtocolError
from fleet.supervisor.stdinwatch import blocked_on_input, process_tree


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_a_grandchild_blocked_on_the_pipe_is_seen_and_another_pipe_is_not() -> None:
    r, w = os.pipe()
    proc = subprocess.Popen(["sh", "-c", "sh -c 'read x; echo $x'"], stdin=r, stdout=subprocess.PIPE)
    os.close(r)
    link = f"pipe:[{os.fstat(w).st_ino}]"
    try:
        deadline = time.monotonic() + 10
        while not blocked_on_input(proc.pid, link):  # the shells take a moment to start
            assert time.monotonic() < deadline, "never seen blocked"
            time.sleep(0.01)
        assert len(process_tree(proc.pid)) == 2
        assert not blocked_on_input(proc.pid, "pipe:[1]")
        os.write(w, b"hi\n")
        assert proc.stdout is not None and proc.stdout.read() == b"hi\n"
    finally:
        os.close(w)
        proc.wait(5)


def test_control_characters_are_named_tab_is_not() -> None:
    assert control_chars("yes\tno") == []
    assert control_chars("a\x1b[2Jb\nc\x1b") == ["\\x1b", "\\n"]


def test_choices_match_exactly_ignoring_case_or_by_number() -> None:
    choices = ["emea", "APAC"]
    assert match_choice("emea", choices) == "emea"
    assert match_choice(" apac ", choices) == "APAC"
    assert match_choice("2", choices) == "APAC"
    with pytest.raises(FleetError, match="answer one of: emea, APAC"):
        match_choice("3", choices)


def test_questions_are_validated() -> None:
    assert check_question("Go?", None) == ("Go?", [])
    for question, choices in (("", None), ("q", ["a", "A"]), ("q", ["a", ""]), ("q", "ab"), ("x" * 3000, None)):
        with pytest.raises(ProtocolError):
            check_question(question, choices)
