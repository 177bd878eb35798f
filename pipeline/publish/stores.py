"""Store profiles: the audio each store needs, and the figures its files are held to.

Sources (as read in December 2026; the README cites them per store):
- ACX (Audible): "Audio Submission Requirements" on acx.com: MP3 at 192 kbps or more, constant
  bit rate, 44.1 kHz, all files mono or all stereo, RMS -23..-18 dB, peaks <= -3 dB, noise
  floor <= -60 dB RMS, 0.5-1 s of room tone at the head and 1-5 s at the tail, one chapter per
  file and none over 120 minutes, opening and closing credits, a 1-5 minute retail sample,
  cover art square and at least 2400x2400 pixels.
- Google Play Books: Partner Center "Book file guidelines": MP3 (CBR preferred) >= 128 kbps mono
  or >= 256 kbps stereo, the book at least 5 minutes long, cover JPEG/PNG 1024-7200 pixels a
  side (square recommended).
- Apple Books: accepted through distributors; we follow the common delivery spec: M4B (AAC)
  with chapter markers, 44.1 kHz, cover square and at least 2400x2400 (3000x3000 preferred).
- Audiobookshelf (self-hosted server): a folder per book (Author/[Series/]Title/) holding the
  M4B, cover.jpg and metadata.json, which its scanner reads.
- Podcast (RSS): MP3 per episode, -16 LUFS +-1 and <= -1 dBTP (Apple Podcasts' loudness
  target), artwork square JPEG/PNG 1400-3000 pixels (Apple Podcasts' artwork spec).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StoreProfile:
    name: str
    label: str
    audio_format: str  # the format the package is made of
    per_chapter: bool  # one file per chapter (else one book file)
    loudness: str  # the loudness profile the audio is mastered to
    min_mp3_kbps: int = 0
    sample_rate: int | None = None  # required rate of the delivered files
    rms_range: tuple[float, float] | None = None
    max_peak_db: float | None = None  # sample peak ceiling
    max_true_peak_db: float | None = None
    lufs_range: tuple[float, float] | None = None
    max_noise_floor_db: float | None = None
    head_s: tuple[float, float] | None = None  # room tone at the head, seconds
    tail_s: tuple[float, float] | None = None
    max_file_minutes: float | None = None
    min_book_minutes: float | None = None
    cbr: bool = False
    credits: bool = False
    retail_sample: tuple[float, float] | None = None  # minutes
    cover_min_px: int = 0
    cover_max_px: int | None = None
    cover_square: bool = False
    needs_chapters_in_file: bool = False  # chapter markers inside the one file (M4B)
    metadata_json: bool = False  # audiobookshelf's metadata.json


STORES: dict[str, StoreProfile] = {
    "acx": StoreProfile(
        name="acx",
        label="ACX (Audible)",
        audio_format="mp3",
        per_chapter=True,
        loudness="audiobook",
        min_mp3_kbps=192,
        sample_rate=44100,
        rms_range=(-23.0, -18.0),
        max_peak_db=-3.0,
        max_noise_floor_db=-60.0,
        head_s=(0.5, 1.0),
        tail_s=(1.0, 5.0),
        max_file_minutes=120.0,
        cbr=True,
        credits=True,
        retail_sample=(1.0, 5.0),
        cover_min_px=2400,
        cover_square=True,
    ),
    "google": StoreProfile(
        name="google",
        label="Google Play Books",
        audio_format="mp3",
        per_chapter=True,
        loudness="audiobook",
        min_mp3_kbps=128,
        sample_rate=44100,
        min_book_minutes=5.0,
        cbr=True,
        cover_min_px=1024,
        cover_max_px=7200,
    ),
    "apple": StoreProfile(
        name="apple",
        label="Apple Books",
        audio_format="m4b",
        per_chapter=False,
        loudness="audiobook",
        sample_rate=44100,
        rms_range=(-23.0, -18.0),
        max_peak_db=-3.0,
        needs_chapters_in_file=True,
        cover_min_px=2400,
        cover_square=True,
    ),
    "audiobookshelf": StoreProfile(
        name="audiobookshelf",
        label="Audiobookshelf",
        audio_format="m4b",
        per_chapter=False,
        loudness="audiobook",
        needs_chapters_in_file=True,
        metadata_json=True,
    ),
    "podcast": StoreProfile(
        name="podcast",
        label="Podcast (RSS)",
        audio_format="mp3",
        per_chapter=True,
        loudness="podcast",
        min_mp3_kbps=128,
        sample_rate=44100,
        lufs_range=(-17.0, -15.0),
        max_true_peak_db=-1.0,
        cbr=True,
        cover_min_px=1400,
        cover_max_px=3000,
        cover_square=True,
    ),
}
for _profile in STORES.values():  # every store gets a whole number of files of its format
    assert _profile.audio_format in ("mp3", "m4b")


def apply_store_settings(data: Any) -> Any:
    """The raw job mapping with the audio settings its ``delivery.store`` needs filled in;
    ValueError naming the key when the job asks for something the store refuses."""
    if not isinstance(data, dict):
        return data
    delivery = data.get("delivery")
    store = delivery.get("store") if isinstance(delivery, dict) else None
    if not isinstance(store, str) or store not in STORES:
        return data  # the model's own validation reports a missing or unknown store
    profile = STORES[store]
    audio = data.get("audio")
    audio = dict(audio) if isinstance(audio, dict) else {}
    formats = audio.get("formats")
    if formats is None:
        audio["formats"] = [profile.audio_format]
    elif isinstance(formats, list) and profile.audio_format not in formats:
        audio["formats"] = [*formats, profile.audio_format]
    loudness = audio.setdefault("loudness", profile.loudness)
    if loudness != profile.loudness:
        raise ValueError(f"audio.loudness: {store} needs the '{profile.loudness}' profile, not {loudness!r}")
    kbps = audio.setdefault("mp3_bitrate_kbps", max(192, profile.min_mp3_kbps))
    if isinstance(kbps, int) and kbps < profile.min_mp3_kbps:
        raise ValueError(f"audio.mp3_bitrate_kbps: {store} needs at least {profile.min_mp3_kbps} kbps, not {kbps}")
    outputs = data.get("outputs")
    outputs = dict(outputs) if isinstance(outputs, dict) else {}
    key = "chapter_files" if profile.per_chapter else "book_file"
    if outputs.get(key) is False:
        what = "a file per chapter" if profile.per_chapter else "the book file"
        raise ValueError(f"outputs.{key}: {store} delivers {what}")
    return {**data, "audio": audio, "outputs": outputs}
