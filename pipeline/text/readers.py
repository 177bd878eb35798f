"""Manuscript files to Documents: plain text and Markdown here, EPUB in ``epub.py``.

For plain text, ``Document.text`` is the decoded file (a leading byte-order mark removed, line
endings kept) and every offset indexes into it. Markdown is rendered to its visible text first
(see ``markdown.py``), so there the offsets index into that text, and ``Document.file_span``
leads back to the file.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from pipeline.errors import InputError
from pipeline.models import Document
from pipeline.text.gutenberg import gutenberg_body_blocks
from pipeline.text.markdown import parse_markdown
from pipeline.text.structure import Block, BlockKind, build_chapters

TEXT_SUFFIXES = frozenset({".txt", ".text"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
EPUB_SUFFIXES = frozenset({".epub"})

_LINE = re.compile(r"[^\r\n]*")
_LINE_END = re.compile(r"\r\n|\r|\n")

_SPELLED = (
    r"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[-\s](?:one|two|three|four"
    r"|five|six|seven|eight|nine))?|one|two|three|four|five|six|seven|eight|nine|ten|eleven"
    r"|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen)"
)
_ROMAN = r"(?=[ivxlcdm])m{0,4}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"
_TITLE_TAIL = r"(?:(?P<sep>\s*[.:\-–—]\s*|\s+)(?P<title>\S.*?))?"
# "Chapter 3", "CHAPTER IV. The Title", "Chapter Twelve: Title", "Part Two", "PROLOGUE".
_CHAPTER_LINE = re.compile(
    rf"(?:(?:chapter|part|book)\s+(?:\d{{1,4}}|{_ROMAN}|{_SPELLED})\b"
    rf"|(?:prologue|epilogue|preface|foreword|introduction|interlude|afterword)\b)\.?"
    rf"{_TITLE_TAIL}[.:]?",
    re.IGNORECASE,
)
# Control characters (a terminal's bell or colour codes pasted into a manuscript) are neither
# speech nor subtitle text. Each becomes a space, so every offset into the file stays valid.
# Tab, line feed, vertical tab, form feed and carriage return are whitespace and stay.
_CONTROL_CHARS = re.compile(r"[\x01-\x08\x0e-\x1f\x7f-\x9f]")
_SCENE_BREAK_LINE = re.compile(r"(?:[*#~•⁂]\s*)+|(?:[-_=]\s*){3,}")
_UNDERLINE = re.compile(r"[=\-*_~]{3,}")


def read_manuscript(
    path: Path,
    *,
    display_name: str,
    encoding: str = "utf-8",
    keep_front_matter: bool = False,
    keep_notes: bool = False,
    keep_heading_only: bool = False,
    keep_gutenberg: bool = True,
) -> Document:
    """Read a .txt, .md/.markdown or .epub manuscript; raises InputError naming ``path``.

    ``display_name`` is the path as the job gives it (``Document.path``, ``Chapter.source``).
    ``keep_front_matter`` only concerns EPUB; ``keep_notes`` keeps EPUB notes and Markdown
    footnote definitions (read where they are written). ``keep_heading_only`` keeps EPUB
    headings with nothing under them as empty chapters (text readers always do);
    ``keep_gutenberg=False`` drops a plain text's Project Gutenberg header and licence."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a manuscript file")
    suffix = path.suffix.lower()
    if suffix in EPUB_SUFFIXES:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        from pipeline.text.epub import read_epub  # lazily: its parser libraries are heavy

        return read_epub(
            path,
            display_name=display_name,
            keep_front_matter=keep_front_matter,
            keep_notes=keep_notes,
            keep_heading_only=keep_heading_only,
        )
    if suffix not in TEXT_SUFFIXES | MARKDOWN_SUFFIXES:
        raise InputError(
            f"{path}: unsupported manuscript type {suffix or '(no suffix)'!r}; use .txt, .md, .markdown or .epub"
        )
    text = decode_manuscript(path, _read_bytes(path), encoding)
    if suffix in MARKDOWN_SUFFIXES:
        parsed = parse_markdown(text, keep_notes=keep_notes)
        document = Document(
            path=display_name,
            text=parsed.text,
            chapters=build_chapters(
                parsed.text,
                parsed.blocks,
                source=display_name,
                chapter_level=parsed.chapter_level,
                opening_title=parsed.title or _opening_title(parsed.blocks, display_name),
                title_block=parsed.title_block,
            ),
            title=parsed.title,
            author=parsed.author,
            file_spans=parsed.file_spans,
        )
    else:
        blocks = plain_text_blocks(text)
        if not keep_gutenberg:
            blocks = gutenberg_body_blocks(text, blocks)
        document = Document(
            path=display_name,
            text=text,
            chapters=build_chapters(
                text,
                blocks,
                source=display_name,
                chapter_level=1,
                opening_title=_opening_title(blocks, display_name),
            ),
        )
    if not any(chapter.words for chapter in document.chapters):
        raise InputError(f"{path}: no readable text (only markup, headings or blank lines)")
    return document


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def decode_manuscript(path: Path, data: bytes, encoding: str) -> str:
    """``data`` as text, without a byte-order mark; InputError for binary or undecodable data."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise InputError(f"{path}: unknown text encoding {encoding!r}") from None
    wide = codec.startswith(("utf-16", "utf-32"))
    if not wide and b"\x00" in data:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise InputError(f"{path}: looks like UTF-16 text; set input.encoding to utf-16")
        raise InputError(f"{path}: contains NUL bytes; a binary file, not text")
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not valid {encoding} text (undecodable byte at offset {exc.start}); "
            "set input.encoding to the file's encoding"
        ) from None
    text = text.removeprefix("\ufeff")
    if wide and "\x00" in text:
        raise InputError(f"{path}: contains NUL characters; a binary file, not text")
    text = _CONTROL_CHARS.sub(" ", text)
    if not text.strip():
        raise InputError(f"{path}: is empty" if not text else f"{path}: contains only whitespace")
    return text


def _opening_title(blocks: list[Block], display_name: str) -> str:
    # Text before the first heading is an "Opening"; a text without any heading is the whole
    # work, named after its file.
    if any(block.kind is BlockKind.HEADING for block in blocks):
        return "Opening"
    return Path(display_name).stem.replace("_", " ").replace("-", " ").strip() or "Opening"


def plain_text_blocks(text: str) -> list[Block]:
    """Headings, paragraphs and scene breaks of a plain-text manuscript, in order."""
    lines = _line_spans(text)
    blocks: list[Block] = []
    pending: list[tuple[int, int]] = []  # the run of text lines being gathered
    index = 0
    while index < len(lines):
        start, end = lines[index]
        stripped = text[start:end].strip()
        heading = _chapter_heading(text, lines, index) if stripped else None
        is_scene_break = heading is None and _SCENE_BREAK_LINE.fullmatch(stripped) is not None
        if heading or is_scene_break or not stripped:
            blocks.extend(_paragraphs_of(text, pending))
            pending = []
        index += 1
        if heading:
            heading_end, index = heading
            blocks.append(Block(BlockKind.HEADING, start, heading_end))
        elif is_scene_break:
            blocks.append(Block(BlockKind.SCENE_BREAK))
        elif stripped:
            pending.append((start, end))
    blocks.extend(_paragraphs_of(text, pending))
    return blocks


def _line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, without its terminator (\\n, \\r\\n or a lone \\r)."""
    spans = []
    position = 0
    while True:
        line = _LINE.match(text, position)
        assert line is not None  # the pattern matches the empty string
        spans.append(line.span())
        ending = _LINE_END.match(text, line.end())
        if ending is None:
            return spans
        position = ending.end()


