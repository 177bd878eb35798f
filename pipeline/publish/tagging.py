"""Full tags in every tagged file, written with mutagen after encoding.

The encoders write a minimal set (title, artist, album, track); this pass writes the book's
whole metadata and the cover: ID3v2.3 for MP3, Vorbis comments for FLAC and Opus (with the
cover as a FLAC picture block), MP4 atoms for M4B. Each file is tagged as a copy beside it and
renamed into place, so a crash never leaves a half-tagged file. WAV carries no tags here.
Audiobook players read the narrator from the composer field (``©wrt``, ``TCOM``, COMPOSER).
"""

from __future__ import annotations

import base64
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.fsutil import atomic_path
from pipeline.publish.cover import Cover
from pipeline.publish.metadata import BookMetadata

TAGGED = frozenset({"mp3", "flac", "opus", "m4b"})


@dataclass(frozen=True, slots=True)
class FileTags:
    """What one file says: the book, plus its own title and track when it is a chapter."""

    meta: BookMetadata
    title: str
    track: int | None = None
    total_tracks: int | None = None


def tag_file(path: Path, fmt: str, tags: FileTags, cover: Cover | None) -> None:
    if fmt not in TAGGED:
        return
    with atomic_path(path) as tmp:
        shutil.copyfile(path, tmp)
        {"mp3": _id3, "flac": _flac, "opus": _opus, "m4b": _mp4}[fmt](tmp, tags, cover)


def _text_fields(tags: FileTags) -> dict[str, str]:
    m = tags.meta
    fields = {
        "title": tags.title,
        "album": m.title,
        "artist": m.author,
        "albumartist": m.author,
        "narrator": m.narrator,
        "subtitle": m.subtitle,
        "publisher": m.publisher,
        "date": str(m.year) if m.year is not None else None,
        "language": m.language,
        "description": m.description,
        "genre": m.genre or "Audiobook",
        "copyright": m.copyright,
        "isbn": m.isbn,
        "series": m.series,
        "series_position": (f"{m.series_position:g}" if m.series_position is not None else None),
    }
    if tags.track is not None:
        fields["track"] = f"{tags.track}/{tags.total_tracks}" if tags.total_tracks else str(tags.track)
    return {k: v for k, v in fields.items() if v}


def _id3(path: Path, tags: FileTags, cover: Cover | None) -> None:
    from mutagen import id3 as m

    try:
        id3 = m.ID3(path)
    except m.ID3NoHeaderError:
        id3 = m.ID3()
    APIC, COMM, TXXX = m.APIC, m.COMM, m.TXXX
    TALB, TCOM, TCON, TCOP, TDRC, TIT2, TIT3 = m.TALB, m.TCOM, m.TCON, m.TCOP, m.TDRC, m.TIT2, m.TIT3
    TLAN, TPE1, TPE2, TPUB, TRCK = m.TLAN, m.TPE1, m.TPE2, m.TPUB, m.TRCK

    f = _text_fields(tags)
    frames = {
        "title": TIT2, "album": TALB, "artist": TPE1, "albumartist": TPE2, "narrator": TCOM,
        "subtitle": TIT3, "publisher": TPUB, "date": TDRC, "language": TLAN, "genre": TCON,
        "copyright": TCOP, "track": TRCK,
    }  # fmt: skip
    for key, frame in frames.items():
        if key in f:
            id3.setall(frame.__name__, [frame(encoding=1, text=[f[key]])])
    if "description" in f:
        id3.setall("COMM", [COMM(encoding=1, lang="eng", desc="", text=[f["description"]])])
    for key in ("narrator", "isbn", "series", "series_position"):
        if key in f:
            id3.add(TXXX(encoding=1, desc=key.upper(), text=[f[key]]))
    if cover is not None:
        id3.setall("APIC", [APIC(encoding=0, mime="image/jpeg", type=3, desc="Cover", data=cover.jpeg)])
    id3.save(path, v2_version=3)


def _vorbis_fields(tags: FileTags) -> dict[str, str]:
    f = _text_fields(tags)
    names = {
        "title": "TITLE", "album": "ALBUM", "artist": "ARTIST", "albumartist": "ALBUMARTIST",
        "narrator": "COMPOSER", "subtitle": "SUBTITLE", "publisher": "PUBLISHER", "date": "DATE",
        "language": "LANGUAGE", "description": "DESCRIPTION", "genre": "GENRE", "copyright": "COPYRIGHT",
        "isbn": "ISBN", "series": "SERIES", "series_position": "SERIES-PART", "track": "TRACKNUMBER",
    }  # fmt: skip
    out = {names[k]: v for k, v in f.items()}
    if "narrator" in f:
        out["PERFORMER"] = f["narrator"]
    return out


def _picture(cover: Cover):  # type: ignore[no-untyped-def]
    from mutagen.flac import Picture

    picture = Picture()
    picture.type, picture.mime, picture.desc = 3, "image/jpeg", "Cover"
    picture.width, picture.height, picture.depth = cover.width, cover.height, 24
    picture.data = cover.jpeg
    return picture


def _flac(path: Path, tags: FileTags, cover: Cover | None) -> None:
    from mutagen.flac import FLAC

    audio = FLAC(path)
    for key, value in _vorbis_fields(tags).items():
        audio[key] = value
    if cover is not None:
        audio.clear_pictures()
        audio.add_picture(_picture(cover))
    audio.save()


def _opus(path: Path, tags: FileTags, cover: Cover | None) -> None:
    from mutagen.oggopus import OggOpus

    audio = OggOpus(path)
    for key, value in _vorbis_fields(tags).items():
        audio[key] = value
    if cover is not None:
        audio["METADATA_BLOCK_PICTURE"] = base64.b64encode(_picture(cover).write()).decode("ascii")
    audio.save()


def _mp4(path: Path, tags: FileTags, cover: Cover | None) -> None:
    from mutagen.mp4 import MP4, MP4Cover

    audio = MP4(path)
    if audio.tags is None:
        audio.add_tags()
    assert audio.tags is not None
    f = _text_fields(tags)
    atoms = {
        "title": "©nam", "album": "©alb", "artist": "©ART", "albumartist": "aART", "narrator": "©wrt",
        "date": "©day", "description": "desc", "genre": "©gen", "copyright": "cprt", "publisher": "©pub",
    }  # fmt: skip
    for key, atom in atoms.items():
        if key in f:
            audio.tags[atom] = [f[key]]
    if "description" in f:
        audio.tags["ldes"] = [f["description"]]
    audio.tags["stik"] = [2]  # media kind: audiobook
    for key in ("subtitle", "isbn", "series", "series_position", "language"):
        if key in f:
            audio.tags[f"----:com.apple.iTunes:{key.upper()}"] = [f[key].encode("utf-8")]
    if tags.track is not None:
        audio.tags["trkn"] = [(tags.track, tags.total_tracks or 0)]
    if cover is not None:
        audio.tags["covr"] = [MP4Cover(cover.jpeg, imageformat=MP4Cover.FORMAT_JPEG)]
    audio.save()
