"""alignment.json: its content, its schema, and the atomic JSON writer."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.align.alignment import alignment_document, alignment_schema
from pipeline.errors import OutputError
from pipeline.fsutil import write_json_atomic
from pipeline.models import ChapterTimeline, TimedWord, Word

SOURCE = "Chapter One\n\nIt was late. The café had closed.\n"


def chapter_one() -> ChapterTimeline:
    spans = [(0, 7, 0), (8, 11, 0), (13, 15, 1), (16, 19, 1), (20, 25, 1), (26, 29, 2), (30, 34, 2),
             (35, 38, 2), (39, 46, 2)]  # fmt: skip
    words = []
    for k, (a, b, sentence) in enumerate(spans):
        words.append(
            TimedWord(Word(SOURCE[a:b], a, b), 0, "one.txt", 200 + 300 * k, 450 + 300 * k, sentence)
        )
    return ChapterTimeline(0, "Chapter One", "one.txt", 3200, tuple(words))


@functools.cache
def validator() -> jsonschema.protocols.Validator:
    schema = alignment_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_document_content_and_schema() -> None:
    one = chapter_one()
    two = ChapterTimeline(1, "Empty", "two.txt", 500, ())
    doc = alignment_document(
        [(one, 0), (two, 5200)],
        job_name="demo",
        sample_rate=24000,
        audio_files={0: "chapters/01-chapter-one.mp3"},
        book_file="demo.mp3",
    )
    validator().validate(doc)
    assert doc["version"] == 1 and doc["job"] == "demo" and doc["duration_ms"] == 5700
    ch0, ch1 = doc["chapters"]
    assert (ch0["audio_file"], ch1["audio_file"], ch1["offset_ms"]) == (
        "chapters/01-chapter-one.mp3",
        None,
        5200,
    )
    for w in ch0["words"]:
        assert SOURCE[w["char_start"] : w["char_end"]] == w["text"]
    assert ch0["words"][7] == {
        "text": "had", "chapter": 0, "source": "one.txt", "char_start": 35, "char_end": 38,
        "start_ms": 2300, "end_ms": 2550, "book_start_ms": 2300, "book_end_ms": 2550, "sentence": 2,
    }  # fmt: skip
    assert [(s["index"], s["text"], s["first_word"], s["last_word"]) for s in ch0["sentences"]] == [
        (0, "Chapter One", 0, 1),
        (1, "It was late.", 2, 4),
        (2, "The café had closed.", 5, 8),
    ]
    last = ch0["sentences"][2]
    assert SOURCE[last["char_start"] : last["char_end"]] == "The café had closed."
    assert (last["start_ms"], last["end_ms"]) == (1700, 2850)


def test_book_times_add_the_chapter_offset() -> None:
    doc = alignment_document(
        [(chapter_one(), 61_000)], job_name="j", sample_rate=22050, audio_files={}, book_file=None
    )
    validator().validate(doc)
    for w in doc["chapters"][0]["words"]:
        assert w["book_start_ms"] - w["start_ms"] == 61_000 == w["book_end_ms"] - w["end_ms"]
    assert doc["book_file"] is None


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.update(version=2),
        lambda d: d["chapters"][0]["words"][0].pop("char_start"),
        lambda d: d["chapters"][0]["words"][0].update(start_ms=-1),
        lambda d: d["chapters"][0]["sentences"][0].update(extra=True),
        lambda d: d.update(sample_rate="24000"),
    ],
)
def test_the_schema_rejects_broken_documents(breakage: object) -> None:
    doc = alignment_document(
        [(chapter_one(), 0)], job_name="j", sample_rate=24000, audio_files={}, book_file=None
    )
    breakage(doc)  # type: ignore[operator]
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(doc)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5000), st.integers(0, 400), st.booleans()), min_size=0, max_size=30
    )
)
def test_random_timelines_validate(raw: list[tuple[int, int, bool]]) -> None:
    words, t, sentence = [], 0, 0
    for k, (gap, duration, new_sentence) in enumerate(raw):
        sentence += new_sentence
        t += gap
        words.append(
            TimedWord(Word(f"w{k}", 3 * k, 3 * k + 2), 4, "x.md", t, t + duration, sentence)
        )
        t += duration
    tl = ChapterTimeline(4, "Four", "x.md", t, tuple(words))
    doc = alignment_document(
        [(tl, 100)], job_name="j", sample_rate=48000, audio_files={4: "a.wav"}, book_file="b.wav"
    )
    validator().validate(doc)
    sentences = doc["chapters"][0]["sentences"]
    # Sentences cover the words exactly once, in order.
    covered = [k for s in sentences for k in range(s["first_word"], s["last_word"] + 1)]
    assert covered == list(range(len(words)))


def test_write_json_atomic(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "alignment.json"
    write_json_atomic(target, {"text": "café — naïve", "n": [1, 2]})
    raw = target.read_bytes().decode("utf-8")
    assert "café — naïve" in raw  # not \u escapes
    assert raw == '{\n "text": "café — naïve",\n "n": [\n  1,\n  2\n ]\n}\n'
    assert os.stat(target).st_mode & 0o777 == 0o644
    write_json_atomic(target, [1])
    assert json.loads(target.read_text(encoding="utf-8")) == [1]
    assert sorted(p.name for p in target.parent.iterdir()) == ["alignment.json"]  # no temp left


def test_write_json_atomic_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_json_atomic(target, {"ok": True})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})
    assert json.loads(target.read_text(encoding="utf-8")) == {"ok": True}
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"file/out\.json: cannot write"):
        write_json_atomic(blocker / "out.json", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "report.json"]
