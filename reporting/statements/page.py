"""The readable page of a statement: one self-contained, accessible HTML file per seller.

Accessible: the ``lang`` of the page is the statement's language, the sections have headings,
every table has a caption and header cells with ``scope``, text and background have a contrast
above 7:1 (WCAG AAA), and nothing is fetched or run (no script, inline CSS). Every value is
escaped. What the page shows is the content the law asks for (PStTG § 22(2) with § 14(2)-(4)):
the identity as reported, with TINs and account identifiers in full, the figures of every
activity and property listing per quarter, where it was filed and who receives it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from reporting.jurisdictions import rule_set_for
from reporting.statements.filed import QUARTERS
from reporting.statements.locale import Formatter, Language, catalog

CSS = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#111;background:#fff;"
    "max-width:60rem;margin:1.5rem auto;padding:0 1rem;line-height:1.45}"
    "h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:2px solid #1a4d8f}"
    "table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}"
    "caption{text-align:left;font-weight:600;padding:.25rem 0}"
    "th,td{border:1px solid #555;padding:.3rem .5rem;text-align:left;vertical-align:top}"
    "th{background:#e8eef7}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".notice{border-left:4px solid #1a4d8f;padding:.5rem 1rem;background:#f3f6fb}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}"
    "code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:1em}"
)

ACTIVITY_NAMES = {
    "sale_of_goods": "Sale of goods",
    "personal_services": "Personal services",
    "transportation_rental": "Rental of means of transport",
    "immovable_property": "Rental of immovable property",
}
PROPERTY_TYPES = {
    "DPI901": "Office",
    "DPI902": "Hotel room",
    "DPI903": "Bed and breakfast",
    "DPI904": "House",
    "DPI905": "Apartment",
    "DPI906": "Holiday home",
    "DPI907": "Holiday park",
    "DPI908": "Camping pitch",
    "DPI909": "Boat",
    "DPI910": "Other",
}
FIGURE_NAMES = (
    ("consideration", "Consideration"),
    ("number_of_activities", "Number of activities"),
    ("fees", "Fees and commissions"),
    ("taxes", "Taxes withheld"),
)
#: The longer texts of the page (msgids of the catalogs: changing one needs the translations changed)
INTRO = (
    "{operator} reported the following information about you to the tax authority for the year "
    "{year}, as the EU directive on administrative cooperation (DAC7) requires. This statement gives"
    " you that information exactly as it was reported."
)
CORRECTED = (
    "This statement replaces an earlier one: the platform corrected the information it reported. "
    "Earlier statement: {id}."
)
WITHDRAWN = (
    "The information reported earlier has been withdrawn: the platform asked the tax authority to "
    "delete it. This statement replaces the earlier one ({id})."
)
WRONG = (
    "If any of this information is wrong or incomplete, contact the platform and tell it what to "
    "correct. The platform corrects its records and files a correction with the tax authority; you "
    "then receive a new statement that replaces this one."
)
MASKED = (
    "A masked copy for the platform's support staff: names, addresses, the date of birth and the "
    "identifiers are masked. The seller's own statement shows them in full."
)
ISSUED = "Date of this statement"
CONTACT = "Contact"
WITHDRAWN_FIGURES = "What was reported earlier and is now withdrawn"
FILED_HERE = "the platform filed this information with its tax authority"
EXCHANGE = (
    "The tax authority the platform filed with receives this information directly; it passes it on "
    "to each other member state listed, as the EU directive provides."
)
REASONS = {"residence": "the seller is resident there", "property": "a property listed is located there"}
#: A statement of a filing with HMRC: the UK's regulations, not the EU directive. SI 2023/817
#: reg. 4(4) (https://www.legislation.gov.uk/uksi/2023/817/regulation/4/made) has the operator
#: give the seller the information reported about them; HMRC passes it on to the reportable
#: jurisdictions it exchanges with (HMRC IEIM906000).
UK_TITLE = "Digital platform statement {year}"
UK_INTRO = (
    "{operator} reported the following information about you to HM Revenue and Customs for the year "
    "{year}, as the UK's Platform Operators (Due Diligence and Reporting Requirements) Regulations "
    "2023 require; regulation 4(4) has the platform give you that information. This statement gives"
    " you that information exactly as it was reported."
)
UK_EXCHANGE = (
    "HM Revenue and Customs receives this information directly; it passes it on to each other "
    "jurisdiction listed, a jurisdiction it exchanges this information with."
)


@dataclass(frozen=True, slots=True)
class Wording:
    """The texts of a statement that name the law it was filed under (msgids of the catalogs)."""

    #: what the statement is called in the text copy (``dac7 statements show``)
    name: str
    title: str
    intro: str
    receiving: str
    receiving_column: str
    exchange: str


#: DAC7, for a filing in a member state (the texts of every EU statement, unchanged)
EU_WORDING = Wording(
    "DAC7 statement",
    "DAC7 statement {year}",
    INTRO,
    "Member states that receive this information",
    "Member state",
    EXCHANGE,
)
#: A filing under the UK's Model Rules (SI 2023/817)
UK_WORDING = Wording(
    "Digital platform statement",
    UK_TITLE,
    UK_INTRO,
    "Jurisdictions that receive this information",
    "Jurisdiction",
    UK_EXCHANGE,
)
#: The wording of a statement by the rule set of its filing (:func:`reporting.jurisdictions.rule_set_for`)
WORDINGS = {"DAC7": EU_WORDING, "GB": UK_WORDING}


def wording_for(filed_in: str) -> Wording:
    """The wording of a statement filed with ``filed_in``'s authority."""
    return WORDINGS[rule_set_for(filed_in).code]


