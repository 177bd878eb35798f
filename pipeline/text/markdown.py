"""Markdown manuscripts: the visible text, and where its headings, paragraphs and scene breaks are.

Markup is not spoken, so the Markdown is rendered to plain text first: emphasis markers,
link targets, images, code fences, HTML comments and tags (except ``<break time=.../>``,
the pause markup that ``normalize.extract_breaks`` reads), reference definitions, footnotes,
block-quote and list markers are dropped, and every other character is kept as written. The
rendered text is ``Document.text``: a word such as ``*hers*.`` becomes ``hers.``, which is
one span of the rendered text but not of the file, so offsets index into the rendered text.
Each block is followed by a blank line in it, so it still reads like the manuscript.

The rendering is done on ``Traced`` text, so every rendered character keeps the span of the
file it came from (``ParsedMarkdown.file_spans``, then ``Document.file_span``): alignment.json
points into the file itself.

This is a pragmatic subset of CommonMark aimed at prose: indented code blocks and tables are
read as text, and emphasis markers are removed by their flanking rather than by pairing.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml

from pipeline.models import Sentence
from pipeline.text.segment import tokenize
from pipeline.text.structure import Block, BlockKind, display_title
from pipeline.text.traced import Traced

_LINE_END = re.compile(r"\r\n|\r|\n")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t\r]*$", re.MULTILINE)
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[([^\]^][^\]]*)\]:[ \t]*\S", re.MULTILINE)
_FOOTNOTE_DEFINITION = re.compile(r" {0,3}\[\^[^\]]+\]:")
_QUOTE_MARKER = re.compile(r" {0,3}>[ \t]?")
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}(?=[^`]*$)|~{3,})")
_ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))??(?:[ \t]+#+)?[ \t]*")
_SETEXT_UNDERLINE = re.compile(r" {0,3}(=+|-+)[ \t]*")
_SCENE_BREAK = re.compile(
    r" {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,}|(?:=[ \t]*){3,})"
    r"|[ \t]*(?:[*#⁂•][ \t]*)+"
)
_LIST_ITEM = re.compile(r"[ \t]*(?:([-+*])|(\d{1,3})[.)])[ \t]+(\S.*)")

_INLINE = re.compile(
    r"(?P<code>`+)"
    r"|(?P<escape>\\[!-/:-@\[-`{-~\n])"
    r"|(?P<image>!\[)"
    r"|(?P<bracket>\[)"
    r"|(?P<autolink><(?:[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*|[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+)>)"
    r"|(?P<tag></?[A-Za-z][A-Za-z0-9\-]*(?:\s[^<>]*)?/?>|<!--)"
    r"|(?P<entity>&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});)"
    r"|(?P<delimiter>\*+|_+|~~+)"
)


@dataclass(frozen=True, slots=True)
class ParsedMarkdown:
    text: str  # the rendered, visible text that every block offset indexes into
    file_spans: np.ndarray  # int32 (len(text), 2): each character's [start, end) in the file
    blocks: list[Block]
    chapter_level: int
    title: str | None
    author: str | None
    title_block: Block | None  # the book's title heading, when it is not a chapter's


def parse_markdown(source: str, *, keep_notes: bool = False) -> ParsedMarkdown:
    """Render ``source`` and find its blocks; decide which heading level makes chapters.

    The shallowest heading level makes chapters, unless it is used once, by the first heading,
    above deeper ones: then that heading is the book's title (``# Title`` over ``## Chapter``).
    A title in YAML front matter wins over a title heading.
    """
    body, front_matter = _split_front_matter(_without_comments(source))
    labels = {m.group(1).strip().lower() for m in _REFERENCE_DEFINITION.finditer(body.text)}
    parser = _BlockParser(references=labels, keep_notes=keep_notes)
    line_start = 0
    for line_end in _LINE_END.finditer(body.text):
        parser.feed(body[line_start : line_end.start()])
        line_start = line_end.end()
    parser.feed(body[line_start:])
    parser.flush()
    rendered = Traced.concat(parser.out)
    text = rendered.text
    blocks = parser.blocks
    headings = [block for block in blocks if block.kind is BlockKind.HEADING]
    chapter_level = min((h.level for h in headings), default=1)
    title_block = None
    used_once_first = sum(h.level == chapter_level for h in headings) == 1
    if len(headings) > 1 and used_once_first and headings[0].level == chapter_level:
        title_block = headings[0]
        blocks = [block for block in blocks if block is not title_block]
        chapter_level = min(h.level for h in headings[1:])
    title = _text_field(front_matter, "title")
    if title is None and title_block is not None:
        title = display_title(Sentence(tokenize(text, title_block.start, title_block.end)))
    return ParsedMarkdown(
        text=text,
        file_spans=rendered.spans(),
        blocks=blocks,
        chapter_level=chapter_level,
        title=title,
        author=_text_field(front_matter, "author"),
        title_block=title_block,
    )


def _without_comments(source: str) -> Traced:
    whole = Traced.whole(source)
    pieces: list[Traced] = []
    position = 0
    for comment in _COMMENT.finditer(source):
        pieces.append(whole[position : comment.start()])
        position = comment.end()
    if not pieces:
        return whole
    pieces.append(whole[position:])
    return Traced.concat(pieces)


def _split_front_matter(traced: Traced) -> tuple[Traced, dict[str, Any]]:
    """YAML front matter (``---`` on the first line, closed by ``---`` or ``...``) and the rest.

    The front matter is replaced by as many line breaks, so the body keeps its line numbers."""
    source = traced.text
    first_line = _LINE_END.split(source, maxsplit=1)[0]
    if first_line.rstrip() != "---":
        return traced, {}
    closing = _FRONT_MATTER_END.search(source, len(first_line) + 1)
    if closing is None:
        return traced, {}
    header = source[len(first_line) + 1 : closing.start()]
    try:
        loaded = yaml.safe_load(header)
    except yaml.YAMLError:
        loaded = None
    fields = loaded if isinstance(loaded, dict) else {}
    rest = traced[closing.end() :]
    # The stand-in line breaks are blank lines: nothing of them is ever rendered.
    line_breaks = Traced.standing_for("\n" * source.count("\n", 0, closing.end()), 0, 0)
    return Traced.concat([line_breaks, rest]), fields


def _text_field(fields: dict[str, Any], key: str) -> str | None:
    value = fields.get(key)
    if isinstance(value, list):
        value = ", ".join(str(item) for item in value)
    if isinstance(value, str | int | float) and str(value).strip():
        return " ".join(str(value).split())
    return None


@dataclass(slots=True)
class _BlockParser:
    """Reads lines one at a time; writes the rendered text and its blocks."""

    references: set[str]
    keep_notes: bool = False  # read footnote definitions as paragraphs instead of dropping them
    out: list[Traced] = field(default_factory=list)
    position: int = 0
    blocks: list[Block] = field(default_factory=list)
    paragraph: list[Traced] = field(default_factory=list)
    paragraph_is_list_item: bool = False
    fence: str | None = None  # the fence that closes the open code block
    in_footnote: bool = False

    def feed(self, traced_line: Traced) -> None:
        line = traced_line.text
        if self.fence is not None:
            if line.strip().startswith(self.fence) and not line.strip().strip(self.fence[0]):
                self.fence = None
            return
        if self.in_footnote:
            if line[:1] in (" ", "\t") and line.strip():
                return  # the dropped footnote's continuation lines
            self.in_footnote = False
        quoted = False
        while marker := _QUOTE_MARKER.match(line):
            traced_line, quoted = traced_line[marker.end() :], True
            line = traced_line.text
        if not line.strip():
            self.flush()
        elif fence := _FENCE_OPEN.match(line):
            self.flush()
            self.fence = fence.group(1)
        elif heading := _ATX_HEADING.fullmatch(line):
            self.flush()
            content = traced_line[heading.start(2) : heading.end(2)] if heading.group(2) else traced_line[0:0]
            if not content.text.strip():
                self._scene_break()  # "#" alone on a line
            else:
                kind = BlockKind.PARAGRAPH if quoted else BlockKind.HEADING
                self._emit(kind, content, level=len(heading.group(1)))
        elif (
            self.paragraph
            and not self.paragraph_is_list_item
            and not quoted
            and (underline := _SETEXT_UNDERLINE.fullmatch(line))
        ):
            level = 1 if underline.group(1).startswith("=") else 2
            content, self.paragraph = Traced.join_lines(self.paragraph), []
            self._emit(BlockKind.HEADING, content, level=level)
        elif _SCENE_BREAK.fullmatch(line):
            self.flush()
            self._scene_break()
        elif not self.paragraph and _REFERENCE_DEFINITION.match(line):
            return
        elif footnote := _FOOTNOTE_DEFINITION.match(line):
            self.flush()
            if self.keep_notes:
                self.paragraph.append(traced_line[footnote.end() :].strip())
            else:
                self.in_footnote = True
        elif item := self._list_item(traced_line):
            self.flush()
            self.paragraph, self.paragraph_is_list_item = [item], True
        else:
            self.paragraph.append(traced_line.strip())

    def _list_item(self, line: Traced) -> Traced | None:
        match = _LIST_ITEM.fullmatch(line.text)
        if match is None:
            return None
        # An ordered item other than "1." does not interrupt a paragraph of prose, so a
        # wrapped line that starts "42. " stays in its sentence.
        ordered = match.group(2)
        if ordered and self.paragraph and not self.paragraph_is_list_item and ordered != "1":
            return None
        return line[match.start(3) : match.end(3)].strip()

    def flush(self) -> None:
        if self.paragraph:
            content, self.paragraph = Traced.join_lines(self.paragraph), []
            self._emit(BlockKind.PARAGRAPH, content)
        self.paragraph_is_list_item = False

    def _scene_break(self) -> None:
        self.blocks.append(Block(BlockKind.SCENE_BREAK))

    def _emit(self, kind: BlockKind, markdown: Traced, *, level: int = 1) -> None:
        visible = render_inline(markdown, self.references).strip()
        if not visible:
            return
        start = self.position
        self.out.append(visible)
        self.out.append(Traced.standing_for("\n\n", visible.end, visible.end))
        self.position += len(visible) + 2
        self.blocks.append(Block(kind, start, start + len(visible), level))


def render_inline(traced: Traced, references: set[str] | frozenset[str] = frozenset()) -> Traced:
    """The visible text of one block of inline Markdown, still traced to the file."""
    markdown = traced.text
    pieces: list[Traced] = []
    position = 0
    while match := _INLINE.search(markdown, position):
        pieces.append(traced[position : match.start()])
        kind = match.lastgroup
        position = match.end()
        whole = traced[match.start() : match.end()]
        if kind == "code":
            closing = re.compile(rf"(?<!`){match.group()}(?!`)").search(markdown, position)
            if closing is None:
                pieces.append(whole)
            else:
                pieces.append(traced[position : closing.start()])
                position = closing.end()
        elif kind == "escape":
            pieces.append(_standing_for(match.group()[1], whole))
        elif kind in ("image", "bracket"):
            label_start = match.end()
            link = _link_end(markdown, label_start, references)
            if link is None:
                pieces.append(whole)
            else:
                label_end, position = link
                if kind == "bracket" and not markdown.startswith("^", label_start):
                    pieces.append(render_inline(traced[label_start:label_end], references))
        elif kind == "autolink":
            pieces.append(whole[1:-1])
        elif kind == "tag":
            tag = match.group().lower()
            if tag.startswith("<break"):
                pieces.append(whole)  # a pause the author asks for: read by normalize
            elif tag.startswith("<br"):
                pieces.append(_standing_for(" ", whole))
        elif kind == "entity":
            pieces.append(_standing_for(html.unescape(match.group()), whole))
        elif not _is_emphasis(markdown, match.start(), match.end()):
            pieces.append(whole)
    pieces.append(traced[position:])
    return Traced.concat(pieces)


def _standing_for(text: str, construct: Traced) -> Traced:
    """``text`` rendered from the whole of ``construct`` (an escape, an entity, a tag)."""
    return Traced.standing_for(text, construct.starts[0], construct.end)


def _link_end(markdown: str, label_start: int, references: set[str] | frozenset[str]) -> tuple[int, int] | None:
    """For a ``[`` whose label starts at ``label_start``: where the label ends and where the
    whole link, image or footnote reference ends; None if the bracket is only a bracket."""
    label_end = _matching(markdown, label_start, "[", "]")
    if label_end is None:
        return None
    after = label_end + 1
    if markdown.startswith("^", label_start):
        return label_end, after  # a footnote reference, "[^1]"
    if markdown.startswith("(", after):
        target_end = _matching(markdown, after + 1, "(", ")")
        return None if target_end is None else (label_end, target_end + 1)
    if markdown.startswith("[", after):
        reference_end = _matching(markdown, after + 1, "[", "]")
        if reference_end is not None:
            return label_end, reference_end + 1
    if markdown[label_start:label_end].strip().lower() in references:
        return label_end, after
    return None


def _matching(text: str, start: int, opening: str, closing: str) -> int | None:
    """Index of the ``closing`` that balances an ``opening`` just before ``start``."""
    depth = 1
    index = start
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def _is_emphasis(markdown: str, start: int, end: int) -> bool:
    """Whether the run of ``*``, ``_`` or ``~~`` at ``markdown[start:end]`` is markup: it must
    touch a word on one side ("a * b" is a literal star), and ``_`` inside a word
    ("snake_case") is a literal underscore."""
    before = markdown[start - 1] if start > 0 else " "
    after = markdown[end] if end < len(markdown) else " "
    if before.isspace() and after.isspace():
        return False
    return not (markdown[start] == "_" and before.isalnum() and after.isalnum())
