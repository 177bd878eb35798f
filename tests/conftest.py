"""Shared fixtures. Prefect is configured before anything imports it: a private home, no
telemetry, quiet logs, and a generous start-up timeout for a loaded 2-core machine."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_prefect_home = tempfile.mkdtemp(prefix="narrate-test-prefect-")
for key, value in {
    "PREFECT_HOME": _prefect_home,
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}.items():
    os.environ.setdefault(key, value)

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEMO_MANUSCRIPT = REPO / "data" / "manuscripts" / "the-lighthouse-keepers-ledger.md"
# The project's shared folder sits beside the repository (on developers' machines and in CI).
SHARED_CORPUS = REPO.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for every test that runs a real flow."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
