"""``python -m pipeline.emulator``: the same as ``narrate emulator``."""

from __future__ import annotations

import sys

from pipeline.emulator.server import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
