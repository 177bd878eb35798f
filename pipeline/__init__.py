"""narrate: manuscripts to audiobooks and aligned speech datasets."""

__version__ = "0.1.0"
