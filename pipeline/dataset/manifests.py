"""The three dataset layouts, each a self-contained folder a trainer can be pointed at.

LJSpeech's ``metadata.csv`` and audiofolder's ``metadata.jsonl`` cannot share a folder: the
Hugging Face loader treats both as metadata and refuses mixed extensions (and the headerless,
pipe-separated LJSpeech file is not a CSV it could read anyway). So each format gets its own
folder; the audio of a clip is written once and hard-linked into the others (copied where the
filesystem has no hard links)::

    ljspeech/     metadata.csv                       ID|text|normalized text, every clip
                  metadata_train.csv, metadata_validation.csv      (with a split)
                  wavs/ID.wav
    audiofolder/  train/metadata.jsonl, train/ID.wav              (always a train/ folder)
                  validation/metadata.jsonl, validation/ID.wav    (with a split)
    nemo/         manifest.jsonl                     every clip
                  train_manifest.jsonl, validation_manifest.jsonl (with a split)
                  wavs/ID.wav

audiofolder always uses split folders, even for one split: the loader takes a file name that
contains a split word ("test-c01-s0001.wav" for a job called "test") for a split of its own,
but a folder name wins over file names. NeMo's ``audio_filepath`` is relative to the manifest,
which NeMo resolves against the manifest's folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import DatasetFormat

TRAIN = "train"
VALIDATION = "validation"


@dataclass(frozen=True, slots=True)
class ClipRecord:
    """A written clip, as the manifests describe it."""

    id: str
    split: str
    chapter: int  # 0-based, book-wide
    text: str
    normalized_text: str
    frames: int
    sample_rate: int
    speaker: int

    @property
    def duration_s(self) -> float:
        return round(self.frames / self.sample_rate, 4)


def audio_path(root: Path, fmt: DatasetFormat, record: ClipRecord) -> Path:
    """Where a clip's WAV lives in one format's folder."""
    if fmt == "audiofolder":
        return root / "audiofolder" / record.split / f"{record.id}.wav"
    return root / fmt / "wavs" / f"{record.id}.wav"


def _one_line(text: str) -> str:
    # LJSpeech is pipe-separated with no quoting: neither pipes nor line breaks may appear.
    return " ".join(text.replace("|", " ").split())


def _ljspeech(records: Sequence[ClipRecord]) -> str:
    return "".join(f"{r.id}|{_one_line(r.text)}|{_one_line(r.normalized_text)}\n" for r in records)


def _jsonl(rows: Sequence[dict[str, object]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _audiofolder_row(r: ClipRecord) -> dict[str, object]:
    return {
        "file_name": f"{r.id}.wav",
        "id": r.id,
        "text": r.text,
        "normalized_text": r.normalized_text,
        "duration": r.duration_s,
        "chapter": r.chapter + 1,
        "speaker": r.speaker,
    }


def _nemo_row(r: ClipRecord) -> dict[str, object]:
    return {
        "audio_filepath": f"wavs/{r.id}.wav",
        "duration": r.duration_s,
        "text": r.text,
        "normalized_text": r.normalized_text,
        "speaker": r.speaker,
    }


def manifest_files(
    root: Path, fmt: DatasetFormat, records: Sequence[ClipRecord], splits: Sequence[str] | None
) -> dict[Path, str]:
    """Every metadata file of one format and its content. ``splits`` is None without a split,
    else the split names in use (each gets its own file, even when empty)."""
    folder = root / fmt
    by_split = {name: [r for r in records if r.split == name] for name in (splits or ())}
    if fmt == "ljspeech":
        files = {folder / "metadata.csv": _ljspeech(records)}
        files.update({folder / f"metadata_{name}.csv": _ljspeech(rows) for name, rows in by_split.items()})
        return files
    if fmt == "nemo":
        files = {folder / "manifest.jsonl": _jsonl([_nemo_row(r) for r in records])}
        files.update(
            {folder / f"{name}_manifest.jsonl": _jsonl([_nemo_row(r) for r in rows]) for name, rows in by_split.items()}
        )
        return files
    # An empty split folder would make the loader fail; a split with no clips gets none.
    groups = {name: rows for name, rows in by_split.items() if rows} or {TRAIN: list(records)}
    return {
        folder / name / "metadata.jsonl": _jsonl([_audiofolder_row(r) for r in rows]) for name, rows in groups.items()
    }
