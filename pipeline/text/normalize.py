"""What each written word is spoken as: numbers, money, times, abbreviations, pauses.

Normalization only ever sets ``Word.spoken``; ``Word.text`` stays as written, so subtitles
and alignment show the book's own text while the engine hears "five dollars" for "$5".
Punctuation around a word stays around its spoken form ("$5," -> "five dollars,") because
engines use it for phrasing. Numbers are spoken in the manuscript's language through
num2words (English when num2words lacks the language); the abbreviation, ordinal-suffix
and a.m./p.m. rules are English and apply only to English, unlabelled, or otherwise
English-fallback text.

Run order for a sentence: ``extract_breaks`` (pause markup becomes part of a neighbour's
spoken form), then ``normalize_words``, then the lexicon (so a user's entry can override
what normalization chose).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

from pipeline.models import Word
from pipeline.text import spoken_numbers as sn
from pipeline.text.abbreviations import HEADING_LABELS, expand_abbreviation, is_am_pm, roman_value
from pipeline.text.spoken_numbers import word_set

_LEAD = re.compile(r"^[\"'“‘‚„«‹(\[{¿¡*_]+")
_TRAIL = re.compile(r"[\"'”’»›)\]}.,;:!?…*_]+$")
_BREAK = re.compile(r"<break\s+time\s*=\s*(['\"])\s*([^'\"<>]*?)\s*\1\s*/?\s*>", re.IGNORECASE)
_ANY_BREAK = re.compile(r"<break\b[^>]*/>")
_EDGE_BREAKS = re.compile(r"((?:<break\b[^>]*/>\s*)*)(.*?)((?:\s*<break\b[^>]*/>)*)", re.DOTALL)

_SCALES = frozenset({"thousand", "million", "billion", "trillion"})
_ERAS = frozenset({"ad", "a.d", "bc", "b.c", "bce", "b.c.e", "ce", "c.e"})
# Words after which a four-digit number is a date: "in 1987", "the winter of 1816".
_YEAR_CUES = word_set(
    "in since of by until till from year circa c ca before after during the early late mid "
    "spring summer autumn fall winter"
)
_MONTHS = word_set(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
)
# Words ending in "s" that are not plural nouns; a plural noun after a number means a count
# ("in 1500 ships"), not a year.
_NOT_PLURAL = word_set("was is has as this his its us thus plus")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?:([ap])\.?m\.?)?", re.IGNORECASE)
_HOUR_AM_PM = re.compile(r"(\d{1,2})([ap])\.?m\.?", re.IGNORECASE)
_DECADE = re.compile(r"(\d{1,3}0)s")
_TIME_OR_HOUR = re.compile(r"\d{1,2}(?::\d{2})?")


class _Numbers:
    """Number patterns for one way of writing decimals ("3.5" or "3,5")."""

    def __init__(self, decimal_mark: str) -> None:
        self.decimal_mark = decimal_mark
        self.group = "," if decimal_mark == "." else "."
        g, d = re.escape(self.group), re.escape(decimal_mark)
        num = rf"\d{{1,3}}(?:{g}\d{{3}})+(?:{d}\d+)?|\d+(?:{d}\d+)?"
        self.number = re.compile(rf"([-−+]?)({num})")
        self.money_before = re.compile(rf"([-−]?)([$£€¥₹])({num})")
        self.money_after = re.compile(rf"([-−]?)({num})([$£€¥₹])")
        self.percent = re.compile(rf"([-−+]?)({num})%")
        self.ordinal = re.compile(rf"(\d{{1,3}}(?:{g}\d{{3}})+|\d+)(st|nd|rd|th)", re.IGNORECASE)
        self.range = re.compile(rf"({num})[-–]({num})")
        self.compound = re.compile(rf"({num})-([^\W\d].*)")

    def canonical(self, sign: str, digits: str) -> str:
        """ "1,250.5" -> "1250.5" (for "." decimals), with "-" for any minus sign."""
        plain = digits.replace(self.group, "").replace(self.decimal_mark, ".")
        return ("-" if sign in {"-", "−"} else "") + plain


_DOT_NUMBERS = _Numbers(".")
_COMMA_NUMBERS = _Numbers(",")


def split_punctuation(token: str) -> tuple[str, str, str]:
    """(leading punctuation, core, trailing punctuation) of a written token."""
    lead_match = _LEAD.match(token)
    lead = lead_match.group() if lead_match else ""
    rest = token[len(lead) :]
    trail_match = _TRAIL.search(rest)
    trail = trail_match.group() if trail_match else ""
    return lead, rest[: len(rest) - len(trail)], trail


def extract_breaks(words: Sequence[Word]) -> tuple[Word, ...]:
    """Turn ``<break time='...'/>`` written in the text into part of a spoken form.

    The markup spans several whitespace tokens, so it would otherwise reach subtitles as
    words. Its tokens are removed from the written words (a word sharing a token with the
    markup, as in ``end.<break``, keeps its own characters and offsets); the canonical
    markup is appended to the spoken form of the word before it, or put before the first
    word when the pause opens the sequence. A sequence of nothing but pauses comes back
    empty. Call it before ``normalize_words``, which keeps pause markup it finds.
    """
    joined, starts = "", []
    for w in words:
        starts.append(len(joined))
        joined += w.text + " "
    matches = list(_BREAK.finditer(joined))
    if not matches:
        return tuple(words)
    markup_at = {m.start(): "<break time='" + "".join(m.group(2).split()) + "'/>" for m in matches}
    hidden = bytearray(len(joined))
    for m in matches:
        hidden[m.start() : m.end()] = b"\x01" * (m.end() - m.start())

    # Walk each word's characters: pieces outside the markup and pause markers, in order.
    events: list[Word | str] = []
    for w, base in zip(words, starts, strict=True):
        piece_start: int | None = None
        for offset in range(len(w.text) + 1):
            pos = base + offset
            ends_here = offset == len(w.text) or hidden[pos]
            if ends_here and piece_start is not None:
                events.append(_piece(w, piece_start, offset))
                piece_start = None
            if pos in markup_at:
                events.append(markup_at[pos])
            if not ends_here and piece_start is None:
                piece_start = offset

    out: list[Word] = []
    pending = ""
    for event in events:
        if isinstance(event, str):
            if out:
                out[-1] = out[-1].with_spoken(f"{out[-1].spoken} {event}")
            else:
                pending += event + " "
        else:
            out.append(event.with_spoken(pending + event.spoken) if pending else event)
            pending = ""
    return tuple(out)


def _piece(word: Word, start: int, end: int) -> Word:
    if start == 0 and end == len(word.text):
        return word
    return Word(word.text[start:end], word.start + start, word.start + end)


def normalize_words(
    words: Sequence[Word], *, language: str | None, in_heading: bool = False
) -> tuple[Word, ...]:
    """Set each word's spoken form for speech; ``text`` and offsets are never changed.

    ``words`` should be one sentence (or one heading): neighbours give context ("St. Paul"
    is Saint, "Baker St." is Street; "in 1987" is a year, "1987 sheep" a count).
    ``in_heading`` turns Roman numerals into numbers ("CHAPTER IV" -> "Chapter four"; never
    in prose, where "I" is a pronoun) and calms an all-capitals heading, which some engines
    would otherwise spell out. Pause markup already in a spoken form is kept.
    """
    lang = sn.resolve_language(language)
    english = language is None or language.lower().startswith("en") or lang == "en"
    ctx = _Context(words, lang, english=english)
    ctx.in_heading = in_heading
    shouting = in_heading and _all_capitals(ctx.cores)
    for i in range(len(words)):
        lead, core, trail = ctx.parts[i]
        if ctx.spoken[i] is not None or not core or "<" in words[i].text:
            continue
        ctx.i = i
        said = _say(ctx)
        calm = shouting or core.lower() in HEADING_LABELS
        if said is None and in_heading and calm and core.isupper() and len(core) > 1:
            said = core.capitalize()
        lead = ctx.parts[i][0]  # a rule may have absorbed a leading mark
        if isinstance(said, tuple):
            ctx.spoken[i] = f"{lead}{said[0]}{said[1]}"
        elif said is not None:
            ctx.spoken[i] = f"{lead}{said}{trail}"
    result = []
    for w, s in zip(words, ctx.spoken, strict=True):
        if s is None:
            result.append(w)
            continue
        edges = _EDGE_BREAKS.fullmatch(w.spoken)
        before, after = (edges.group(1), edges.group(3)) if edges else ("", "")
        result.append(w.with_spoken(f"{before}{s}{after}"))
    return tuple(result)


def normalize_text(text: str, *, language: str | None) -> str:
    """The spoken form of plain text, words joined by single spaces, without pause markup
    (for the normalized-transcript columns of datasets)."""
    words = [Word(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    spoken = " ".join(w.spoken for w in normalize_words(extract_breaks(words), language=language))
    return " ".join(_ANY_BREAK.sub(" ", spoken).split())


class _Context:
    """The words being normalized, their parts, and the spoken forms decided so far."""

    def __init__(self, words: Sequence[Word], lang: str, *, english: bool) -> None:
        self.parts = [split_punctuation(w.text) for w in words]
        self.cores = [core for _, core, _ in self.parts]
        self.spoken: list[str | None] = [None] * len(words)
        self.lang, self.english = lang, english
        comma = sn.primary_language(lang) in sn.COMMA_DECIMAL
        self.numbers = _COMMA_NUMBERS if comma else _DOT_NUMBERS
        self.in_heading = False
        self.i = 0

    def core(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.cores[j] if 0 <= j < len(self.cores) else ""

    def fill_next(self, said: str) -> None:
        """Say ``said`` for the next word (e.g. "million dollars" for "million"), keeping
        that word's own punctuation."""
        lead, _, trail = self.parts[self.i + 1]
        self.spoken[self.i + 1] = f"{lead}{said}{trail}"

    def ends_sentence(self) -> bool:
        """Whether the current word's full stop could also end the sentence."""
        nxt = self.core(1)
        return self.i == len(self.cores) - 1 or (nxt[:1].isupper() and not nxt[:1].isdigit())


