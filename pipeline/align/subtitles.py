"""SRT and WebVTT text from cues: pure functions, no I/O.

SRT (SubRip): numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, the text lines, a blank line.
SRT has no escaping; text goes out as written. WebVTT: a ``WEBVTT`` header, ``HH:MM:SS.mmm``
times, and text where ``&``, ``<`` and ``>`` must be escaped as character references (an
unescaped ``<`` opens a tag, and ``-->`` may not appear in a cue). Hours are at least two digits
and grow as needed, which both formats allow.

Karaoke WebVTT puts a timestamp tag ``<HH:MM:SS.mmm>`` before every word after the first, so
players highlight words as they are spoken. The spec requires each such timestamp to lie
strictly after the cue start, strictly after the previous one and strictly before the cue
end; a word whose time cannot satisfy that (it shares a moment with its neighbour, or the cue
was cut short) gets no tag of its own and lights up with the word before it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.models import Cue, TimedWord


def _clock(ms: int, separator: str) -> str:
    if ms < 0:
        raise ValueError(f"negative subtitle time {ms} ms")
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def srt_time(ms: int) -> str:
    return _clock(ms, ",")


def vtt_time(ms: int) -> str:
    return _clock(ms, ".")


def compose_srt(cues: Sequence[Cue]) -> str:
    """A complete SRT file (UTF-8 text, ``\\n`` line ends, cues numbered from 1)."""
    blocks = [
        f"{n}\n{srt_time(cue.start_ms)} --> {srt_time(cue.end_ms)}\n{cue.text}\n"
        for n, cue in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def _escape_vtt(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def compose_vtt(cues: Sequence[Cue], *, karaoke: bool = False) -> str:
    """A complete WebVTT file; with ``karaoke``, word-by-word inner timestamps."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        if karaoke and cue.words:
            lines = _karaoke_lines(cue)
        else:
            lines = [_escape_vtt(line) for line in cue.lines]
        body = "\n".join(lines)
        blocks.append(f"{vtt_time(cue.start_ms)} --> {vtt_time(cue.end_ms)}\n{body}\n")
    return "\n".join(blocks)


def _karaoke_lines(cue: Cue) -> list[str]:
    """The cue's lines with ``<time>`` before each word; words are matched to the cue's
    TimedWords in order (lines are the words' texts joined by single spaces)."""
    timed = iter(cue.words)
    last = cue.start_ms
    out: list[str] = []
    for line in cue.lines:
        pieces: list[str] = []
        for text in line.split(" "):
            word = next(timed, None)
            piece = _escape_vtt(text)
            at = word.start_ms if word is not None else None
            # No tag before the cue's first word: the cue's start is its time.
            if (pieces or out) and at is not None and last < at < cue.end_ms:
                piece = f"<{vtt_time(at)}>{piece}"
                last = at
            pieces.append(piece)
        out.append(" ".join(pieces))
    return out


def word_cues(timeline_words: Sequence[TimedWord]) -> tuple[Cue, ...]:
    """One cue per word (the word-per-cue SRT): each lasts from the word's start to its end,
    at least 1 ms so that no player drops it."""
    return tuple(
        Cue(w.start_ms, max(w.end_ms, w.start_ms + 1), (w.word.text,), (w,)) for w in timeline_words
    )
