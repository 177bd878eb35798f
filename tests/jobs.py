"""Write job files for tests: the demo job's settings with overrides, paths made absolute."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.conftest import DEMO_MANUSCRIPT


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def write_job(folder: Path, name: str = "t", **overrides: Any) -> Path:
    job: dict[str, Any] = {
        "name": name,
        "title": "Test Book",
        "input": {"files": [str(DEMO_MANUSCRIPT)]},
        "engine": {"kind": "local", "voice": "en-us", "sample_rate": 24000},
        "audio": {"formats": ["wav"], "loudness": "audiobook"},
        "outputs": {"subtitles": ["srt", "vtt"], "alignment": True},
        "output_dir": str(folder / "out" / name),
        "cache_dir": str(folder / "cache"),
    }
    job = _merge(job, overrides)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path
