"""The piper engine against espeak-ng on corpus text: speed, memory, intelligibility, timings.

The opening of Alice's Adventures in Wonderland (/work/shared/corpus/alice.txt, read at run
time, never copied into the repo) goes through narrate's text stage, and every chunk is spoken
by each engine on every core: piper (one onnxruntime session, ``threads`` = cores, one core
per call) and espeak-ng (LocalPoolEngine, one process per core). Each engine runs in a
subprocess of its own, so its peak memory is its own. Then, on the same first chunks of both:

- intelligibility: PocketSphinx (its bundled US English acoustic and language models; it
  knows nothing of either engine) transcribes each chunk, scored as word error rate against
  the words narrate asked for;
- word timing accuracy (piper; espeak-ng for comparison): each word's start as the engine
  reported it against the PocketSphinx forced aligner's (bench/sphinx_align.py), in the chunk.

    NARRATE_CORPUS=/work/shared/corpus .venv/bin/python -m bench.bench_piper \
        [--words N] [--sample-chunks N] [--quick] [--results PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from bench.common import (
    MANUSCRIPTS_DIR,
    ROOT,
    cli_exit,
    machine_details,
    markdown_table,
    narrate_env,
    publish,
    run_measured,
    verdict,
)
from bench.manuscripts import book_chunks

# Beside the repo, unless NARRATE_CORPUS points elsewhere (a git worktree, say), as in the tests.
CORPUS = Path(os.environ.get("NARRATE_CORPUS") or ROOT.parent / "shared" / "corpus") / "alice.txt"
SAMPLE_RATE = 22050  # both engines' own rate: no resampling in the figures
MAX_CHARS = 400
# "peak RSS < 1 GB" read as 1000 MB (the stricter reading), MB = 2**20 bytes as run_measured counts.
GOALS = {"x_real_time": 15.0, "peak_rss_mb": 1000.0, "median_start_ms": 25.0}


HEADERS = [
    "engine", "words", "audio s", "wall s", "x real time", "words/s", "peak RSS MB (tree)",
    "PocketSphinx WER", "word start vs aligner: median / p90 / mean signed", "within 25 ms",
]  # fmt: skip


def excerpt(words: int) -> Path:
    """The first paragraphs of the corpus book holding about ``words`` words, as a .txt."""
    if not CORPUS.is_file():
        raise RuntimeError(f"corpus not found: {CORPUS}")
    kept: list[str] = []
    count = 0
    for paragraph in CORPUS.read_text(encoding="utf-8").split("\n\n"):
        kept.append(paragraph)
        count += len(paragraph.split())
        if count >= words:
            break
    MANUSCRIPTS_DIR.mkdir(parents=True, exist_ok=True)
    path = MANUSCRIPTS_DIR / f"alice-opening-{words}.txt"
    path.write_text("\n\n".join(kept) + "\n", encoding="utf-8")
    return path


# --- the worker: one engine in its own process ---------------------------------------------------


async def _speak(engine_kind: str, manuscript: Path, sample: int, keep: Path) -> dict[str, Any]:
    from pipeline.tts.local_pool import LocalPoolEngine, default_processes
    from pipeline.tts.piper import PiperEngine

    chunks = book_chunks(manuscript, MAX_CHARS)
    cores = default_processes()
    engine: Any
    if engine_kind == "piper":
        engine = PiperEngine(voice="en_US-joe-medium", sample_rate=SAMPLE_RATE, threads=cores)
    else:
        engine = LocalPoolEngine(voice="en-us", sample_rate=SAMPLE_RATE, processes=cores)
    await engine.check()  # model load / process start-up is not synthesis
    gate = asyncio.Semaphore(cores)
    results: list[Any] = [None] * len(chunks)

    async def one(i: int) -> None:
        async with gate:
            results[i] = await engine.synthesize(chunks[i].spoken_words, chunk_id=chunks[i].id, need_timings=True)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(len(chunks))))
    wall = time.perf_counter() - started
    await engine.aclose()
    words = sum(len(c.words) for c in chunks)
    audio_s = sum(len(r.samples) for r in results) / SAMPLE_RATE
    saved = {
        f"audio_{i}": results[i].samples for i in range(min(sample, len(chunks)))
    } | {f"starts_{i}": np.asarray([t.start_ms for t in results[i].timings]) for i in range(min(sample, len(chunks)))}
    np.savez(keep, **saved)
    return {"chunks": len(chunks), "words": words, "audio_s": audio_s, "wall_s": wall, "cores": cores}


def worker(argv: Sequence[str]) -> int:
    kind, manuscript, sample, keep = argv[0], Path(argv[1]), int(argv[2]), Path(argv[3])
    print(json.dumps(asyncio.run(_speak(kind, manuscript, sample, keep))))
    return 0


# --- the independent listener ---------------------------------------------------------------------


def _edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1]


def _recognizer() -> Any:
    from pocketsphinx import Decoder

    return Decoder(samprate=16000, loglevel="FATAL")


def listen(chunks: Sequence[Any], saved: Any, sample: int) -> dict[str, Any]:
    """Word error rate of PocketSphinx's transcript, and engine vs forced-aligner word starts."""
    from bench.sphinx_align import SphinxAligner, tokens

    decoder = _recognizer()
    aligner = SphinxAligner()
    errors = total = 0
    diffs: list[float] = []
    aligned = 0
    for i in range(sample):
        audio = saved[f"audio_{i}"].astype(np.float64) / 32768.0
        pcm16k = resample_poly(audio, 320, 441)  # 22,050 Hz -> 16 kHz
        ref = [t for w in chunks[i].spoken_words for t in tokens(w)]
        decoder.start_utt()
        decoder.process_raw(np.clip(np.rint(pcm16k * 32768), -32768, 32767).astype(np.int16).tobytes(), full_utt=True)
        decoder.end_utt()
        hyp = tokens(decoder.hyp().hypstr if decoder.hyp() is not None else "")
        errors += _edit_distance(ref, hyp)
        total += len(ref)
        heard = aligner.word_starts_ms(chunks[i].spoken_words, pcm16k)
        if heard is None:
            continue
        aligned += 1
        for ours, theirs in zip(saved[f"starts_{i}"], heard, strict=True):
            if theirs is not None:
                diffs.append(float(ours) - theirs)
    a = np.abs(np.asarray(diffs))
    return {
        "wer": errors / max(total, 1),
        "ref_words": total,
        "aligned_chunks": aligned,
        "timed_words": int(a.size),
        "median_start_ms": float(np.median(a)) if a.size else float("nan"),
        "p90_start_ms": float(np.percentile(a, 90)) if a.size else float("nan"),
        "mean_signed_ms": float(np.mean(diffs)) if diffs else float("nan"),
        "within_25ms": float(np.mean(a <= 25)) if a.size else float("nan"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--worker"]:
        return worker(args_list[1:])
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--words", type=int, default=3000, help="corpus words each engine speaks")
    parser.add_argument("--sample-chunks", type=int, default=12, help="chunks transcribed and aligned")
    parser.add_argument("--quick", action="store_true", help="a small run that checks the script works")
    parser.add_argument("--results", type=Path)
    args = parser.parse_args(args_list)
    words, sample = (300, 2) if args.quick else (args.words, args.sample_chunks)
    machine = machine_details()
    manuscript = excerpt(words)
    chunks = book_chunks(manuscript, MAX_CHARS)
    sample = min(sample, len(chunks))
    rows = []
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="narrate-bench-piper-") as tmp:
        for kind in ("piper", "local"):
            keep = Path(tmp) / f"{kind}.npz"
            cmd = [sys.executable, "-m", "bench.bench_piper", "--worker", kind, str(manuscript), str(sample), str(keep)]
            measured = run_measured(cmd, env=narrate_env(), cwd=ROOT).check(f"{kind} worker")
            speed = json.loads(measured.stdout.strip().splitlines()[-1])
            with np.load(keep) as saved:
                heard = listen(chunks, saved, sample)
            figures[kind] = {**speed, **heard, "peak_rss_mb": measured.peak_tree_rss_mb}
            f = figures[kind]
            rows.append(
                [
                    "piper en_US-joe-medium" if kind == "piper" else "espeak-ng en-us (local pool)",
                    f["words"],
                    f"{f['audio_s']:.1f}",
                    f"{f['wall_s']:.1f}",
                    f"{f['audio_s'] / f['wall_s']:.1f}x",
                    f"{f['words'] / f['wall_s']:.0f}",
                    f"{f['peak_rss_mb']:.0f}",
                    f"{100 * f['wer']:.1f}% of {f['ref_words']}",
                    f"{f['median_start_ms']:.0f} / {f['p90_start_ms']:.0f} / {f['mean_signed_ms']:+.0f} ms",
                    f"{100 * f['within_25ms']:.1f}% of {f['timed_words']}",
                ]
            )
    p, e = figures["piper"], figures["local"]
    x_real_time = p["audio_s"] / p["wall_s"]
    checks = [
        f"- piper >= {GOALS['x_real_time']:.0f}x real time on {p['cores']} cores: "
        f"{x_real_time:.1f}x, {verdict(x_real_time >= GOALS['x_real_time'])}",
        f"- piper word error rate below espeak-ng's: {100 * p['wer']:.1f}% vs {100 * e['wer']:.1f}%, "
        f"{verdict(p['wer'] < e['wer'])}",
        f"- piper peak RSS < 1 GB: {p['peak_rss_mb']:.0f} MB, {verdict(p['peak_rss_mb'] < GOALS['peak_rss_mb'])}",
        f"- piper median |word start - PocketSphinx| <= 25 ms: {p['median_start_ms']:.0f} ms, "
        f"{verdict(p['median_start_ms'] <= GOALS['median_start_ms'])}",
    ]
    body = "\n".join(
        [
            f"{manuscript.name} (the opening of {CORPUS.name}), {len(chunks)} chunks of <= {MAX_CHARS} characters, "
            f"{SAMPLE_RATE} Hz; listening on the first {sample} chunks of each engine.",
            "",
            markdown_table(HEADERS, rows),
            "",
            *checks,
        ]
    )
    publish(
        "bench_piper: piper vs espeak-ng on corpus text",
        module="bench.bench_piper",
        argv=argv,
        body=body,
        machine=machine,
        results=args.results,
        quick=args.quick,
    )
    return 0


if __name__ == "__main__":
    cli_exit(main)
