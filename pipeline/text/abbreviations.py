"""English abbreviations and Roman numerals, as a speaker would say them.

Each rule sees the abbreviation's core (the word without its surrounding punctuation), the
punctuation after it, and the cores of its neighbours, because several abbreviations mean
different things in different places: "St. Paul" is Saint, "Baker St." is Street; "No. 5" is
number, "No." alone is the word no.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pipeline.text.spoken_numbers import word_set


class Expansion(NamedTuple):
    words: str
    consumed_stop: bool  # the "." after the core belonged to the abbreviation
    can_end_sentence: bool  # "etc." may also be the sentence's full stop; "Mr." never is


# Titles before a name: written with a full stop (or without, in British usage).
_TITLES = {
    "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Dr": "Doctor", "Prof": "Professor",
    "Rev": "Reverend", "Capt": "Captain", "Gen": "General", "Col": "Colonel",
    "Lt": "Lieutenant", "Sgt": "Sergeant", "Gov": "Governor", "Sen": "Senator",
    "Pres": "President", "Mt": "Mount", "Ft": "Fort", "Messrs": "Messieurs",
    "Mme": "Madame", "Mlle": "Mademoiselle",
}
# Titles British English writes without a stop; only read as titles before a capital.
_UNDOTTED_TITLES = frozenset({"Mr", "Mrs", "Ms", "Dr", "Mt", "Messrs"})
# Abbreviations that need their full stop, matched ignoring case; True = may end a sentence.
_DOTTED = {
    "etc": ("et cetera", True), "vs": ("versus", False), "e.g": ("for example", False),
    "i.e": ("that is", False), "cf": ("compare", False), "approx": ("approximately", False),
    "viz": ("namely", False), "ca": ("circa", False),
}
# Capitalized abbreviations that need their full stop; all may end a sentence.
_CAPITALIZED = {
    "Jr": "Junior", "Sr": "Senior", "Ave": "Avenue", "Blvd": "Boulevard", "Rd": "Road",
    "Ltd": "Limited", "Inc": "Incorporated", "Dept": "Department",
}
# Months only before a day or year: "Jan." alone is as likely to be someone called Jan.
_MONTHS = {
    "Jan": "January", "Feb": "February", "Mar": "March", "Apr": "April", "Jun": "June",
    "Jul": "July", "Aug": "August", "Sep": "September", "Sept": "September",
    "Oct": "October", "Nov": "November", "Dec": "December",
}
# Read as words only before a number: "No. 5", "pp. 12-14", "vol. 2".
_BEFORE_NUMBER = {
    "no": "number", "nos": "numbers", "p": "page", "pp": "pages", "vol": "volume",
    "vols": "volumes", "ch": "chapter", "fig": "figure", "figs": "figures",
}

_ROMAN = re.compile(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})", re.IGNORECASE)
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
# Words a heading puts before its number: "Chapter IV", "Part ii", "Book the"...
HEADING_LABELS = word_set(
    "chapter chap part book volume vol section act scene canto letter appendix stave lesson "
    "article episode"
)


def _starts_capital(core: str) -> bool:
    first = next((c for c in core if c.isalpha()), "")
    return first.isupper()


def expand_abbreviation(core: str, trail: str, prev: str, nxt: str) -> Expansion | None:
    """How to say ``core`` if it is an abbreviation here, else None."""
    dotted = trail.startswith(".")
    title_key = core if not core.isupper() else core.capitalize()
    if title_key == "St" and (dotted or _starts_capital(nxt)):
        if _starts_capital(nxt):
            return Expansion("Saint", dotted, False)
        return Expansion("Street", dotted, True)
    if title_key == "Dr" and dotted and not _starts_capital(nxt) and _starts_capital(prev):
        return Expansion("Drive", True, True)  # "Mulholland Dr."
    undotted_title = title_key in _UNDOTTED_TITLES and _starts_capital(nxt)
    if title_key in _TITLES and (dotted or undotted_title):
        return Expansion(_TITLES[title_key], dotted, False)
    if not dotted:
        return None
    if core.lower() in _DOTTED:
        words, can_end = _DOTTED[core.lower()]
        return Expansion(words, True, can_end)
    if title_key in _CAPITALIZED:
        return Expansion(_CAPITALIZED[title_key], True, True)
    if nxt[:1].isdigit():
        if title_key in _MONTHS:
            return Expansion(_MONTHS[title_key], True, False)
        if core.lower() in _BEFORE_NUMBER:
            return Expansion(_BEFORE_NUMBER[core.lower()], True, False)
    return None


def is_am_pm(core: str, trail: str) -> bool:
    """ "a.m." / "PM" / "am" (the caller checks that a time comes before it)."""
    return core.lower() in {"a.m", "p.m", "am", "pm"}


def roman_value(token: str) -> int | None:
    """The value of a well-formed Roman numeral ("XIV" -> 14), else None."""
    if not token or not _ROMAN.fullmatch(token):
        return None
    total, previous = 0, 0
    for char in reversed(token.upper()):
        value = _ROMAN_VALUES[char]
        total += -value if value < previous else value
        previous = max(previous, value)
    return total
