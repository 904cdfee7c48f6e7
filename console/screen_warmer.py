"""Lay out and render a screen before it is shown, so showing it costs a repaint.

Why: an agent's detail screen is forty-odd widgets. Building it at ``enter``
took ~100 ms of CPU on an idle machine (compose and styles ~45 ms, the first
layout ~15 ms, the first render of every widget's lines ~15 ms, the paint the
rest), and under a log flood the console gets only part of a core, so the key
took up to 170 ms to answer. A screen shown before comes back in ~25 ms: Textual keeps
its layout for the size it was laid out at and each widget's rendered lines.
``warm`` gives a screen that was never shown the same state while the operator
is still looking at the fleet, so the first ``enter`` is as quick as the rest.

Textual has no public call for "compose, lay out and render, but do not show":
the steps below are the ones ``App.push_screen`` and the screen's first refresh
take (pinned Textual 8.2). If a later Textual lacks one of them, ``warm``
stops where it is and the screen is built the ordinary way when pushed:
slower, never wrong.
"""

from __future__ import annotations

from textual.app import App
from textual.screen import Screen


def _private(obj: object, name: str) -> object | None:
    return getattr(obj, name, None)


async def warm(app: App[object], screen: Screen[object]) -> bool:
    """Compose, mount, lay out and render the installed ``screen`` off the stack.

    Returns whether it got as far as rendering. The screen must already be
    installed (``App.install_screen``); it stays installed and not shown. If it
    is pushed meanwhile (the operator was quicker), warming stops: from then on
    the screen is Textual's ordinary business.
    """
    get_screen = _private(app, "_get_screen")
    load_css = _private(app, "_load_screen_css")
    if not callable(get_screen) or not callable(load_css):
        return False
    if not screen.is_running:
        _, mounted = get_screen(screen)  # registers the screen: its compose and mount run now
        await mounted
    if screen in app.screen_stack or not screen.is_attached:
        return False
    load_css(screen)
    refresh_layout = _private(screen, "_refresh_layout")
    compositor = _private(screen, "_compositor")
    render = _private(compositor, "render_full_update")
    if not callable(refresh_layout) or not callable(render):
        return False
    refresh_layout(app.size)  # not the current screen: lays out only, paints nothing
    render()  # fills each widget's cache of rendered lines; the update itself is dropped
    return True
