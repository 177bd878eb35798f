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
# The public-domain books sit in the project's shared folder beside the repository (on the
# developers' machines and in CI), not in the repository: tests that read them are marked
# ``corpus`` and skipped, with the reason, in a clone that has no such folder beside it.
# NARRATE_CORPUS points elsewhere (a git worktree, say).
SHARED_CORPUS = Path(os.environ.get("NARRATE_CORPUS") or REPO.parent / "shared" / "corpus")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SHARED_CORPUS.is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs the public-domain corpus at {SHARED_CORPUS} (set NARRATE_CORPUS)")
    for item in items:
        if "corpus" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for every test that runs a real flow."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
