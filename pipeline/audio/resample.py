"""Streaming sample-rate conversion (polyphase, Kaiser-windowed sinc).

Block by block it produces the same samples as converting the whole signal at once with
``scipy.signal.resample_poly`` (same filter design, same alignment): each block is filtered with
enough input on either side that no block boundary can be heard, and memory stays flat.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

_HALF_LEN_PER_FACTOR = 10  # filter half-length per unit of max(up, down), as resample_poly


class StreamingResampler:
    """Converts ``source_rate`` to ``target_rate``; ``process`` then ``flush`` yield exactly
    ``ceil(n * target / source)`` samples for ``n`` input samples."""

    def __init__(self, source_rate: int, target_rate: int) -> None:
        common = math.gcd(source_rate, target_rate)
        self.up = target_rate // common
        self.down = source_rate // common
        self.identity = self.up == self.down
        width = max(self.up, self.down)
        half_len = _HALF_LEN_PER_FACTOR * width
        taps = (
            np.ones(1)
            if self.identity
            else signal.firwin(2 * half_len + 1, 1.0 / width, window=("kaiser", 5.0)) * self.up
        )
        # Front padding makes the filter centre fall on an output sample index.
        self._pad = (-half_len) % self.down
        self._taps = np.concatenate([np.zeros(self._pad), taps]).astype(np.float64)
        self._centre = (half_len + self._pad) // self.down  # output delay of a raw upfirdn
        # Input context on each side, rounded to whole multiples of ``down`` so every block
        # starts on an input index whose output phase is an integer.
        reach = -(-(half_len + 1) // self.up) + 1
        # (plus one period, since a block's first output may sit up to down/up before it).
        self._context = -(-(reach + self.down) // self.down) * self.down
        self._buffer = np.zeros(self._context, dtype=np.float64)  # silence before the start
        self._buffer_start = -self._context  # global input index of _buffer[0]
        self._received = 0
        self._emitted = 0
        self._flushed = False

    def output_length(self, frames: int) -> int:
        return -(-frames * self.up // self.down)

    def process(self, block: np.ndarray) -> np.ndarray:
        if self.identity:
            return np.asarray(block, dtype=np.float32)
        self._received += len(block)
        self._buffer = np.concatenate([self._buffer, np.asarray(block, dtype=np.float64)])
        return self._convert(final=False)

    def flush(self) -> np.ndarray:
        if self.identity or self._flushed:
            return np.zeros(0, dtype=np.float32)
        self._flushed = True
        self._buffer = np.concatenate([self._buffer, np.zeros(2 * self._context)])
        return self._convert(final=True)

    def _convert(self, *, final: bool) -> np.ndarray:
        buffer_end = self._buffer_start + len(self._buffer)
        # Inputs [first, last) can be centred now: each needs ``context`` samples after it.
        first = self._buffer_start + self._context
        last = buffer_end - self._context
        last -= (last - first) % self.down  # whole periods only, so the next block stays aligned
        if final:
            wanted = self.output_length(self._received)
        else:
            wanted = min(self.output_length(self._received), last * self.up // self.down)
        count = wanted - self._emitted
        if count <= 0 or last <= first:
            return np.zeros(0, dtype=np.float32)
        segment = self._buffer[: last - self._buffer_start + self._context]
        raw = signal.upfirdn(self._taps, segment, self.up, self.down)
        # Output k sits at raw index k - buffer_start*up/down + centre.
        offset = self._centre - self._buffer_start * self.up // self.down
        out = raw[self._emitted + offset : self._emitted + offset + count]
        self._emitted += len(out)
        drop = last - self._context - self._buffer_start
        self._buffer = self._buffer[drop:]
        self._buffer_start += drop
        return out.astype(np.float32)
