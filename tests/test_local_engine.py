"""The local engine with real espeak-ng speech: format, pace, determinism, timings, markup."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pipeline.errors import RequestRejectedError, VoiceNotFoundError
from pipeline.models import ChunkAudio
from pipeline.tts import espeak
from pipeline.tts.local import LocalEngine, list_voices, speak

# Ordinary narrative prose, written for these tests: commas, sentence ends, short function words.
PASSAGE = (
    "The harbour was quiet when the ferry came in, and most of the passengers had fallen asleep "
    "on the long benches near the windows. A woman in a green coat stood by the rail, watching "
    "the lights of the town grow brighter as the boat turned toward the pier. She had not been "
    "home for eleven years. Her brother had written to say that the house was empty now, that "
    "the garden had gone wild, and that someone ought to decide what to do with the old piano."
)
WORDS = PASSAGE.split()


@pytest.fixture(scope="module")
def passage() -> ChunkAudio:
    return speak(WORDS, sample_rate=22050)


def rms(samples: np.ndarray, rate: int, start_ms: int, end_ms: int) -> float:
    piece = samples[start_ms * rate // 1000 : end_ms * rate // 1000].astype(np.float64)
    return float(np.sqrt((piece**2).mean())) if len(piece) else 0.0


def longest_silence_ms(samples: np.ndarray, rate: int, level: int = 30) -> float:
    """Longest run of samples no louder than ``level``."""
    quiet = np.concatenate(([0], (np.abs(samples.astype(np.int32)) <= level).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(quiet))
    runs = edges[1::2] - edges[::2]
    return float(runs.max()) * 1000 / rate if len(runs) else 0.0


def assert_valid_timings(audio: ChunkAudio, count: int) -> None:
    assert len(audio.timings) == count
    previous_end = 0
    for timing in audio.timings:
        assert previous_end <= timing.start_ms <= timing.end_ms <= audio.duration_ms
        previous_end = timing.end_ms


@pytest.mark.parametrize("rate", [16000, 22050, 24000, 44100])
def test_output_is_mono_int16_at_the_requested_rate(rate: int) -> None:
    audio = speak(["Testing", "one", "two."], sample_rate=rate)
    assert audio.sample_rate == rate
    assert audio.samples.dtype == np.int16 and audio.samples.ndim == 1
    assert 0.8 < audio.duration_ms / 1000 < 3.0  # three short words
    assert np.abs(audio.samples).max() > 3000  # actually speech, not silence


def test_resampling_keeps_the_duration() -> None:
    native = speak(WORDS[:12], sample_rate=22050)
    resampled = speak(WORDS[:12], sample_rate=48000)
    assert abs(native.duration_ms - resampled.duration_ms) <= 1
    assert [t.start_ms for t in native.timings] == [t.start_ms for t in resampled.timings]


def test_pace_is_an_audiobook_pace(passage: ChunkAudio) -> None:
    wpm = len(WORDS) / (passage.duration_ms / 60_000)
    assert 150 <= wpm <= 190, wpm


def test_speed_scales_the_pace() -> None:
    normal = speak(WORDS[:30], speed=1.0)
    fast = speak(WORDS[:30], speed=1.5)
    ratio = normal.duration_ms / fast.duration_ms
    assert 1.3 < ratio < 1.7, ratio


def test_same_input_gives_identical_samples(passage: ChunkAudio) -> None:
    # Other speech in between (another voice, a variant with pitch flutter, an odd length) must
    # not leak state into the next utterance.
    speak(["Something", "else", "entirely,", "of", "odd", "length."], voice="en-us+f2")
    speak(["Bonjour", "tout", "le", "monde."], voice="fr")
    again = speak(WORDS, sample_rate=22050)
    assert np.array_equal(passage.samples, again.samples)
    assert passage.timings == again.timings


def test_variant_voices_are_deterministic_too() -> None:
    first = speak(WORDS[:15], voice="en-us+f2")
    speak(WORDS[15:25], voice="en+m3")
    second = speak(WORDS[:15], voice="en-us+f2")
    assert np.array_equal(first.samples, second.samples)
    assert not np.array_equal(first.samples, speak(WORDS[:15], voice="en").samples)


@pytest.mark.slow
def test_output_is_identical_across_processes() -> None:
    code = (
        "import hashlib; from pipeline.tts.local import speak; "
        "a = speak(['Across', 'processes,', 'the', 'same', 'bytes.']); "
        "print(hashlib.sha256(a.samples.tobytes()).hexdigest())"
    )
    here = speak(["Across", "processes,", "the", "same", "bytes."])
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == hashlib.sha256(here.samples.tobytes()).hexdigest()


def test_one_ordered_timing_per_word_inside_the_audio(passage: ChunkAudio) -> None:
    assert_valid_timings(passage, len(WORDS))
    assert all(t.end_ms > t.start_ms for t in passage.timings)  # every word here is spoken


def test_word_spans_hold_the_speech_and_pauses_hold_none(passage: ChunkAudio) -> None:
    rate, samples, timings = passage.sample_rate, passage.samples, passage.timings
    inside = [rms(samples, rate, t.start_ms, t.end_ms) for t in timings]
    assert min(inside) > 1000  # every word span carries speech energy
    # The pauses after sentence ends and commas lie between words, and are quiet.
    pauses = [
        (timings[i].end_ms, timings[i + 1].start_ms)
        for i, word in enumerate(WORDS[:-1])
        if word.endswith((".", ","))
    ]
    assert all(end - start >= 100 for start, end in pauses)
    assert max(rms(samples, rate, start, end) for start, end in pauses) < 100
    # And the spans cover nearly all of the sound: little energy falls outside them.
    covered = np.zeros(len(samples), dtype=bool)
    for t in timings:
        covered[t.start_ms * rate // 1000 : t.end_ms * rate // 1000] = True
    energy = samples.astype(np.float64) ** 2
    assert energy[~covered].sum() < 0.01 * energy.sum()


def test_a_break_adds_that_much_silence() -> None:
    plain = speak(["Wait", "for", "it."])
    paused = speak(["Wait", "for<break time='700ms'/>", "it."])
    # The pause itself is exact; the words around it also lengthen a little, as speech does at
    # a phrase boundary (espeak speaks each side as a phrase of its own).
    assert 700 <= paused.duration_ms - plain.duration_ms <= 1000
    assert longest_silence_ms(paused.samples, paused.sample_rate) >= 690
    gap = paused.timings[2].start_ms - paused.timings[1].end_ms
    assert 700 <= gap <= 800
    assert_valid_timings(paused, 3)


def test_break_forms_and_a_word_that_is_only_a_break() -> None:
    audio = speak(["One", '<break time="1.5s" />', "two", "<break time='1s'/>"])
    assert_valid_timings(audio, 4)
    one, pause, two, tail = audio.timings
    assert pause.start_ms == pause.end_ms and one.end_ms <= pause.start_ms < one.end_ms + 60
    assert two.start_ms - pause.start_ms >= 1500
    assert tail.start_ms == tail.end_ms and tail.start_ms >= two.end_ms
    assert audio.duration_ms - tail.start_ms == pytest.approx(1000, abs=2)


def test_numbers_and_abbreviations_get_their_own_spans() -> None:
    words = ["Doctor", "Smith", "paid", "1,250", "dollars", "to", "Dr.", "Jones", "of", "the"]
    audio = speak(words)
    assert_valid_timings(audio, len(words))
    spans = {w: t.end_ms - t.start_ms for w, t in zip(words, audio.timings, strict=True)}
    # "one thousand two hundred and fifty": several espeak words, one of ours.
    assert spans["1,250"] > 3 * spans["paid"]
    assert all(t.end_ms > t.start_ms for t in audio.timings)


def test_digits_are_read_one_by_one() -> None:
    as_markup = speak(["Call", "<digits>4071</digits>", "now."])
    spelled = speak(["Call", "4", "0", "7", "1", "now."])
    assert np.array_equal(as_markup.samples, spelled.samples)
    assert as_markup.timings[1].start_ms == spelled.timings[1].start_ms
    assert as_markup.timings[1].end_ms == spelled.timings[4].end_ms


def test_phonemes_in_ipa_or_espeak_notation() -> None:
    ipa = speak(["Say", "<phonemes>həˈloʊ</phonemes>", "again."])
    mnemonics = speak(["Say", "<phonemes>h@l'oU</phonemes>", "again."])
    assert np.array_equal(ipa.samples, mnemonics.samples)
    assert ipa.timings[1].end_ms - ipa.timings[1].start_ms > 200
    # Something that is not a phoneme notation we read is spoken as text instead.
    fallback = speak(["<phonemes>hello</phonemes>"])
    assert fallback.duration_ms > 200


def test_brackets_in_text_are_not_phoneme_input() -> None:
    assert np.array_equal(speak(["[[h@l'oU]]"]).samples, speak(["h@l'oU"]).samples)


def test_empty_and_markup_only_input() -> None:
    nothing = speak([])
    assert len(nothing.samples) == 0 and nothing.timings == ()
    blank = speak(["", ""])
    assert len(blank.samples) == 0
    assert [(t.start_ms, t.end_ms) for t in blank.timings] == [(0, 0), (0, 0)]
    pause = speak(["<break time='250ms'/>"])
    assert pause.duration_ms == 250 and not pause.samples.any()
    assert (pause.timings[0].start_ms, pause.timings[0].end_ms) == (0, 0)


def test_an_empty_word_sits_where_the_previous_one_ended() -> None:
    audio = speak(["Before", "", "after."])
    assert_valid_timings(audio, 3)
    assert audio.timings[1].start_ms == audio.timings[1].end_ms == audio.timings[0].end_ms


def test_long_input() -> None:
    words = (PASSAGE + " ") * 5
    words_list = words.split()
    assert len(words) > 2000
    audio = speak(words_list)
    assert_valid_timings(audio, len(words_list))
    assert audio.timings[-1].end_ms > audio.duration_ms - 300


def test_malformed_markup_is_one_clear_error() -> None:
    with pytest.raises(RequestRejectedError, match="break"):
        speak(["Wait", "<break time='soon'/>"])


def test_unknown_voice_is_rejected() -> None:
    for voice in ("no-such-voice", "en+no-such-variant", "m3", ""):
        with pytest.raises(VoiceNotFoundError, match="does not exist"):
            speak(["Hello."], voice=voice)


async def test_engine_check_and_synthesize() -> None:
    with pytest.raises(VoiceNotFoundError):
        await LocalEngine(voice="xx-nowhere", sample_rate=24000).check()
    engine = LocalEngine(voice="en-gb", sample_rate=24000, speed=1.2)
    await engine.check()
    audio = await engine.synthesize(["Hello", "there."], chunk_id="c0000-00000", need_timings=True)
    assert audio.sample_rate == 24000 and len(audio.timings) == 2
    identity = engine.identity()
    assert identity["engine"] == "local" and identity["espeak"].startswith("1.52")
    assert (identity["voice"], identity["sample_rate"], identity["speed"]) == ("en-gb", 24000, 1.2)
    await engine.aclose()


async def test_engine_errors_name_the_chunk() -> None:
    engine = LocalEngine(voice="en", sample_rate=24000)
    with pytest.raises(RequestRejectedError, match="c0001-00002"):
        await engine.synthesize(["<digits>1"], chunk_id="c0001-00002", need_timings=True)


def test_concurrent_calls_match_serial_calls() -> None:
    jobs = [WORDS[i : i + 12] for i in range(0, 48, 12)] * 2
    serial = [speak(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(speak, jobs))
    for one, other in zip(serial, parallel, strict=True):
        assert np.array_equal(one.samples, other.samples)
        assert one.timings == other.timings


def test_list_voices() -> None:
    voices = list_voices()
    by_id = {v["identifier"]: v for v in voices}
    assert "gmw/en-US" in by_id and "en-us" in by_id["gmw/en-US"]["languages"]
    assert all(v["name"] and v["languages"] for v in voices)
    assert not any(v["identifier"].startswith("!v") for v in voices)  # variants are not voices
    assert len(voices) > 50


def test_measure_words_per_second(passage: ChunkAudio) -> None:
    words = WORDS * 10
    began = time.perf_counter()
    audio = speak(words)
    elapsed = time.perf_counter() - began
    print(
        f"\nlocal engine: {len(words)} words in {elapsed:.2f} s"
        f" = {len(words) / elapsed:.0f} words/s"
        f" ({audio.duration_ms / 1000 / elapsed:.0f}x real time, espeak {espeak.version()})"
    )
    assert len(audio.timings) == len(words)