def _chapter_heading(text: str, lines: list[tuple[int, int]], index: int) -> tuple[int, int] | None:
    """If line ``index`` is a chapter heading: where the heading ends (a title on the next
    line belongs to it) and the index of the first line after it; otherwise None."""
    start, end = lines[index]
    line = text[start:end].strip()
    if len(line) > 100:
        return None
    match = _CHAPTER_LINE.fullmatch(line)
    if match is None:
        return None
    title = match.group("title")
    if title and not match.group("sep").strip() and title[0].islower():
        return None  # "Part two of the plan was..." is a sentence, not a heading
    heading_end, after = end, index + 1
    if not title:
        # "CHAPTER I." with its title on the next line, either adjacent or after a blank line.
        candidate = after
        if candidate < len(lines) and _blank(text, lines[candidate]):
            candidate += 1
        if candidate < len(lines) and _looks_like_title(text, lines, candidate):
            heading_end, after = lines[candidate][1], candidate + 1
    if after < len(lines) and _UNDERLINE.fullmatch(text[slice(*lines[after])].strip()):
        after += 1  # a line of ===== under the heading
    return heading_end, after


def _blank(text: str, line: tuple[int, int]) -> bool:
    return not text[line[0] : line[1]].strip()


def _looks_like_title(text: str, lines: list[tuple[int, int]], index: int) -> bool:
    """A short line, starting with a capital, ending without punctuation, standing alone."""
    line = text[slice(*lines[index])].strip()
    standing_alone = index + 1 >= len(lines) or _blank(text, lines[index + 1])
    return (
        standing_alone
        and 0 < len(line) <= 60
        and line[0].isupper()
        and (line[-1].isalnum() or line[-1] in ")'’")
        and _CHAPTER_LINE.fullmatch(line) is None
        and _SCENE_BREAK_LINE.fullmatch(line) is None
    )


def _paragraphs_of(text: str, lines: list[tuple[int, int]]) -> list[Block]:
    """Split a run of non-blank lines into paragraphs.

    Hard-wrapped prose joins into one paragraph. A line break is a paragraph break when the
    next line's first word would have fitted on the line (a wrapping program would have put
    it there), or when the next line is indented more than the rest. If most breaks are of the
    first kind, or every line ends a sentence, the text holds one paragraph per line.
    """
    if not lines:
        return []
    texts = [text[start:end].rstrip() for start, end in lines]
    width = max(len(line) for line in texts)
    indents = [len(line) - len(line.lstrip()) for line in texts]
    base_indent = min(indents)
    breaks: list[bool] = []
    for here, following, indent in zip(texts, texts[1:], indents[1:], strict=False):
        first_word = following.split(maxsplit=1)[0]
        would_fit = len(here) + 1 + len(first_word) <= width
        breaks.append(would_fit or indent > base_indent)
    # Wrapped prose seldom ends three lines running at a sentence's end; lines of their own do.
    all_end_sentences = all(_ends_with_stop(line) for line in texts[:-1])
    if breaks and (2 * sum(breaks) >= len(breaks) or (len(texts) >= 3 and all_end_sentences)):
        breaks = [True] * len(breaks)
    paragraphs: list[Block] = []
    first = 0
    for position, is_break in enumerate(breaks, start=1):
        if is_break:
            paragraphs.append(Block(BlockKind.PARAGRAPH, lines[first][0], lines[position - 1][1]))
            first = position
    paragraphs.append(Block(BlockKind.PARAGRAPH, lines[first][0], lines[-1][1]))
    return paragraphs


def _ends_with_stop(line: str) -> bool:
    core = line.rstrip("\"'”’»)]")
    return bool(core) and core[-1] in ".!?…"
