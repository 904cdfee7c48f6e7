"""The README's promises that code can check."""

from __future__ import annotations

from pathlib import Path

from fleet.policy.reference import END, START, render_reference

README = Path(__file__).resolve().parent.parent / "README.md"


def test_policy_reference_is_generated_from_the_schema():
    text = README.read_text()
    section = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert section == render_reference().strip(), "run: python -m fleet.policy.reference --update README.md"


def test_readme_names_the_two_setup_commands():
    text = README.read_text()
    assert 'pip install -e . && fleet ' in text
    assert 'pip install -e ".[test]" && pytest' in text
