"""Cover art: the job's ``metadata.cover`` or the EPUB's cover image, checked and converted
to a baseline RGB JPEG with Pillow (what every player and store reads), written as
``cover.jpg`` beside the audio. Nothing is upscaled: a cover too small for a store is
reported, never blown up."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError
from pipeline.fsutil import atomic_path
from pipeline.publish.metadata import BookMetadata


@dataclass(frozen=True, slots=True)
class Cover:
    jpeg: bytes
    width: int
    height: int
    source_format: str  # JPEG | PNG

    @property
    def square(self) -> bool:
        return self.width == self.height

    def problems(self, *, min_px: int = 0, square: bool = False) -> list[str]:
        out = []
        if square and not self.square:
            out.append(f"cover is {self.width}x{self.height}, not square")
        if min(self.width, self.height) < min_px:
            out.append(f"cover is {self.width}x{self.height}, smaller than {min_px}x{min_px}")
        return out


def load_cover(meta: BookMetadata) -> Cover | None:
    """The book's cover as JPEG, or None when it has none; InputError for an unreadable one."""
    source = meta.cover_source
    if source is None:
        return None
    try:
        if source[0] == "file":
            data = Path(source[1]).read_bytes()
        else:
            with zipfile.ZipFile(source[1]) as archive:
                data = archive.read(source[2])
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(f"{source[1]}: cannot read the cover image ({exc})") from None
    return convert_cover(data, name=source[-1])


def convert_cover(data: bytes, *, name: str) -> Cover:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or "?"
            if kind not in ("JPEG", "PNG"):
                raise InputError(f"{name}: the cover must be JPEG or PNG, not {kind}")
            rgb = image.convert("RGB")  # drops alpha and palettes: stores want RGB JPEG
    except UnidentifiedImageError:
        raise InputError(f"{name}: the cover is not an image Pillow can read") from None
    if kind == "JPEG" and image.mode == "RGB":
        jpeg = data
    else:
        buffer = io.BytesIO()
        rgb.save(buffer, "JPEG", quality=92)
        jpeg = buffer.getvalue()
    return Cover(jpeg, rgb.width, rgb.height, kind)


def write_cover(cover: Cover, folder: Path) -> Path:
    path = folder / "cover.jpg"
    with atomic_path(path) as tmp:
        tmp.write_bytes(cover.jpeg)
    return path