class _Texts:
    """A language's texts, each translated and escaped once per process."""

    def __init__(self, language: str) -> None:
        self._messages = catalog(language)
        self._done: dict[str, str] = {}

    def __call__(self, text: str, **values: str) -> str:
        """The translation of ``text`` (escaped), with ``values`` (escaped) put in its fields."""
        out = self._done.get(text)
        if out is None:
            out = self._done[text] = escape(self._messages.get(text, text))
        for name, value in values.items():
            out = out.replace("{" + name + "}", escape(value))
        return out


@functools.cache
def _texts(language: str) -> _Texts:
    return _Texts(language)


@functools.lru_cache(maxsize=256)
def _opening(_: _Texts, tag: str, year: str, operator: str, w: Wording) -> str:
    """The head of the page, its title and the introduction: the same for every statement of a
    language, a year, an operator and a law, so made once."""
    return (
        f'<!doctype html>\n<html lang="{escape(tag)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_(w.title, year=year)}</title><style>{CSS}</style></head>\n<body>\n<main>"
        f"<h1>{_(w.title, year=year)}</h1>"
        f"<p>{_(w.intro, operator=operator, year=year)}</p>"
    )


@functools.cache
def _receiving_head(_: _Texts, w: Wording) -> str:
    return (
        f"<table><caption>{_(w.receiving)}</caption><thead><tr>"
        f'<th scope="col">{_(w.receiving_column)}</th><th scope="col">{_("Why")}</th></tr></thead><tbody>'
    )


@functools.cache
def _closing(_: _Texts, w: Wording) -> str:
    """The end of the receiving states' table, the exchange and what to do when something is wrong."""
    return f"</tbody></table><p>{_(w.exchange)}</p><h2>{_('If something is wrong')}</h2><p>{_(WRONG)}</p>"


@functools.cache
def _activity_table(_: _Texts, title: str) -> tuple[str, tuple[str, ...]]:
    """The caption and header of an activity's table, and the header cell of each quarter's row,
    in a language: the same for every statement, so made once."""
    head = (
        f"<caption>{title}: {_('figures per quarter')}</caption><thead><tr>"
        f'<th scope="col">{_("Quarter")}</th>'
        + "".join(f'<th scope="col">{_(label)}</th>' for _key, label in FIGURE_NAMES)
        + "</tr></thead><tbody>"
    )
    return head, tuple(f'<tr><th scope="row">{_("Quarter {n}", n=q[1])}</th>' for q in QUARTERS)


def _address(a: Mapping[str, Any] | None, fmt: Formatter) -> str:
    if not a:
        return ""
    fixed = [a.get(k) for k in ("street", "building", "suite", "floor", "district", "pob")]
    line1 = " ".join(p for p in fixed if p)
    line2 = " ".join(p for p in (a.get("post_code"), a.get("city"), a.get("country_subentity")) if p)
    lines = [p for p in (line1, line2, a.get("free")) if p]
    if a.get("country"):
        lines.append(fmt.country(a["country"]))
    return "<br>".join(escape(x) for x in lines)


def _name(n: Mapping[str, str]) -> str:
    if "name" in n:
        return n["name"]
    order = ("preceding_title", "title", "first_name", "middle_name", "name_prefix", "last_name")
    tail = ("generation_identifier", "suffix", "general_suffix")
    return " ".join(n[k] for k in (*order, *tail) if n.get(k))