Said = str | tuple[str, str] | None  # a core's words, or (words, punctuation after them)


def _say(ctx: _Context) -> Said:
    """The spoken form of the current word's core, or None to leave the word as it is."""
    core, lang, g = ctx.core(), ctx.lang, ctx.numbers
    nxt = ctx.core(1)
    if m := g.money_before.fullmatch(core):
        return _say_money(ctx, g.canonical(m.group(1), m.group(3)), sn.CURRENCY_SYMBOLS[m.group(2)])
    if m := g.money_after.fullmatch(core):
        return _say_money(ctx, g.canonical(m.group(1), m.group(2)), sn.CURRENCY_SYMBOLS[m.group(3)])
    if m := g.percent.fullmatch(core):
        return sn.percent(g.canonical(m.group(1), m.group(2)), lang)
    if ctx.english and (m := g.ordinal.fullmatch(core)):
        return sn.ordinal(int(m.group(1).replace(g.group, "")), lang)
    if (m := _TIME.fullmatch(core)) and int(m.group(1)) <= 24 and int(m.group(2)) < 60:
        am_pm_follows = bool(m.group(3)) or is_am_pm(nxt, "")
        english_clock = ctx.english and not am_pm_follows
        said = _time(int(m.group(1)), int(m.group(2)), lang, english=english_clock)
        return f"{said} {_am_pm(m.group(3))}" if m.group(3) and ctx.english else said
    if ctx.english and (m := _HOUR_AM_PM.fullmatch(core)) and int(m.group(1)) <= 12:
        return f"{sn.cardinal(m.group(1), lang)} {_am_pm(m.group(2))}"
    if m := _DECADE.fullmatch(core):
        lead = ctx.parts[ctx.i][0]
        if lead[-1:] in {"'", "’"}:  # "'80s": the apostrophe only stands for "19"
            ctx.parts[ctx.i] = (lead[:-1], core, ctx.parts[ctx.i][2])
        return sn.decade(int(m.group(1)), lang)
    if m := g.range.fullmatch(core):
        return _say_range(ctx, g.canonical("", m.group(1)), g.canonical("", m.group(2)))
    if m := g.compound.fullmatch(core):
        return f"{sn.cardinal(g.canonical('', m.group(1)), lang)}-{m.group(2)}"
    if m := g.number.fullmatch(core):
        grouped = g.group in m.group(2)  # "1,987" is a count: years are written "1987"
        return _say_number(ctx, g.canonical(m.group(1), m.group(2)), may_be_year=not grouped)
    if ctx.in_heading and (value := _heading_roman(ctx)):
        return sn.cardinal(str(value), lang)
    if not ctx.english:
        return None
    trail = ctx.parts[ctx.i][2]
    if core == "&":
        return "and"
    if is_am_pm(core, trail) and _TIME_OR_HOUR.fullmatch(ctx.core(-1)):
        return _with_stop(ctx, _am_pm(core[0]), consumed=trail.startswith("."), can_end=True)
    expansion = expand_abbreviation(core, trail, ctx.core(-1), nxt)
    if expansion is not None:
        return _with_stop(ctx, expansion.words, expansion.consumed_stop, expansion.can_end_sentence)
    return None


