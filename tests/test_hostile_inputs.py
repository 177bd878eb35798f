"""Hostile input, fuzz style: every case ends in one clear error line and a non-zero exit, or
in a correct result; never a traceback, and never a changed or deleted earlier output.

Failing cases run `narrate run` in-process (they stop before any flow starts); the cases that
must succeed run the real flow with the local engine; a few go through a real subprocess to
show that nothing but the one line reaches stderr."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
import srt
import yaml

from pipeline.cli import main
from tests.jobs import write_job
from tests.resume_support import snapshot

GOOD_TEXT = "## One\n\nThe lamp was lit at dusk. The keeper wrote it down.\n"


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]  # writes what the case needs into a folder; returns the job file
    needle: str = ""  # a word the error line must hold (case-insensitive)


def job_yaml(text: str | bytes) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / "job.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    return build


def manuscript(file_name: str, content: str | bytes, /, **job: Any) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / file_name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        options = dict(job)
        return write_job(folder, input={"files": [str(path)], **options.pop("input", {})}, **options)

    return build


def good_job(**overrides: Any) -> Callable[[Path], Path]:
    return manuscript("book.md", GOOD_TEXT, **overrides)


def with_setup(setup: Callable[[Path], Any], **overrides: Any) -> Callable[[Path], Path]:
    """A good job after ``setup(folder)`` ran; overrides may name ``{folder}``."""

    def build(folder: Path) -> Path:
        setup(folder)
        fixed = json.loads(json.dumps(overrides).replace("{folder}", str(folder)))
        return good_job(**fixed)(folder)

    return build


def _laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(["name: x", "input: {files: [a.md]}", "title:", *("  " + line for line in lines)]) + "\n"


def _fake_epub_without_container(folder: Path) -> Path:
    path = folder / "book.epub"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("OEBPS/chapter.xhtml", "<html><body><p>Hello.</p></body></html>")
    return write_job(folder, input={"files": [str(path)]})


def _symlink_loop(folder: Path) -> Path:
    (folder / "loop.md").symlink_to(folder / "loop.md")
    return write_job(folder, input={"files": [str(folder / "loop.md")]})


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.md")
    return write_job(folder, input={"files": [str(folder / "pipe.md")]})


FAILING: list[Case] = [
    # the job file itself
    Case("yaml-unclosed", job_yaml("name: x\ninput: [unclosed\n"), "invalid YAML"),
    Case("yaml-tab-indent", job_yaml("name: x\ninput:\n\tfiles: [a.md]\n"), "invalid YAML"),
    Case("yaml-top-list", job_yaml("- name: x\n- input: {}\n"), "mapping"),
    Case("yaml-top-scalar", job_yaml("just words\n"), "mapping"),
    Case("yaml-empty", job_yaml(""), "mapping"),
    Case("yaml-only-comment", job_yaml("# nothing here\n"), "mapping"),
    Case("yaml-binary", job_yaml(b"\x00\x01\x02\xff\xfe binary"), "job.yaml"),
    Case("yaml-invalid-utf8", job_yaml(b"name: caf\xe9\ninput: {files: [a.md]}\n"), "UTF-8"),
    Case("yaml-duplicate-key", job_yaml("name: a\nname: b\ninput: {files: [a.md]}\n"), "duplicate"),
    Case("yaml-billion-laughs", job_yaml(_laughs()), "title"),
    Case("yaml-python-tag", job_yaml("name: !!python/object/apply:os.system ['true']\n"), "invalid YAML"),
    Case("yaml-huge-number", job_yaml("name: x\ninput: {files: [a.md]}\nlimits: {retries: 1e400}\n"), "retries"),
    Case("unknown-top-key", job_yaml("name: x\nnmae: y\ninput: {files: [a.md]}\n"), "nmae"),
    Case("unknown-nested-key", good_job(engine={"voise": "en"}), "engine.voise"),
    Case("wrong-type-rpm", good_job(limits={"requests_per_minute": "lots"}), "requests_per_minute"),
    Case("files-a-string", job_yaml("name: x\ninput: {files: book.md}\n"), "input.files"),
    Case("files-empty", job_yaml("name: x\ninput: {files: []}\n"), "input.files"),
    Case("files-null", job_yaml("name: x\ninput: {files: null}\n"), "input.files"),
    Case("files-blank-name", job_yaml("name: x\ninput: {files: ['  ']}\n"), "input"),
    Case("files-number", job_yaml("name: x\ninput: {files: [42]}\n"), "input.files"),
    Case("name-path-traversal", job_yaml("name: ../../etc\ninput: {files: [a.md]}\n"), "name"),
    Case("name-missing", job_yaml("input: {files: [a.md]}\n"), "name"),
    Case("name-too-long", job_yaml(f"name: {'n' * 300}\ninput: {{files: [a.md]}}\n"), "name"),
    Case("engine-kind-unknown", good_job(engine={"kind": "cloud"}), "engine.kind"),
    Case("sample-rate-too-low", good_job(engine={"sample_rate": 1000}), "sample_rate"),
    Case("speed-out-of-range", good_job(engine={"speed": 9}), "speed"),
    Case("max-chars-too-small", good_job(text={"max_chars": 5}), "max_chars"),
    Case("audio-format-unknown", good_job(audio={"formats": ["aac"]}), "formats"),
    Case("loudness-unknown", good_job(audio={"loudness": "loud"}), "loudness"),
    Case("lexicon-bad-regex", good_job(text={"lexicon": [{"match": "([", "say": "x", "regex": True}]}), "lexicon"),
    Case("lexicon-file-missing", good_job(text={"lexicon_file": "nope.yaml"}), "nope.yaml"),
    Case(
        "lexicon-file-is-dir",
        with_setup(lambda f: (f / "lex").mkdir(), text={"lexicon_file": "{folder}/lex"}),
        "lex",
    ),
    Case(
        "lexicon-file-binary",
        with_setup(lambda f: (f / "lex.yaml").write_bytes(b"\x00\xff\x00"), text={"lexicon_file": "{folder}/lex.yaml"}),
        "lex.yaml",
    ),
    Case("chapters-out-of-range", good_job(input={"chapters": [99]}), "99"),
    Case("chapters-bad-regex", good_job(input={"chapters": ["(["]}), "chapters"),
    Case("schedule-both", good_job(schedule={"cron": "0 3 * * *", "interval_s": 60}), "schedule"),
    Case("dataset-min-above-max", good_job(outputs={"dataset": {"min_s": 9, "max_s": 2}}), "min_s"),
    Case("job-file-missing", lambda f: f / "absent.yaml", "not found"),
    Case("job-file-is-dir", lambda f: f, "directory"),
    # manuscripts
    Case("manuscript-missing", lambda f: write_job(f, input={"files": [str(f / "gone.md")]}), "gone.md"),
    Case("manuscript-is-dir", with_setup(lambda f: (f / "d.md").mkdir(), input={"files": ["{folder}/d.md"]}), "d.md"),
    Case("manuscript-glob-no-match", lambda f: write_job(f, input={"files": [str(f / "*.nothing")]}), "no file"),
    Case("manuscript-empty", manuscript("empty.md", b""), "empty"),
    Case("manuscript-whitespace", manuscript("blank.txt", b" \n\t\n  \r\n"), "blank.txt"),
    Case("manuscript-binary", manuscript("bin.txt", b"\x00\x01PNG\x00\x00\x1a\n" * 20), "binary"),
    Case("manuscript-invalid-utf8", manuscript("latin.md", "Café crème.\n".encode("latin-1")), "UTF-8"),
    Case("manuscript-unknown-type", manuscript("book.pdf", b"%PDF-1.4 not really"), "unsupported"),
    Case("manuscript-fake-epub", manuscript("book.epub", b"This is plain text, not a zip."), "book.epub"),
    Case("manuscript-epub-no-container", _fake_epub_without_container, "book.epub"),
    Case("manuscript-only-headings", manuscript("heads.md", "# Title\n\n## One\n\n## Two\n"), "no readable text"),
    Case("manuscript-only-punctuation", manuscript("punct.txt", "!!! ... ??? --- ;;; ,,, ::: ***\n"), "nothing to"),
    Case("manuscript-only-emoji", manuscript("emoji.txt", "😀 🐈 🔥 👍🏽\n"), "nothing to"),
    Case("manuscript-symlink-loop", _symlink_loop, "loop.md"),
    Case("manuscript-fifo", _fifo, "pipe.md"),
    Case("encoding-unknown", manuscript("a.txt", "Hello there.\n", input={"encoding": "klingon-8"}), "klingon"),
    # where the results go
    Case(
        "output-dir-is-file",
        with_setup(lambda f: (f / "blocker").write_text("keep me"), output_dir="{folder}/blocker"),
        "output_dir",
    ),
    Case(
        "output-dir-under-file",
        with_setup(lambda f: (f / "blocker").write_text("keep me"), output_dir="{folder}/blocker/out"),
        "output_dir",
    ),
    Case("output-dir-unwritable", good_job(output_dir="/sys/narrate-cannot-write-here"), "output_dir"),
    Case(
        "cache-dir-is-file",
        with_setup(lambda f: (f / "cachefile").write_text("keep me"), cache_dir="{folder}/cachefile"),
        "cache_dir",
    ),
    # engines
    Case("asyncflow-no-key", good_job(engine={"kind": "asyncflow", "api_key_env": "NARRATE_TEST_NO_SUCH_KEY"}), "key"),
    Case("local-voice-unknown", good_job(engine={"voice": "xx-no-such-voice"}), "voice"),
]


@pytest.fixture
def earlier_output(tmp_path: Path) -> Path:
    """An output folder from an earlier run (every kind of file a run writes); every failing
    case points its job at it."""
    out = tmp_path / "earlier"
    (out / "chapters").mkdir(parents=True)
    sf.write(out / "book.wav", [0.0, 0.25, -0.25] * 1000, 24000)
    sf.write(out / "chapters" / "01-one.wav", [0.1] * 500, 24000)
    (out / "book.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHello.\n\n")
    (out / "alignment.json").write_text('{"chapters": []}\n')
    (out / "report.json").write_text('{"chunks_total": 1}\n')
    return out


def assert_one_error_line(code: int, err: str, needle: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("narrate: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert needle.lower() in errors[0].lower(), (needle, errors[0])
    assert len(errors[0]) < 600


def _point_at(job: Path, out: Path) -> None:
    """Send the outputs of a job made by write_job to ``out``. Hand-written job files stay
    byte for byte as they are (re-dumping would hide duplicate keys and the like)."""
    try:
        data = yaml.safe_load(job.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError, ValueError):
        return
    if isinstance(data, dict) and str(data.get("output_dir", "")).startswith(str(job.parent / "out")):
        data["output_dir"] = str(out)
        job.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("case", FAILING, ids=[c.name for c in FAILING])
def test_failing_input_is_one_clear_line_and_harms_nothing(
    case: Case,
    tmp_path: Path,
    earlier_output: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NARRATE_TEST_NO_SUCH_KEY", raising=False)
    folder = tmp_path / "case"
    folder.mkdir()
    job = case.build(folder)
    if job.is_file():
        _point_at(job, earlier_output)
    before = snapshot(earlier_output)
    surroundings = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.suffix != ".yaml"}
    code = main(["run", str(job), "--yes"])
    assert_one_error_line(code, capsys.readouterr().err, case.needle)
    assert snapshot(earlier_output) == before
    assert {p: p.read_bytes() for p in surroundings} == surroundings  # blockers and inputs untouched
    assert not (folder / "out").exists()


def test_there_are_at_least_fifty_hostile_inputs() -> None:
    assert len(FAILING) + len(SUCCEEDING) >= 50
    assert len({c.name for c in FAILING + SUCCEEDING}) == len(FAILING) + len(SUCCEEDING)


# --- inputs that must give a correct result -------------------------------------------------

_SENTENCE_WORDS = ("river", "lantern", "quiet", "harbour", "morning", "stone", "meadow", "signal")
LONG_SENTENCE = " ".join(_SENTENCE_WORDS[i % len(_SENTENCE_WORDS)] for i in range(3000))[:20000]

SUCCEEDING: list[Case] = [
    Case(
        "long-sentence-20000",
        # Lean settings: 20 minutes of speech, so everything but the sentence is kept cheap.
        manuscript(
            "long.txt",
            LONG_SENTENCE + "\n",
            engine={"sample_rate": 8000},
            audio={"loudness": "none"},
            outputs={"subtitles": ["srt"], "alignment": False, "chapter_files": False},
        ),
    ),
    Case("emoji", manuscript("emoji.md", "## One\n\nThe cat 🐈 sat by the fire 🔥 and purred. 😀👍🏽\n")),
    Case("right-to-left", manuscript("rtl.md", "## واحد\n\nمرحبا بالعالم. שלום עולם.\n", engine={"voice": "ar"})),
    Case("cjk", manuscript("cjk.txt", "今日は良い天気です。我们去公园散步。\n", engine={"voice": "cmn"})),
    Case("control-characters", manuscript("ctl.txt", "The bell\x07 rang\x1b[31m twice\x0b in the\x0c night.\n")),
    Case(
        "bom-and-zero-width",
        manuscript("bom.md", "\ufeff## One\n\nA zero\u200bwidth joiner\u200d and a soft\u00adhyphen.\n"),
    ),
    Case("mixed-newlines", manuscript("nl.txt", "First line here.\r\nSecond line here.\rThird line here.\n")),
    Case(
        "latin1-declared",
        manuscript("latin.txt", "Café crème, s'il vous plaît.\n".encode("latin-1"), input={"encoding": "latin-1"}),
    ),
    Case("one-giant-word", manuscript("word.txt", "Before " + "a" * 3000 + " after.\n")),
]


def _letters(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]{3,}", text)


@pytest.mark.slow
@pytest.mark.parametrize("case", SUCCEEDING, ids=[c.name for c in SUCCEEDING])
def test_awkward_but_valid_input_gives_a_correct_result(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], prefect_harness: None
) -> None:
    job = case.build(tmp_path)
    code = main(["run", str(job), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    out = tmp_path / "out" / "t"
    report = json.loads((out / "report.json").read_text())
    assert report["chunks_failed"] == 0 and report["audio_seconds"] > 0.3
    book_wav = next(out.glob("*.wav"))
    assert sf.info(str(book_wav)).duration > 0.3
    subtitles = next(out.glob("*.srt")).read_text(encoding="utf-8")
    assert not re.search(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]", subtitles)  # no control characters shown
    spoken = " ".join(c.content for c in srt.parse(subtitles))
    source = Path(yaml.safe_load(job.read_text())["input"]["files"][0]).read_bytes()
    text = source.decode(yaml.safe_load(job.read_text()).get("input", {}).get("encoding", "utf-8"))
    for word in _letters(text)[:5] + _letters(text)[-5:]:
        if len(word) < 100:
            assert word in spoken, word


# --- through a real process -----------------------------------------------------------------


def _narrate(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )


@pytest.mark.slow
def test_real_process_prints_only_the_error_line(tmp_path: Path, earlier_output: Path) -> None:
    chosen = {"yaml-binary", "manuscript-invalid-utf8", "output-dir-is-file"}
    for case in (c for c in FAILING if c.name in chosen):
        folder = tmp_path / case.name
        folder.mkdir()
        job = case.build(folder)
        _point_at(job, earlier_output)
        before = snapshot(earlier_output)
        proc = _narrate("run", str(job))
        assert proc.returncode == 2 or proc.returncode == 1, proc.stderr
        assert proc.stdout == ""
        assert_one_error_line(proc.returncode, proc.stderr, case.needle)
        assert len(proc.stderr.splitlines()) == 1
        assert snapshot(earlier_output) == before


def _make_read_only(folder: Path) -> Callable[[], None]:
    """Make ``folder`` read-only for this process, and return how to undo it. Root ignores
    permission bits, so as root the folder is made immutable (chattr +i) instead."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    subprocess.run(["chattr", "+i", str(folder)], check=True, capture_output=True)

    def undo() -> None:
        subprocess.run(["chattr", "-i", str(folder)], check=True, capture_output=True)

    return undo


def test_read_only_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "book.wav").write_bytes(b"RIFF earlier output")
    job = good_job(output_dir=str(locked))(tmp_path)
    undo = _make_read_only(locked)
    try:
        with pytest.raises(OSError):
            (locked / "probe").write_bytes(b"")  # really read-only, even for root
        code = main(["run", str(job)])
    finally:
        undo()
    assert_one_error_line(code, capsys.readouterr().err, "not writable")
    assert (locked / "book.wav").read_bytes() == b"RIFF earlier output"
    assert sorted(p.name for p in locked.iterdir()) == ["book.wav"]
