"""The edits a reviewer makes, written where a run reads them: the job's lexicon file and the
spoken-text overrides beside the job. Each is checked before it is written, and a file that a
run would then refuse is put back as it was."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import yaml
from pydantic import ValidationError

from pipeline.config import Job, LexiconEntry
from pipeline.errors import ConfigError
from pipeline.fsutil import write_text_atomic
from pipeline.prepare import PreparedBook
from pipeline.text.lexicon import load_lexicon_file
from pipeline.text.overrides import SpokenOverrides, overrides_path


def lexicon_file(job: Job) -> Path:
    name = job.config.text.lexicon_file
    if not name:
        raise ConfigError(
            f"{job.path}: the job has no text.lexicon_file to add pronunciations to; "
            "add e.g. `lexicon_file: lexicon.yaml` under text: (an empty file is fine)"
        )
    return job.resolve(name)


def set_pronunciation(job: Job, match: str, say: str | None, phonemes: str | None) -> LexiconEntry:
    """Add an entry for the whole word ``match`` to the job's lexicon file, or replace the
    file's entry for it. An entry in the job file itself wins over the file, so it must be
    edited there."""
    try:
        entry = LexiconEntry.model_validate(
            {k: v for k, v in {"match": match.strip(), "say": say, "phonemes": phonemes}.items() if v}
        )
    except ValidationError as exc:
        raise ConfigError(f"lexicon entry: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    if not entry.match or any(ch.isspace() for ch in entry.match):
        raise ConfigError("lexicon entry: 'match' must be one written word")
    folded = entry.match.casefold()
    if any(e.match.casefold() == folded and not e.regex for e in job.config.text.lexicon):
        raise ConfigError(f"{job.path}: text.lexicon already has an entry for {entry.match!r}; edit it there")
    path = lexicon_file(job)
    existing = load_lexicon_file(path) if path.exists() else []
    entries = [e for e in existing if e.regex or e.match.casefold() != folded or e.case_sensitive]
    replaced = len(entries) != len(existing)
    entries.append(entry)
    old_text = path.read_text(encoding="utf-8-sig") if path.exists() else None
    if path.suffix.lower() == ".csv":
        text = _csv_text(entries) if replaced or not old_text else old_text.rstrip("\n") + "\n" + _csv_row(entry)
    else:
        rows = [e.model_dump(mode="json", exclude_defaults=True) for e in entries]
        text = yaml.safe_dump(rows, allow_unicode=True, sort_keys=False)
        if not replaced and old_text:  # appended as text, so the comments in the file survive
            appended = old_text.rstrip("\n") + "\n" + yaml.safe_dump(rows[-1:], allow_unicode=True, sort_keys=False)
            try:
                if yaml.safe_load(appended) == rows:
                    text = appended
            except yaml.YAMLError:  # e.g. a flow-style list: written out whole instead
                pass
    write_text_atomic(path, text)
    try:
        load_lexicon_file(path)
    except ConfigError:
        if old_text is None:
            path.unlink(missing_ok=True)
        else:
            write_text_atomic(path, old_text)
        raise
    return entry


def _csv_row(entry: LexiconEntry) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        [
            entry.match,
            entry.say or "",
            entry.phonemes or "",
            str(entry.regex).lower(),
            str(entry.case_sensitive).lower(),
        ]
    )
    return out.getvalue()


def _csv_text(entries: list[LexiconEntry]) -> str:
    return "match,say,phonemes,regex,case_sensitive\n" + "".join(_csv_row(e) for e in entries)


def set_spoken_text(job: Job, book: PreparedBook, chunk_id: str, spoken: list[str]) -> None:
    """Record what each word of a chunk is to be spoken as (one entry per written word)."""
    chunk = next((c for c in book.chunks if c.id == chunk_id), None)
    if chunk is None:
        raise ConfigError(f"chunk {chunk_id}: no such chunk")
    if len(spoken) != len(chunk.words):
        raise ConfigError(f"chunk {chunk_id}: {len(spoken)} spoken forms given for {len(chunk.words)} words")
    if any(not s.strip() for s in spoken):
        raise ConfigError(f"chunk {chunk_id}: every word needs a spoken form (use the written word to keep it)")
    path = overrides_path(job.path)
    changed = [(w, s) for w, s in zip(chunk.words, spoken, strict=True) if s.strip() != w.spoken]
    if not changed:
        return
    overrides = SpokenOverrides.load(path).updated(chunk.source, [w for w, _ in changed], [s for _, s in changed])
    overrides.save(path)
