"""What a written audio file says about itself, and where it is written before it is final."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class Tags:
    """A chapter file's title is its ``chapter_title``; the album is ``album`` or else the book
    ``title``; ``author`` is written as the artist; the track as "n/total"."""

    title: str | None = None
    author: str | None = None
    album: str | None = None
    track: int | None = None
    total_tracks: int | None = None
    chapter_title: str | None = None

    @property
    def file_title(self) -> str | None:
        return self.chapter_title or self.title

    @property
    def file_album(self) -> str | None:
        return self.album or self.title

    @property
    def track_text(self) -> str | None:
        if self.track is None:
            return None
        return f"{self.track}/{self.total_tracks}" if self.total_tracks else str(self.track)


def temp_beside(path: Path) -> Path:
    """A hidden temporary name in the destination's folder (same filesystem: atomic rename)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