def _contact(contact: str) -> str:
    """The contact as a link where it is an e-mail address or a web address, else as text."""
    if contact.startswith(("https://", "http://")) and " " not in contact:
        return f'<a href="{escape(contact)}">{escape(contact)}</a>'
    if "@" in contact and " " not in contact and ":" not in contact:
        return f'<a href="mailto:{escape(contact)}">{escape(contact)}</a>'
    return escape(contact)


class _Pieces:
    """The fixed pieces of a language's page (headings, labels, table heads), translated and
    escaped once per process: a page is these pieces and the statement's values."""

    def __init__(self, _: _Texts) -> None:
        self.texts = _
        self.issued = f'<p id="issued">{_(ISSUED)}: <time datetime="'
        self.masked = f'<p class="notice" id="masked">{_(MASKED)}</p>'
        self.who = f"<h2>{_('Who was reported')}</h2><dl>"
        self.name = f"<dt>{_('Name')}</dt><dd>"
        self.address = f"<dt>{_('Address')}</dt><dd>"
        self.residence = f"<dt>{_('Country of residence')}</dt><dd>"
        self.birth_date = f"<dt>{_('Date of birth')}</dt><dd>"
        self.birth_place = f"<dt>{_('Place of birth')}</dt><dd>"
        self.vat = f"<dt>{_('VAT identification number')}</dt><dd><code>"
        self.registration = f"<dt>{_('Business registration number')}</dt><dd><code>"
        self.establishment = f"<dt>{_('Permanent establishment')}</dt><dd>"
        self.tins = (
            f"<table><caption>{_('Tax identification numbers')}</caption><thead><tr>"
            f'<th scope="col">{_("Tax identification number")}</th><th scope="col">{_("Issued by")}</th>'
            "</tr></thead><tbody>"
        )
        self.not_issued = _("not issued")
        self.accounts = (
            f"<table><caption>{_('Financial accounts')}</caption><thead><tr>"
            f'<th scope="col">{_("Account identifier")}</th><th scope="col">{_("Account holder")}</th>'
            "</tr></thead><tbody>"
        )
        self.reported = f'<h2 id="figures">{_("What was reported")}</h2>'
        self.withdrawn_figures = f'<h2 id="figures">{_(WITHDRAWN_FIGURES)}</h2>'
        self.no_activity = f"<p>{_('No activity: the record was withdrawn.')}</p>"
        self.activities = {key: _(name) for key, name in ACTIVITY_NAMES.items()}
        self.property_address = f"<dt>{_('Property address')}</dt><dd>"
        self.property_types = {code: _(name) for code, name in PROPERTY_TYPES.items()}
        self.property_type = f"<dt>{_('Property type')}</dt><dd>"
        self.land_registration = f"<dt>{_('Land registration number')}</dt><dd><code>"
        self.rented_days = f"<dt>{_('Days rented')}</dt><dd>"
        self.filed = f"<h2>{_('Where it was filed')}</h2><dl><dt>{_('Tax authority of')}</dt><dd>"
        self.message_ref = f"</dd><dt>{_('Message reference (MessageRefId)')}</dt><dd><code>"
        self.doc_ref = f"</code></dd><dt>{_('Record reference (DocRefId)')}</dt><dd><code>"
        self.statement = f"</code></dd><dt>{_('Statement')}</dt><dd><code>"
        self.reasons = {key: _(reason) for key, reason in REASONS.items()}
        self.filed_here = _(FILED_HERE)
        self.contact = f'<p id="contact">{_(CONTACT)}: '


@functools.cache
def _pieces(language: str) -> _Pieces:
    return _Pieces(_texts(language))


