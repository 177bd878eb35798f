"""Speech datasets cut from the narrated audio, and the alignment quality check."""

from pipeline.dataset.clips import Clip, ClipPlan, SkippedSpan, choose_clips
from pipeline.dataset.export import export_dataset, validation_chapters
from pipeline.dataset.quality import alignment_quality, word_energy_check

__all__ = [
    "Clip",
    "ClipPlan",
    "SkippedSpan",
    "alignment_quality",
    "choose_clips",
    "export_dataset",
    "validation_chapters",
    "word_energy_check",
]
