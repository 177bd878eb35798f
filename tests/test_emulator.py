"""The emulator speaks the AsyncFlow API: endpoints, real audio, validation, auth, voices.

These run the app in-process through httpx's ASGI transport (no socket, so no server start);
limits and faults are in test_emulator_limits.py, real-socket behaviour in
test_emulator_pipecat.py.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import pytest
import soundfile

from pipeline.emulator.settings import EmulatorSettings
from pipeline.emulator.state import EmulatorState
from pipeline.emulator.voices import PREDEFINED
from tests.emulator_support import (
    AMELIE,
    KEY,
    SARAH,
    SENTENCE,
    assert_speech,
    error_of,
    in_process,
    read_wav,
    synth_body,
)


@pytest.fixture
def state() -> EmulatorState:
    return EmulatorState(EmulatorSettings())


async def test_status_needs_no_key(state: EmulatorState) -> None:
    async with in_process(state) as client:
        response = await client.get("/", headers={"x-api-key": ""})
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": "v1"}


async def test_wav_is_real_speech_at_the_requested_rate(state: EmulatorState) -> None:
    async with in_process(state) as client:
        response = await client.post("/text_to_speech", json=synth_body(output_format={"sample_rate": 16000}))
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    samples, rate = read_wav(response.content)
    assert rate == 16000
    assert_speech(samples, rate, min_s=1.5, max_s=6)


async def test_raw_is_the_same_audio_without_a_header(state: EmulatorState) -> None:
    async with in_process(state) as client:
        wav = await client.post("/text_to_speech", json=synth_body())
        raw = await client.post("/text_to_speech", json=synth_body(output_format={"container": "raw"}))
        f32 = await client.post(
            "/text_to_speech",
            json=synth_body(output_format={"container": "raw", "encoding": "pcm_f32le"}),
        )
        f32_wav = await client.post("/text_to_speech", json=synth_body(output_format={"encoding": "pcm_f32le"}))
    samples, _ = read_wav(wav.content)
    assert raw.headers["content-type"] == "application/octet-stream"
    assert np.array_equal(np.frombuffer(raw.content, "<i2"), samples)
    floats = np.frombuffer(f32.content, "<f4")
    assert np.allclose(floats, samples / 32768.0, atol=1e-7)
    info = soundfile.info(io.BytesIO(f32_wav.content))
    assert info.subtype == "FLOAT" and info.frames == len(samples)


async def test_mp3_decodes_to_speech_of_the_same_length(state: EmulatorState) -> None:
    async with in_process(state) as client:
        wav = await client.post("/text_to_speech", json=synth_body())
        mp3 = await client.post(
            "/text_to_speech",
            json=synth_body(output_format={"container": "mp3", "bit_rate": 64000}),
        )
        odd_rate = await client.post(
            "/text_to_speech",
            json=synth_body(output_format={"container": "mp3", "sample_rate": 10000}),
        )
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    decoded, rate = soundfile.read(io.BytesIO(mp3.content), dtype="int16")
    reference, _ = read_wav(wav.content)
    assert rate == 24000
    assert abs(len(decoded) - len(reference)) / rate < 0.15  # encoder padding only
    assert_speech(decoded, rate, min_s=1.5)
    assert odd_rate.status_code == 400
    assert error_of(odd_rate)["extra"]["field"] == "output_format.sample_rate"


async def test_timestamps_give_one_timed_word_per_token(state: EmulatorState) -> None:
    async with in_process(state) as client:
        response = await client.post("/text_to_speech/with_timestamps", json=synth_body())
    assert response.status_code == 200
    body = response.json()
    alignment = body["alignment"]
    assert alignment["words"] == SENTENCE.split()
    starts = alignment["word_start_times_milliseconds"]
    ends = alignment["word_end_times_milliseconds"]
    assert len(starts) == len(ends) == len(SENTENCE.split())
    samples, rate = read_wav(base64.b64decode(body["audio_base64"]))
    duration_ms = len(samples) * 1000 / rate
    assert all(0 <= s <= e for s, e in zip(starts, ends, strict=True))
    assert starts == sorted(starts) and ends[-1] <= duration_ms
    assert ends[-1] > duration_ms * 0.7  # the words cover the speech, not a fraction of it


async def test_markup_is_spoken_not_listed(state: EmulatorState) -> None:
    transcript = "Call <break time='600ms'/> now, code <digits>42</digits>."
    async with in_process(state) as client:
        response = await client.post("/text_to_speech/with_timestamps", json=synth_body(transcript))
    alignment = response.json()["alignment"]
    assert alignment["words"] == ["Call", "now,", "code", "42."]
    gap = alignment["word_start_times_milliseconds"][1] - alignment["word_end_times_milliseconds"][0]
    assert gap >= 550  # the break is real silence between the words


async def test_streaming_pcm_encodings(state: EmulatorState) -> None:
    fmt = {"container": "raw", "sample_rate": 8000}
    async with in_process(state) as client:
        s16 = await client.post("/text_to_speech/streaming", json=synth_body(output_format=fmt))
        mulaw = await client.post(
            "/text_to_speech/streaming",
            json=synth_body(output_format={**fmt, "encoding": "pcm_mulaw"}),
        )
    assert s16.status_code == mulaw.status_code == 200
    assert s16.headers["content-type"] == "application/octet-stream"
    samples = np.frombuffer(s16.content, "<i2")
    assert_speech(samples, 8000, min_s=1.5)
    assert len(mulaw.content) == len(samples)  # one byte a sample


def test_mulaw_matches_the_g711_reference() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # the reference G.711 encoder (standard library until 3.13)

    from pipeline.emulator.audio import mulaw

    samples = np.concatenate([np.arange(-32768, 32768, 7, dtype=np.int16), np.array([32767], np.int16)])
    assert mulaw(samples) == audioop.lin2ulaw(samples.astype("<i2").tobytes(), 2)


# --- validation ------------------------------------------------------------------------------

TTS, STREAM, STAMPS = (
    "/text_to_speech",
    "/text_to_speech/streaming",
    "/text_to_speech/with_timestamps",
)
BAD = "VALIDATION_ERROR"
OF = "output_format."


def fmt(**fields: Any) -> dict[str, Any]:
    return {"output_format": fields}


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    # (endpoint, changes to a valid body, error_code, the field named in message and extra)
    (TTS, {"model_id": None}, BAD, "model_id"),
    (TTS, {"transcript": "   "}, BAD, "transcript"),
    (TTS, {"transcript": 42}, BAD, "transcript"),
    (TTS, {"voice": {"mode": "name", "id": SARAH}}, BAD, "voice.mode"),
    (TTS, {"voice": {"mode": "id"}}, BAD, "voice.id"),
    (TTS, fmt(container="flac"), BAD, OF + "container"),
    (STREAM, fmt(container="wav"), BAD, OF + "container"),
    (TTS, fmt(encoding="pcm_mulaw"), BAD, OF + "encoding"),
    (TTS, fmt(sample_rate=7999), BAD, OF + "sample_rate"),
    (TTS, fmt(sample_rate="24000"), BAD, OF + "sample_rate"),
    (TTS, fmt(sample_rate=True), BAD, OF + "sample_rate"),
    (TTS, fmt(bit_rate=128000), BAD, OF + "bit_rate"),
    (TTS, {"speed_control": 0.5}, BAD, "speed_control"),
    (TTS, {"stability": 101}, BAD, "stability"),
    (TTS, {"transcript": "a <break time=soon/> b"}, BAD, "transcript"),
    (TTS, {"language": "xx"}, "INVALID_LANGUAGE", "language"),
    (TTS, {"model_id": "async_pro_v1.0"}, "INVALID_MODEL", "model_id"),
    (STAMPS, {"model_id": "async_flash_v1.5"}, "INVALID_MODEL", "model_id"),
]


@pytest.mark.parametrize(("path", "changes", "code", "field"), INVALID)
async def test_invalid_requests_name_the_field(
    state: EmulatorState, path: str, changes: dict[str, Any], code: str, field: str
) -> None:
    async with in_process(state) as client:
        response = await client.post(path, json=synth_body(**changes))
    assert response.status_code == 400
    error = response.json()["detail"]
    assert error["error_code"] == code
    assert error["message"].startswith(field)
    assert error["extra"].get("field", field) == field
    assert state.snapshot()["characters_synthesized"] == 0


async def test_models_differ_per_endpoint(state: EmulatorState) -> None:
    async with in_process(state) as client:
        pro = synth_body(model_id="async_pro_v1.0", output_format={"container": "raw"})
        response = await client.post("/text_to_speech/streaming", json=pro)
    assert response.status_code == 200 and len(response.content) > 1000


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]"])
async def test_a_body_that_is_not_an_object_is_rejected(state: EmulatorState, payload: bytes) -> None:
    async with in_process(state) as client:
        response = await client.post("/text_to_speech", content=payload)
    assert response.status_code == 400
    assert error_of(response)["error_code"] == "INVALID_REQUEST"


async def test_flat_error_shape_on_request(state: EmulatorState) -> None:
    state.configure(flat_errors=True)
    async with in_process(state) as client:
        response = await client.post("/text_to_speech", json=synth_body(language="xx"))
    body = response.json()
    assert "detail" not in body
    assert body["error_code"] == "INVALID_LANGUAGE" and body["extra"] == {"language": "xx"}


# --- keys, versions, voices ------------------------------------------------------------------


async def test_only_configured_keys_are_accepted(state: EmulatorState) -> None:
    state.configure(api_keys=(KEY,))
    wrong = "sk_wrong_but_long_enough_key_9876"
    async with in_process(state) as client:
        ok = await client.post("/text_to_speech", json=synth_body())
        bad = await client.post("/text_to_speech", json=synth_body(), headers={"x-api-key": wrong})
        missing = await client.post("/voices", json={}, headers={"x-api-key": ""})
    assert ok.status_code == 200
    assert bad.status_code == missing.status_code == 401
    error = error_of(bad)
    assert error["error_code"] == "INVALID_API_KEY"
    shown = error["extra"]["api_key"]
    assert shown.startswith("sk_wro") and wrong not in json.dumps(bad.json())
    assert error_of(missing)["error_code"] == "INVALID_API_KEY"


async def test_unknown_version_is_404_and_missing_version_is_accepted(state: EmulatorState) -> None:
    async with in_process(state) as client:
        v2 = await client.post("/text_to_speech", json=synth_body(), headers={"version": "v2"})
        none = await client.post("/text_to_speech", json=synth_body(), headers={"x-api-key": KEY, "version": ""})
        bare = await client.post("/voices", json={}, headers={"version": "v1"})
    assert v2.status_code == 404 and error_of(v2)["error_code"] == "VERSION_NOT_FOUND"
    assert none.status_code == 404  # an empty version is a wrong one, not a missing one
    assert bare.status_code == 200
    async with in_process(state) as client:
        client.headers.pop("version")  # some official examples send no version header
        omitted = await client.post("/text_to_speech", json=synth_body())
    assert omitted.status_code == 200


async def test_unknown_voice_is_404_naming_it(state: EmulatorState) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    async with in_process(state) as client:
        synth = await client.post("/text_to_speech", json=synth_body(voice={"mode": "id", "id": missing}))
        get = await client.get(f"/voices/{missing}")
    for response in (synth, get):
        assert response.status_code == 404
        assert error_of(response) == {
            "error_code": "VOICE_NOT_FOUND",
            "message": f"voice {missing!r} not found",
            "extra": {"voice_id": missing},
        }


async def test_voice_list_pages_through_every_voice_once(state: EmulatorState) -> None:
    seen: list[str] = []
    after: str | None = None
    async with in_process(state) as client:
        while True:
            page = (await client.post("/voices", json={"limit": 4, "after": after})).json()
            assert len(page["voices"]) <= 4
            seen += [v["voice_id"] for v in page["voices"]]
            after = page["next_cursor"]
            if after is None:
                break
        default = (await client.post("/voices", json={})).json()
    assert seen == [v.voice_id for v in PREDEFINED]
    assert len(default["voices"]) == len(PREDEFINED) and default["next_cursor"] is None
    assert set(default["voices"][0]) == {
        "voice_id", "name", "description", "language", "gender", "accent", "style",
        "created_at", "updated_at", "voice_type",
    }  # fmt: skip


async def test_voice_filters(state: EmulatorState) -> None:
    async with in_process(state) as client:
        french = (await client.post("/voices", json={"language": "fr"})).json()["voices"]
        males = (await client.post("/voices", json={"gender": "male"})).json()["voices"]
        bad_language = await client.post("/voices", json={"language": "xx"})
        bad_limit = await client.post("/voices", json={"limit": 101})
    assert {v["name"] for v in french} == {"Amelie", "Nova"}
    assert males and all(v["gender"] == "Male" for v in males)
    assert error_of(bad_language)["error_code"] == "INVALID_LANGUAGE"
    assert bad_limit.status_code == 400 and error_of(bad_limit)["extra"]["field"] == "limit"


async def test_batch_get_and_preview(state: EmulatorState) -> None:
    async with in_process(state) as client:
        batch = (await client.post("/voices/batch", json={"voice_ids": [AMELIE, SARAH]})).json()
        one = (await client.get(f"/voices/{SARAH}")).json()
        link = (await client.get(f"/voices/preview/{SARAH}")).json()["signed_url"]
        preview = await client.get(link)
    assert [v["name"] for v in batch] == ["Amelie", "Sarah"]
    assert one["name"] == "Sarah" and one["voice_type"] == "PREDEFINED"
    samples, rate = read_wav(preview.content)
    assert_speech(samples, rate)


async def test_clone_update_delete(state: EmulatorState) -> None:
    files = {"audio": ("me.wav", b"RIFF....WAVE", "audio/wav")}
    async with in_process(state) as client:
        created = await client.post(
            "/voices/clone",
            files=files,
            data={"name": "Me", "language": "fr", "description": "mine"},
        )
        voice_id = created.json()["id"]
        mine = (await client.post("/voices", json={"my_voice": True})).json()["voices"]
        speech = await client.post("/text_to_speech", json=synth_body("Bonjour.", voice={"mode": "id", "id": voice_id}))
        renamed = await client.put(f"/voices/{voice_id}", json={"name": "Moi"})
        after_rename = (await client.get(f"/voices/{voice_id}")).json()
        deleted = await client.delete(f"/voices/{voice_id}")
        gone = await client.get(f"/voices/{voice_id}")
        predefined = await client.delete(f"/voices/{SARAH}")
        no_audio = await client.post("/voices/clone", files={"name": (None, "X")})
    assert created.json() == {"id": voice_id, "name": "Me", "description": "mine", "language": "fr"}
    assert [v["voice_id"] for v in mine] == [voice_id]
    assert speech.status_code == 200
    assert renamed.status_code == 204 and after_rename["name"] == "Moi"
    assert deleted.status_code == 204 and gone.status_code == 404
    assert predefined.status_code == 403
    assert no_audio.status_code == 400 and error_of(no_audio)["extra"]["field"] == "audio"


async def test_unknown_paths_answer_json_404(state: EmulatorState) -> None:
    async with in_process(state) as client:
        response = await client.get("/v1/text_to_speech")
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}
    assert state.snapshot()["requests"] == {"(no route)": {"404": 1}}
