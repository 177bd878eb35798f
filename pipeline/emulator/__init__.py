"""An AsyncFlow-compatible HTTP server for offline runs and tests, backed by espeak-ng.

Entry points: ``pipeline.emulator.app.create_app`` (the ASGI app),
``pipeline.emulator.server.serve_in_thread`` (tests) and ``pipeline.emulator.server.main``
(``narrate emulator`` / ``python -m pipeline.emulator``).
"""
