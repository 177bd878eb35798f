"""Mastering a long book: narrate's streaming two-pass master against ffmpeg and pydub.

Generates a book of real espeak-ng speech (one paragraph repeated with a varying level and
pauses, 24 kHz mono float32, as the assembly stage writes it), then does the same job three ways,
each in its own process so its peak RSS is its own:

- narrate: ``master_file`` with the ``podcast`` profile (-16 LUFS, -1 dBTP) to WAV and MP3
  (192 kbps CBR), including its re-measurement of both encoded files;
- ffmpeg: two-pass ``loudnorm`` (I=-16, TP=-1, LRA=11, linear) with the imageio-ffmpeg binary,
  the second pass writing WAV and MP3 (libmp3lame, 192 kbps) from one filter graph;
- pydub: the whole file as one ``AudioSegment``, a gain to -16 dBFS RMS, then down again if
  a sample would pass -1 dBFS, exported to WAV and MP3 (pydub cannot read float WAV without
  ffprobe, which the wheel lacks, so it gets a 16-bit copy of the same input, made untimed).

Every approach's WAV and MP3 are then measured with narrate's meters (integrated loudness and
true peak), so speed and memory sit beside whether the result hit the target.

    .venv/bin/python -m bench.bench_mastering [--hours 0.5] [--skip pydub] [--no-append]

Prints the figures and appends them to bench/RESULTS.md with the date and the machine. The
default half hour keeps the run near four minutes on 2 cores; the issue's 10-hour case is
``--hours 10`` (about an hour: ffmpeg's two passes alone take most of it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.common import (
    RESULTS_PATH,
    WORK_DIR,
    append_results,
    cli_exit,
    machine_details,
    markdown_table,
    reproduce_command,
)

WORK = WORK_DIR / "mastering"
RATE = 24000
TARGET_LUFS, CEILING_DB, MP3_KBPS = -16.0, -1.0, 192
PARAGRAPH = (
    "The keeper climbed the stairs at dusk and lit the great lamp. Far below, the sea turned "
    "over the stones with a sound like slow breathing. He wrote the hour in the ledger, the "
    "wind, the ships that passed, and the names of those who did not come home. In the "
    "morning he would sleep, and the gulls would keep the watch he could not."
)


@dataclass
class Outcome:
    name: str
    wall_s: float
    peak_rss_mb: float
    files: dict[str, Path]


def make_book(hours: float) -> Path:
    """Real speech, repeated to ``hours``, its level drifting by a few dB per paragraph."""
    path = WORK / f"book-{hours:g}h.wav"
    frames = int(hours * 3600 * RATE)
    if path.exists() and sf.info(str(path)).frames == frames:
        return path
    from pipeline.tts.local import speak

    unit = speak(PARAGRAPH.split(), voice="en", sample_rate=RATE).samples.astype(np.float32) / 32768
    rng = np.random.default_rng(0)
    WORK.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # renamed when complete: runs may overlap
    container = "RF64" if frames * 4 > 2**32 - 2**20 else "WAV"
    with sf.SoundFile(str(temp), "w", RATE, 1, "FLOAT", format=container) as f:
        written = 0
        while written < frames:
            piece = unit * np.float32(10 ** (rng.uniform(-3.0, 1.0) / 20))
            pause = np.zeros(int(rng.uniform(0.4, 1.6) * RATE), dtype=np.float32)
            chunk = np.concatenate([piece, pause])[: frames - written]
            f.write(chunk)
            written += len(chunk)
    os.replace(temp, path)
    return path


def pcm16_copy(src: Path) -> Path:
    dst = src.with_name(src.stem + "-pcm16.wav")
    if dst.exists() and sf.info(str(dst)).frames == sf.info(str(src)).frames:
        return dst
    temp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    with sf.SoundFile(str(src)) as fin, sf.SoundFile(str(temp), "w", RATE, 1, "PCM_16", format=fin.format) as fout:
        for block in fin.blocks(blocksize=1 << 18, dtype="float32"):
            fout.write(block)
    os.replace(temp, dst)
    return dst


def run_measured(command: list[str]) -> tuple[float, float, str]:
    """Wall time, peak RSS (MB, the process and everything it waited for) and stderr."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({process.returncode}): {stderr.strip()[-400:]}")
    return wall, usage.ru_maxrss / 1024, stderr


def ours(book: Path, out: Path) -> Outcome:
    command = [sys.executable, "-m", "bench.bench_mastering", "--child", "narrate", str(book), str(out)]
    wall, rss, _ = run_measured(command)
    return Outcome("narrate (streaming two-pass)", wall, rss, {f: out / f"book.{f}" for f in ("wav", "mp3")})


def ffmpeg(book: Path, out: Path) -> Outcome:
    from pipeline.audio.encode import ffmpeg_path

    exe = ffmpeg_path()
    if exe is None:
        raise RuntimeError("ffmpeg is needed for the comparison: pip install 'narrate[m4b]'")
    target = f"I={TARGET_LUFS:g}:TP={CEILING_DB:g}:LRA=11"
    first = [exe, "-hide_banner", "-nostats", "-i", str(book), "-af", f"loudnorm={target}:print_format=json"]
    wall1, rss1, log = run_measured([*first, "-f", "null", "-"])
    found = json.loads(log[log.rindex("{") : log.rindex("}") + 1])
    measured = (
        f"measured_I={found['input_i']}:measured_TP={found['input_tp']}:measured_LRA={found['input_lra']}"
        f":measured_thresh={found['input_thresh']}:offset={found['target_offset']}:linear=true"
    )
    graph = f"[0:a]loudnorm={target}:{measured},asplit=2[w][m]"
    wav, mp3 = out / "book.wav", out / "book.mp3"
    second = [
        exe, "-hide_banner", "-nostats", "-y", "-i", str(book), "-filter_complex", graph,
        "-map", "[w]", "-ar", str(RATE), "-c:a", "pcm_s16le", str(wav),
        "-map", "[m]", "-ar", "44100", "-c:a", "libmp3lame", "-b:a", f"{MP3_KBPS}k", str(mp3),
    ]  # fmt: skip
    wall2, rss2, _ = run_measured(second)
    return Outcome("ffmpeg loudnorm (two-pass)", wall1 + wall2, max(rss1, rss2), {"wav": wav, "mp3": mp3})


