"""The `narrate` command. Every expected failure ends in one line and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, NarrateError

EXIT_FAILED = 1  # the job ran but did not finish (failed chunks, quota, key...)
EXIT_USAGE = 2  # the job file, a manuscript or the command line is wrong
EXIT_INTERNAL = 70


def _quiet_prefect() -> None:
    """Defaults that keep Prefect's embedded server fast and silent; the user's env wins."""
    defaults = {
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


class _DropFinalState(logging.Filter):
    # The flow's end state is reported by us in one line; Prefect's own copy would be a second.
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("Finished in state")


def _err(message: str) -> None:
    print(f"narrate: error: {message}", file=sys.stderr)


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}
    except EOFError:
        return False


# --- commands -----------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.config import load_job
    from pipeline.prepare import prepare_book
    from pipeline.publish.preflight import preflight

    job = load_job(args.job)
    book = prepare_book(job)
    report = preflight(job, book)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1, ensure_ascii=False))
        return 0
    print("\n".join(report.lines()))
    print(f"{args.job}: ok ({len(book.chapters)} chapters, {len(book.chunks)} chunks)")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from pipeline.config import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _estimate(job: Any, book: Any) -> Any:
    from pipeline.cache import ChunkCache
    from pipeline.estimate import estimate
    from pipeline.tts.factory import needs_timings

    identity_engine = _identity_only_engine(job.config)
    return estimate(
        job.config, book.chunks, identity_engine, ChunkCache(job.cache_dir), need_timings=needs_timings(job.config)
    )


def _identity_only_engine(cfg: Any) -> Any:
    """An engine built only to compute cache keys: no key needed, nothing contacted."""
    if cfg.engine.kind == "local":
        from pipeline.tts.local import LocalEngine

        return LocalEngine(
            voice=cfg.engine.voice,
            sample_rate=cfg.engine.sample_rate,
            speed=cfg.engine.speed,
            language=cfg.engine.language,
        )
    if cfg.engine.kind == "piper":
        from pipeline.tts.factory import make_engine

        return make_engine(cfg)
    from pipeline.tts.asyncflow import AsyncFlowEngine

    return AsyncFlowEngine(engine=cfg.engine, limits=cfg.limits, api_key="unused")


def cmd_estimate(args: argparse.Namespace) -> int:
    from pipeline.config import load_job
    from pipeline.prepare import prepare_book
    from pipeline.publish.preflight import preflight

    job = load_job(args.job)
    book = prepare_book(job)
    est = _estimate(job, book)
    report = preflight(job, book)
    if args.json:
        print(json.dumps({**est.to_dict(), "preflight": report.to_dict()}, indent=1, ensure_ascii=False))
    else:
        print("\n".join(report.lines() + est.lines()))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.config import load_job
    from pipeline.fsutil import check_writable_folder
    from pipeline.prepare import prepare_book
    from pipeline.tts.factory import make_engine

    job = load_job(args.job)
    if job.config.input.watch:
        return _run_watch(args, job)
    book = prepare_book(job)  # fail on a bad manuscript before anything starts
    if not book.chunks:
        raise ConfigError(f"{job.path}: nothing to read: the selected chapters contain no text")
    if not any(ch.isalnum() for chunk in book.chunks for word in chunk.spoken_words for ch in word):
        raise ConfigError(f"{job.path}: nothing to speak: the selected chapters hold only punctuation and symbols")
    if job.config.engine.kind == "asyncflow":
        from pipeline.tts.asyncflow import api_key_from_env

        api_key_from_env(job.config.engine)
    else:
        make_engine(job.config)  # checks the local voice name early
    # A folder that can never be written fails here, before the estimate or any spending.
    check_writable_folder(job.output_dir, "output_dir")
    check_writable_folder(job.cache_dir, "cache_dir")
    est = _estimate(job, book)
    if not args.quiet:
        from pipeline.publish.preflight import preflight

        print("\n".join(preflight(job, book).lines() + est.lines()), file=sys.stderr)
    limit = job.config.limits.max_cost_usd
    if limit is not None and est.cost_usd_remaining > limit and not args.yes:
        question = (
            f"This run may cost ${est.cost_usd_remaining:.2f}, above limits.max_cost_usd (${limit:.2f}). Continue?"
        )
        if not _confirm(question):
            _err(
                f"{job.path}: estimated cost ${est.cost_usd_remaining:.2f} exceeds limits.max_cost_usd "
                f"${limit:.2f}; pass --yes to run anyway"
            )
            return EXIT_FAILED
    started = time.time()
    out = job.output_dir / "preview" if args.preview else job.output_dir
    failure = _run_recorded(args, job) if _server_configured() else _run_unrecorded(args, job, book)
    if failure is not None:
        _err(failure)
        report_path = out / "report.json"
        if report_path.exists() and report_path.stat().st_mtime >= started:  # written by this run
            print(f"report: {out / 'report.json'}", file=sys.stderr)
        return EXIT_FAILED
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    _print_outputs(out, report)
    return 0


def _server_configured() -> bool:
    from pipeline.orchestrate.shared_limits import prefect_server_configured

    return prefect_server_configured()


def _run_recorded(args: argparse.Namespace, job: Any) -> str | None:
    """The run as a Prefect flow on the configured server (it shows in the UI with its stage
    tasks and summary artifact). Returns the one-line failure, or None."""
    _quiet_prefect()
    from pipeline.flows import narrate_flow

    logging.getLogger("prefect.flow_runs").addFilter(_DropFinalState())
    state: Any = asyncio.run(
        narrate_flow(  # type: ignore[arg-type]
            job_path=str(job.path), fresh=args.fresh, preview_seconds=args.preview, quiet=args.quiet, return_state=True
        )
    )
    return (state.message or "the job failed") if state.is_failed() else None


def _run_unrecorded(args: argparse.Namespace, job: Any, book: Any) -> str | None:
    """No Prefect server configured: the same stages without Prefect (a temporary embedded
    server would cost about ten seconds and keep nothing). Same outcome lines as the flow."""
    from pipeline.runner import RunOptions, Stages, reuse_prepared, run_job

    options = RunOptions(fresh=args.fresh, preview_seconds=args.preview, quiet=args.quiet)
    try:
        report = asyncio.run(run_job(job, options, Stages(prepare=reuse_prepared(book))))
    except NarrateError as exc:
        return str(exc)
    if report["chunks_failed"]:
        return f"{report['chunks_failed']} chunk(s) failed; see {report['report_file']}"
    return None


def _print_outputs(out: Path, report: dict[str, Any]) -> None:
    print(
        f"done: {report['chunks_total']} chunks ({report['chunks_synthesized']} synthesized, "
        f"{report['chunks_from_cache']} from cache), {report['audio_seconds'] / 60:.1f} min of audio "
        f"in {report['wall_seconds']:.1f} s"
    )
    print(f"outputs in {out}/")
    files = (
        [a["path"] for a in report["outputs"]["audio"]] + report["outputs"]["subtitles"] + report["outputs"]["other"]
    )
    for f in sorted(files, key=lambda p: (p.count("/"), p)):
        print(f"  {f}")
    print("  report.json")


def cmd_voices(args: argparse.Namespace) -> int:
    if args.engine == "local":
        from pipeline.tts.local import list_voices as local_voices

        voices = local_voices()
    elif args.engine == "piper":
        from pipeline.tts.piper_voice import list_voices as piper_voices

        voices = piper_voices()
    else:
        from pipeline.config import EngineConfig
        from pipeline.tts.asyncflow import api_key_from_env
        from pipeline.tts.voices import list_voices

        engine = EngineConfig(kind="asyncflow", base_url=args.base_url, api_key_env=args.api_key_env)
        filters = {k: v for k, v in {"language": args.language}.items() if v}
        voices = asyncio.run(list_voices(engine, api_key_from_env(engine), **filters))
    if args.json:
        print(json.dumps(voices, indent=1, ensure_ascii=False))
    else:
        for v in voices:
            ident = v.get("voice_id") or v.get("identifier") or v.get("name")
            print(f"{ident}\t{v.get('name', '')}\t{v.get('language') or v.get('languages', '')}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from pipeline.cache import ChunkCache
    from pipeline.config import load_job

    root = (
        Path(args.cache_dir) if args.cache_dir else load_job(args.job).cache_dir if args.job else Path(".narrate-cache")
    )
    cache = ChunkCache(root)
    if args.action == "stats":
        s = cache.stats()
        line = f"{root}: {s.entries} chunks, {s.bytes / 1e6:.1f} MB"
        if s.oldest is not None and s.newest is not None:
            now = time.time()
            line += f", last used {(now - s.newest) / 86400:.1f} to {(now - s.oldest) / 86400:.1f} days ago"
        print(line)
        return 0
    if args.older_than_days is None and args.max_mb is None:
        raise ConfigError("cache prune: give --older-than-days DAYS and/or --max-mb MB")
    for option, value in (("--older-than-days", args.older_than_days), ("--max-mb", args.max_mb)):
        if value is not None and value < 0:
            raise ConfigError(f"cache prune: {option} must not be negative (got {value})")
    max_bytes = int(args.max_mb * 1e6) if args.max_mb is not None else None
    removed = cache.prune(older_than_days=args.older_than_days, max_bytes=max_bytes)
    s = cache.stats()
    print(f"{root}: removed {removed} chunks; {s.entries} chunks, {s.bytes / 1e6:.1f} MB left")
    return 0


def _run_watch(args: argparse.Namespace, job: Any) -> int:
    """`narrate run` on a watch job: one pass over the folder, what each scheduled run does
    (every new manuscript is its own book; see docs/scheduling.md)."""
    _quiet_prefect()
    from pipeline.flows import narrate_flow

    logging.getLogger("prefect.flow_runs").addFilter(_DropFinalState())
    state: Any = asyncio.run(
        narrate_flow(  # type: ignore[arg-type]
            job_path=str(job.path), fresh=args.fresh, preview_seconds=args.preview, quiet=args.quiet, return_state=True
        )
    )
    if state.is_failed():
        _err(state.message or "the watch run failed")
        return EXIT_FAILED
    print(f"{job.config.name}: {state.message}; outputs in {job.output_dir}/")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    _quiet_prefect()
    from pipeline.orchestrate.serve import serve_jobs

    serve_jobs(args.jobs, limit=args.limit)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    _quiet_prefect()
    from pipeline.orchestrate.deploy import deploy_jobs

    for name in deploy_jobs(args.jobs, pool=args.pool, create_pool=not args.no_create_pool):
        print(f"deployed {name} to work pool {args.pool!r}")
    print(f"start workers with: prefect worker start --pool {args.pool} --type process")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from pipeline.review.server import serve

    return serve(args.job, port=args.port, open_browser=not args.no_browser)


def cmd_emulator(args: argparse.Namespace, rest: Sequence[str]) -> int:
    from pipeline.emulator.server import main as emulator_main

    return emulator_main(list(rest))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="narrate", description="Manuscripts to audiobooks, subtitles and speech datasets.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a job")
    run.add_argument("job")
    run.add_argument("--fresh", action="store_true", help="ignore the chunk cache (re-synthesize everything)")
    run.add_argument(
        "--preview",
        type=float,
        metavar="SECONDS",
        help="only the first SECONDS of each chapter, into <output_dir>/preview",
    )
    run.add_argument("--yes", action="store_true", help="don't ask before spending more than limits.max_cost_usd")
    run.add_argument("--quiet", action="store_true", help="no estimate or progress output")

    val = sub.add_parser("validate", help="check a job and its manuscripts without running it")
    val.add_argument("job")
    val.add_argument("--json", action="store_true", help="the chapter table and warnings as JSON")
    est = sub.add_parser("estimate", help="characters, chunks, requests, duration and cost of a job")
    est.add_argument("job")
    est.add_argument("--json", action="store_true")
    sub.add_parser("schema", help="print the job file's JSON Schema")

    voices = sub.add_parser("voices", help="list voices")
    voices.add_argument("--engine", choices=["local", "asyncflow", "piper"], default="asyncflow")
    voices.add_argument("--base-url", default="https://api.async.com")
    voices.add_argument("--api-key-env", default="ASYNCAI_API_KEY")
    voices.add_argument("--language")
    voices.add_argument("--json", action="store_true")

    cache = sub.add_parser("cache", help="inspect or prune the chunk cache")
    cache.add_argument("action", choices=["stats", "prune"])
    cache.add_argument("job", nargs="?", help="a job file (its cache_dir is used)")
    cache.add_argument("--cache-dir")
    cache.add_argument("--older-than-days", type=float)
    cache.add_argument("--max-mb", type=float)

    serve = sub.add_parser("serve", help="run jobs on their schedules (needs a Prefect server)")
    serve.add_argument("jobs", nargs="+", metavar="JOB", help="job files; each becomes deployment narrate/<name>")
    serve.add_argument("--limit", type=int, help="at most this many runs at once")
    deploy = sub.add_parser("deploy", help="register jobs on a Prefect work pool for workers to run")
    deploy.add_argument("jobs", nargs="+", metavar="JOB")
    deploy.add_argument("--pool", required=True, help="work pool name (a process pool)")
    deploy.add_argument("--no-create-pool", action="store_true", help="fail if the pool does not exist")

    review = sub.add_parser("review", help="a local page to hear, check and fix a job's outputs")
    review.add_argument("job")
    review.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)")
    review.add_argument("--no-browser", action="store_true", help="print the URL, don't open a browser")

    sub.add_parser(
        "emulator", help="serve the AsyncFlow API on loopback (see `narrate emulator --help`)", add_help=False
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "emulator":
        args, rest = parser.parse_known_args(argv[:1])
        rest = argv[1:]
    else:
        args = parser.parse_args(argv)
        rest = []
    commands = {
        "run": cmd_run,
        "validate": cmd_validate,
        "estimate": cmd_estimate,
        "schema": cmd_schema,
        "voices": cmd_voices,
        "cache": cmd_cache,
        "serve": cmd_serve,
        "deploy": cmd_deploy,
        "review": cmd_review,
    }
    try:
        if args.command == "emulator":
            return cmd_emulator(args, rest)
        return commands[args.command](args)
    except ConfigError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except NarrateError as exc:
        _err(str(exc))
        from pipeline.errors import InputError

        return EXIT_USAGE if isinstance(exc, InputError) else EXIT_FAILED
    except KeyboardInterrupt:
        _err("interrupted; finished chunks are kept in the cache, rerun to resume")
        return 130
    except Exception as exc:  # a bug, not a user error: still one line unless asked for more
        if os.environ.get("NARRATE_DEBUG"):
            raise
        _err(f"internal error: {type(exc).__name__}: {exc} (set NARRATE_DEBUG=1 for a traceback)")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
