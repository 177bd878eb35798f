"""Metadata and cover in every tagged format, read back by independent readers: mutagen for
the tags and pictures, ffmpeg (imageio-ffmpeg's binary) for the M4B's chapter titles and cover."""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
from pathlib import Path

import pytest
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from PIL import Image

from pipeline.config import load_job
from pipeline.errors import InputError
from pipeline.publish.cover import convert_cover
from pipeline.runner import RunOptions, run_job
from tests.jobs import write_job

TEXT = "# Chapter One\n\nThe lamp was lit at dusk.\n\n# Chapter Two\n\nThe tide came in.\n"


def _png(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGBA", size, (200, 40, 40, 255)).save(path, "PNG")
    return path


def test_cover_is_converted_to_jpeg_and_checked(tmp_path: Path) -> None:
    cover = convert_cover(_png(tmp_path / "c.png", (300, 200)).read_bytes(), name="c.png")
    with Image.open(io.BytesIO(cover.jpeg)) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (300, 200))
    assert cover.problems(min_px=2400, square=True) == [
        "cover is 300x200, not square",
        "cover is 300x200, smaller than 2400x2400",
    ]
    Image.new("RGB", (10, 10)).save(tmp_path / "c.gif", "GIF")
    with pytest.raises(InputError, match=r"c\.gif: the cover must be JPEG or PNG, not GIF"):
        convert_cover((tmp_path / "c.gif").read_bytes(), name="c.gif")


@pytest.mark.slow
def test_every_tagged_format_carries_the_metadata_and_cover(tmp_path: Path) -> None:
    import imageio_ffmpeg

    manuscript = tmp_path / "book.md"
    manuscript.write_text(TEXT, encoding="utf-8")
    job = load_job(
        write_job(
            tmp_path,
            input={"files": [str(manuscript)]},
            audio={"formats": ["mp3", "flac", "opus", "m4b"]},
            outputs={"subtitles": [], "alignment": False},
            metadata={
                "title": "The Quiet Harbour", "authors": ["Mara Penhale"], "narrator": "Nell",
                "year": 2024, "genre": "Fiction", "description": "A short book.", "copyright": "© 2024 M. P.",
                "cover": str(_png(tmp_path / "cover.png", (320, 320))),
            },
        )
    )  # fmt: skip
    asyncio.run(run_job(job, RunOptions(quiet=True)))
    out = job.output_dir
    assert Image.open(out / "cover.jpg").format == "JPEG"

    mp3 = ID3(out / "chapters" / "01-chapter-one.mp3")
    assert str(mp3["TIT2"]) == "Chapter One" and str(mp3["TALB"]) == "The Quiet Harbour"
    assert str(mp3["TPE1"]) == "Mara Penhale" and str(mp3["TCOM"]) == "Nell" and str(mp3["TRCK"]) == "1/2"
    assert str(mp3["TDRC"]) == "2024" and str(mp3["TCON"]) == "Fiction"
    assert mp3.getall("APIC")[0].mime == "image/jpeg"

    flac = FLAC(out / "chapters" / "02-chapter-two.flac")
    assert flac["TITLE"] == ["Chapter Two"] and flac["COMPOSER"] == ["Nell"] and flac["TRACKNUMBER"] == ["2/2"]
    assert flac["DESCRIPTION"] == ["A short book."] and flac.pictures[0].width == 320

    opus = OggOpus(out / "chapters" / "01-chapter-one.opus")
    assert opus["ALBUM"] == ["The Quiet Harbour"] and opus["COPYRIGHT"] == ["© 2024 M. P."]
    picture = Picture(base64.b64decode(opus["METADATA_BLOCK_PICTURE"][0]))
    assert picture.mime == "image/jpeg" and picture.data[:2] == b"\xff\xd8"

    book = out / "the-quiet-harbour.m4b"
    mp4 = MP4(book)
    assert mp4["©nam"] == ["The Quiet Harbour"] and mp4["©ART"] == ["Mara Penhale"] and mp4["aART"] == ["Mara Penhale"]
    assert mp4["©wrt"] == ["Nell"] and mp4["desc"] == ["A short book."] and mp4["©day"] == ["2024"]
    assert mp4["©gen"] == ["Fiction"] and bytes(mp4["covr"][0])[:2] == b"\xff\xd8"
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(book)], capture_output=True, text=True
    ).stderr
    assert "Chapter #0:0" in probe and "title           : Chapter One" in probe
    assert "title           : Chapter Two" in probe
    assert "Video: mjpeg" in probe  # the cover, as an attached picture stream
