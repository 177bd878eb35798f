"""The piper engine on the bundled voice: phonemes shared out to our words, timings from the
model's own durations, breaks, speed, and a clear error for every wrong voice setting.
Sentences are short: the neural voice is much slower than espeak-ng."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import VoiceNotFoundError
from pipeline.tts import espeak, piper_voice
from pipeline.tts.piper import PiperEngine, _infer, speak
from pipeline.tts.piper_phonemes import NO_WORD, Segment, phonemes_with_owners, to_ids


@pytest.fixture(scope="module")
def voice() -> piper_voice.LoadedVoice:
    return piper_voice.load(piper_voice.resolve("en_US-joe-medium"), threads=1)


def _phonemize(text: str) -> list[str]:
    return espeak.text_to_phonemes(text, voice=espeak.select_voice("en-us"))


def _by_word(words: list[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for char, owner in phonemes_with_owners([Segment(i, w) for i, w in enumerate(words)], _phonemize):
        if owner != NO_WORD:
            out[owner] = out.get(owner, "") + char
    return out


def test_words_espeak_joins_get_their_own_phonemes() -> None:
    words = ["in", "front", "of", "the", "house."]
    assert len(_phonemize(" ".join(words))[0].split()) < len(words)  # espeak joins "of the"
    owned = _by_word(words)
    assert sorted(owned) == [0, 1, 2, 3, 4]
    assert owned[2] == "ʌv" and owned[3] == "ðə"
    assert "h" in owned[4] and "f" in owned[1]


def test_clause_punctuation_is_put_back_for_the_voice(voice: piper_voice.LoadedVoice) -> None:
    plain = phonemes_with_owners([Segment(0, "Yes,"), Segment(1, "she"), Segment(2, "said?")], _phonemize)
    chars = "".join(c for c, _ in plain)
    assert "," in chars and chars.endswith("?")
    ids, owners = to_ids(plain, voice.config.id_map)
    assert len(ids) == len(owners) and ids[0] == voice.config.id_map["^"][0] and ids[-1] == voice.config.id_map["$"][0]


def test_durations_cover_the_audio_exactly(voice: piper_voice.LoadedVoice) -> None:
    ids, _ = to_ids(phonemes_with_owners([Segment(0, "Hello there.")], _phonemize), voice.config.id_map)
    scales = np.asarray([0.667, 1.0, 0.8], dtype=np.float32)
    audio, bounds = _infer(voice, ids, scales, None)
    assert bounds[0] == 0 and bounds[-1] == len(audio) > 0
    assert np.all(np.diff(bounds) >= 0) and np.all(bounds % 256 == 0)  # whole frames of 256 samples


def test_timings_are_ordered_and_breaks_last_what_they_say(voice: piper_voice.LoadedVoice) -> None:
    words = ["The", "lamp", "turned.", "<break time='700ms'/>", "Nobody", "spoke."]
    audio = speak(words, voice=voice, sample_rate=24000, length=1.0)
    assert audio.sample_rate == 24000 and len(audio.timings) == len(words)
    duration_ms = len(audio.samples) * 1000 / 24000
    previous = 0
    for i, t in enumerate(audio.timings):
        assert previous <= t.start_ms <= t.end_ms <= duration_ms
        assert (t.end_ms > t.start_ms) == (i != 3), (words[i], t)
        previous = t.end_ms
    assert audio.timings[4].start_ms - audio.timings[2].end_ms >= 700
    # the break itself is digital silence
    a, b = (round(audio.timings[3].start_ms * 24), round((audio.timings[3].start_ms + 650) * 24))
    assert np.abs(audio.samples[a:b].astype(np.int32)).max() < 50


def test_speed_maps_to_the_length_scale(voice: piper_voice.LoadedVoice) -> None:
    words = ["She", "wrote", "in", "the", "ledger", "every", "night."]
    normal = speak(words, voice=voice, sample_rate=22050, length=1.0)
    fast = speak(words, voice=voice, sample_rate=22050, length=0.5)
    slow = speak(words, voice=voice, sample_rate=22050, length=2.0)
    # Not exactly half and double: every phoneme's frame count is rounded up to a whole frame.
    assert 0.5 < len(fast.samples) / len(normal.samples) < 0.8
    assert 1.6 < len(slow.samples) / len(normal.samples) < 2.3
    paced = PiperEngine(voice="en_US-joe-medium", sample_rate=22050).length_scale
    assert PiperEngine(voice="en_US-joe-medium", sample_rate=22050, speed=2.0).length_scale == paced / 2


def test_identity_holds_the_model_hash_and_the_settings() -> None:
    base = PiperEngine(voice="en", sample_rate=22050).identity()  # a language picks the bundled voice
    assert base["engine"] == "piper" and len(base["model_sha256"]) == 64
    assert PiperEngine(voice="en_US-joe-medium", sample_rate=22050, speed=1.25).identity() != base
    assert "voice" not in base and all("/" not in str(v) for v in base.values())  # no paths in the key


def test_content_hash_follows_the_bytes(tmp_path: Path) -> None:
    def files(name: str, weights: bytes) -> piper_voice.VoiceFiles:
        (tmp_path / f"{name}.onnx").write_bytes(weights)
        (tmp_path / f"{name}.onnx.json").write_text("{}")
        return piper_voice.VoiceFiles(name, tmp_path / f"{name}.onnx", tmp_path / f"{name}.onnx.json")

    assert piper_voice.content_hash(files("a", b"one")) != piper_voice.content_hash(files("b", b"two"))
    assert piper_voice.content_hash(files("c", b"one")) == piper_voice.content_hash(files("a", b"one"))


def test_wrong_voices_fail_naming_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(VoiceNotFoundError, match=str(tmp_path / "nope.onnx")):
        PiperEngine(voice=str(tmp_path / "nope.onnx"), sample_rate=22050)
    (tmp_path / "lonely.onnx").write_bytes(b"x")
    with pytest.raises(VoiceNotFoundError, match=r"lonely\.onnx\.json"):
        PiperEngine(voice=str(tmp_path / "lonely.onnx"), sample_rate=22050)
    with pytest.raises(VoiceNotFoundError, match="neither a bundled voice"):
        PiperEngine(voice="fr_FR-nobody-low", sample_rate=22050)
    # a config beside a file that is not ONNX: found, then refused when loaded
    shutil.copy(piper_voice.resolve("en_US-joe-medium").config, tmp_path / "lonely.onnx.json")
    with pytest.raises(VoiceNotFoundError, match=r"lonely\.onnx is not an ONNX model"):
        piper_voice.load(piper_voice.resolve(str(tmp_path / "lonely.onnx")))


def test_speakers_by_id_or_name(tmp_path: Path) -> None:
    config = json.loads(piper_voice.resolve("en_US-joe-medium").config.read_text())
    config.update(num_speakers=3, speaker_id_map={"ann": 0, "bob": 1, "cy": 2})
    (tmp_path / "multi.onnx").write_bytes(b"x")
    (tmp_path / "multi.onnx.json").write_text(json.dumps(config))
    files = piper_voice.resolve(str(tmp_path / "multi.onnx"))
    parsed = piper_voice.read_config(files)
    assert [piper_voice.speaker_id(parsed, s, files) for s in (None, 2, "1", "bob")] == [0, 2, 1, 1]
    for bad in (3, "dan"):
        with pytest.raises(VoiceNotFoundError, match="speaker"):
            piper_voice.speaker_id(parsed, bad, files)
    with pytest.raises(VoiceNotFoundError, match="one speaker"):
        PiperEngine(voice="en_US-joe-medium", sample_rate=22050, speaker=1)


def test_a_voice_file_is_named_relative_to_the_job_file(tmp_path: Path) -> None:
    from pipeline.config import load_job

    (tmp_path / "jobs").mkdir()
    job = tmp_path / "jobs" / "j.yaml"
    job.write_text("name: j\ninput: {files: [a.txt]}\nengine: {kind: piper, voice: ../voices/v.onnx}\n")
    assert load_job(job).config.engine.voice == str(tmp_path / "voices" / "v.onnx")
    job.write_text("name: j\ninput: {files: [a.txt]}\nengine: {kind: piper, voice: en_US-joe-medium}\n")
    assert load_job(job).config.engine.voice == "en_US-joe-medium"


def test_the_benchmark_scores_word_errors_by_edit_distance() -> None:
    from bench.bench_piper import _edit_distance

    assert _edit_distance(["the", "cat", "sat"], ["the", "cat", "sat"]) == 0
    assert _edit_distance(["the", "cat", "sat"], ["a", "cat", "sat", "down"]) == 2  # one swap, one extra
    assert _edit_distance(["the", "cat", "sat"], []) == 3
