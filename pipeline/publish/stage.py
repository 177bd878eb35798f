"""The publish stage, after rendering: the cover beside the files and full tags in each."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.config import Job
from pipeline.prepare import PreparedBook
from pipeline.publish.cover import load_cover, write_cover
from pipeline.publish.metadata import BookMetadata
from pipeline.publish.tagging import TAGGED, FileTags, tag_file
from pipeline.render import RenderResult

_TRACK = re.compile(r"^(\d+)-")


def publish_outputs(job: Job, book: PreparedBook, render: RenderResult, output_dir: Path) -> RenderResult:
    """Write cover.jpg (when the book has a cover) and tag every tagged audio file; returns
    ``render`` with the cover among its other files."""
    meta = book.metadata or BookMetadata(title=book.title, authors=(book.author,) if book.author else ())
    cover = load_cover(meta)
    if cover is not None and render.files:
        render.other_files.append(str(write_cover(cover, output_dir)))
    total = len(book.chapters)
    for report in render.files:
        if report.format not in TAGGED:
            continue
        path = Path(report.path)
        number = _TRACK.match(path.name) if path.parent.name == "chapters" else None
        if number is not None and 1 <= int(number.group(1)) <= total:
            track = int(number.group(1))
            tags = FileTags(meta, book.chapters[track - 1].title, track, total)
        else:
            tags = FileTags(meta, meta.title)
        tag_file(path, report.format, tags, cover)
    return render
