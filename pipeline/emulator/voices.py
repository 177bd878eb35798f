"""The emulator's voices: a few predefined ones mapped onto espeak-ng voices, plus clones.

Ids are fixed UUIDs so job files and tests can name them; the first is the id that Async's own
examples use, so snippets copied from its documentation work against the emulator unchanged.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pipeline.emulator.responses import ApiError
from pipeline.emulator.validation import SUPPORTED_LANGUAGES

# Which espeak-ng voice speaks a language when the chosen voice does not list it.
ESPEAK_FOR_LANGUAGE: dict[str, str] = {
    "en": "en-us", "fr": "fr", "es": "es", "de": "de", "it": "it", "pt": "pt-br", "ar": "ar",
    "ru": "ru", "ro": "ro", "ja": "ja", "he": "he", "hy": "hy", "tr": "tr", "hi": "hi",
    "zh": "cmn", "nl": "nl",
}  # fmt: skip

_EPOCH = "2025-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Voice:
    voice_id: str
    name: str
    description: str
    language: str  # comma-separated ISO 639-1 codes, as the API writes them
    gender: str  # Male | Female | Neutral | Unspecified
    accent: str
    style: str
    espeak_voice: str  # what the local engine speaks it with; not part of the API object
    voice_type: str = "PREDEFINED"
    created_at: str = _EPOCH
    updated_at: str = _EPOCH

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(code.strip() for code in self.language.split(",") if code.strip())

    def espeak_for(self, language: str | None) -> str:
        """The espeak voice for a request: the voice's own, unless the request asks for a
        language the voice does not list (then that language's default espeak voice)."""
        if language is None or self.languages == (language,):
            return self.espeak_voice
        return ESPEAK_FOR_LANGUAGE.get(language, self.espeak_voice)

    def to_api(self) -> dict[str, Any]:
        body = asdict(self)
        del body["espeak_voice"]
        return body


PREDEFINED: tuple[Voice, ...] = (
    Voice("e0f39dc4-f691-4e78-bba5-5c636692cc04", "Sarah", "Warm, steady narrator", "en", "Female", "American", "Narration", "en-us"),  # noqa: E501
    Voice("fd3a994c-c804-5552-a1cf-41ac07f5ade4", "Oliver", "Clear British storyteller", "en", "Male", "British", "Narration", "en"),  # noqa: E501
    Voice("19b3da32-bf19-5296-8ad1-268138ca9a46", "Robin", "Relaxed Scottish voice", "en", "Neutral", "Scottish", "Conversational", "en-gb-scotland"),  # noqa: E501
    Voice("32bc7677-3646-5bf2-a004-7504d2bc51be", "Amelie", "Parisian presenter", "fr", "Female", "French", "Conversational", "fr"),  # noqa: E501
    Voice("bb1a6922-d575-5aff-9f66-abdaf7e46397", "Lukas", "Calm German reader", "de", "Male", "German", "Narration", "de"),  # noqa: E501
    Voice("72b8bd14-e26e-54d2-bb93-01265213b10f", "Lucia", "Bright Castilian voice", "es", "Female", "Spanish", "Conversational", "es"),  # noqa: E501
    Voice("2a9c2b59-1108-5519-960d-0cdbdebd8bf8", "Marco", "Italian news reader", "it", "Male", "Italian", "News", "it"),  # noqa: E501
    Voice("c88a6aeb-44bf-5d6e-97ba-8aa3bfe3d676", "Beatriz", "Brazilian narrator", "pt", "Female", "Brazilian", "Narration", "pt-br"),  # noqa: E501
    Voice("1b07d904-38ae-53e3-87c2-115fbe3063b7", "Nova", "Multilingual assistant", ",".join(sorted(SUPPORTED_LANGUAGES)), "Unspecified", "Neutral", "Conversational", "en-us"),  # noqa: E501
)  # fmt: skip

_FILTERS = ("accent", "gender", "style")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def voice_not_found(voice_id: str) -> ApiError:
    return ApiError(404, "VOICE_NOT_FOUND", f"voice {voice_id!r} not found", {"voice_id": voice_id})


class VoiceStore:
    """Predefined voices (read-only) and cloned ones (editable), in listing order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._voices: dict[str, Voice] = {v.voice_id: v for v in PREDEFINED}

    def get(self, voice_id: str) -> Voice:
        with self._lock:
            voice = self._voices.get(voice_id)
        if voice is None:
            raise voice_not_found(voice_id)
        return voice

    def all(self) -> list[Voice]:
        with self._lock:
            return list(self._voices.values())

    def query(self, filters: dict[str, Any]) -> tuple[list[Voice], str | None]:
        """One page of voices matching the ``POST /voices`` filters, and the next cursor."""
        limit = filters.get("limit", 10)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"limit: must be an integer between 1 and 100, got {limit!r}",
                {"field": "limit"},
            )
        voices = self.all()
        language = filters.get("language")
        if language is not None:
            voices = [v for v in voices if language in v.languages]
        for key in _FILTERS:
            wanted = filters.get(key)
            if wanted is not None:
                voices = [v for v in voices if getattr(v, key).lower() == str(wanted).lower()]
        if filters.get("my_voice") is True:
            voices = [v for v in voices if v.voice_type == "CUSTOM"]
        after = filters.get("after")
        if after is not None:
            ids = [v.voice_id for v in voices]
            if after not in ids:
                raise ApiError(400, "VALIDATION_ERROR", f"after: unknown cursor {after!r}", {"field": "after"})
            voices = voices[ids.index(after) + 1 :]
        page = voices[:limit]
        next_cursor = page[-1].voice_id if len(voices) > limit else None
        return page, next_cursor

    def clone(self, name: str, description: str, language: str, gender: str = "Unspecified") -> Voice:
        base = ESPEAK_FOR_LANGUAGE.get(language.split(",")[0], "en-us")
        voice = Voice(
            voice_id=str(uuid.uuid4()),
            name=name,
            description=description,
            language=language,
            gender=gender,
            accent="Custom",
            style="Cloned",
            espeak_voice=base,
            voice_type="CUSTOM",
            created_at=_now(),
            updated_at=_now(),
        )
        with self._lock:
            self._voices[voice.voice_id] = voice
        return voice

    def _custom(self, voice_id: str) -> Voice:
        voice = self.get(voice_id)
        if voice.voice_type != "CUSTOM":
            raise ApiError(
                403,
                "FORBIDDEN",
                f"voice {voice_id!r} is predefined and cannot be changed",
                {"voice_id": voice_id},
            )
        return voice

    def update(self, voice_id: str, changes: dict[str, Any]) -> Voice:
        voice = self._custom(voice_id)
        allowed = {k: str(v) for k, v in changes.items() if k in ("name", "description") and v is not None}
        updated = replace(voice, **allowed, updated_at=_now())
        with self._lock:
            self._voices[voice_id] = updated
        return updated

    def delete(self, voice_id: str) -> None:
        self._custom(voice_id)
        with self._lock:
            self._voices.pop(voice_id, None)

    def reset(self) -> None:
        with self._lock:
            self._voices = {v.voice_id: v for v in PREDEFINED}
