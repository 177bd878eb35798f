"""The job file: what to read, how to speak it, how fast to call the API, what to write.

The key names are a public contract (users' job files and outside tools use them): add keys,
never rename. Every model forbids unknown keys so a typo fails loudly, and errors name the
file, the line and the dotted key path.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputConfig(_Strict):
    files: list[str] = Field(
        min_length=1, description="Manuscripts (.txt, .md, .epub); globs allowed; relative to the job file"
    )
    chapters: list[int | str] | None = Field(
        default=None,
        description="Chapters to read: 1-based indexes, or regular expressions matched against titles",
    )
    read_titles: bool = Field(default=True, description="Speak each chapter's title at its start")
    keep_front_matter: bool = Field(
        default=False, description="EPUB: keep cover, title page, table of contents, copyright"
    )
    keep_notes: bool = Field(default=False, description="EPUB: keep footnotes and endnotes")
    keep_gutenberg: bool = Field(
        default=False,
        description="Plain text: keep Project Gutenberg's header and licence (the lines outside its "
        "'*** START OF' / '*** END OF' markers); in an EPUB they are front matter (keep_front_matter)",
    )
    heading_only: Literal["merge", "keep", "skip"] = Field(
        default="merge",
        description=(
            "A chapter that is only a heading (a part's title page): merge it into the next chapter "
            "(its heading is spoken first), keep it as a chapter of its own, or skip it"
        ),
    )
    encoding: str = Field(default="utf-8", description="Text encoding of .txt/.md files")
    watch: bool = Field(
        default=False,
        description=(
            "Watch mode for scheduled runs: every file matching input.files is its own book, written to "
            "<output_dir>/<file stem>/; a run narrates only files it has not finished before (new or changed)"
        ),
    )


class EngineConfig(_Strict):
    kind: Literal["local", "asyncflow", "piper"] = "local"
    voice: str = Field(
        default="en",
        description=(
            "local: an espeak-ng voice; asyncflow: a voice id; piper: a bundled voice (en_US-joe-medium) "
            "or a path to a .onnx file with its .onnx.json beside it (relative to the job file)"
        ),
    )
    model: str = "async_flash_v1.0"
    base_url: str = "https://api.async.com"
    api_key_env: str = Field(default="ASYNCAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    language: str | None = "en"
    sample_rate: int = Field(default=24000, ge=8000, le=48000)
    speed: float | None = Field(default=None, ge=0.7, le=2.0, description="speed_control (asyncflow)")
    stability: int | None = Field(default=None, ge=0, le=100)
    container: Literal["wav", "raw"] = Field(default="wav", description="asyncflow output_format.container")
    transport: Literal["http", "websocket"] = Field(
        default="http",
        description=(
            "asyncflow: http (one request per chunk) or websocket (each chapter streamed through one "
            "context of one socket; word timings from the received audio, see report.json requests.timings_source)"
        ),
    )
    price_per_hour_usd: float = Field(default=0.50, ge=0)
    speaker: int | str | None = Field(
        default=None, description="piper: a multi-speaker voice's speaker, by id or by name"
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="piper: chunks spoken at once, one core each (default: every core this process may use)",
    )


class LimitsConfig(_Strict):
    requests_per_minute: int = Field(default=120, ge=1)
    max_concurrency: int = Field(default=5, ge=1)
    retries: int = Field(default=6, ge=0)
    timeout_s: float = Field(default=60, gt=0)
    max_cost_usd: float | None = Field(default=None, ge=0)
    shared: Literal["auto", "on", "off"] = Field(
        default="auto",
        description=(
            "Share requests_per_minute and max_concurrency with every process using the same API key, "
            "through Prefect global concurrency limits; auto: when a Prefect server is configured"
        ),
    )


class LexiconEntry(_Strict):
    match: str = Field(description="A whole word, or a regular expression when regex is true")
    say: str | None = Field(default=None, description="What to say instead")
    phonemes: str | None = Field(default=None, description="asyncflow: sent as <phonemes>...</phonemes>")
    regex: bool = False
    case_sensitive: bool = False

    @model_validator(mode="after")
    def _needs_replacement(self) -> LexiconEntry:
        if self.say is None and self.phonemes is None:
            raise ValueError("a lexicon entry needs 'say' or 'phonemes'")
        if self.regex:
            try:
                re.compile(self.match)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.match!r}: {exc}") from exc
        return self


class TextConfig(_Strict):
    max_chars: int = Field(default=400, ge=20, le=5000)
    normalize: bool = Field(default=True, description="Speak numbers, currency, abbreviations in words")
    lexicon: list[LexiconEntry] = Field(default_factory=list)
    lexicon_file: str | None = Field(default=None, description="YAML or CSV lexicon, relative to the job file")


LoudnessProfile = Literal["audiobook", "podcast", "ebu", "speech", "dataset", "none"]
AudioFormat = Literal["wav", "flac", "mp3", "opus", "m4b"]
DatasetFormat = Literal["ljspeech", "audiofolder", "nemo"]
SubtitleFormat = Literal["srt", "vtt"]


class AudioConfig(_Strict):
    formats: list[AudioFormat] = Field(default_factory=lambda: list[AudioFormat](["wav"]), min_length=1)
    loudness: LoudnessProfile = "audiobook"
    target_lufs: float | None = Field(default=None, ge=-70, le=0)
    true_peak_db: float | None = Field(default=None, ge=-20, le=0)
    rms_db: float | None = Field(default=None, ge=-40, le=0)
    mp3_bitrate_kbps: int = Field(default=192, ge=32, le=320)
    edge_silence_ms: int = Field(default=40, ge=0, le=1000, description="Silence kept at each end of a chunk")
    sentence_pause_ms: int = Field(default=350, ge=0, le=5000)
    paragraph_pause_ms: int = Field(default=800, ge=0, le=10000)
    scene_pause_ms: int = Field(default=1600, ge=0, le=10000)
    chapter_pause_ms: int = Field(default=2000, ge=0, le=20000, description="Between chapters in the whole-book file")
    heading_pause_ms: int = Field(default=1000, ge=0, le=10000, description="After a spoken chapter title")


class SubtitleStyle(_Strict):
    max_chars_per_line: int = Field(default=42, ge=10, le=200)
    max_lines: int = Field(default=2, ge=1, le=4)
    max_cps: float = Field(default=17.0, gt=0)
    min_duration_ms: int = Field(default=833, ge=0)
    max_duration_ms: int = Field(default=7000, ge=500)
    min_gap_ms: int = Field(default=83, ge=0)
    karaoke_vtt: bool = Field(default=False, description="Word-by-word inner timestamps in WebVTT")
    word_srt: bool = Field(default=False, description="Also write an SRT with one cue per word")


class DatasetSplit(_Strict):
    validation: float = Field(default=0.1, ge=0, lt=1, description="Fraction of chapters held out")
    seed: int = 0


class DatasetConfig(_Strict):
    formats: list[DatasetFormat] = Field(
        default_factory=lambda: list[DatasetFormat](["ljspeech", "audiofolder", "nemo"]), min_length=1
    )
    min_s: float = Field(default=1.0, gt=0)
    max_s: float = Field(default=15.0, gt=0)
    sample_rate: int = Field(default=22050, ge=8000, le=48000)
    padding_ms: int = Field(default=50, ge=0, le=500)
    split: DatasetSplit | None = None
    speaker: int = 0

    @model_validator(mode="after")
    def _range(self) -> DatasetConfig:
        if self.min_s >= self.max_s:
            raise ValueError("min_s must be less than max_s")
        return self


class OutputsConfig(_Strict):
    subtitles: list[SubtitleFormat] = Field(default_factory=lambda: list[SubtitleFormat](["srt", "vtt"]))
    alignment: bool = True
    subtitle_style: SubtitleStyle = Field(default_factory=SubtitleStyle)
    dataset: DatasetConfig | None = None
    media_overlays: bool = Field(default=False, description="EPUB 3 Media Overlays (SMIL) for read-along")
    chapter_files: bool = Field(default=True, description="Write one audio/subtitle file per chapter")
    book_file: bool = Field(default=True, description="Write the whole book as one file")


class ScheduleConfig(_Strict):
    cron: str | None = None
    interval_s: float | None = Field(default=None, gt=0)
    timezone: str = Field(default="UTC", description="IANA time zone the cron expression is read in")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as 'Europe'
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'Europe/Paris')") from None
        return value

    @model_validator(mode="after")
    def _one(self) -> ScheduleConfig:
        if (self.cron is None) == (self.interval_s is None):
            raise ValueError("give exactly one of 'cron' or 'interval_s'")
        return self


class MetadataConfig(_Strict):
    """What the files say about the book; every key overrides what the EPUB's OPF says."""

    title: str | None = None
    subtitle: str | None = None
    authors: list[str] | None = Field(default=None, description="Default: the EPUB's creators with the author role")
    narrator: str | None = Field(default=None, description="Default: the voice's name")
    publisher: str | None = None
    year: int | None = Field(default=None, ge=0, le=9999)
    language: str | None = None
    description: str | None = None
    series: str | None = None
    series_position: float | None = Field(default=None, ge=0)
    genre: str | None = Field(default=None, description="Default: the EPUB's first subject")
    isbn: str | None = Field(default=None, pattern=r"^[0-9Xx -]{10,17}$")
    copyright: str | None = Field(default=None, description="Default: the EPUB's dc:rights")
    cover: str | None = Field(
        default=None, description="JPEG or PNG, relative to the job file; default: the EPUB's cover image"
    )


