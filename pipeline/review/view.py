"""What the page shows, read from the job and its outputs: chapters, words with their times and
chunks, and flags. Built from the prepared book (chunks, spoken forms), alignment.json (times)
and report.json (loudness, failures, QA), so a partly finished job shows what exists."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Job
from pipeline.models import Chunk
from pipeline.prepare import PreparedBook
from pipeline.render import chapter_stem


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _qa_flags(qa: Any) -> list[dict[str, Any]]:
    """Flagged chunks from report.json's ``qa`` section, whatever list holds them: every entry
    that names a chunk is a flag."""
    found: list[dict[str, Any]] = []

    def walk(node: Any, kind: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("chunk"), str):
                reason = node.get("reason") or node.get("check") or node.get("checks") or kind
                found.append({"chunk": node["chunk"], "kind": "qa", "reason": _text(reason), "detail": node})
                return
            for key, value in node.items():
                walk(value, str(key))
        elif isinstance(node, list):
            for item in node:
                walk(item, kind)

    walk(qa, "qa")
    return found


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


@dataclass
class JobView:
    job: Job
    book: PreparedBook
    report: dict[str, Any]
    alignment: dict[str, Any]

    @classmethod
    def load(cls, job: Job, book: PreparedBook) -> JobView:
        out = job.output_dir
        return cls(job, book, read_json(out / "report.json"), read_json(out / "alignment.json"))

    def stem(self, index: int) -> str:
        return chapter_stem(self.book, index)

    def flags(self) -> list[dict[str, Any]]:
        flags = [
            {"chunk": f["chunk"], "kind": "failed", "reason": str(f.get("reason", "")), "detail": f}
            for f in self.report.get("failures", [])
            if isinstance(f, dict) and isinstance(f.get("chunk"), str)
        ]
        flags += _qa_flags(self.report.get("qa"))
        known = {c.id: c for c in self.book.chunks}
        out = []
        for n, flag in enumerate(f for f in flags if f["chunk"] in known):
            chunk = known[flag["chunk"]]
            out.append(dict(flag, id=n, chapter=chunk.chapter + 1, text=chunk.text))
        return out

    def _alignment_chapter(self, index: int) -> dict[str, Any] | None:
        stem = self.stem(index)
        for ch in self.alignment.get("chapters", []):
            audio = ch.get("audio_file") or ""
            if Path(audio).name.startswith(stem + "."):
                return dict(ch)
        return None

    def audio_file(self, index: int) -> str | None:
        al = self._alignment_chapter(index)
        if al and al.get("audio_file") and (self.job.output_dir / al["audio_file"]).is_file():
            return str(al["audio_file"])
        for fmt in self.job.config.audio.formats:
            path = f"chapters/{self.stem(index)}.{fmt}"
            if (self.job.output_dir / path).is_file():
                return path
        return None

    def chapters(self) -> list[dict[str, Any]]:
        audio_reports = {a.get("path"): a for a in self.report.get("outputs", {}).get("audio", [])}
        flags = self.flags()
        out = []
        for i, ch in enumerate(self.book.chapters):
            al = self._alignment_chapter(i)
            audio = self.audio_file(i)
            measured = audio_reports.get(audio, {})
            out.append(
                {
                    "index": i + 1,
                    "title": ch.title,
                    "source": ch.source,
                    "chunks": len(self.book.chunks_of(i)),
                    "audio_file": audio,
                    "duration_ms": al.get("duration_ms") if al else None,
                    "loudness": {k: measured.get(k) for k in ("integrated_lufs", "rms_db", "true_peak_db", "profile")}
                    if measured
                    else None,
                    "flags": sum(1 for f in flags if f["chapter"] == i + 1),
                }
            )
        return out

    def chapter(self, number: int) -> dict[str, Any] | None:
        """Chapter ``number`` (1-based) with its words, sentences, chunks and flags."""
        index = number - 1
        if not 0 <= index < len(self.book.chapters):
            return None
        summary = self.chapters()[index]
        chunks = self.book.chunks_of(index)
        words = [(chunk, w) for chunk in chunks for w in chunk.words]
        al = self._alignment_chapter(index)
        timed = al.get("words", []) if al else []
        # The alignment is of the last render; after an edit of the manuscript it may not match.
        stale = len(timed) != len(words) or any(
            t.get("text") != w.text for t, (_, w) in zip(timed, words, strict=False)
        )
        sentence_ids = [sid for chunk in chunks for sid in (chunk.sentence_ids or [0] * len(chunk.words))]
        out_words = []
        for n, (chunk, w) in enumerate(words):
            t = timed[n] if not stale else {}
            out_words.append(
                {
                    "i": n,
                    "text": w.text,
                    "spoken": w.spoken,
                    "chunk": chunk.id,
                    "heading": chunk.is_heading,
                    "sentence": sentence_ids[n] if n < len(sentence_ids) else 0,
                    "start_ms": t.get("start_ms"),
                    "end_ms": t.get("end_ms"),
                }
            )
        flags = [f for f in self.flags() if f["chapter"] == number]
        return dict(
            summary,
            stale=stale and bool(timed),
            words=out_words,
            chunks=[_chunk_view(c, out_words, flags) for c in chunks],
            flag_list=flags,
            peaks_url=f"/api/chapters/{number}/peaks" if summary["audio_file"] else None,
            audio_url=f"/audio/{summary['audio_file']}" if summary["audio_file"] else None,
        )


def _chunk_view(chunk: Chunk, words: list[dict[str, Any]], flags: list[dict[str, Any]]) -> dict[str, Any]:
    mine = [w for w in words if w["chunk"] == chunk.id]
    starts = [w["start_ms"] for w in mine if w["start_ms"] is not None]
    ends = [w["end_ms"] for w in mine if w["end_ms"] is not None]
    return {
        "id": chunk.id,
        "text": chunk.text,
        "spoken": list(chunk.spoken_words),
        "written": [w.text for w in chunk.words],
        "start_ms": min(starts) if starts else None,
        "end_ms": max(ends) if ends else None,
        "flags": [f["id"] for f in flags if f["chunk"] == chunk.id],
        "heading": chunk.is_heading,
        "pause_after": chunk.pause_after.value,
    }