def render(
    statement: Mapping[str, Any], language: Language, fmt: Formatter, operator: str, contact: str | None = None
) -> str:
    """The page of one statement (a feed object without ``html_path`` and ``sha256``);
    ``contact``: the ``[statements] contact`` of the configuration, where a seller turns."""
    p = _pieces(language.catalog)
    _ = p.texts
    ident = statement["identity"]
    year = str(statement["year"])
    filed = statement["filed_with"]
    w = wording_for(filed["country"])
    out = [_opening(_, language.tag, year, operator, w)]
    add = out.append
    issued = statement.get("issued")
    if issued:  # the notice's date (PStTG § 24(1) Nr. 4)
        add(f'{p.issued}{escape(issued)}">{escape(fmt.date(issued))}</time></p>')
    masked = statement.get("masked")
    if masked:
        add(p.masked)
    kind = statement["kind"]
    if kind == "correction":
        add(f'<p class="notice">{_(CORRECTED, id=statement["replaces"] or "")}</p>')
    elif kind == "deletion":
        add(f'<p class="notice">{_(WITHDRAWN, id=statement["replaces"] or "")}</p>')
    add(p.who)
    for n in ident["names"]:
        add(f"{p.name}{escape(_name(n))}</dd>")
    for a in ident["addresses"]:
        add(f"{p.address}{_address(a, fmt)}</dd>")
    for c in ident["residence_countries"]:
        add(f"{p.residence}{fmt.country_html(c)}</dd>")
    if ident.get("birth_date"):
        born = ident["birth_date"] if masked else fmt.date(ident["birth_date"])
        add(f"{p.birth_date}{escape(born)}</dd>")
    place = ident.get("birth_place")
    if place:
        country = fmt.country(place["country"]) if place.get("country") else place.get("former_country_name")
        where = ", ".join(part for part in (place.get("city"), country) if part)
        add(f"{p.birth_place}{escape(where)}</dd>")
    if ident.get("vat"):
        add(f"{p.vat}{escape(ident['vat'])}</code></dd>")
    for b in ident.get("business_registration_numbers") or []:
        add(f"{p.registration}{escape(b['number'])}</code></dd>")
    for pe in ident.get("permanent_establishments") or []:
        add(f"{p.establishment}{fmt.country_html(pe)}</dd>")
    add("</dl>")
    if ident["tins"]:
        add(p.tins)
        for t in ident["tins"]:
            tin = p.not_issued if t.get("unknown") or not t["tin"] else f"<code>{escape(t['tin'])}</code>"
            add(f"<tr><td>{tin}</td><td>{fmt.country_html(t['issued_by'] or '')}</td></tr>")
        add("</tbody></table>")
    if ident["financial_accounts"]:
        add(p.accounts)
        for f in ident["financial_accounts"]:
            add(f"<tr><td><code>{escape(f['identifier'] or '')}</code></td><td>{escape(f['holder'] or '')}</td></tr>")
        add("</tbody></table>")
    add(p.withdrawn_figures if kind == "deletion" else p.reported)
    if not statement["activities"]:
        add(p.no_activity)
    currency = statement["currency"] or ""
    count = fmt.integer_html
    for i, act in enumerate(statement["activities"], 1):
        title = p.activities[act["activity"]]
        add(f"<h3>{title}</h3>")
        if act["activity"] == "immovable_property":
            add(f"<dl>{p.property_address}{_address(act['property_address'], fmt)}</dd>")
            ptype = act.get("property_type") or ""
            shown = p.property_types[ptype] if ptype in PROPERTY_TYPES else escape(ptype)
            if act.get("other_property_type"):
                shown += f" ({escape(act['other_property_type'])})"
            add(f"{p.property_type}{shown} <code>{escape(ptype)}</code></dd>")
            if act.get("land_registration_number"):
                add(f"{p.land_registration}{escape(act['land_registration_number'])}</code></dd>")
            if act.get("rented_days") is not None:
                add(f"{p.rented_days}{count(act['rented_days'])}</dd>")
            add("</dl>")
        head, rows = _activity_table(_, title)
        add(f'<table id="activity-{i}">{head}')
        quarters = act["quarters"]
        money = fmt.amounts_html(currency)
        for q, row in zip(QUARTERS, rows, strict=True):
            figs = quarters[q]
            add(
                f'{row}<td class="n">{money(figs["consideration"])}</td>'
                f'<td class="n">{count(figs["number_of_activities"])}</td>'
                f'<td class="n">{money(figs["fees"])}</td>'
                f'<td class="n">{money(figs["taxes"])}</td></tr>'
            )
        add("</tbody></table>")
    add(
        f"{p.filed}{fmt.country_html(filed['country'])}{p.message_ref}{escape(filed['message_ref_id'])}"
        f"{p.doc_ref}{escape(filed['doc_ref_id'])}{p.statement}{escape(statement['statement_id'])}</code></dd></dl>"
    )
    add(_receiving_head(_, w))
    for r in statement["receiving_states"]:
        why = p.reasons[r["reason"]]
        if r["country"] == filed["country"]:  # the filing itself, not an exchange
            why = f"{p.filed_here} ({why})"
        add(f"<tr><td>{fmt.country_html(r['country'])}</td><td>{why}</td></tr>")
    add(_closing(_, w))
    if contact:
        add(f"{p.contact}{_contact(contact)}</p>")
    add("</main>\n</body></html>\n")
    return "".join(out)
