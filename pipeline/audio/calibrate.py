"""How a lossy codec changes level and peaks, measured on excerpts of the actual master.

Lossy encoders do not hand back the signal they were given: LAME at 192 kbps returns speech
about 0.3 dB quieter, Opus and AAC push some peaks up by a few tenths of a dB. Encoding a
minute of the real mastered signal (evenly spread excerpts, or all of a short file), decoding
it and comparing before with after tells the mastering pass how much to compensate, so the
full-length file is right the first time instead of being encoded twice.
"""

from __future__ import annotations

import contextlib
import math
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.audio.encode import EncoderOptions, Tags, decode, open_sink
from pipeline.audio.excerpts import excerpt_spans, read_span
from pipeline.audio.loudness import Analyzer, Measurement
from pipeline.audio.render_pass import BLOCK_FRAMES, Chain, Processor

_EXCERPTS = 6
_EXCERPT_S = 8.0
_WARMUP_S = 1.0
_WHOLE_FILE_S = 60.0  # shorter files are encoded whole
_FADE_S = 0.01
_GAP_S = 0.05


@dataclass(frozen=True)
class CodecEffect:
    level_loss_db: float  # level before encoding minus level after (positive: quieter)
    overshoot_db: float  # true peak after encoding minus before (positive: peaks grew)


def _excerpt(src: Path, chain: Chain, rate: int, start: int, warmup: int, length: int) -> np.ndarray:
    processor = Processor(chain, rate)
    audio = read_span(src, start, warmup + length)
    parts = [processor.process(audio[i : i + BLOCK_FRAMES]) for i in range(0, len(audio), BLOCK_FRAMES)]
    parts.append(processor.flush())
    out = np.concatenate(parts)[warmup:]
    fade = min(int(_FADE_S * rate), len(out) // 2)
    if fade:  # excerpts are joined: no clicks for the codec to spread
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        out[:fade] *= ramp
        out[-fade:] *= ramp[::-1]
    return out


def codec_effect(
    src: Path,
    source: Measurement,
    chain: Chain,
    fmt: str,
    *,
    weighted: bool,
    workdir: Path,
    options: EncoderOptions,
) -> CodecEffect:
    """Encode excerpts of ``chain``'s output as ``fmt``, decode, and compare."""
    rate = source.sample_rate
    before = Analyzer(rate)
    temp = workdir / f".narrate-calibrate-{secrets.token_hex(4)}.{fmt}"
    sink = open_sink(fmt, temp, rate, Tags(), frames=source.frames, options=options)
    try:
        gap = np.zeros(int(_GAP_S * rate), dtype=np.float32)
        spans = excerpt_spans(
            source.frames, rate, whole_up_to_s=_WHOLE_FILE_S, count=_EXCERPTS, length_s=_EXCERPT_S, warmup_s=_WARMUP_S
        )
        for start, warmup, length in spans:
            out = _excerpt(src, chain, rate, start, warmup, length)
            for piece in (out, gap):
                before.add(piece)
                sink.write(piece)
        sink.close()
        out_rate, blocks = decode(temp, fmt)
        after = Analyzer(out_rate)
        for block in blocks:
            after.add(block)
    except BaseException:
        sink.abort()
        raise
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
    was, now = before.result(), after.result()
    level = (lambda m: m.integrated_lufs) if weighted else (lambda m: m.rms_db)
    loss = level(was) - level(now)
    overshoot = now.true_peak_db - was.true_peak_db
    return CodecEffect(
        level_loss_db=loss if math.isfinite(loss) else 0.0,
        overshoot_db=overshoot if math.isfinite(overshoot) else 0.0,
    )
