"""Clip boundaries and the train/validation split, on constructed timelines (no audio)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import DatasetSplit
from pipeline.dataset.clips import MIN_PAUSE_MS, TOO_LONG_NO_PAUSE, TOO_SHORT, choose_clips
from pipeline.dataset.export import validation_chapters
from pipeline.models import ChapterTimeline, TimedWord, Word


def timeline(spec: list[list[tuple[int, int]]], *, chapter: int = 0, tail_ms: int = 500) -> ChapterTimeline:
    """Sentences of (word duration ms, gap after it ms), laid end to end from 1 s."""
    words: list[TimedWord] = []
    t = 1000
    for sentence, pairs in enumerate(spec):
        for duration, gap in pairs:
            text = f"w{len(words)}"
            words.append(TimedWord(Word(text, 0, len(text)), chapter, "book.txt", t, t + duration, sentence))
            t += duration + gap
    return ChapterTimeline(chapter, "Chapter", "book.txt", t + tail_ms, tuple(words))


def plan(tl: ChapterTimeline, min_ms: int = 1000, max_ms: int = 15000, padding_ms: int = 50):  # type: ignore[no-untyped-def]
    return choose_clips(tl, min_ms=min_ms, max_ms=max_ms, padding_ms=padding_ms, id_prefix="job")


def test_one_sentence_a_clip_with_padding_and_stable_ids() -> None:
    tl = timeline([[(300, 20)] * 8 + [(300, 400)], [(250, 20)] * 9 + [(250, 400)]])
    result = plan(tl)
    assert [c.id for c in result.clips] == ["job-c01-s0000", "job-c01-s0001"]
    first, second = result.clips
    assert (first.first_word, first.last_word, second.first_word, second.last_word) == (0, 8, 9, 18)
    assert first.start_ms == tl.words[0].start_ms - 50 and first.end_ms == tl.words[8].end_ms + 50
    assert first.text == " ".join(f"w{i}" for i in range(9))
    assert result.skipped == () and plan(tl) == result


def test_padding_never_reaches_past_the_middle_of_a_gap() -> None:
    tl = timeline([[(2000, 60)], [(2000, 60)]])
    first, second = plan(tl, padding_ms=200).clips
    assert first.end_ms == second.start_ms == tl.words[0].end_ms + 30


def test_a_short_sentence_is_merged_with_the_next() -> None:
    tl = timeline([[(300, 400)], [(400, 20)] * 5 + [(400, 400)]])  # "I know." then a longer one
    (clip,) = plan(tl).clips
    assert (clip.first_word, clip.last_word, clip.id) == (0, 6, "job-c01-s0000")


def test_a_short_last_sentence_joins_the_clip_before_or_is_skipped() -> None:
    tl = timeline([[(400, 20)] * 5 + [(400, 400)], [(300, 400)]])
    (clip,) = plan(tl).clips
    assert clip.last_word == 6
    crowded = plan(tl, max_ms=2700)  # the first sentence alone is 2.5 s: no room for the second
    assert [c.last_word for c in crowded.clips] == [5]
    assert [(s.first_word, s.reason) for s in crowded.skipped] == [(6, TOO_SHORT)]


def test_a_long_sentence_is_cut_at_pauses_into_even_pieces() -> None:
    # Four 4 s phrases separated by 200 ms pauses; 13 s allows three in one piece, but 2 + 2
    # is as few pieces and not a long piece plus a stub.
    phrase = [(400, 0)] * 9 + [(400, 200)]
    tl = timeline([phrase * 4])
    clips = plan(tl, max_ms=13000).clips
    assert [(c.first_word, c.last_word) for c in clips] == [(0, 19), (20, 39)]
    assert clips[1].id == "job-c01-s0000-w00020"
    assert abs(clips[0].duration_ms - clips[1].duration_ms) <= 100


def test_a_stretch_with_no_pause_longer_than_max_is_skipped() -> None:
    tl = timeline([[(500, 0)] * 39 + [(500, 300)] + [(400, 0)] * 5 + [(400, 500)]])
    result = plan(tl)
    assert [(c.first_word, c.last_word) for c in result.clips] == [(40, 45)]
    assert [(s.first_word, s.last_word, s.reason, s.words) for s in result.skipped] == [(0, 39, TOO_LONG_NO_PAUSE, 40)]


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError, match="min_ms < max_ms"):
        plan(timeline([[(300, 0)]]), min_ms=5000, max_ms=5000)
    assert plan(ChapterTimeline(0, "t", "s", 0, ())).clips == ()


@st.composite
def timelines(draw: st.DrawFn) -> ChapterTimeline:
    spec = []
    for _ in range(draw(st.integers(1, 10))):
        n = draw(st.integers(1, 25))
        durations = draw(st.lists(st.integers(0, 900), min_size=n, max_size=n))
        gaps = draw(st.lists(st.sampled_from([0, 10, 40, 150, 400]), min_size=n - 1, max_size=n - 1))
        spec.append(list(zip(durations, [*gaps, draw(st.integers(0, 1500))], strict=True)))
    return timeline(spec, chapter=draw(st.integers(0, 120)), tail_ms=draw(st.integers(0, 3000)))


@settings(max_examples=100, deadline=None)
@given(
    tl=timelines(),
    min_ms=st.integers(200, 3000),
    extra_ms=st.integers(500, 15000),
    padding_ms=st.integers(0, 300),
)
def test_clip_properties(tl: ChapterTimeline, min_ms: int, extra_ms: int, padding_ms: int) -> None:
    max_ms = min_ms + extra_ms
    result = plan(tl, min_ms, max_ms, padding_ms)
    words = tl.words
    covered: list[int] = []
    for k, clip in enumerate(result.clips):
        assert min_ms <= clip.duration_ms <= max_ms
        assert clip.start_ms >= 0 and clip.end_ms <= tl.duration_ms
        if k:
            assert result.clips[k - 1].end_ms <= clip.start_ms
        inside = range(clip.first_word, clip.last_word + 1)
        covered.extend(inside)
        first, last = words[clip.first_word], words[clip.last_word]
        assert first.start_ms - padding_ms <= clip.start_ms <= first.start_ms
        assert last.end_ms <= clip.end_ms <= last.end_ms + padding_ms
        # Never inside a word: every other word lies wholly outside the clip's audio.
        for i, w in enumerate(words):
            if i not in inside:
                assert w.end_ms <= clip.start_ms or w.start_ms >= clip.end_ms
        # Cut only where a sentence ends or the speech pauses.
        for before, after in ((clip.first_word - 1, clip.first_word), (clip.last_word, clip.last_word + 1)):
            if before >= 0 and after < len(words):
                a, b = words[before], words[after]
                assert a.sentence != b.sentence or b.start_ms - a.end_ms >= MIN_PAUSE_MS
    for span in result.skipped:
        covered.extend(range(span.first_word, span.last_word + 1))
        assert span.reason in {TOO_SHORT, TOO_LONG_NO_PAUSE}
    assert sorted(covered) == list(range(len(words)))
    ids = [c.id for c in result.clips]
    assert len(set(ids)) == len(ids) and all(i.startswith(f"job-c{tl.chapter + 1:02d}-s") for i in ids)
    assert plan(tl, min_ms, max_ms, padding_ms) == result


def chapters(n: int) -> list[ChapterTimeline]:
    return [ChapterTimeline(i, f"Chapter {i + 1}", "book.md", 1000, ()) for i in range(n)]


def test_split_holds_out_whole_chapters_stably() -> None:
    three = chapters(3)
    held = validation_chapters(three, DatasetSplit(validation=0.1), "demo")
    assert len(held) == 1 and held == validation_chapters(three, DatasetSplit(validation=0.1), "demo")
    assert validation_chapters(three, None, "demo") == set()
    assert validation_chapters(chapters(1), DatasetSplit(validation=0.5), "demo") == set()
    assert len(validation_chapters(three, DatasetSplit(validation=0.99), "demo")) == 2
    assert len(validation_chapters(chapters(20), DatasetSplit(validation=0.25), "demo")) == 5
    # Different seeds choose differently somewhere among a few tries.
    picks = {frozenset(validation_chapters(chapters(10), DatasetSplit(seed=s), "demo")) for s in range(6)}
    assert len(picks) > 1


@given(n=st.integers(1, 40), fraction=st.floats(0, 0.99), seed=st.integers(0, 10**6), key=st.text(max_size=20))
def test_split_properties(n: int, fraction: float, seed: int, key: str) -> None:
    split = DatasetSplit(validation=fraction, seed=seed)
    held = validation_chapters(chapters(n), split, key)
    assert held <= set(range(n)) and len(held) <= max(0, n - 1)
    if fraction > 0 and n >= 2:
        assert len(held) >= 1
    assert held == validation_chapters(list(reversed(chapters(n))), split, key)


def test_example_job_file_is_valid() -> None:
    from pipeline.config import load_job
    from tests.conftest import REPO

    job = load_job(REPO / "configs" / "dataset.yaml")
    dataset = job.config.outputs.dataset
    assert (
        dataset is not None
        and dataset.split is not None
        and set(dataset.formats) == {"ljspeech", "audiofolder", "nemo"}
    )
    assert [p.name for p in job.input_files()] == ["the-lighthouse-keepers-ledger.md"]
    assert job.output_dir == REPO / "out" / "dataset" and job.cache_dir == REPO / ".narrate-cache"
