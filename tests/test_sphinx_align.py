"""The PocketSphinx forced aligner on real espeak-ng speech: word starts close to the engine's
own word events, words outside the dictionary handled, impossible input refused."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.align.sphinx import aligner, tokens
from pipeline.tts import local
from pipeline.tts.ws_timings import ALIGNED, ESTIMATED, timings_for

pytestmark = pytest.mark.slow  # loads the acoustic model

WORDS = [
    "The",
    "keeper",
    "wrote",
    "in",
    "his",
    "ledger",
    "every",
    "night,",
    "and",
    "Coastguard",
    "Quillby",
    "read",
    "it",
    "twice.",
]


def test_word_starts_match_the_engines_word_events() -> None:
    audio = local.speak(WORDS, voice="en-us", sample_rate=24000, speed=None)
    spans = aligner().align(WORDS, audio.samples, 24000)
    assert spans is not None and len(spans) == len(WORDS)
    errors = [abs(span[0] - t.start_ms) for span, t in zip(spans, audio.timings, strict=True) if span]
    assert float(np.median(errors)) <= 30, errors
    starts = [span[0] for span in spans if span]
    assert starts == sorted(starts) and all(end >= start for start, end in (s for s in spans if s))


def test_timings_for_reports_its_source_and_falls_back_to_estimates() -> None:
    audio = local.speak(WORDS[:4], voice="en-us", sample_rate=16000, speed=None)
    timings, source = timings_for(WORDS[:4], audio.samples, 16000)
    assert source == ALIGNED and len(timings) == 4
    assert timings[-1].end_ms <= round(len(audio.samples) / 16)
    silence = np.zeros(1600, np.int16)  # 0.1 s cannot hold four words
    timings, source = timings_for(WORDS[:4], silence, 16000)
    assert source == ESTIMATED and len(timings) == 4


def test_tokens_drop_markup_and_split_compounds() -> None:
    assert tokens("<break time='400ms'/>") == []
    assert tokens("eighty-seven,") == ["eighty", "seven"]
    assert tokens("You\u2019ll") == ["you'll"]
