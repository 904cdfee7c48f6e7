"""The policy editor: the fleet's TOML files, validated as you type.

Validation is the fleet's job (``policy_check``), never re-implemented here:
the console debounces edits (0.4 s) and shows the first error in a status
line and as a tinted row at its line in the editor. ``ctrl+s`` writes through
``policy_write``; the write is only *confirmed* by the fleet's
``policy_applied`` event (or explained by ``policy_error``), because the fleet
may reject a file the checker accepted in isolation (e.g. a cross-file
reference). The screen asks the app for every read and write
(``ConsoleApp.policy_files`` ...): it never calls the client.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.strip import Strip
from textual.timer import Timer
from textual.widgets import OptionList, Static, TextArea
from textual.widgets.option_list import Option

from console.contract import ConsoleApp, app_of
from console.widgets.footer import FleetFooter
from console.widgets.nav import NavList

CHECK_DELAY_S = 0.4


class PolicyEditor(TextArea):
    """A TOML ``TextArea`` that tints the row of the current error."""

    error_line: int | None = None  # 1-based, as the fleet reports it

    def set_error_line(self, line: int | None) -> None:
        if line != self.error_line:
            self.error_line = line
            self._line_cache.clear()
            self.refresh()

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if self.error_line is None or self.soft_wrap:
            return strip
        if int(self.scroll_offset.y) + y != self.error_line - 1:
            return strip
        theme = self.app.current_theme
        background = Color.parse(theme.background or "black")
        tint = background.blend(Color.parse(theme.error or "red"), 0.35)
        post = Style(bgcolor=tint.rich_color)
        return Strip(Segment.apply_style(list(strip), post_style=post), strip.cell_length)


class PolicyScreen(Screen[None]):
    """Edit ``fleet.toml`` and ``policies/*.toml`` with live validation."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "leave", "Back"),
        Binding("ctrl+o", "focus_files", "Files", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, str] = {}
        self.saved: dict[str, str] = {}
        self.path: str | None = None
        self.errors: list[dict[str, Any]] = []
        self._check_timer: Timer | None = None
        self._leave_armed = False

    @property
    def console_app(self) -> ConsoleApp:
        return app_of(self)

    def compose(self) -> ComposeResult:
        yield Static(" Policy", id="policy-title", classes="screen-title")
        with Horizontal(id="policy-body"):
            yield NavList(id="policy-files")
            with Vertical(id="policy-edit"):
                yield PolicyEditor.code_editor("", language="toml", id="policy-editor", soft_wrap=False)
                yield Static("loading…", id="policy-status")
        yield FleetFooter()

    @property
    def editor(self) -> PolicyEditor:
        return self.query_one(PolicyEditor)

    def on_mount(self) -> None:
        self.editor.cursor_blink = False
        self.load_files()

    @work(group="policy-files", exclusive=True, exit_on_error=False)
    async def load_files(self) -> None:
        result = await self.console_app.policy_files()
        files = result.get("files", [])
        self.files = {f["path"]: f["text"] for f in files}
        self.saved = dict(self.files)
        options = self.query_one("#policy-files", OptionList)
        options.clear_options()
        options.add_options([Option(Text(path), id=path) for path in self.files])
        if files:
            options.highlighted = 0
            self.open_file(files[0]["path"])
            self.editor.focus()

    def open_file(self, path: str) -> None:
        if self.path is not None:
            self.files[self.path] = self.editor.text
        self.path = path
        self.editor.load_text(self.files.get(path, ""))
        self.errors = []
        self.editor.set_error_line(None)
        self._update_status()
        self.schedule_check()

    @on(OptionList.OptionSelected, "#policy-files")
    def _file_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id and event.option.id != self.path:
            self.open_file(event.option.id)
            self.editor.focus()

    @on(TextArea.Changed, "#policy-editor")
    def _changed(self) -> None:
        if self.path is not None:
            self.files[self.path] = self.editor.text
            self._leave_armed = False
            self._update_status()
            self.schedule_check()

    def schedule_check(self) -> None:
        if self._check_timer is not None:
            self._check_timer.stop()
        self._check_timer = self.set_timer(CHECK_DELAY_S, self.check_now)

    def check_now(self) -> None:
        if self.path is not None:
            self.check(self.path, self.editor.text)

    @work(group="policy-check", exclusive=True, exit_on_error=False)
    async def check(self, path: str, text: str) -> None:
        result = await self.console_app.policy_check(path, text)
        if path == self.path and text == self.editor.text:
            self.show_errors(result.get("errors", []))

    def show_errors(self, errors: list[dict[str, Any]]) -> None:
        self.errors = [e for e in errors if e.get("path") in (None, self.path)] or errors
        first = self.errors[0] if self.errors else None
        self.editor.set_error_line(int(first["line"]) if first and first.get("line") else None)
        self._update_status()

    def _update_status(self, note: str = "") -> None:
        status = self.query_one("#policy-status", Static)
        path = self.path or "-"
        dirty = self.path is not None and self.files.get(path) != self.saved.get(path)
        text = Text.assemble((f" {path}", "bold"), (" ● modified" if dirty else "", "yellow"), "  ")
        if self.errors:
            e = self.errors[0]
            more = f" (+{len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            text.append(f"✖ {e.get('line')}:{e.get('col')}: {e.get('message')}{more}", style="bold red")
        else:
            text.append("✔ valid", style="green")
        if note:
            text.append(f"  {note}", style="italic")
        status.update(text)
        self.query_one("#policy-title", Static).update(
            f" Policy v{self.console_app.status.get('policy_version', '?')} — ctrl+s save, esc back"
        )

    def action_save(self) -> None:
        if self.path is not None:
            self.save(self.path, self.editor.text)

    @work(group="policy-write", exclusive=True, exit_on_error=False)
    async def save(self, path: str, text: str) -> None:
        result = await self.console_app.policy_write(path, text)
        errors = result.get("errors", [])
        if errors:
            self.show_errors(errors)
            self.notify(f"{path} not saved: {errors[0].get('message')}", severity="error", markup=False)
            return
        self.saved[path] = text
        self._update_status("saved — waiting for the fleet to apply")

    def fleet_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "policy_applied":
            self._update_status(f"policy v{data.get('version')} applied")
        elif kind == "policy_error":
            self.show_errors(data.get("errors", []))

    def action_focus_files(self) -> None:
        self.query_one("#policy-files", OptionList).focus()

    def action_leave(self) -> None:
        dirty = [p for p, t in self.files.items() if self.saved.get(p) != t]
        if dirty and not self._leave_armed:
            self._leave_armed = True
            self.notify(
                f"Unsaved changes in {', '.join(dirty)}: esc again to discard", severity="warning", markup=False
            )
            return
        self.app.pop_screen()
