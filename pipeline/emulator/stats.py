"""The counters ``GET /_emulator/stats`` reports, so tests can assert on what a client did."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, defaultdict
from typing import Any


def transcript_hash(transcript: str) -> str:
    """How stats name a transcript: the SHA-256 of its UTF-8 bytes, in hex."""
    return hashlib.sha256(transcript.encode()).hexdigest()


class Stats:
    """Thread-safe counters; ``snapshot`` gives a JSON-ready copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self._characters = 0
            self._successes: Counter[str] = Counter()
            self._rejections: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._sent_429: Counter[str] = Counter()
            self._ws: Counter[str] = Counter()

    def request(self, route: str, outcome: str) -> None:
        """``route`` is the path template (``/voices/{voice_id}``); ``outcome`` the status
        code, or ``dropped``/``truncated`` for a broken exchange."""
        with self._lock:
            self._requests[route][outcome] += 1

    def success(self, transcript: str, characters: int) -> None:
        with self._lock:
            self._characters += characters
            self._successes[transcript_hash(transcript)] += 1

    def rejection(self, error_code: str) -> None:
        """A 429 sent because a limit was reached (not an injected one)."""
        with self._lock:
            self._rejections[error_code] += 1
            self._sent_429[error_code] += 1

    def fault(self, kind: str, error_code: str | None = None) -> None:
        """An injected fault; ``error_code`` when it was sent as a 429."""
        with self._lock:
            self._faults[kind] += 1
            if error_code is not None:
                self._sent_429[error_code] += 1

    def ws_event(self, name: str) -> None:
        """A WebSocket event: a message kind received, a frame kind sent, a context opened."""
        with self._lock:
            self._ws[name] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": {path: dict(by_status) for path, by_status in self._requests.items()},
                "characters_synthesized": self._characters,
                "synth_successes": dict(self._successes),
                "rate_limited": dict(self._rejections),
                "rate_limited_total": sum(self._rejections.values()),
                "faults_injected": dict(self._faults),
                "faults_injected_total": sum(self._faults.values()),
                # Every 429 sent, by error_code: limits reached plus injected ones.
                "sent_429": dict(self._sent_429),
                "websocket": dict(self._ws),
            }