def _with_stop(ctx: _Context, words: str, consumed: bool, can_end: bool) -> tuple[str, str]:
    """An abbreviation's words and the punctuation after them: its own full stop goes
    (a stop after "Mister" would be read as a sentence end) unless it also ends the
    sentence, as in "and so on, etc."."""
    trail = ctx.parts[ctx.i][2]
    if not consumed:
        return words, trail
    keep = "." if can_end and ctx.ends_sentence() else ""
    return words, keep + trail[1:]


def _say_money(ctx: _Context, amount: str, code: str) -> str:
    nxt = ctx.core(1).lower()
    if nxt in _SCALES:  # "$5 million" -> "five" + "million dollars"
        ctx.fill_next(f"{nxt} {sn.currency_name(code, Decimal(2), ctx.lang)}")
        return sn.cardinal(amount, ctx.lang)
    return sn.money(amount, code, ctx.lang)


def _say_number(ctx: _Context, digits: str, *, may_be_year: bool) -> str:
    lang, nxt = ctx.lang, ctx.core(1)
    if nxt.upper() in sn.CURRENCY_CODES or nxt in sn.CURRENCY_SYMBOLS:  # "5 USD", "5 €"
        code = sn.CURRENCY_SYMBOLS.get(nxt) or nxt.upper()
        ctx.fill_next(sn.currency_name(code, Decimal(digits), lang))
        return sn.cardinal(digits, lang)
    if nxt == "%" and ctx.parts[ctx.i + 1][1] == "%":
        ctx.fill_next(sn.percent("0", lang).split(" ", 1)[1])
        return sn.cardinal(digits, lang)
    if may_be_year and _year_like(digits) and _reads_as_year(ctx):
        return sn.year(int(digits), lang)
    return sn.cardinal(digits, lang)


