"""Chapter assembly on real speech from the local espeak engine.

Each chunk's audio is found in the chapter file by cross-correlation, independently of the
layout arithmetic; pauses are measured as runs of digital silence; clicks as sample-to-sample
jumps compared with those inside the same chunk's speech.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio.assemble import PauseSettings, assemble_chapter, placed_ms, trim_bounds
from pipeline.models import Boundary, ChapterLayout, SynthesizedChunk
from pipeline.tts.local import speak
from tests.assembly_signals import SR, locate, make_item, ms, read, zero_runs

SENTENCES = [
    ("Chapter One. The Ledger", Boundary.PARAGRAPH, True),
    ("The keeper wrote every ship into his ledger before the lamp.", Boundary.SENTENCE, False),
    ("Some nights there were none at all.", Boundary.PARAGRAPH, False),
    ("Then came the winter of the long fog, and forty-two ships.", Boundary.SCENE, False),
    ("He counted them twice.", Boundary.SENTENCE, False),
    ("Nobody believed him.", Boundary.CHAPTER, False),  # the tail follows: no pause
]
PAUSES = PauseSettings(head_ms=750, tail_ms=2000)


@dataclass(frozen=True)
class SpokenChapter:
    items: list[SynthesizedChunk]
    audio: dict[str, np.ndarray]
    layout: ChapterLayout
    written: np.ndarray


@pytest.fixture(scope="module")
def chapter(tmp_path_factory: pytest.TempPathFactory) -> SpokenChapter:
    items, audio = [], {}
    for seq, (text, boundary, heading) in enumerate(SENTENCES):
        spoken = speak(text.split(), voice="en", sample_rate=SR)
        item = make_item(seq, spoken.samples, pause_after=boundary, is_heading=heading)
        item = SynthesizedChunk(
            chunk=item.chunk, cache_key=item.cache_key, timings=spoken.timings,
            num_samples=len(spoken.samples), sample_rate=SR, from_cache=False,
        )
        items.append(item)
        audio[item.chunk.id] = spoken.samples
    out = tmp_path_factory.mktemp("speech") / "chapter.wav"
    layout = assemble_chapter(
        items, lambda i: audio[i.chunk.id], out, pauses=PAUSES, sample_rate=SR
    )
    return SpokenChapter(items, audio, layout, read(out))


def test_length_is_head_trimmed_chunks_pauses_and_tail(chapter: SpokenChapter) -> None:
    bounds = [trim_bounds(chapter.audio[i.chunk.id], SR, keep_ms=40) for i in chapter.items]
    trimmed = [end - start for start, end in bounds]
    pauses = [PAUSES.heading_ms, PAUSES.sentence_ms, PAUSES.paragraph_ms, PAUSES.scene_ms,
              PAUSES.sentence_ms]
    expected = ms(750) + sum(trimmed) + sum(ms(p) for p in pauses) + ms(2000)
    assert chapter.layout.num_samples == len(chapter.written) == expected


def test_each_chunk_sits_where_the_layout_says(chapter: SpokenChapter) -> None:
    for placement in chapter.layout.placements:
        samples = chapter.audio[placement.chunk_id].astype(np.float64)
        # The chunk's loudest 120 ms: speech, unaffected by trimming or fades.
        cumulative = np.cumsum(np.concatenate([[0.0], samples**2]))
        energy = cumulative[ms(120) :] - cumulative[: -ms(120)]
        start = int(np.argmax(energy))
        found = locate(chapter.written, samples[start : start + ms(120)])
        assert found == placement.offset + start - placement.trim_start


def test_trimming_never_cuts_a_word(chapter: SpokenChapter) -> None:
    for item, placement in zip(chapter.items, chapter.layout.placements, strict=True):
        samples = chapter.audio[item.chunk.id].astype(np.float64)
        kept = slice(placement.trim_start, placement.trim_start + placement.length)
        removed_energy = np.sum(samples**2) - np.sum(samples[kept] ** 2)
        assert removed_energy <= 1e-6 * np.sum(samples**2)
        # Every word the engine timed falls inside the placed audio without clamping (1 ms of
        # rounding allowed), so the timeline sees every word where it is heard.
        start_ms = placement.offset * 1000 / SR
        end_ms = (placement.offset + placement.length) * 1000 / SR
        for timing in item.timings:
            for t in (timing.start_ms, timing.end_ms):
                placed = placed_ms(placement, t, SR)
                unclamped = (placement.offset + ms(t) - placement.trim_start) * 1000 / SR
                assert start_ms - 1 <= unclamped <= end_ms + 1
                assert abs(placed - unclamped) <= 1


def test_pauses_are_the_boundary_lengths(chapter: SpokenChapter) -> None:
    # Speech has pauses of its own (the heading's "One. The"), so take the silent run around
    # each gap between placed chunks, and around the head and the tail.
    runs = zero_runs(chapter.written, min_len=1)
    placements = chapter.layout.placements
    ends = [0] + [p.offset + p.length for p in placements]
    starts = [p.offset for p in placements] + [len(chapter.written)]
    measured = []
    for gap_start, gap_end in zip(ends, starts, strict=True):
        middle = (gap_start + gap_end) // 2
        measured.append(next(length for at, length in runs if at <= middle < at + length))
    keep = ms(PAUSES.edge_silence_ms)
    wanted = [750, PAUSES.heading_ms, PAUSES.sentence_ms, PAUSES.paragraph_ms, PAUSES.scene_ms,
              PAUSES.sentence_ms, 2000]
    # Each is the requested silence plus at most the kept (near-silent) chunk edges.
    for length, pause in zip(measured, wanted, strict=True):
        edges = keep if pause in (750, 2000) else 2 * keep
        assert ms(pause) <= length <= ms(pause) + edges


def test_no_clicks_at_the_joins(chapter: SpokenChapter) -> None:
    jumps = np.abs(np.diff(chapter.written))
    for placement in chapter.layout.placements:
        samples = chapter.audio[placement.chunk_id].astype(np.float32) / 32768
        inside = float(np.abs(np.diff(samples)).max())
        for edge in (placement.offset, placement.offset + placement.length):
            assert float(jumps[edge - ms(3) : edge + ms(3)].max()) <= inside


def test_trim_is_the_same_for_quiet_and_loud_speech() -> None:
    audio = speak(["A", "quiet", "voice", "is", "still", "a", "voice."], sample_rate=SR)
    loud = trim_bounds(audio.samples, SR, keep_ms=0)
    quiet = trim_bounds((audio.samples * 0.03).astype(np.int16), SR, keep_ms=0)  # about -30 dB
    assert abs(loud[0] - quiet[0]) <= ms(2) and abs(loud[1] - quiet[1]) <= ms(2)
    # And speech is found where it is: the first and last words the engine timed.
    assert loud[0] <= ms(audio.timings[0].start_ms) + ms(1)
    assert loud[1] >= ms(audio.timings[-1].end_ms) - ms(1)


def test_trailing_break_keeps_its_length(tmp_path: Path) -> None:
    first = speak(["Wait.<break time='600ms'/>"], sample_rate=SR).samples
    second = speak(["Now."], sample_rate=SR).samples
    items = [make_item(0, first, spoken="Wait.<break time='600ms'/>"), make_item(1, second)]
    audio = {items[0].chunk.id: first, items[1].chunk.id: second}
    out = tmp_path / "ch.wav"
    assemble_chapter(items, lambda i: audio[i.chunk.id], out, pauses=PauseSettings(),
                     sample_rate=SR)
    gaps = [length for _, length in zero_runs(read(out), min_len=ms(100))]
    assert len(gaps) == 1
    assert ms(350 + 600) <= gaps[0] <= ms(350 + 600 + 80)
