"""``fleet attach NAME``: a live terminal to a tty agent, from any shell.

The local terminal goes into raw mode; keystrokes go to the agent's
pseudo-terminal as they are typed, its screen comes back as it draws it, and a
resize of the local window is passed on (SIGWINCH). ``ctrl+]`` detaches (as
telnet and docker do) and leaves the agent running. The wire is described in
``fleet.supervisor.ttyattach``. Blocking sockets and ``selectors``: no event
loop to start, so attaching is immediate.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import sys

import click

from fleet.cli import EXIT_NOT_RUNNING, Ctx, fail, pass_ctx, run_client

DETACH = 0x1D  # ctrl+]


def _frame_input(data: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(data), 65535):
        part = data[i : i + 65535]
        out += struct.pack("!BH", 0, len(part)) + part
    return bytes(out)


def _frame_resize(cols: int, rows: int) -> bytes:
    return struct.pack("!BHH", 1, cols, rows)


@click.command()
@click.argument("name")
@click.option("--read-only", is_flag=True, help="Watch only: never type to it.")
@pass_ctx
def attach(ctx: Ctx, name: str, read_only: bool) -> None:
    """A live terminal to tty agent NAME (ctrl+] detaches; the agent keeps running)."""
    status = run_client(ctx, lambda c: c.call("status"))
    agents = [a for a in status["agents"] if a["name"] == name or a.get("group") == name]
    if not agents:
        fail(f"no agent named {name!r}")
    if len(agents) > 1:
        fail(f"{name!r} has {len(agents)} replicas: name one ({agents[0]['name']}, …)")
    agent = agents[0]
    if not agent.get("tty"):
        fail(f"{agent['name']} is not a terminal agent: `fleet logs -f {agent['name']}` is the way to follow it "
             f"(and `fleet send {agent['name']} TEXT` to type to it)")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail("fleet attach needs a terminal (to watch from a script: `fleet logs -f NAME`)")
    sys.exit(_attach(ctx, agent["name"], read_only))


def _attach(ctx: Ctx, name: str, read_only: bool) -> int:
    import termios
    import tty

    path = ctx.state_dir() / "attach.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        fail(f"no fleet is running in {ctx.fleet_dir}", EXIT_NOT_RUNNING)
    cols, rows = os.get_terminal_size(sys.stdout.fileno())
    sock.sendall(json.dumps({"agent": name, "cols": cols, "rows": rows, "write": not read_only}).encode() + b"\n")
    buf = b""
    while b"\n" not in buf:
        data = sock.recv(65536)
        if not data:
            fail("the fleet closed the connection")
        buf += data
    line, rest = buf.split(b"\n", 1)
    hello = json.loads(line)
    if not hello.get("ok"):
        fail(hello.get("error") or "attach refused")
    mode = hello.get("mode")
    note = "read-only: another terminal is typing to it" if mode == "ro" and not read_only else (
        "read-only" if mode == "ro" else "ctrl+] detaches")
    sys.stderr.write(f"[attached to {name} ({hello.get('state')}); {note}]\r\n")
    sys.stderr.flush()

    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(stdin)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    old_winch = signal.signal(signal.SIGWINCH, lambda *_: None)
    old_wakeup = signal.set_wakeup_fd(wake_w)
    sel = selectors.DefaultSelector()
    sel.register(stdin, selectors.EVENT_READ, "keys")
    sel.register(sock, selectors.EVENT_READ, "screen")
    sel.register(wake_r, selectors.EVENT_READ, "winch")
    ended = "detached"
    try:
        tty.setraw(stdin)
        if rest:
            os.write(stdout, rest)
        while True:
            for key, _ in sel.select():
                if key.data == "screen":
                    data = sock.recv(65536)
                    if not data:
                        ended = "the fleet closed the connection"
                        return 1
                    os.write(stdout, data)
                elif key.data == "keys":
                    data = os.read(stdin, 4096)
                    if not data:
                        return 0
                    cut = data.find(bytes([DETACH]))
                    if cut >= 0:
                        if cut and mode == "rw":
                            sock.sendall(_frame_input(data[:cut]))
                        return 0
                    if mode == "rw":
                        sock.sendall(_frame_input(data))
                else:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                    c, r = os.get_terminal_size(stdout)
                    sock.sendall(_frame_resize(c, r))
    finally:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        signal.set_wakeup_fd(old_wakeup)
        signal.signal(signal.SIGWINCH, old_winch)
        sel.close()
        sock.close()
        os.close(wake_r)
        os.close(wake_w)
        suffix = "; it keeps running" if ended == "detached" else ""
        sys.stderr.write(f"\r\n[{ended} from {name}{suffix}]\r\n" if ended == "detached" else f"\r\n[{ended}]\r\n")
        sys.stderr.flush()
