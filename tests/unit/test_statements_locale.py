"""The statement's language and formats: tags, the fallback, the catalogs, and the fast formatter
compared with Babel itself (hand-computed cases first)."""

from __future__ import annotations

import ast
import random
import re
from html import escape
from pathlib import Path

import pytest
from babel.numbers import format_currency, format_decimal

from reporting.statements import page
from reporting.statements.locale import LANGUAGES, Language, catalog, formatter, is_language_tag, resolve

NNBSP, NBSP = "\u202f", "\xa0"


@pytest.mark.parametrize(
    ("locale", "amount", "currency", "shown"),
    [
        ("de", 1234, "EUR", f"1.234,00{NBSP}€"),
        ("fr", 1234, "EUR", f"1{NNBSP}234,00{NBSP}€"),  # French groups with a narrow no-break space
        ("fr_BE", 1234567, "EUR", f"1{NNBSP}234{NNBSP}567,00{NBSP}€"),
        ("en", 1234, "EUR", "€1,234.00"),
        ("en", 999, "EUR", "€999.00"),
        ("lt", 1234, "EUR", f"1{NBSP}234,00{NBSP}€"),
        ("pl", 1234, "PLN", f"1{NBSP}234,00{NBSP}zł"),
        ("de", 0, "EUR", f"0,00{NBSP}€"),
        ("de", 1234, "JPY", f"1.234{NBSP}¥"),  # no minor unit
        ("de", -1234, "EUR", f"-1.234,00{NBSP}€"),  # negative: Babel itself
    ],
)
def test_money_as_the_locale_writes_it(locale: str, amount: int, currency: str, shown: str) -> None:
    assert formatter(locale).money(amount, currency) == shown


@pytest.mark.parametrize(
    ("locale", "count", "shown"),
    [("de", 1234, "1.234"), ("fr", 12345, f"12{NNBSP}345"), ("en", 1000, "1,000"), ("de", 999, "999"), ("pl", 7, "7")],
)
def test_counts_as_the_locale_writes_them(locale: str, count: int, shown: str) -> None:
    assert formatter(locale).integer(count) == shown


def test_dates_and_countries_in_the_locale() -> None:
    assert formatter("de").date("1967-01-20") == "20. Januar 1967"
    assert formatter("fr").date("1967-01-20") == "20 janvier 1967"
    assert formatter("en").date("1967-01-20") == "January 20, 1967"
    assert formatter("fr").country("DE") == "Allemagne"
    assert formatter("lt").country("ZZ-not") == "ZZ-not"


LOCALES = ("en", "fr", "de", "lt", "pl", "fr_BE", "de_AT", "de_CH", "en_IE", "de_LU", "fr_CH", "en_IN")
CURRENCIES = ("EUR", "PLN", "HUF", "JPY", "CHF", "SEK", "BHD", "GBP", "USD", "CZK")


@pytest.mark.parametrize("locale", LOCALES)
def test_the_fast_formatter_writes_what_babel_writes(locale: str) -> None:
    rng = random.Random(locale)
    values = [0, 1, 9, 10, 99, 100, 999, 1000, 1001, 9999, 10000, 99999, 100000, 999999, 1000000, 10**12 + 7]
    values += [rng.randrange(10 ** rng.randint(1, 13)) for _ in range(300)]
    f = formatter(locale)
    for currency in CURRENCIES:
        for v in values:
            assert f.money(v, currency) == format_currency(v, currency, locale=locale), (locale, currency, v)
    for v in values:
        assert f.integer(v) == format_decimal(v, locale=locale), (locale, v)


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("de", Language("de", "de", "de")),
        ("fr-BE", Language("fr-BE", "fr", "fr_BE")),  # French texts, Belgian figures
        ("FR-be", Language("fr-BE", "fr", "fr_BE")),
        ("de-AT", Language("de-AT", "de", "de_AT")),
        ("lt", Language("lt", "lt", "lt")),
        ("pl-PL", Language("pl-PL", "pl", "pl_PL")),
        ("pt-PT", Language("en", "en", "en")),  # no Portuguese catalog: English
        ("fr-QQ", Language("fr", "fr", "fr")),  # a region CLDR does not know: the language's figures
        ("zh-Hant-TW", Language("en", "en", "en")),
        (None, Language("en", "en", "en")),
        ("", Language("en", "en", "en")),
        ("de_DE", Language("de-DE", "de", "de_DE")),  # the POSIX form, taken as de-DE
        ("fr-u-ca-buddhist", Language("fr", "fr", "fr")),  # "ca" is an extension's, not a region
        ("fr-Latn-BE", Language("fr-BE", "fr", "fr_BE")),  # the region after the script
        ("de-1996", Language("de", "de", "de")),  # a variant, no region
        ("pl-x-test", Language("en", "en", "en")),  # private use: not a tag this project reads
    ],
)
def test_a_tag_gives_the_statement_its_language(tag: str | None, language: Language) -> None:
    assert resolve(tag) == language