StoreName = Literal["acx", "apple", "google", "audiobookshelf", "podcast"]


class DeliveryConfig(_Strict):
    store: StoreName = Field(description="The store whose rules the package is rendered and checked against")
    credits: bool = Field(default=True, description="Speak opening and closing credits made from the metadata")
    sample_minutes: float = Field(
        default=3.0, ge=0.5, le=5.0, description="Length of the retail sample cut from the first chapter"
    )


class JobConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)]
    title: str | None = None
    author: str | None = None
    input: InputConfig
    engine: EngineConfig = Field(default_factory=EngineConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    text: TextConfig = Field(default_factory=TextConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)
    output_dir: str | None = Field(default=None, description="Default out/<name>, relative to the job file")
    cache_dir: str = Field(default=".narrate-cache", description="Relative to the job file")
    schedule: ScheduleConfig | None = None
    metadata: MetadataConfig = Field(default_factory=MetadataConfig)
    delivery: DeliveryConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _delivery_settings(cls, data: Any) -> Any:
        # A store profile decides the audio it needs; the job's own settings must not contradict it.
        from pipeline.publish.stores import apply_store_settings

        return apply_store_settings(data)

    @field_validator("input")
    @classmethod
    def _files_nonempty(cls, value: InputConfig) -> InputConfig:
        if any(not f.strip() for f in value.files):
            raise ValueError("an input file name is empty")
        return value


class Job:
    """A validated job plus where it came from (paths resolve against the job file)."""

    def __init__(self, config: JobConfig, path: Path) -> None:
        self.path = path
        self.base = path.parent
        voice = config.engine.voice
        if config.engine.kind == "piper" and voice.endswith((".onnx", ".onnx.json")):
            # A voice file is named relative to the job file, like every other path in it.
            engine = config.engine.model_copy(update={"voice": str(self.resolve(voice))})
            config = config.model_copy(update={"engine": engine})
        self.config = config

    def resolve(self, relative: str) -> Path:
        p = Path(relative).expanduser()
        # normpath, not resolve(): tidy "configs/../out" without following symlinks.
        return Path(os.path.normpath(p if p.is_absolute() else self.base / p))

    @property
    def output_dir(self) -> Path:
        return self.resolve(self.config.output_dir or f"out/{self.config.name}")

    @property
    def cache_dir(self) -> Path:
        return self.resolve(self.config.cache_dir)

    def input_files(self) -> list[Path]:
        """Expand globs in order, without duplicates; a pattern matching nothing is an error."""
        found: list[Path] = []
        for i, pattern in enumerate(self.config.input.files):
            full = self.resolve(pattern)
            if glob.has_magic(pattern):
                matches = sorted(Path(m) for m in glob.glob(str(full), recursive=True))
                matches = [m for m in matches if m.is_file()]
                if not matches:
                    raise ConfigError(f"{self.path}: input.files[{i}]: no file matches {pattern!r}")
            else:
                if not full.exists():
                    raise ConfigError(f"{self.path}: input.files[{i}]: file not found: {full}")
                if not full.is_file():
                    raise ConfigError(f"{self.path}: input.files[{i}]: not a regular file: {full}")
                matches = [full]
            for m in matches:
                if m not in found:
                    found.append(m)
        return found


# --- YAML loading with line numbers -------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and sequence item."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    result: dict[str, Any] = {}
    lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    _LINES[id(result)] = (result, lines)
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> list[Any]:
    items = [loader.construct_object(child, deep=True) for child in node.value]
    _LINES[id(items)] = (items, {i: child.start_mark.line + 1 for i, child in enumerate(node.value)})
    return items


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)

