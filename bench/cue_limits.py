"""How many subtitle cues meet the style limits on real speech, and how fast cues are built.

Reads a manuscript, speaks every chunk with the local espeak-ng engine, assembles each chapter
(in a temporary folder), lays the words on the chapter timelines and builds the cues with the
default SubtitleStyle (Netflix English: 42 x 2, 17 cps, 5/6 s .. 7 s, 2-frame gaps).

    .venv/bin/python bench/cue_limits.py MANUSCRIPT [--speed 1.0] [--show N]

Prints cue_stats for the whole book and the time build_cues took.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.align.cues import build_cues, cue_stats
from pipeline.align.subtitles import compose_srt
from pipeline.align.timeline import chapter_timeline
from pipeline.audio.assemble import PauseSettings, assemble_chapter
from pipeline.config import SubtitleStyle
from pipeline.models import Cue, SynthesizedChunk
from pipeline.text.chunking import chunk_document
from pipeline.text.readers import read_manuscript
from pipeline.tts.local import speak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manuscript", type=Path)
    parser.add_argument("--speed", type=float, default=None)
    parser.add_argument("--show", type=int, default=0, help="print the first N cues as SRT")
    args = parser.parse_args()
    doc = read_manuscript(args.manuscript, display_name=args.manuscript.name)
    chunks = chunk_document(doc.chapters, max_chars=400)
    rate = 24000
    audio: dict[str, np.ndarray] = {}
    by_chapter: dict[int, list[SynthesizedChunk]] = {}
    for chunk in chunks:
        spoken = speak(chunk.spoken_words, sample_rate=rate, speed=args.speed)
        audio[chunk.id] = spoken.samples
        item = SynthesizedChunk(chunk, chunk.id, spoken.timings, len(spoken.samples), rate, False)
        by_chapter.setdefault(chunk.chapter, []).append(item)
    style = SubtitleStyle()
    cues: list[Cue] = []
    words = 0
    build_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for index, items in sorted(by_chapter.items()):
            layout = assemble_chapter(
                items,
                lambda item: audio[item.chunk.id],
                Path(tmp) / f"{index}.wav",
                pauses=PauseSettings(),
                sample_rate=rate,
            )
            chapter = doc.chapters[index]
            timeline = chapter_timeline(items, layout, title=chapter.title, source=chapter.source)
            started = time.perf_counter()
            cues.extend(build_cues(timeline, style))
            build_s += time.perf_counter() - started
            words += len(timeline.words)
    print(f"{len(by_chapter)} chapters, {words} words, {len(cues)} cues")
    print(f"build_cues took {build_s:.2f} s")
    print(cue_stats(cues, style))
    if args.show:
        print(compose_srt(cues[: args.show]))


if __name__ == "__main__":
    main()
