"""The job file: every checked-in config loads; typos and bad values fail with file:line: key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import json_schema, load_job, parse_job
from pipeline.errors import ConfigError
from tests.conftest import REPO

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_there_are_configs() -> None:
    assert {"demo.yaml", "emulated.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_checked_in_config_loads(path: Path) -> None:
    job = load_job(path)
    assert job.input_files(), "its manuscripts exist"
    assert job.config.name


def test_paths_resolve_against_the_job_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "book.md").write_text("# T\n\nHello there.\n")
    job_path = tmp_path / "sub" / "job.yaml"
    job_path.write_text("name: j\ninput:\n  files: ['*.md']\n")
    job = load_job(job_path)
    assert job.input_files() == [tmp_path / "sub" / "book.md"]
    assert job.output_dir == tmp_path / "sub" / "out" / "j"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name: x\ninput: {files: [a]}\nengin: {}\n", ":3: unknown key 'engin'"),
        ("name: x\ninput: {files: [a]}\nengine:\n  kind: local\n  voise: en\n", ":5: unknown key 'engine.voise'"),
        ("name: x\ninput: {files: []}\n", "input.files"),
        ("name: x\ninput: {files: [a]}\nengine: {sample_rate: 96000}\n", "engine.sample_rate"),
        ("name: x\ninput: {files: [a]}\naudio: {formats: [wav, aiff]}\n", "audio.formats[1]"),
        ("name: 'bad name!'\ninput: {files: [a]}\n", "name"),
        ("name: x\nname: y\ninput: {files: [a]}\n", "duplicate key"),
        ("- just\n- a list\n", "YAML mapping"),
        (
            "name: x\ninput: {files: [a]}\ntext:\n  lexicon:\n    - {match: '(', regex: true, say: x}\n",
            "text.lexicon[0]",
        ),
    ],
)
def test_bad_jobs_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_job(text, Path("job.yaml"))
    message = str(err.value)
    assert message.startswith("job.yaml")
    assert needle in message
    assert "\n" not in message


def test_schema_forbids_unknown_keys() -> None:
    schema = json_schema()
    assert schema["additionalProperties"] is False
    assert "input" in schema["required"] and "name" in schema["required"]
