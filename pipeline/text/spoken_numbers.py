"""Numbers, money, times and years in words, in the manuscript's language, via num2words.

Everything here returns plain words without the commas num2words puts into long numbers
("one thousand, two hundred"), because a speech engine turns every comma into a pause.
A language num2words does not know falls back to English rather than failing: a book in an
unsupported language still gets read, only its digits come out in English.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from num2words import CONVERTER_CLASSES, num2words


def word_set(words: str) -> frozenset[str]:
    """A set of words written as one space-separated string (easier to read in tables)."""
    return frozenset(words.split())


# English names a listener expects; num2words says "pounds sterling" and "ten euro".
_ENGLISH_CURRENCIES: dict[str, tuple[str, str, str, str]] = {
    "USD": ("dollar", "dollars", "cent", "cents"),
    "CAD": ("Canadian dollar", "Canadian dollars", "cent", "cents"),
    "AUD": ("Australian dollar", "Australian dollars", "cent", "cents"),
    "GBP": ("pound", "pounds", "penny", "pence"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "JPY": ("yen", "yen", "sen", "sen"),
    "CHF": ("Swiss franc", "Swiss francs", "centime", "centimes"),
    "INR": ("rupee", "rupees", "paisa", "paise"),
    "CNY": ("yuan", "yuan", "fen", "fen"),
}
CURRENCY_SYMBOLS = {"$": "USD", "£": "GBP", "€": "EUR", "¥": "JPY", "₹": "INR"}
CURRENCY_CODES = frozenset(_ENGLISH_CURRENCIES)

# The word for "%" by primary language; num2words has none. Others say the English word.
_PERCENT = {
    "en": "percent", "fr": "pour cent", "de": "Prozent", "es": "por ciento", "it": "per cento",
    "pt": "por cento", "nl": "procent", "sv": "procent", "da": "procent", "no": "prosent",
    "pl": "procent", "cs": "procent", "ru": "процентов", "uk": "відсотків", "fi": "prosenttia",
}
# Languages that write 3,5 for three and a half and 1.250 for twelve hundred and fifty.
COMMA_DECIMAL = word_set(
    "fr de es it pt nl sv da no fi pl cs sk sl ru uk ro hu tr lt lv id vi ca be kz tg az"
)


def resolve_language(language: str | None) -> str:
    """The num2words code for a BCP 47 tag ("en-US" -> "en", "pt-BR" -> "pt_BR"); "en" if
    num2words lacks the language."""
    if not language:
        return "en"
    parts = language.replace("-", "_").split("_")
    primary = parts[0].lower()
    if len(parts) > 1:
        regional = f"{primary}_{parts[1].upper()}"
        if regional in CONVERTER_CLASSES:
            return regional
    return primary if primary in CONVERTER_CLASSES else "en"


def primary_language(lang: str) -> str:
    return lang.split("_")[0]


def _words(value: Any, lang: str, **kwargs: Any) -> str:
    try:
        text = str(num2words(value, lang=lang, **kwargs))
    except (NotImplementedError, OverflowError, ValueError, TypeError, KeyError, IndexError):
        if kwargs:  # e.g. no "year" mode in this language: the plain number is still right
            return _words(value, lang)
        text = str(num2words(value, lang="en"))
    return " ".join(text.replace(",", " ").split())


def cardinal(digits: str, lang: str) -> str:
    """Words for a plain number written with ASCII digits and an optional "." decimal part,
    e.g. "1250", "-4", "3.50" -> "three point five zero" (every written digit is read)."""
    negative = digits.startswith("-")
    body = digits.lstrip("+-")
    whole, _, fraction = body.partition(".")
    whole = whole or "0"
    if (len(whole) > 1 and whole.startswith("0")) or len(whole) > 15:
        # "007" is a code rather than a quantity; beyond 15 digits nobody says the number.
        spoken = digit_by_digit(whole, lang)
    else:
        spoken = _words(int(whole), lang)
    if fraction:
        point = getattr(CONVERTER_CLASSES[lang], "pointword", "point")
        if isinstance(point, tuple | list):  # Japanese gives (kanji, reading)
            point = point[0]
        spoken = f"{spoken} {point} {digit_by_digit(fraction, lang)}"
    if negative:
        minus = str(getattr(CONVERTER_CLASSES[lang], "negword", "minus ")).strip()
        spoken = f"{minus} {spoken}"
    return spoken


def digit_by_digit(digits: str, lang: str) -> str:
    return " ".join(_words(int(d), lang) for d in digits)


def ordinal(number: int, lang: str) -> str:
    return _words(number, lang, to="ordinal")


def year(number: int, lang: str) -> str:
    return _words(number, lang, to="year")


def decade(number: int, lang: str) -> str:
    """ "1980s" -> "nineteen eighties" (English); other languages get the year's words."""
    spoken = year(number, lang) if number >= 100 else _words(number, lang)
    if primary_language(lang) != "en":
        return spoken
    head, _, last = spoken.rpartition(" ")
    plural = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return f"{head} {plural}".strip()


