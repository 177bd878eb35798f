"""Every error narrate raises on purpose, in one tree.

The CLI prints ``str(error)`` as a single line and exits non-zero for any ``NarrateError``; a
message therefore names the file, field or chunk and never contains a secret.

    NarrateError
    ├── ConfigError            the job file is wrong (file:line: key: problem)
    ├── InputError             a manuscript cannot be read (file: problem)
    ├── OutputError            an output folder cannot be written, or is locked by another run
    └── EngineError            synthesis failed
        ├── FatalEngineError   stop the whole job now; retrying cannot help
        │   ├── AuthError            401 INVALID_API_KEY, or no key in the environment
        │   ├── VoiceNotFoundError   404 VOICE_NOT_FOUND
        │   ├── QuotaExceededError   429 USAGE_LIMIT_EXCEEDED (monthly characters)
        │   └── RequestRejectedError 400/404/422 validation errors (names the field)
        └── RetryableEngineError   worth another try after a wait
            ├── RateLimitedError     429 RATE_LIMIT_EXCEEDED / TOO_MANY_CONCURRENT_REQUESTS
            ├── ServerError          5xx, timeouts, dropped connections
            └── BadResponseError     a 200 whose body breaks the API's rules
"""

from __future__ import annotations


class NarrateError(Exception):
    """Base of every expected failure; ``str()`` is the one line a user sees."""


class ConfigError(NarrateError):
    pass


class InputError(NarrateError):
    pass


class OutputError(NarrateError):
    pass


class EngineError(NarrateError):
    pass


class FatalEngineError(EngineError):
    pass


class AuthError(FatalEngineError):
    pass


class VoiceNotFoundError(FatalEngineError):
    pass


class QuotaExceededError(FatalEngineError):
    pass


class RequestRejectedError(FatalEngineError):
    pass


class RetryableEngineError(EngineError):
    pass


class RateLimitedError(RetryableEngineError):
    """``retry_after_s`` is the server's advice, when it gave one; ``concurrency`` is True for
    TOO_MANY_CONCURRENT_REQUESTS (lower the in-flight cap) rather than a per-minute limit."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, concurrency: bool = False) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.concurrency = concurrency


class ServerError(RetryableEngineError):
    pass


class BadResponseError(RetryableEngineError):
    pass
