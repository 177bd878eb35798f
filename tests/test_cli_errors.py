"""A user's mistakes end in one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.jobs import write_job


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("narrate: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_unknown_key_names_file_line_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: x\ninput:\n  files: [a.txt]\naudio:\n  formats: [wav]\n  loudnes: podcast\n")
    code, _, err = run_cli(capsys, "validate", str(job))
    assert_one_line_error(code, err, f"{job}:6", "audio.loudnes")


def test_wrong_type_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: x\ninput:\n  files: [a.txt]\nlimits:\n  requests_per_minute: lots\n")
    code, _, err = run_cli(capsys, "validate", str(job))
    assert_one_line_error(code, err, f"{job}:5", "limits.requests_per_minute")


def test_missing_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("input:\n  files: [a.txt]\n")
    code, _, err = run_cli(capsys, "validate", str(job))
    assert_one_line_error(code, err, "name")


def test_malformed_yaml_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: x\ninput: [unclosed\n")
    code, _, err = run_cli(capsys, "validate", str(job))
    assert_one_line_error(code, err, str(job), "invalid YAML")


def test_missing_manuscript(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = write_job(tmp_path, input={"files": [str(tmp_path / "nope.md")]})
    code, _, err = run_cli(capsys, "run", str(job))
    assert_one_line_error(code, err, "input.files[0]", "nope.md")


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\n \t\n", "whitespace"),
        ("binary.txt", b"\x00\x01\x02PNG\x00\x00data", "binary"),
        ("latin1.txt", "Caf\u00e9 au lait.\n".encode("latin-1"), "UTF-8"),
    ],
)
def test_bad_manuscripts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, needle: str
) -> None:
    manuscript = tmp_path / name
    manuscript.write_bytes(content)
    job = write_job(tmp_path, input={"files": [str(manuscript)]})
    code, _, err = run_cli(capsys, "run", str(job))
    assert_one_line_error(code, err, name)
    assert needle.lower() in err.lower()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.wav"))


def test_output_dir_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    job = write_job(tmp_path, output_dir=str(blocker))
    code, _, _ = run_cli(capsys, "validate", str(job))
    assert code == 0  # validate does not write
    from pipeline.errors import OutputError
    from pipeline.fsutil import output_lock

    with pytest.raises(OutputError, match="blocker"), output_lock(blocker):
        pass
    assert blocker.read_text() == "keep me"


def test_schema_and_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "schema")
    assert code == 0 and '"additionalProperties": false' in out
    code, out, _ = run_cli(capsys, "validate", str(write_job(tmp_path)))
    assert code == 0 and "3 chapters" in out


def test_subprocess_error_has_no_traceback(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: x\ninput:\n  files: [a.txt]\nengine: {kind: cloud}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(job)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "engine.kind" in proc.stderr
