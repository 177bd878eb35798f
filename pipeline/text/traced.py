"""Text that remembers, for each of its characters, the span of the source it was rendered from.

The Markdown renderer cuts, strips and joins pieces of the file; doing the same on a ``Traced``
keeps the way back to the file. A character copied from the source maps to the one-character
span it was copied from; a character that stands for a whole construct (``&amp;`` -> ``&``,
``\\*`` -> ``*``) maps to the whole construct, so a word that ends with one still covers all of
it; a character the renderer adds (the line break joining two lines) maps to an empty span.

The spans live in two ``array('i')`` (4 bytes a character each) rather than lists of ints,
because a one-megabyte manuscript has a million characters.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np

_ITEM = array("i").itemsize


class Traced:
    """``text``, and for each character ``i`` the source span ``starts[i]:ends[i]``."""

    __slots__ = ("ends", "starts", "text")

    def __init__(self, text: str, starts: array[int], ends: array[int]) -> None:
        self.text = text
        self.starts = starts
        self.ends = ends

    @classmethod
    def whole(cls, source: str) -> Traced:
        """``source`` itself: character ``i`` comes from ``source[i:i + 1]``."""
        # Built through numpy: array("i", range(n)) costs a tenth of a second for a long book.
        positions = np.arange(len(source) + 1, dtype=np.intc).tobytes()
        return cls(source, array("i", positions[:-_ITEM]), array("i", positions[_ITEM:]))

    @classmethod
    def standing_for(cls, text: str, start: int, end: int) -> Traced:
        """``text`` as the rendering of ``source[start:end]`` as a whole; an empty span
        (``start == end``) for characters that are not in the source at all."""
        return cls(text, array("i", [start]) * len(text), array("i", [end]) * len(text))

    @staticmethod
    def concat(pieces: Sequence[Traced]) -> Traced:
        if len(pieces) == 1:
            return pieces[0]  # immutable in practice: nothing appends to a Traced's arrays
        texts: list[str] = []
        starts, ends = array("i"), array("i")
        for piece in pieces:
            texts.append(piece.text)
            starts.extend(piece.starts)
            ends.extend(piece.ends)
        return Traced("".join(texts), starts, ends)

    @staticmethod
    def join_lines(lines: list[Traced]) -> Traced:
        """The lines joined by ``\\n``, each break mapped to the empty span after its line."""
        pieces: list[Traced] = []
        for line in lines:
            if pieces:
                pieces.append(Traced.standing_for("\n", pieces[-1].end, pieces[-1].end))
            pieces.append(line)
        return Traced.concat(pieces)

    @property
    def end(self) -> int:
        """Where in the source this text's last character ends (0 for an empty text)."""
        return self.ends[-1] if self.ends else 0

    def __len__(self) -> int:
        return len(self.text)

    def __getitem__(self, index: slice) -> Traced:
        if index.start in (None, 0) and index.stop is None:
            return self
        return Traced(self.text[index], self.starts[index], self.ends[index])

    def strip(self) -> Traced:
        text = self.text
        if text and not text[0].isspace() and not text[-1].isspace():
            return self  # the common case, without copying the text twice
        left = len(text) - len(text.lstrip())
        right = len(text.rstrip())
        if left == 0 and right == len(text):
            return self
        return self[left:right] if right > left else self[0:0]

    def spans(self) -> np.ndarray:
        """An int32 array of shape (len(text), 2): each character's [start, end) in the source."""
        out = np.empty((len(self.text), 2), dtype=np.int32)
        out[:, 0] = np.frombuffer(self.starts, dtype=np.intc)
        out[:, 1] = np.frombuffer(self.ends, dtype=np.intc)
        return out