@pytest.mark.parametrize(
    "tag",
    ["de", "fr-BE", "pt-PT", "zh-Hant-TW", "sr-Latn-RS", "es-419", "de-CH-1996", "en-GB-u-ca-gregory", "de_DE"],
)
def test_well_formed_tags(tag: str) -> None:
    assert is_language_tag(tag)


@pytest.mark.parametrize("tag", ["", "d", "english", "xx", "fr-", "-fr", "fr BE", "fr-BE-", "123", "de-DE!"])
def test_tags_that_are_not(tag: str) -> None:
    assert not is_language_tag(tag)


def _msgids() -> set[str]:
    """Every text the page translates: the literal ``_("...")`` calls, the constants and tables."""
    tree = ast.parse(Path(page.__file__).read_text(encoding="utf-8"))
    ids = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    ids |= {page.INTRO, page.CORRECTED, page.WITHDRAWN, page.WRONG, page.MASKED, page.ISSUED, page.CONTACT}
    ids |= {page.WITHDRAWN_FIGURES, page.FILED_HERE, page.EXCHANGE}
    ids |= {*page.ACTIVITY_NAMES.values(), *page.PROPERTY_TYPES.values(), *page.REASONS.values()}
    ids |= {label for _key, label in page.FIGURE_NAMES}
    # the texts that name the law of the filing: DAC7's and the UK's (SI 2023/817)
    ids |= {t for w in page.WORDINGS.values() for t in (w.title, w.intro, w.receiving, w.receiving_column, w.exchange)}
    return ids


@pytest.mark.parametrize("language", [x for x in LANGUAGES if x != "en"])
def test_every_text_is_translated_with_its_fields(language: str) -> None:
    messages = catalog(language)
    ids = _msgids()
    assert len(ids) > 50
    missing = sorted(ids - set(messages))
    assert not missing, f"{language}: untranslated {missing}"
    for msgid in ids:
        assert set(re.findall(r"\{\w+\}", messages[msgid])) == set(re.findall(r"\{\w+\}", msgid)), (language, msgid)


@pytest.mark.parametrize("language", [x for x in LANGUAGES if x != "en"])
def test_the_uk_texts_are_translated_and_marked_for_a_native_speakers_review(language: str) -> None:
    """A UK statement (a filing with HMRC) reads in the seller's language as a DAC7 one does; each
    of its texts is translated (not fuzzy: a fuzzy entry would fall back to English) and says, as
    the guide says of every text, that a native speaker's review is advisable."""
    from babel.messages.pofile import read_po

    uk = page.UK_WORDING
    texts = (uk.title, uk.intro, uk.receiving, uk.receiving_column, uk.exchange)
    messages = catalog(language)
    for text in texts:
        assert messages.get(text) and messages[text] != text, (language, text)
    assert "HM Revenue and Customs" in messages[uk.intro] and "4(4)" in messages[uk.intro]
    path = Path(page.__file__).parent / "locales" / language / "LC_MESSAGES" / "statements.po"
    with path.open("rb") as fh:
        cat = read_po(fh, locale=language)
    for text in texts:
        entry = cat[text]
        assert entry is not None and not entry.fuzzy
        assert any("native speaker's review" in c for c in entry.user_comments), (language, text)


@pytest.mark.parametrize("locale", ["en", "fr", "de", "lt", "pl", "fr_BE"])
def test_the_languages_format_without_calling_babel_per_number(locale: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Babel builds each locale's formatter once; after that a figure costs string operations only."""
    import reporting.statements.locale as loc

    f = loc.Formatter(locale)
    expected = f.money(1234567, "EUR"), f.integer(1234567)

    def refused(*args: object, **kw: object) -> str:
        raise AssertionError("Babel called for one number")

    monkeypatch.setattr(loc, "format_currency", refused)
    monkeypatch.setattr(loc, "format_decimal", refused)
    assert (f.money(1234567, "EUR"), f.integer(1234567)) == expected


@pytest.mark.parametrize("locale", ["en", "fr", "de", "lt", "pl", "fr_BE", "de_CH"])
def test_the_escaped_figures_are_babels_escaped(locale: str) -> None:
    """What the page writes: the escaped text of each figure, made from escaped templates; the
    same as escaping Babel's output, also for negative amounts (Babel's own path), an unknown
    currency and every country."""
    fmt = formatter(locale)
    for value in (0, 7, 999, 1000, 1234, 12345, 999999, 1234567, 98765432101, -1, -1234567):
        assert fmt.integer_html(value) == escape(format_decimal(value, locale=locale)), value
        for currency in ("EUR", "PLN", "CHF", "XXX", "JPY"):
            assert fmt.money_html(value, currency) == escape(format_currency(value, currency, locale=locale))
    for code in ("DE", "FR", "LT", "PL", "ZZ", "", "<b>"):
        assert fmt.country_html(code) == escape(fmt.country(code))
