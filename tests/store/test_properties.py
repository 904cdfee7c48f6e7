"""Property tests: chunk coalescing and line matching agree with a naive line-by-line model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.records import LogChunk
from fleet.store import readers
from fleet.store.writer import coalesce

_words = st.sampled_from(["error", "Error", "err", "disk", "full", "x_err", "réseau", "-", "=", " ", "42", "ok."])
_lines = st.lists(st.lists(_words, max_size=6).map("".join), min_size=1, max_size=12)


def _naive(lines: list[str], needle: str) -> list[int]:
    rx = readers.line_matcher(needle)
    return [i for i, line in enumerate(lines) if rx.search(line)]


@settings(max_examples=300, deadline=None)
@given(_lines, _words.filter(lambda w: w.strip() != ""))
def test_match_lines_equals_line_by_line(lines: list[str], needle: str) -> None:
    text = "\n".join(lines) + "\n"
    row = (1, "a", 1, "stdout", 10, len(lines), 5.0, None, text)
    got = readers._match_lines(row, readers.line_matcher(needle), None, needle.lower())
    assert [ln.seq - 10 for ln in got] == _naive(lines, needle)
    assert [ln.text for ln in got] == [lines[i] for i in _naive(lines, needle)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.sampled_from(["stdout", "stderr"]),
            st.integers(1, 5),
            st.floats(0, 0.5),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_coalesce_keeps_every_line_once(spec: list[tuple[str, str, int, float]]) -> None:
    seqs = {"a": 1, "b": 1}
    t = 100.0
    chunks = []
    for agent, stream, count, dt in spec:
        t += dt
        s = seqs[agent]
        chunks.append(LogChunk(agent, 1, stream, s, count, t, "".join(f"{agent}{i}\n" for i in range(s, s + count))))
        seqs[agent] += count
    rows, last = coalesce(chunks)
    assert last == {a: s - 1 for a, s in seqs.items() if s > 1}
    seen: dict[tuple[str, int], tuple[float, str]] = {}
    for r in rows:
        row = (0, r[0], r[1], r[2], r[3], r[4], r[5], r[7], b"".join(r[9]).decode())
        for ln in readers._row_lines(row):
            assert (ln.agent, ln.seq) not in seen
            seen[(ln.agent, ln.seq)] = (ln.ts, ln.text)
    expected = {
        (c.agent, c.first_seq + i): (c.ts, f"{c.agent}{c.first_seq + i}") for c in chunks for i in range(c.count)
    }
    assert seen == expected


@given(st.text(max_size=200), st.text(min_size=1, max_size=12))
@settings(max_examples=500)
def test_search_prefilter_never_hides_a_match(line: str, query: str) -> None:
    """The quick test on raw bytes lets through every row the exact matcher would find."""
    may_match = readers._prefilter(query)
    data = line.encode("utf-8", "surrogatepass")
    text = data.decode("utf-8", "replace")
    if may_match is not None and readers.line_matcher(query).search(text):
        assert may_match(data), (line, query)


@given(st.sampled_from(["error", "ERROR", "Straße", "-> ok", "42", "naïve", "ΣΊΣΥΦΟΣ"]), st.text(max_size=40))
def test_search_prefilter_on_known_words(word: str, noise: str) -> None:
    data = f"{noise} {word.swapcase()} {noise}".encode("utf-8", "surrogatepass")
    may_match = readers._prefilter(word)
    assert may_match is not None and may_match(data)


def test_search_prefilter_takes_odd_queries() -> None:
    assert readers._prefilter("\ud800") is None  # cannot be encoded: no prefilter, no crash
    assert readers._prefilter("a\ufffdb") is None
