"""The language of a statement, its texts and how it formats numbers, money and dates.

The language comes from the optional source column ``sellers.language``, an IETF BCP 47 tag
(``de``, ``fr-BE``, ``pt-PT``). The texts are gettext catalogs
(``locales/<language>/LC_MESSAGES/statements.po``), read at run time with Babel's
``read_po``: a translator edits the ``.po`` file and nothing is compiled in a build step. A
language without a catalog, or a tag that is not one, gives the English statement.

Babel formats numbers, currencies and dates for the seller's locale (``fr-BE`` texts in French,
figures as in Belgium). Babel's formatting of one number costs tens of microseconds; a statement
holds some fifty figures, so each locale and currency gets a :class:`Formatter` built once, whose
integer formatting is derived from Babel's own output and then applied with string operations
(the tests compare it with Babel's for many values).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from html import escape
from importlib.resources import files

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

#: The languages with a catalog; English is the language of the texts themselves (the msgids).
LANGUAGES = ("en", "fr", "de", "lt", "pl")
FALLBACK = "en"
DOMAIN = "statements"

# BCP 47 (RFC 5646) language tag, without the private-use and grandfathered forms:
# language (2-3 letters, or 4-8), optional script, region, variants, extensions.
_TAG = re.compile(
    r"(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})"
    r"(?:-[A-Za-z]{4})?"
    r"(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
    r"(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*"
)


@functools.lru_cache(maxsize=1024)
def is_language_tag(tag: str) -> bool:
    """Whether ``tag`` is a well-formed IETF BCP 47 language tag (RFC 5646, section 2.1) whose
    language is one CLDR knows (``de``, ``pt``, ``mt``; not ``english`` or ``xx``). The POSIX
    form with underscores (``de_DE``, as many systems store it) is taken as the tag it spells
    (``de-DE``)."""
    tag = tag.replace("_", "-")
    return bool(_TAG.fullmatch(tag)) and tag.split("-")[0].lower() in _known_languages()


def _region(parts: list[str]) -> str | None:
    """The region subtag of a tag's parts: right after the language and its extended language
    subtags and script (RFC 5646, 2.2.4), never a subtag of an extension (``fr-u-ca-buddhist``
    has none)."""
    i = 1
    while i < len(parts) and i <= 3 and len(parts[i]) == 3 and parts[i].isalpha():
        i += 1  # extlang
    if i < len(parts) and len(parts[i]) == 4 and parts[i].isalpha():
        i += 1  # script
    if i < len(parts) and ((len(parts[i]) == 2 and parts[i].isalpha()) or (len(parts[i]) == 3 and parts[i].isdigit())):
        return parts[i].upper()
    return None


@functools.cache
def _known_languages() -> frozenset[str]:
    return frozenset(str(code) for code in Locale("en").languages if "_" not in str(code))


@dataclass(frozen=True, slots=True)
class Language:
    """How a statement is written: ``tag`` (what the feed names, e.g. ``fr-BE``), the catalog's
    language (``fr``) and the Babel locale that formats its figures (``fr_BE``)."""

    tag: str
    catalog: str
    locale: str


@functools.lru_cache(maxsize=512)
def resolve(tag: str | None) -> Language:
    """The statement's language for a seller's ``sellers.language`` (None, or a tag checked with
    :func:`is_language_tag`): its catalog if the project has one, else English; its figures in
    the tag's locale where Babel knows it (``fr-BE``), else the language's (``fr``)."""
    if not tag or not is_language_tag(tag):
        return Language(FALLBACK, FALLBACK, FALLBACK)
    parts = tag.replace("_", "-").split("-")
    language = parts[0].lower()
    if language not in LANGUAGES:
        return Language(FALLBACK, FALLBACK, FALLBACK)
    region = _region(parts)
    locale = language
    if region:
        try:
            Locale.parse(f"{language}_{region}")
            locale = f"{language}_{region}"
        except (UnknownLocaleError, ValueError):
            locale = language
    shown = language if locale == language else f"{language}-{region}"
    return Language(shown, language, locale)


@functools.cache
def catalog(language: str) -> dict[str, str]:
    """msgid -> msgstr of a language's catalog (empty for English: the msgids are the English
    texts); an untranslated or fuzzy entry falls back to the English text."""
    if language == FALLBACK:
        return {}
    path = files("reporting.statements").joinpath(f"locales/{language}/LC_MESSAGES/{DOMAIN}.po")
    with path.open("rb") as f:
        cat = read_po(f, locale=language, domain=DOMAIN)
    out = {}
    for message in cat:
        good = isinstance(message.id, str) and isinstance(message.string, str) and not message.fuzzy
        if good and message.id and message.string:
            out[str(message.id)] = str(message.string)
    return out


class Formatter:
    """Numbers, amounts and dates of one locale, built once and reused for every statement."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self._babel_locale = Locale.parse(locale)
        self._countries = {str(k): str(v) for k, v in self._babel_locale.territories.items()}
        self._countries_html: dict[str, str] = {}
        probe = format_decimal(1234567, locale=locale)  # "1" group "234" group "567"
        self._group = probe[1 : 1 + (len(probe) - 7) // 2]
        self._groups_four = format_decimal(1234, locale=locale) != "1234"
        self._group_html = escape(self._group)
        self._templates: dict[str, tuple[str, str] | None] = {}
        self._templates_html: dict[str, tuple[str, str] | None] = {}
        self._amounts_html: dict[str, Callable[[int], str]] = {}
        self._integer_is_babel = all(
            format_decimal(n, locale=locale) == _grouped(n, self._group, self._groups_four)
            for n in (7, 1234, 12345, 1234567)
        )

    def integer(self, value: int) -> str:
        """A count (activities, days) as the locale writes it: ``1 234`` (fr), ``1.234`` (de)."""
        if value < 0 or not self._integer_is_babel:
            return format_decimal(value, locale=self.locale)
        return _grouped(value, self._group, self._groups_four)

    def money(self, value: int, currency: str) -> str:
        """A whole-unit amount with its currency as the locale writes it: ``1.234,00 €`` (de),
        ``€1,234.00`` (en); a negative amount, or a currency the template cannot take, is
        formatted by Babel itself."""
        if currency not in self._templates:
            self._templates[currency] = self._template(currency)
        template = self._templates[currency]
        if value < 0 or template is None:
            return format_currency(value, currency, locale=self.locale)
        return template[0] + _grouped(value, self._group, self._groups_four) + template[1]

    def integer_html(self, value: int) -> str:
        """``escape(self.integer(value))``, without escaping each figure: HTML escaping maps each
        character on its own, so the escaped group separator does the same."""
        if value < 0 or not self._integer_is_babel:
            return escape(format_decimal(value, locale=self.locale))
        return _grouped(value, self._group_html, self._groups_four)

    def money_html(self, value: int, currency: str) -> str:
        """``escape(self.money(value, currency))``, from the escaped parts of the template."""
        template = self._templates_html.get(currency)
        if template is None and currency not in self._templates_html:
            if currency not in self._templates:
                self._templates[currency] = self._template(currency)
            plain = self._templates[currency]
            template = self._templates_html[currency] = None if plain is None else (escape(plain[0]), escape(plain[1]))
        if value < 0 or template is None:
            return escape(format_currency(value, currency, locale=self.locale))
        return template[0] + _grouped(value, self._group_html, self._groups_four) + template[1]

    def amounts_html(self, currency: str) -> Callable[[int], str]:
        """``functools.partial(self.money_html, currency=currency)``, made once per currency:
        the template looked up once, the digits grouped by ``format`` (``1,234,567``, its commas
        replaced by the locale's separator). A page shows some fifty amounts."""
        amount = self._amounts_html.get(currency)
        if amount is None:
            amount = self._amounts_html[currency] = self._amounts(currency)
        return amount

    def _amounts(self, currency: str) -> Callable[[int], str]:
        money = self.money_html
        money(0, currency)  # the template, made (or found not to hold) as money_html makes it
        template = self._templates_html[currency]
        if template is None:
            return lambda value: money(value, currency)
        pre, post = template
        group, four = self._group_html, self._groups_four

        def amount(value: int) -> str:
            if value < 0:
                return money(value, currency)
            if value < 1000 or (value < 10000 and not four):
                return f"{pre}{value}{post}"
            digits = f"{value:,}"
            return f"{pre}{digits if group == ',' else digits.replace(',', group)}{post}"

        return amount

    def _template(self, currency: str) -> tuple[str, str] | None:
        """Babel's writing of 0 split at the integer part, checked against Babel's writing of
        other numbers; None when they do not agree (then Babel formats each amount)."""
        zero = format_currency(0, currency, locale=self.locale)
        at = zero.find("0")
        if at < 0:
            return None
        template = (zero[:at], zero[at + 1 :])
        for n in (7, 1234, 98765432):
            if template[0] + _grouped(n, self._group, self._groups_four) + template[1] != format_currency(
                n, currency, locale=self.locale
            ):
                return None
        return template

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one Formatter per locale, kept for the process
    def date(self, value: str) -> str:
        """An ISO date (YYYY-MM-DD) in the locale's long form: ``20. Januar 1967`` (de)."""
        return format_date(date.fromisoformat(value), format="long", locale=self._babel_locale)

    def country_html(self, code: str) -> str:
        """``escape(self.country(code))``, escaped once per country."""
        out = self._countries_html.get(code)
        if out is None:
            out = self._countries_html[code] = escape(self.country(code))
        return out

    def country(self, code: str) -> str:
        """A country's name in the locale (``Allemagne`` for DE in fr), the code where unknown."""
        return self._countries.get(code, code)


def _grouped(value: int, group: str, groups_four: bool) -> str:
    digits = str(value)
    if len(digits) <= 3 or (len(digits) == 4 and not groups_four):
        return digits
    head = len(digits) % 3 or 3
    return group.join([digits[:head], *(digits[i : i + 3] for i in range(head, len(digits), 3))])


@functools.cache
def formatter(locale: str) -> Formatter:
    return Formatter(locale)