def percent(digits: str, lang: str) -> str:
    return f"{cardinal(digits, lang)} {_PERCENT.get(primary_language(lang), 'percent')}"


def currency_name(code: str, amount: Decimal, lang: str) -> str:
    """The currency's name agreeing with ``amount`` ("dollar"/"dollars"), or the code."""
    if primary_language(lang) == "en" and code in _ENGLISH_CURRENCIES:
        one, many, _, _ = _ENGLISH_CURRENCIES[code]
        return one if amount == 1 else many
    forms = _num2words_forms(code, lang)
    return forms[0][0 if amount == 1 else 1] if forms else code


def money(amount: str, code: str, lang: str) -> str:
    """ "3.50" USD -> "three dollars and fifty cents" (``amount`` as ``cardinal`` takes it)."""
    negative = amount.startswith("-")
    whole, _, fraction = amount.lstrip("+-").partition(".")
    if fraction and len(fraction) != 2:  # "$0.125": not dollars and cents
        result = f"{cardinal(amount.lstrip('+-'), lang)} {currency_name(code, Decimal(2), lang)}"
    else:
        result = _money_units(int(whole or "0"), int(fraction or "0"), code, lang)
    if negative:
        minus = str(getattr(CONVERTER_CLASSES[lang], "negword", "minus ")).strip()
        result = f"{minus} {result}"
    return result


def _money_units(units: int, cents: int, code: str, lang: str) -> str:
    if primary_language(lang) == "en" and code in _ENGLISH_CURRENCIES:
        one, many, minor_one, minor_many = _ENGLISH_CURRENCIES[code]
        major = f"{_words(units, lang)} {one if units == 1 else many}"
        minor = f"{_words(cents, lang)} {minor_one if cents == 1 else minor_many}"
        if not cents:
            return major
        return minor if not units else f"{major} and {minor}"
    forms = _num2words_forms(code, lang)
    if forms is None:
        return f"{cardinal(f'{units}.{cents:02d}' if cents else str(units), lang)} {code}"
    major = f"{_words(units, lang)} {forms[0][0 if units == 1 else 1]}"
    if not cents:
        return major
    minor = f"{_words(cents, lang)} {forms[1][0 if cents == 1 else 1]}"
    return f"{major} {minor}"


def _num2words_forms(code: str, lang: str) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """(singular, plural) of the major and minor unit as num2words knows them, if it does."""
    forms: Any = getattr(CONVERTER_CLASSES[lang], "CURRENCY_FORMS", {}).get(code)
    try:
        (major1, major2, *_), (minor1, minor2, *_) = forms
    except (TypeError, ValueError):  # missing, or a shape this code does not know
        return None
    return (str(major1), str(major2)), (str(minor1), str(minor2))
