"""Mono int16 samples into the bytes an ``output_format`` asks for."""

from __future__ import annotations

import io

import numpy as np
import soundfile

from pipeline.emulator.responses import ApiError
from pipeline.emulator.validation import OutputFormat

MEDIA_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "raw": "application/octet-stream"}
# MPEG audio exists at these rates only; libsndfile refuses the others.
MP3_SAMPLE_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
# G.711 mu-law works on 14-bit magnitudes: bias, clip, and the upper end of each of the eight
# segments (the reference encoder's table).
_MULAW_BIAS = 0x21
_MULAW_CLIP = 8159
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def mulaw(samples: np.ndarray) -> bytes:
    """G.711 mu-law bytes for int16 samples, bit-exact with the reference encoder."""
    value = samples.astype(np.int32) >> 2  # to 14 bits, rounding toward minus infinity
    mask = np.where(value < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(value), _MULAW_CLIP) + _MULAW_BIAS
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude)
    code = (segment << 4) | ((magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)  # past the last segment: the loudest code
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def pcm_bytes(samples: np.ndarray, encoding: str) -> bytes:
    """Headerless little-endian PCM in ``encoding``."""
    if encoding == "pcm_s16le":
        return samples.astype("<i2").tobytes()
    if encoding == "pcm_f32le":
        return (samples.astype(np.float32) / 32768.0).astype("<f4").tobytes()
    if encoding == "pcm_mulaw":
        return mulaw(samples)
    raise ValueError(f"unknown encoding {encoding!r}")


def _mp3(samples: np.ndarray, fmt: OutputFormat) -> bytes:
    if fmt.sample_rate not in MP3_SAMPLE_RATES:
        rates = ", ".join(str(r) for r in sorted(MP3_SAMPLE_RATES))
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            f"output_format.sample_rate: mp3 needs one of {rates} Hz, got {fmt.sample_rate}",
            {"field": "output_format.sample_rate"},
        )
    # libsndfile picks the bit rate through a 0..1 compression level (0 = highest rate): map
    # the requested 32..320 kbit/s onto it linearly, at a constant bit rate.
    level = 1.0 - (fmt.bit_rate - 32_000) / (320_000 - 32_000)
    out = io.BytesIO()
    try:
        soundfile.write(
            out,
            samples,
            fmt.sample_rate,
            format="MP3",
            subtype="MPEG_LAYER_III",
            compression_level=level,
            bitrate_mode="CONSTANT",
        )
    except (soundfile.LibsndfileError, TypeError, ValueError) as exc:
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            f"output_format.container: this emulator cannot write mp3 here ({exc})",
            {"field": "output_format.container"},
        ) from None
    return out.getvalue()


def encode(samples: np.ndarray, fmt: OutputFormat) -> bytes:
    """The whole response body for ``samples`` (mono int16 at ``fmt.sample_rate``)."""
    if fmt.container == "raw":
        return pcm_bytes(samples, fmt.encoding)
    if fmt.container == "wav":
        subtype = "PCM_16" if fmt.encoding == "pcm_s16le" else "FLOAT"
        data = samples if subtype == "PCM_16" else samples.astype(np.float32) / 32768.0
        out = io.BytesIO()
        soundfile.write(out, data, fmt.sample_rate, format="WAV", subtype=subtype)
        return out.getvalue()
    if fmt.container == "mp3":
        return _mp3(samples, fmt)
    raise ValueError(f"unknown container {fmt.container!r}")
