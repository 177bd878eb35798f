"""Chapter timelines from engine timings and assembly placements."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.align.timeline import chapter_timeline
from pipeline.models import (
    Boundary,
    ChapterLayout,
    Chunk,
    ChunkPlacement,
    SynthesizedChunk,
    Word,
    WordTiming,
)

SR = 24000


def chunk(
    seq: int, texts: list[str], sentence_ids: tuple[int, ...] = (), chapter: int = 2
) -> Chunk:
    words, offset = [], seq * 1000
    for text in texts:
        words.append(Word(text, offset, offset + len(text)))
        offset += len(text) + 1
    return Chunk(
        f"c{chapter:04d}-{seq:05d}",
        chapter,
        seq,
        "book.txt",
        tuple(words),
        Boundary.SENTENCE,
        sentence_ids=sentence_ids,
    )


def synthesized(c: Chunk, timings: list[tuple[int, int]], num_samples: int) -> SynthesizedChunk:
    return SynthesizedChunk(
        c, f"key-{c.id}", tuple(WordTiming(a, b) for a, b in timings), num_samples, SR, False
    )


def test_word_times_follow_trim_and_offset() -> None:
    first = chunk(0, ["Hello", "there."], (0, 0))
    second = chunk(1, ["Bye", "now."], (1, 1))
    items = [
        synthesized(first, [(100, 400), (450, 900)], SR),  # 1 s of audio
        synthesized(second, [(50, 300), (300, 700)], SR),
    ]
    # First chunk: 50 ms trimmed from its head, placed at 0. Second: 25 ms trimmed, placed at 1.3 s.
    layout = ChapterLayout(
        2,
        SR,
        3 * SR,
        (
            ChunkPlacement(first.id, 0, 1200, 22800),
            ChunkPlacement(second.id, 31200, 600, 23400),
        ),
    )
    tl = chapter_timeline(items, layout, title="Two", source="book.txt")
    assert (tl.chapter, tl.title, tl.source, tl.duration_ms) == (2, "Two", "book.txt", 3000)
    assert [(w.word.text, w.start_ms, w.end_ms, w.sentence) for w in tl.words] == [
        ("Hello", 50, 350, 0),
        ("there.", 400, 850, 0),
        ("Bye", 1325, 1575, 1),
        ("now.", 1575, 1975, 1),
    ]
    assert all(w.chapter == 2 and w.source == "book.txt" for w in tl.words)


def test_words_in_trimmed_audio_sit_on_the_edge_of_what_was_kept() -> None:
    c = chunk(0, ["um", "yes", "trailing"], (0, 0, 0))
    item = synthesized(c, [(0, 20), (100, 500), (900, 1000)], SR)
    # 60 ms cut from the head; only 700 ms kept (the rest trimmed as tail silence).
    layout = ChapterLayout(2, SR, SR, (ChunkPlacement(c.id, 2400, 1440, 16800),))
    tl = chapter_timeline([item], layout, title="t", source="book.txt")
    assert [(w.start_ms, w.end_ms) for w in tl.words] == [(100, 100), (140, 540), (800, 800)]


def test_chunks_are_ordered_by_seq_and_sentences_fall_back_to_chunks() -> None:
    a, b = chunk(0, ["One."]), chunk(1, ["Two."])
    items = [synthesized(b, [(0, 100)], SR), synthesized(a, [(0, 100)], SR)]
    layout = ChapterLayout(
        2, SR, SR, (ChunkPlacement(a.id, 0, 0, 4800), ChunkPlacement(b.id, 4800, 0, 4800))
    )
    tl = chapter_timeline(items, layout, title="t", source="book.txt")
    assert [(w.word.text, w.start_ms, w.sentence) for w in tl.words] == [
        ("One.", 0, 0),
        ("Two.", 200, 1),
    ]


def test_inconsistent_inputs_name_the_chunk() -> None:
    c = chunk(0, ["a", "b"], (0, 0))
    layout = ChapterLayout(2, SR, SR, (ChunkPlacement(c.id, 0, 0, SR),))
    with pytest.raises(ValueError, match="c0002-00000: 1 timings for 2 words"):
        chapter_timeline([synthesized(c, [(0, 1)], SR)], layout, title="t", source="s")
    with pytest.raises(ValueError, match="c0002-00000 is not placed"):
        chapter_timeline(
            [synthesized(c, [(0, 1), (1, 2)], SR)],
            ChapterLayout(2, SR, SR, ()),
            title="t",
            source="s",
        )
    other = chunk(0, ["a"], (0,), chapter=3)
    with pytest.raises(ValueError, match="c0003-00000 is not in chapter 2"):
        chapter_timeline([synthesized(other, [(0, 1)], SR)], layout, title="t", source="s")


timing = st.tuples(st.integers(0, 3000), st.integers(0, 800)).map(lambda t: (t[0], t[0] + t[1]))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(timing, min_size=1, max_size=8),
            st.integers(0, 9000),
            st.integers(0, 60000),
            st.integers(0, 3000),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_timelines_are_monotonic_and_inside_the_placements(
    raw: list[tuple[list[tuple[int, int]], int, int, int]],
) -> None:
    items, placements, offset = [], [], 0
    for seq, (timings, trim, length, pause) in enumerate(raw):
        c = chunk(seq, [f"w{k}" for k in range(len(timings))], tuple(seq for _ in timings))
        items.append(synthesized(c, timings, trim + length))
        placements.append(ChunkPlacement(c.id, offset, trim, length))
        offset += length + pause
    layout = ChapterLayout(2, SR, offset, tuple(placements))
    tl = chapter_timeline(items, layout, title="t", source="book.txt")
    assert len(tl.words) == sum(len(t) for t, *_ in raw)
    for w in tl.words:
        assert 0 <= w.start_ms <= w.end_ms <= tl.duration_ms
    for before, after in zip(tl.words, tl.words[1:], strict=False):
        assert before.start_ms <= after.start_ms
        assert before.end_ms <= after.start_ms
    # Every word stays inside its own chunk's kept audio.
    k = 0
    for (timings, *_), p in zip(raw, placements, strict=True):
        for w in tl.words[k : k + len(timings)]:
            assert round(p.offset * 1000 / SR) <= w.start_ms
            assert w.end_ms <= round((p.offset + p.length) * 1000 / SR)
        k += len(timings)
