"""On-call triage: a small interactive terminal program, run as a ``tty = true`` agent.

It insists on a terminal (``isatty``), draws with colours at the size it is
given, and waits at a prompt: the agent shows ``waiting`` and
``fleet attach triage`` (or ``enter`` on it in the console) gives the operator
its screen. ``ctrl+]`` detaches and leaves it running.
"""

from __future__ import annotations

import os
import sys

INCIDENTS = {
    "101": "checkout latency p99 above 2 s (eu-west)",
    "102": "nightly export late by 40 min",
    "103": "campaign-optimizer budget at 80 %",
}
BOLD, DIM, RED, GREEN, RESET = "\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[0m"


def show(acked: set[str]) -> None:
    cols = os.get_terminal_size().columns
    print(f"{BOLD}on-call triage{RESET} {DIM}({cols} columns){RESET}")
    for key, text in INCIDENTS.items():
        mark = f"{GREEN}acked{RESET}" if key in acked else f"{RED}open {RESET}"
        print(f"  {key}  {mark}  {text}")
    print(f"{DIM}commands: ack ID, list, help, quit{RESET}")


def main() -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("triage: needs a terminal (run it with tty = true)", file=sys.stderr)
        return 2
    acked: set[str] = set()
    show(acked)
    while True:
        try:
            line = input(f"{BOLD}triage>{RESET} ").strip()
        except EOFError:
            return 0
        cmd, _, arg = line.partition(" ")
        if cmd == "ack" and arg in INCIDENTS:
            acked.add(arg)
            print(f"{GREEN}acked {arg}{RESET}: {INCIDENTS[arg]}")
        elif cmd in ("list", "ls"):
            show(acked)
        elif cmd == "quit":
            return 0
        elif cmd:
            print("commands: ack ID, list, help, quit")


if __name__ == "__main__":
    sys.exit(main())
