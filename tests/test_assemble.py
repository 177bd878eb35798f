"""Chapter assembly, checked against the audio actually written.

Placements are checked by finding each chunk in the file by cross-correlation, and pauses by
measuring runs of silence, never by repeating the layout arithmetic. Real espeak speech is in
test_assemble_speech.py; atomic writes, errors and book joins in test_assemble_io.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.audio.assemble import (
    PauseSettings,
    assemble_chapter,
    edge_breaks_ms,
    pause_after_ms,
    placed_ms,
    trim_bounds,
)
from pipeline.config import AudioConfig
from pipeline.models import Boundary, ChunkPlacement, SynthesizedChunk
from tests.assembly_signals import (
    BOUNDARIES,
    SR,
    loader,
    locate,
    make_item,
    ms,
    noise_burst,
    read,
    zero_runs,
)

# --- exact lengths and pauses ---------------------------------------------------------------


def test_chapter_is_head_chunks_pauses_and_tail_with_each_silence_measured(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pauses = PauseSettings(head_ms=750, tail_ms=2000)
    keep = ms(pauses.edge_silence_ms)
    speech = [ms(900), ms(1300), ms(700), ms(1100), ms(500)]
    kinds = [("heading", Boundary.PARAGRAPH), ("s", Boundary.SENTENCE), ("p", Boundary.PARAGRAPH),
             ("x", Boundary.SCENE), ("end", Boundary.CHAPTER)]
    audio, items = {}, []
    for seq, (length, (kind, boundary)) in enumerate(zip(speech, kinds, strict=True)):
        samples = noise_burst(rng, length, lead=ms(300), trail=ms(500), level=12000)
        item = make_item(seq, samples, pause_after=boundary, is_heading=kind == "heading")
        audio[item.chunk.id] = samples
        items.append(item)
    out = tmp_path / "ch.wav"
    layout = assemble_chapter(items, loader(audio), out, pauses=pauses, sample_rate=SR)

    info = sf.info(out)
    assert (info.format, info.subtype, info.channels, info.samplerate) == ("WAV", "FLOAT", 1, SR)
    gaps = [pauses.heading_ms, pauses.sentence_ms, pauses.paragraph_ms, pauses.scene_ms]
    expected = ms(750) + sum(s + 2 * keep for s in speech) + sum(ms(g) for g in gaps) + ms(2000)
    assert layout.num_samples == info.frames == expected
    # Every silence, measured as a run of digital zeros in the file: the kept chunk edges plus
    # the pause that the boundary calls for.
    runs = [length for _, length in zero_runs(read(out), min_len=ms(10))]
    assert runs == [ms(750) + keep] + [keep + ms(g) + keep for g in gaps] + [keep + ms(2000)]


def test_pause_after_by_boundary_and_heading() -> None:
    pauses = PauseSettings(sentence_ms=1, paragraph_ms=2, scene_ms=3, heading_ms=4)
    item = make_item(0, np.zeros(10, np.int16), pause_after=Boundary.SCENE)
    assert pause_after_ms(item.chunk, pauses) == 3
    assert [pause_after_ms(make_item(0, np.zeros(1, np.int16), pause_after=b).chunk, pauses)
            for b in BOUNDARIES] == [1, 2, 3, 0]
    heading = make_item(0, np.zeros(1, np.int16), pause_after=Boundary.PARAGRAPH, is_heading=True)
    assert pause_after_ms(heading.chunk, pauses) == 4


def test_pause_settings_from_config_uses_the_job_values() -> None:
    audio = AudioConfig(edge_silence_ms=20, sentence_pause_ms=300, paragraph_pause_ms=700,
                        scene_pause_ms=1500, heading_pause_ms=900)
    pauses = PauseSettings.from_config(audio, head_ms=750, tail_ms=2000)
    assert pauses == PauseSettings(edge_silence_ms=20, sentence_ms=300, paragraph_ms=700,
                                   scene_ms=1500, heading_ms=900, head_ms=750, tail_ms=2000)
    with pytest.raises(ValueError, match="sentence_ms"):
        PauseSettings(sentence_ms=-1)


@st.composite
def chapters(draw: st.DrawFn) -> tuple[int, PauseSettings, list[tuple[np.ndarray, Boundary, bool]]]:
    sample_rate = draw(st.sampled_from([8000, 16000, 22050, 24000]))
    pauses = PauseSettings(
        edge_silence_ms=draw(st.integers(0, 80)),
        sentence_ms=draw(st.integers(0, 400)),
        paragraph_ms=draw(st.integers(0, 900)),
        scene_ms=draw(st.integers(0, 1700)),
        heading_ms=draw(st.integers(0, 1100)),
        head_ms=draw(st.integers(0, 800)),
        tail_ms=draw(st.integers(0, 800)),
        fade_ms=draw(st.floats(0, 10)),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    chunks = []
    for _ in range(draw(st.integers(1, 6))):
        level = draw(st.sampled_from([300.0, 3000.0, 30000.0]))  # quiet to loud
        samples = noise_burst(
            rng,
            speech=ms(draw(st.integers(30, 600)), sample_rate),
            lead=ms(draw(st.integers(0, 300)), sample_rate),  # sometimes less than the kept edge
            trail=ms(draw(st.integers(0, 300)), sample_rate),
            level=level,
        )
        chunks.append((samples, draw(st.sampled_from(BOUNDARIES)), draw(st.booleans())))
    return sample_rate, pauses, chunks


@settings(max_examples=40, deadline=None)
@given(chapters())
def test_layout_matches_the_file_for_any_chapter(
    case: tuple[int, PauseSettings, list[tuple[np.ndarray, Boundary, bool]]],
) -> None:
    sample_rate, pauses, chunks = case
    items = [make_item(i, s, sample_rate=sample_rate, pause_after=b, is_heading=h)
             for i, (s, b, h) in enumerate(chunks)]
    audio = {item.chunk.id: s for item, (s, _, _) in zip(items, chunks, strict=True)}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "chapter.wav"
        layout = assemble_chapter(items, loader(audio), out, pauses=pauses, sample_rate=sample_rate)
        written = read(out)

    keep = ms(pauses.edge_silence_ms, sample_rate)
    trimmed = []
    for samples, _, _ in chunks:
        nonzero = np.flatnonzero(samples)
        start, end = max(0, nonzero[0] - keep), min(len(samples), nonzero[-1] + 1 + keep)
        trimmed.append((start, end))
    gaps = [pause_after_ms(item.chunk, pauses) for item in items[:-1]]
    assert layout.num_samples == len(written) == (
        ms(pauses.head_ms, sample_rate) + sum(e - s for s, e in trimmed)
        + sum(ms(g, sample_rate) for g in gaps) + ms(pauses.tail_ms, sample_rate)
    )
    fade = ms(pauses.fade_ms, sample_rate)
    outside = np.ones(len(written), dtype=bool)
    placed_chunks = zip(layout.placements, chunks, trimmed, strict=True)
    for placement, (samples, _, _), (start, end) in placed_chunks:
        assert (placement.trim_start, placement.length) == (start, end - start)
        placed = written[placement.offset : placement.offset + placement.length]
        original = samples[start:end].astype(np.float32) / 32768
        inner = slice(min(fade, len(placed) // 2), len(placed) - min(fade, len(placed) // 2))
        np.testing.assert_array_equal(placed[inner], original[inner])  # untouched between fades
        assert np.all(np.abs(placed) <= np.abs(original))  # fades only ever attenuate
        outside[placement.offset : placement.offset + placement.length] = False
    assert not written[outside].any()  # pauses, head and tail are digital silence


def test_placements_agree_with_cross_correlation(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    audio: dict[str, np.ndarray] = {}
    items: list[SynthesizedChunk] = []
    for seq in range(6):
        speech, lead, trail = (int(v) for v in rng.integers([200, 0, 0], [900, 400, 400]))
        samples = noise_burst(rng, ms(speech), lead=ms(lead), trail=ms(trail),
                              level=float(rng.integers(2000, 20000)))
        item = make_item(seq, samples, pause_after=BOUNDARIES[seq % 3])
        audio[item.chunk.id] = samples
        items.append(item)
    out = tmp_path / "ch.wav"
    layout = assemble_chapter(items, loader(audio), out, pauses=PauseSettings(head_ms=500),
                              sample_rate=SR)
    written = read(out)
    for placement in layout.placements:
        samples = audio[placement.chunk_id]
        sounding = np.flatnonzero(samples)
        mid = int(sounding[0] + sounding[-1]) // 2
        needle = samples[mid - ms(50) : mid + ms(50)]
        found = locate(written, needle)
        assert found == placement.offset + (mid - ms(50)) - placement.trim_start


# --- trimming ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    lead=st.integers(0, 4000), speech=st.integers(160, 4000), trail=st.integers(0, 4000),
    level=st.floats(0.05, 1.0), keep_ms=st.integers(0, 100), shift=st.integers(-2, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_trim_keeps_all_speech_and_the_same_edges_at_any_level(
    lead: int, speech: int, trail: int, level: float, keep_ms: int, shift: int, seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    body = rng.uniform(-level, level, speech)
    body[0], body[-1] = level, -level
    x = np.concatenate([np.zeros(lead), body, np.zeros(trail)])
    start, end = trim_bounds(x, 16000, keep_ms=keep_ms)
    keep = ms(keep_ms, 16000)
    # Speech edges are exact, so what is kept is the speech plus exactly keep_ms either side.
    assert start == max(0, lead - keep)
    assert end == min(len(x), lead + speech + keep)
    # The result does not depend on the level (while the speech stays well above one int16
    # step): a gain of 2**shift, exact in floating point, gives the same bounds.
    assert trim_bounds(x * 2.0**shift, 16000, keep_ms=keep_ms) == (start, end)


def test_trim_keeps_a_soft_onset_and_drops_a_noise_floor() -> None:
    rng = np.random.default_rng(3)
    floor = rng.standard_normal(SR) * 10 ** (-75 / 20)  # 65 dB under the vowel: not speech
    x = floor.copy()
    breath = slice(ms(300), ms(380))  # a breathy onset about 27 dB under the vowel
    x[breath] += rng.standard_normal(ms(80)) * 10 ** (-40 / 20)
    vowel = slice(ms(380), ms(700))
    x[vowel] += 10 ** (-10 / 20) * np.sin(2 * np.pi * 220 * np.arange(ms(320)) / SR)
    start, end = trim_bounds(x, SR, keep_ms=0)
    # The whole breath survives and the floor around the speech is cut, to the millisecond.
    assert abs(start - breath.start) <= ms(1)
    assert abs(end - vowel.stop) <= ms(1)
    # int16 and float input agree, and a quiet recording of the same thing trims the same.
    quiet = trim_bounds((x * 0.05 * 32767).astype(np.int16), SR, keep_ms=0)
    assert abs(quiet[0] - start) <= ms(1) and abs(quiet[1] - end) <= ms(1)


def test_trim_keeps_audio_without_speech_whole() -> None:
    assert trim_bounds(np.zeros(1000, np.int16), SR, keep_ms=40) == (0, 1000)
    assert trim_bounds(np.zeros(0, np.int16), SR, keep_ms=40) == (0, 0)


# --- clicks -----------------------------------------------------------------------------------


def _cut_tone(seconds: float, freq: float, phase: float) -> np.ndarray:
    """A tone cut hard at both ends at high amplitude: speech running right to the chunk edge."""
    t = np.arange(ms(seconds * 1000)) / SR
    return (20000 * np.sin(2 * np.pi * freq * t + phase)).astype(np.int16)


@pytest.mark.parametrize("fade_ms", [5.0, 10.0])
def test_joins_are_click_free_where_speech_touches_the_cut(tmp_path: Path, fade_ms: float) -> None:
    tones = [_cut_tone(0.4, f, p) for f, p in [(180, 1.3), (240, 2.1), (310, 4.0), (150, 0.9)]]
    items = [make_item(i, t) for i, t in enumerate(tones)]
    audio = {item.chunk.id: t for item, t in zip(items, tones, strict=True)}

    def join_to_speech_jump_ratio(fade: float) -> float:
        """The largest sample-to-sample jump around a join over the largest one inside the
        speech of the same chunk (worst chunk)."""
        out = tmp_path / f"fade{fade}.wav"
        layout = assemble_chapter(items, loader(audio), out,
                                  pauses=PauseSettings(fade_ms=fade, head_ms=100, tail_ms=100),
                                  sample_rate=SR)
        jumps = np.abs(np.diff(read(out)))
        ratios = []
        for placement, tone in zip(layout.placements, tones, strict=True):
            inside = float(np.abs(np.diff(tone.astype(np.float32) / 32768)).max())
            for edge in (placement.offset, placement.offset + placement.length):
                ratios.append(float(jumps[edge - ms(2) : edge + ms(2)].max()) / inside)
        return max(ratios)

    assert join_to_speech_jump_ratio(fade_ms) <= 1.0
    # The measurement can fail: without fades, the hard cuts are clicks.
    assert join_to_speech_jump_ratio(0.0) > 5


# --- <break> at a chunk edge ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spoken", "expected"),
    [
        ("word", (0, 0)),
        ("word<break time='500ms'/>", (0, 500)),
        ("<break time=\"1.5s\"/> word <break time='200ms'/><break time='100ms'/>", (1500, 300)),
        ("a <break time='300ms'/> b", (0, 0)),  # inside the chunk: the engine keeps it
        ("<break time='250ms'/>", (250, 0)),  # counted once
        ("<BREAK time = '.5s' />Go", (500, 0)),  # the same tag syntax the engines accept
    ],
)
def test_edge_breaks(spoken: str, expected: tuple[int, int]) -> None:
    assert edge_breaks_ms(make_item(0, np.zeros(1, np.int16), spoken=spoken).chunk) == expected


def test_break_at_chunk_end_survives_trimming(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    # The engine rendered the break as trailing silence, which trimming removes.
    first = noise_burst(rng, ms(400), lead=ms(100), trail=ms(700), level=9000)
    second = noise_burst(rng, ms(400), lead=ms(100), trail=ms(100), level=9000)
    items = [make_item(0, first, spoken="end.<break time='700ms'/>"), make_item(1, second)]
    out = tmp_path / "ch.wav"
    pauses = PauseSettings()
    assemble_chapter(items, loader({items[0].chunk.id: first, items[1].chunk.id: second}), out,
                     pauses=pauses, sample_rate=SR)
    runs = [length for _, length in zero_runs(read(out), min_len=ms(10))]
    keep = ms(pauses.edge_silence_ms)
    assert runs == [keep, keep + ms(pauses.sentence_ms + 700) + keep, keep]


# --- placing word timings ---------------------------------------------------------------------


def test_placed_ms_maps_and_clamps_into_the_chunk() -> None:
    placement = ChunkPlacement("c0000-00000", offset=SR, trim_start=ms(200), length=ms(500))
    assert placed_ms(placement, 450, SR) == 1250  # 250 ms into the kept audio
    assert placed_ms(placement, 0, SR) == 1000  # in the trimmed head: clamped to the start
    assert placed_ms(placement, 900, SR) == 1500  # in the trimmed tail: clamped to the end
