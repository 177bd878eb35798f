"""The pronunciation lexicon: whole words and regular expressions rewrite spoken forms only;
lexicon files report problems by file and line; a change re-synthesizes only what it
changes."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cache import cache_key
from pipeline.config import LexiconEntry, TextConfig
from pipeline.errors import ConfigError
from pipeline.models import Chapter, Paragraph, Sentence, Word
from pipeline.text.chunking import chunk_document
from pipeline.text.epub import read_epub
from pipeline.text.lexicon import Lexicon
from pipeline.text.normalize import extract_breaks, normalize_words

DATA = Path(__file__).parent.parent / "data"
SAMPLE = DATA / "manuscripts" / "the-lamplighter-of-harrow-quay.epub"


def words_of(text: str) -> tuple[Word, ...]:
    return tuple(Word(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text))


def entry(match: str, say: str | None = None, **kw: object) -> LexiconEntry:
    return LexiconEntry.model_validate({"match": match, "say": say, **kw})


def said(lexicon: Lexicon, text: str, *, normalize: bool = False) -> list[str]:
    words = words_of(text)
    if normalize:
        words = normalize_words(words, language="en")
    return [w.spoken for w in lexicon.apply(words)]


def test_whole_words_ignore_case_and_keep_punctuation() -> None:
    lex = Lexicon((entry("Hermione", "her-MY-oh-nee"),))
    assert said(lex, "“Hermione,” said HERMIONE's friend hermiones.") == [
        "“her-MY-oh-nee,”",
        "said",
        "her-MY-oh-nee's",
        "friend",
        "hermiones.",
    ]


def test_case_sensitive_entries_match_only_that_spelling() -> None:
    lex = Lexicon((entry("US", "United States", case_sensitive=True),))
    assert said(lex, "the US and us") == ["the", "United States", "and", "us"]


def test_an_entry_can_include_the_full_stop_and_overrides_normalization() -> None:
    lex = Lexicon((entry("Dr.", "Drive"), entry("1984", "nineteen eighty-four")))
    assert said(lex, "Dr. Fenn read 1984.", normalize=True) == [
        "Drive",
        "Fenn",
        "read",
        "nineteen eighty-four.",
    ]
    # without the lexicon, normalization had chosen otherwise
    assert said(Lexicon(), "Dr. Fenn read 1984.", normalize=True)[::3] == [
        "Doctor",
        "one thousand nine hundred and eighty-four.",
    ]


def test_phonemes_become_markup_and_win_over_say() -> None:
    lex = Lexicon((entry("Quill", "Kwill", phonemes="kwɪl"),))
    assert said(lex, "the Mary Quill.") == ["the", "Mary", "<phonemes>kwɪl</phonemes>."]


def test_regular_expressions_work_on_the_spoken_form_with_group_references() -> None:
    lex = Lexicon((entry(r"(\d+)mg", r"\1 milligrams", regex=True),))
    assert said(lex, "take 50mg, twice") == ["take", "50 milligrams,", "twice"]
    # applied after normalization: it sees "Doctor", not "Dr."
    lex = Lexicon((entry(r"^Doctor$", "Doc", regex=True),))
    assert said(lex, "Dr. Fenn", normalize=True) == ["Doc", "Fenn"]


def test_regular_expressions_never_rewrite_markup() -> None:
    lex = Lexicon((entry("Quill", phonemes="kwɪl"), entry("w", "W", regex=True)))
    assert said(lex, "Quill wow") == ["<phonemes>kwɪl</phonemes>", "WoW"]
    words = extract_breaks(words_of("wait <break time='1s'/> now"))
    assert [w.spoken for w in Lexicon((entry("i", "I", regex=True),)).apply(words)] == [
        "waIt <break time='1s'/>",
        "now",
    ]


def test_whole_word_entries_keep_pause_markup() -> None:
    words = extract_breaks(words_of("Quill <break time='1s'/> again"))
    out = Lexicon((entry("Quill", "Kwill"),)).apply(words)
    assert [w.spoken for w in out] == ["Kwill <break time='1s'/>", "again"]


def test_the_first_matching_entry_wins() -> None:
    lex = Lexicon((entry("Oona", "OO-na"), entry("oona", "WRONG")))
    assert said(lex, "Oona") == ["OO-na"]


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=60))
def test_only_spoken_forms_change(text: str) -> None:
    lex = Lexicon(
        (entry("the", "thee"), entry(r"[aeiou]", "*", regex=True), entry("a", phonemes="ə"))
    )
    before = words_of(text)
    after = lex.apply(before)
    assert [(w.text, w.start, w.end) for w in after] == [(w.text, w.start, w.end) for w in before]


def test_version_is_stable_order_sensitive_and_empty_for_no_entries() -> None:
    a, b = entry("Oona", "OO-na"), entry("Quill", "Kwill")
    assert Lexicon().version == ""
    assert Lexicon((a, b)).version == Lexicon((entry("Oona", "OO-na"), b)).version
    assert Lexicon((a, b)).version != Lexicon((b, a)).version
    assert Lexicon((a,)).version != Lexicon((a.model_copy(update={"say": "oo-NA"}),)).version


# --- files --------------------------------------------------------------------------------


def test_yaml_and_csv_files_load_after_the_job_entries(tmp_path: Path) -> None:
    (tmp_path / "names.yaml").write_text(
        "- match: Oona\n  say: OO-na\n- match: '(\\d+)mg'\n  say: '\\1 milligrams'\n  regex: true\n"
    )
    (tmp_path / "names.csv").write_text(
        "match,say,phonemes,regex,case_sensitive\nQuill,,kwɪl,,\nUS,United States,,no,yes\n"
    )
    cfg = TextConfig(lexicon=[entry("Oona", "Oh-na")], lexicon_file="names.yaml")
    lex = Lexicon.from_config(cfg, base_dir=tmp_path)
    assert said(lex, "Oona 5mg") == ["Oh-na", "5 milligrams"]  # the job's entry comes first
    lex = Lexicon.from_config(TextConfig(lexicon_file="names.csv"), base_dir=tmp_path)
    assert said(lex, "Quill US us") == ["<phonemes>kwɪl</phonemes>", "United States", "us"]
    assert len(lex.entries) == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("lex.yaml", "- match: Oona\n  say: OO-na\n- match: Quill\n", "lex.yaml:3: a lexicon"),
        ("lex.yaml", "- match: Oona\n  say: x\n  colour: red\n", "lex.yaml:1: unknown key"),
        ("lex.yaml", "- match: '(oops'\n  say: x\n  regex: true\n", "lex.yaml:1: invalid regular"),
        ("lex.yaml", "- match: a\n  say: x\n- match: A\n  say: y\n", "lex.yaml:3: duplicate"),
        ("lex.yaml", "- match: 'x*'\n  say: y\n  regex: true\n", "lex.yaml:1: the regular"),
        ("lex.yaml", "match: Oona\n", "lex.yaml:1: a YAML lexicon must be a list"),
        ("lex.yaml", "- match: [unclosed\n", "lex.yaml:2: invalid YAML"),
        ("lex.yaml", "- just a string\n", "lex.yaml:1: an entry must be a mapping"),
        ("lex.csv", "match,say\nOona,OO-na\nQuill\n", "lex.csv:3: a lexicon entry needs"),
        ("lex.csv", "match,say,regex\nOona,OO-na,perhaps\n", "lex.csv:2: regex: expected true"),
        ("lex.csv", "word,say\nOona,OO-na\n", "lex.csv:1: the CSV header"),
        ("lex.csv", "match,say\nOona,OO-na,extra\n", "lex.csv:2: 3 cells"),
        ("lex.txt", "Oona OO-na\n", "lex.txt: a lexicon file must be"),
    ],
)
def test_lexicon_file_errors_name_the_file_and_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(ConfigError) as caught:
        Lexicon.from_config(TextConfig(lexicon_file=name), base_dir=tmp_path)
    assert str(caught.value).startswith(str(tmp_path / name))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_lexicon_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: lexicon file not found"):
        Lexicon.from_config(TextConfig(lexicon_file="nope.yaml"), base_dir=tmp_path)


def test_a_job_entry_matching_empty_text_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"text\.lexicon\[1\]: the regular expression"):
        Lexicon.from_config(
            TextConfig(lexicon=[entry("a", "b"), entry(".?", "b", regex=True)]), base_dir=Path()
        )


# --- what a lexicon change costs ----------------------------------------------------------


def _spoken_book(lexicon: Lexicon) -> list[Chapter]:
    """The sample book as the text stage prepares it: pauses, normalization, lexicon."""

    def speak(sentence: Sentence, heading: bool) -> Sentence:
        words = normalize_words(extract_breaks(sentence.words), language="en", in_heading=heading)
        return Sentence(lexicon.apply(words))

    doc = read_epub(SAMPLE, display_name="sample.epub")
    return [
        replace(
            chapter,
            heading=speak(chapter.heading, True) if chapter.heading else None,
            paragraphs=tuple(
                Paragraph(tuple(speak(s, False) for s in p.sentences), p.scene_break_before)
                for p in chapter.paragraphs
            ),
        )
        for chapter in doc.chapters
    ]


def test_a_lexicon_change_invalidates_exactly_the_chunks_it_changes() -> None:
    identity = {"engine": "local", "voice": "en"}
    old = chunk_document(_spoken_book(Lexicon()), max_chars=200)
    new = chunk_document(_spoken_book(Lexicon((entry("Quill", "Kwill"),))), max_chars=200)
    old_keys = {cache_key(identity, c.spoken_words) for c in old}
    new_keys = {cache_key(identity, c.spoken_words) for c in new}

    def mentions(chunk_words: tuple[Word, ...]) -> bool:
        return any("Quill" in w.text for w in chunk_words)

    changed_new = {cache_key(identity, c.spoken_words) for c in new if mentions(c.words)}
    changed_old = {cache_key(identity, c.spoken_words) for c in old if mentions(c.words)}
    assert changed_new and len(changed_new) < len(new) // 4
    assert new_keys - old_keys == changed_new  # only chunks saying "Kwill" are synthesized
    assert old_keys - new_keys == changed_old  # and only their old versions go stale
    assert [c.text for c in old] == [c.text for c in new]  # the written text is the same
