"""Which chapters a job reads (``input.chapters``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.errors import ConfigError
from pipeline.models import Chapter


def select_chapters(
    chapters: Sequence[Chapter], selection: Sequence[int | str] | None
) -> list[Chapter]:
    """The chapters picked by ``selection``, in book order, each once.

    An int is a 1-based position in the whole book (all input files in order); a string is
    a regular expression searched, ignoring case, in chapter titles. None means every
    chapter. A selector that picks nothing is an error naming it: a typo must not quietly
    produce a shorter book.
    """
    if selection is None:
        return list(chapters)
    if not selection:
        raise ConfigError("input.chapters: the list is empty; leave it out to read every chapter")
    picked: set[int] = set()
    for i, selector in enumerate(selection):
        where = f"input.chapters[{i}]"
        if isinstance(selector, bool):
            raise ConfigError(f"{where}: expected a chapter number or a title, not {selector}")
        if isinstance(selector, int):
            if not 1 <= selector <= len(chapters):
                raise ConfigError(
                    f"{where}: no chapter {selector}; the book has {len(chapters)} "
                    f"chapter{'s' if len(chapters) != 1 else ''} (numbered from 1)"
                )
            picked.add(selector - 1)
            continue
        try:
            pattern = re.compile(selector, re.IGNORECASE)
        except re.error as exc:
            raise ConfigError(f"{where}: invalid regular expression {selector!r}: {exc}") from None
        hits = {n for n, chapter in enumerate(chapters) if pattern.search(chapter.title)}
        if not hits:
            raise ConfigError(f"{where}: no chapter title matches {selector!r}")
        picked |= hits
    return [chapter for n, chapter in enumerate(chapters) if n in picked]
