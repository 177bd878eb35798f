"""report.json: what a run did, in numbers a user (or a script) can check."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.config import Job
from pipeline.prepare import PreparedBook
from pipeline.render import RenderResult
from pipeline.synthesis import SynthesisResult

REPORT_VERSION = 1


def _rel(path: str, base: Path) -> str:
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path


def build_report(
    job: Job,
    book: PreparedBook,
    synthesis: SynthesisResult,
    render: RenderResult,
    *,
    engine_stats: dict[str, Any],
    output_dir: Path,
    wall_seconds: float,
) -> dict[str, Any]:
    cfg = job.config
    synthesized = sum(1 for c in synthesis.chunks if not c.from_cache)
    audio_hours = sum(c.num_samples / c.sample_rate for c in synthesis.chunks if not c.from_cache) / 3600
    price = cfg.engine.price_per_hour_usd if cfg.engine.kind == "asyncflow" else 0.0
    return {
        "version": REPORT_VERSION,
        "narrate": __version__,
        "job": cfg.name,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "engine": {
            "kind": cfg.engine.kind,
            "voice": cfg.engine.voice,
            "model": cfg.engine.model if cfg.engine.kind == "asyncflow" else None,
            "sample_rate": cfg.engine.sample_rate,
        },
        "book": {
            "title": book.title,
            "author": book.author,
            "language": book.language,
            "chapters": [
                {
                    "index": i + 1,
                    "title": ch.title,
                    "source": ch.source,
                    "chunks": len(book.chunks_of(i)),
                    "written": i in render.chapters_written,
                }
                for i, ch in enumerate(book.chapters)
            ],
        },
        "chunks_total": len(book.chunks),
        "chunks_synthesized": synthesized,
        "chunks_from_cache": sum(1 for c in synthesis.chunks if c.from_cache),
        "chunks_failed": len(synthesis.failures) + (len(book.chunks) - len(synthesis.chunks) - len(synthesis.failures)),
        "failures": [f.to_dict() for f in synthesis.failures],
        "stopped_by": str(synthesis.fatal) if synthesis.fatal else None,
        "requests": engine_stats,
        "cost_usd": round(audio_hours * price, 4),
        "audio_seconds": round(render.audio_seconds, 3),
        "wall_seconds": round(wall_seconds, 3),
        "lexicon_version": book.lexicon_version,
        "subtitles": render.cue_stats,
        "alignment_quality": render.alignment_quality,
        "dataset": render.dataset,
        "outputs": {
            "audio": [dict(f.to_dict(), path=_rel(f.path, output_dir)) for f in render.files],
            "subtitles": [_rel(p, output_dir) for p in render.subtitle_files],
            "other": [_rel(p, output_dir) for p in render.other_files],
        },
        "chapters_incomplete": [i + 1 for i in render.chapters_incomplete],
        "report_file": str(output_dir / "report.json"),
    }