# id(container) -> (container, {key: line}); the container is kept alive so ids stay unique.
_LINES: dict[int, tuple[Any, dict[Any, int]]] = {}


def _line_of(root: Any, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest key in ``loc`` that exists in the YAML."""
    node, line = root, None
    for part in loc:
        entry = _LINES.get(id(node))
        if entry is None:
            break
        _, lines = entry
        if part not in lines:
            break
        line = lines[part]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return line


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_job(text: str, path: Path) -> JobConfig:
    """Validate job YAML text; raise ConfigError with one line naming file, line and key."""
    _LINES.clear()
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a job file must be a YAML mapping with at least 'name' and 'input'")
    try:
        return JobConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # Union/literal members show up as extra loc parts; keep only real keys and indexes.
        loc = tuple(p for p in loc if isinstance(p, int) or p in _known_keys())
        line = _line_of(data, loc)
        where = f":{line}" if line else ""
        key = _format_loc(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            msg = f"unknown key '{key}'"
        elif err["type"] == "missing":
            msg = f"missing required key '{key}'"
        else:
            msg = f"{key}: {err['msg']}"
            if "input" in err and not isinstance(err["input"], dict | list):
                msg += f" (got {err['input']!r})"
        more = len(exc.errors()) - 1
        if more:
            msg += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(f"{path}{where}: {msg}") from None
    finally:
        _LINES.clear()


def _known_keys() -> set[str]:
    keys: set[str] = set()
    for model in (
        JobConfig,
        InputConfig,
        EngineConfig,
        LimitsConfig,
        TextConfig,
        LexiconEntry,
        AudioConfig,
        OutputsConfig,
        SubtitleStyle,
        DatasetConfig,
        DatasetSplit,
        ScheduleConfig,
        MetadataConfig,
        DeliveryConfig,
    ):
        keys.update(model.model_fields)
    return keys | _extra_keys_seen()


def _extra_keys_seen() -> set[str]:
    # Unknown keys must be reported by name too, so every key present in the YAML counts.
    return {k for _, lines in _LINES.values() for k in lines if isinstance(k, str)}


def load_job(path: str | Path) -> Job:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: job file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, not a job file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    return Job(parse_job(text, p), p.resolve())


def json_schema() -> dict[str, Any]:
    schema = JobConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "narrate job"
    return schema