def _say_range(ctx: _Context, first: str, second: str) -> str:
    """ "1914-1918" -> "nineteen fourteen to nineteen eighteen"; "10-20" -> "ten to twenty"."""
    lang = ctx.lang
    if _year_like(first) and (_year_like(second) or len(second) == 2):
        said_first = sn.year(int(first), lang)
        said_second = (
            sn.year(int(second), lang) if _year_like(second) else sn.cardinal(second, lang)
        )
    else:
        said_first, said_second = sn.cardinal(first, lang), sn.cardinal(second, lang)
    return f"{said_first} {'to' if ctx.english else '–'} {said_second}"


def _year_like(digits: str) -> bool:
    return len(digits) == 4 and digits.isdigit() and 1000 <= int(digits) <= 2099


def _reads_as_year(ctx: _Context) -> bool:
    """A four-digit number is a year after a date word or a month ("in 1987", "May 4,
    1987"), or before an era ("1066 AD"), unless a plural noun follows ("in 1500 ships")."""
    nxt = ctx.core(1)
    if nxt.lower().rstrip(".") in _ERAS:
        return True
    prev = ctx.core(-1).lower()
    if prev in _MONTHS or (prev.isdigit() and ctx.core(-2).lower() in _MONTHS):
        return True
    if prev not in _YEAR_CUES:
        return False
    plural = nxt.isalpha() and nxt.islower() and nxt.endswith("s") and nxt not in _NOT_PLURAL
    return not plural


def _time(hour: int, minute: int, lang: str, *, english: bool) -> str:
    """ "3:45" -> "three forty-five", "3:05" -> "three oh five", "3:00" -> "three o'clock"
    (``english`` False: no "oh"/"o'clock", as before "a.m." or in other languages)."""
    said_hour = sn.cardinal(str(hour), lang)
    if minute == 0:
        return f"{said_hour} o'clock" if english and hour <= 12 else said_hour
    if english and minute < 10:
        return f"{said_hour} oh {sn.cardinal(str(minute), lang)}"
    return f"{said_hour} {sn.cardinal(str(minute), lang)}"


def _am_pm(letter: str) -> str:
    # Spelled as heard: engines read "am" as the verb and "a m" as an article.
    return "ay em" if letter.lower() == "a" else "pee em"


def _heading_roman(ctx: _Context) -> int | None:
    """A Roman numeral's value where a heading numbers itself: after a label ("Chapter IV",
    "Part ii") or opening the heading with a stop after it ("IV. The Pool of Tears")."""
    core, trail = ctx.core(), ctx.parts[ctx.i][2]
    after_label = ctx.core(-1).lower().rstrip(".") in HEADING_LABELS
    opening = ctx.i == 0 and (trail[:1] in {".", ":"} or len(ctx.cores) == 1) and core.isupper()
    if not (after_label or opening):
        return None
    if not (core.isupper() or core.islower()):
        return None
    return roman_value(core)


def _all_capitals(cores: Sequence[str]) -> bool:
    letters = [c for core in cores for c in core if c.isalpha()]
    return len(letters) > 1 and all(c.isupper() for c in letters)
