"""Source positions of keys in a TOML text.

``tomllib`` returns plain dicts without positions, yet every error must name a
line and column. This is a small structural scanner, not a parser: it runs
only on text ``tomllib`` already accepted, and records where each table
header, ``[[array]]`` element, key, array element and inline-table key starts,
indexed by the same path pydantic reports in an error's ``loc``
(``("agent", 2, "budget", "usd_per_day")``). Unknown shapes never raise; a
lookup falls back to the nearest enclosing path that was found.
"""

from __future__ import annotations

from bisect import bisect_right

Path = tuple[str | int, ...]

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class TomlLocator:
    """Positions (1-based line, column) of every path in one TOML document."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self._line_starts.append(i + 1)
        #: path -> offset of the key (or of a header's ``[``)
        self.keys: dict[Path, int] = {}
        #: path -> offset of the value
        self.values: dict[Path, int] = {}
        self._i = 0
        try:
            self._document()
        except (IndexError, ValueError):  # tolerate anything unexpected: positions found so far stay
            pass

    # -- lookups ---------------------------------------------------------

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def find(self, loc: Path, *, value: bool = False) -> tuple[int, int]:
        """Position of ``loc`` (its value if ``value``), else of its nearest found parent."""
        path = tuple(loc)
        while path:
            if value and path in self.values:
                return self.position(self.values[path])
            if path in self.keys:
                return self.position(self.keys[path])
            if path in self.values:
                return self.position(self.values[path])
            path = path[:-1]
            value = False
        return 1, 1

    # -- scanning --------------------------------------------------------

    def _peek(self, k: int = 0) -> str:
        j = self._i + k
        return self.text[j] if j < len(self.text) else ""

    def _skip_ws(self, newlines: bool = False) -> None:
        t = self.text
        while self._i < len(t):
            ch = t[self._i]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self._i += 1
            elif ch == "#" and newlines:
                while self._i < len(t) and t[self._i] != "\n":
                    self._i += 1
            else:
                return

    def _skip_line(self) -> None:
        t = self.text
        while self._i < len(t) and t[self._i] != "\n":
            self._i += 1

    def _document(self) -> None:
        table: Path = ()
        arrays: dict[Path, int] = {}
        t = self.text
        while True:
            self._skip_ws(newlines=True)
            if self._i >= len(t):
                return
            start = self._i
            if t.startswith("[[", self._i):
                self._i += 2
                keys = self._key()
                parent = self._resolve(keys[:-1], arrays)
                full = (*parent, keys[-1])
                index = arrays.get(full, -1) + 1
                arrays[full] = index
                self.keys.setdefault(full, start)
                table = (*full, index)
                self.keys[table] = start
                self._skip_line()
            elif t[self._i] == "[":
                self._i += 1
                keys = self._key()
                table = (*self._resolve(keys[:-1], arrays), keys[-1])
                for n in range(1, len(table) + 1):
                    self.keys.setdefault(table[:n], start)
                self._skip_line()
            else:
                keys = self._key()
                if not keys:
                    self._skip_line()
                    continue
                for n in range(1, len(keys)):
                    self.keys.setdefault((*table, *keys[:n]), start)
                path = (*table, *keys)
                self.keys[path] = start
                self._skip_ws()
                if self._peek() == "=":
                    self._i += 1
                    self._skip_ws()
                    self._value(path)
                self._skip_line()

    @staticmethod
    def _resolve(keys: list[str], arrays: dict[Path, int]) -> Path:
        out: Path = ()
        for key in keys:
            out = (*out, key)
            if out in arrays:
                out = (*out, arrays[out])
        return out

    def _key(self) -> list[str]:
        """A dotted key at the cursor; the cursor ends after it."""
        keys: list[str] = []
        t = self.text
        while True:
            self._skip_ws()
            ch = self._peek()
            if ch == '"':
                keys.append(self._basic_string())
            elif ch == "'":
                end = t.index("'", self._i + 1)
                keys.append(t[self._i + 1 : end])
                self._i = end + 1
            elif ch in _BARE:
                j = self._i
                while j < len(t) and t[j] in _BARE:
                    j += 1
                keys.append(t[self._i : j])
                self._i = j
            else:
                return keys
            self._skip_ws()
            if self._peek() != ".":
                return keys
            self._i += 1

    def _basic_string(self) -> str:
        t = self.text
        j = self._i + 1
        out: list[str] = []
        while t[j] != '"':
            if t[j] == "\\":
                esc = t[j + 1]
                simple = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r", "b": "\b", "f": "\f"}
                if esc in simple:
                    out.append(simple[esc])
                    j += 2
                elif esc in "uU":
                    width = 4 if esc == "u" else 8
                    out.append(chr(int(t[j + 2 : j + 2 + width], 16)))
                    j += 2 + width
                else:
                    j += 2
            else:
                out.append(t[j])
                j += 1
        self._i = j + 1
        return "".join(out)

    def _value(self, path: Path) -> None:
        t = self.text
        self.values[path] = self._i
        if t.startswith('"""', self._i) or t.startswith("'''", self._i):
            quote = t[self._i : self._i + 3]
            j = self._i + 3
            while True:
                j = t.index(quote, j)
                if quote == '"""':
                    backslashes = 0
                    while t[j - 1 - backslashes] == "\\":
                        backslashes += 1
                    if backslashes % 2:
                        j += 1
                        continue
                break
            while t.startswith(quote[0], j + 3):  # up to two quotes may close the content
                j += 1
            self._i = j + 3
        elif t[self._i] == '"':
            self._basic_string()
        elif t[self._i] == "'":
            self._i = t.index("'", self._i + 1) + 1
        elif t[self._i] == "[":
            self._i += 1
            index = 0
            while True:
                self._skip_ws(newlines=True)
                if self._peek() in ("]", ""):
                    self._i += 1
                    return
                self._value((*path, index))
                index += 1
                self._skip_ws(newlines=True)
                if self._peek() == ",":
                    self._i += 1
        elif t[self._i] == "{":
            self._i += 1
            while True:
                self._skip_ws()
                if self._peek() in ("}", ""):
                    self._i += 1
                    return
                start = self._i
                keys = self._key()
                if not keys:
                    self._i += 1
                    continue
                sub = (*path, *keys)
                self.keys[sub] = start
                self._skip_ws()
                if self._peek() == "=":
                    self._i += 1
                    self._skip_ws()
                    self._value(sub)
                self._skip_ws()
                if self._peek() == ",":
                    self._i += 1
        else:
            while self._i < len(t) and t[self._i] not in ",]}\n#":
                self._i += 1