def pydub(book: Path, out: Path) -> Outcome:
    command = [sys.executable, "-m", "bench.bench_mastering", "--child", "pydub", str(pcm16_copy(book)), str(out)]
    wall, rss, _ = run_measured(command)
    return Outcome("pydub (whole file)", wall, rss, {f: out / f"book.{f}" for f in ("wav", "mp3")})


def child_narrate(book: Path, out: Path) -> None:
    from pipeline.audio.master import PROFILES, Tags, master_file

    master_file(book, out / "book", target=PROFILES["podcast"], formats=["wav", "mp3"], tags=Tags(title="Bench"))


def child_pydub(book: Path, out: Path) -> None:
    from pydub import AudioSegment

    from pipeline.audio.encode import ffmpeg_path

    AudioSegment.converter = ffmpeg_path()
    segment = AudioSegment.from_wav(str(book))
    segment = segment.apply_gain(TARGET_LUFS - segment.dBFS)
    if segment.max_dBFS > CEILING_DB:
        segment = segment.apply_gain(CEILING_DB - segment.max_dBFS)
    segment.export(str(out / "book.wav"), format="wav")
    segment.export(str(out / "book.mp3"), format="mp3", bitrate=f"{MP3_KBPS}k", parameters=["-ar", "44100"])


def measure(path: Path) -> tuple[float, float]:
    from pipeline.audio.encode import decode
    from pipeline.audio.loudness import Analyzer

    rate, blocks = decode(path, path.suffix[1:])
    analyzer = Analyzer(rate)
    for block in blocks:
        analyzer.add(block)
    result = analyzer.result()
    return result.integrated_lufs, result.true_peak_db


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hours", type=float, default=0.5, help="length of the generated book (default 0.5)")
    parser.add_argument("--skip", default="", help="comma-separated: ffmpeg, pydub")
    parser.add_argument("--keep", action="store_true", help="keep the outputs in bench/work/mastering")
    parser.add_argument("--no-append", action="store_true", help="print only; leave the results file alone")
    parser.add_argument(
        "--results", type=Path, default=RESULTS_PATH, help="file to append to (default bench/RESULTS.md)"
    )
    parser.add_argument("--child", nargs=3, metavar=("APPROACH", "INPUT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        approach, book, out = args.child
        {"narrate": child_narrate, "pydub": child_pydub}[approach](Path(book), Path(out))
        return 0

    machine = machine_details()  # before the work: its load average is what we started under
    started = time.perf_counter()
    book = make_book(args.hours)
    audio_s = sf.info(str(book)).frames / RATE
    print(f"input: {book} ({audio_s / 3600:.2f} h of speech, ready in {time.perf_counter() - started:.0f} s)")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    outcomes: list[Outcome] = []
    folders: list[Path] = []
    try:
        for name, approach in (("narrate", ours), ("ffmpeg", ffmpeg), ("pydub", pydub)):
            if name in skip:
                continue
            out = WORK / f"out-{name}-{os.getpid()}"  # several runs may share bench/work
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            folders.append(out)
            outcome = approach(book, out)
            speed = audio_s / outcome.wall_s
            print(
                f"{outcome.name}: {outcome.wall_s:.1f} s, {speed:.0f}x real time, {outcome.peak_rss_mb:.0f} MB peak RSS"
            )
            outcomes.append(outcome)
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {(o.name, fmt): pool.submit(measure, path) for o in outcomes for fmt, path in o.files.items()}
            measured = {key: future.result() for key, future in futures.items()}
    finally:
        if not args.keep:
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)
    rows = []
    for o in outcomes:
        (wav_i, wav_tp), (mp3_i, mp3_tp) = measured[(o.name, "wav")], measured[(o.name, "mp3")]
        rows.append(
            [
                o.name,
                f"{o.wall_s:.1f}",
                f"{audio_s / o.wall_s:.0f}x",
                f"{o.peak_rss_mb:.0f}",
                f"{wav_i:.2f} / {wav_tp:.2f}",
                f"{mp3_i:.2f} / {mp3_tp:.2f}",
            ]
        )
    table = markdown_table(
        ["approach", "wall (s)", "speed (x real time)", "peak RSS (MB)", "WAV LUFS / dBTP", "MP3 LUFS / dBTP"], rows
    )
    body = "\n".join(
        [
            f"Target: {TARGET_LUFS:g} LUFS integrated, {CEILING_DB:g} dBTP; MP3 {MP3_KBPS} kbps CBR at 44.1 kHz.",
            "Input: real espeak-ng speech at 24 kHz mono (float32 WAV), one paragraph repeated with its level",
            "drifting -3..+1 dB and pauses between. Each approach runs in its own process; peak RSS is that",
            "process with everything it waited for. Level columns: narrate's meters on each written file.",
            "",
            table,
        ]
    )
    title = f"Mastering a {audio_s / 3600:g}-hour book to WAV + MP3"
    print(f"\n## {title}\n\n{body}")
    if not args.no_append:
        command = reproduce_command("bench.bench_mastering", argv if argv is not None else sys.argv[1:])
        append_results(title, command=command, body=body, machine=machine, results=args.results)
    return 0


if __name__ == "__main__":
    cli_exit(main)
