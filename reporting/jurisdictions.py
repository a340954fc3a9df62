"""The rule set of the jurisdiction an operator files in, as data with its sources.

An operator files in one jurisdiction, and that jurisdiction's law decides every seller of the
filing. Two families of law are known here:

* **DAC7** (Directive (EU) 2021/514, Annex V), for every EU member state: the rule set
  :data:`DAC7`. A member state's own reading of it (the German de minimis ...) is
  :mod:`reporting.variants`; this module holds what all member states share.
* **The OECD Model Rules for Reporting by Platform Operators**, as a jurisdiction outside the EU
  transposed them: the United Kingdom (:data:`UNITED_KINGDOM`). Canada and New Zealand apply the
  same Model Rules and come next, each as one more :class:`RuleSet` here and one profile module.

Where the Model Rules differ from DAC7, the rule set says so in a field of its own, each with
the paragraph it rests on (:attr:`RuleSet.sources`), and :mod:`reporting.rules` reads the field,
never the jurisdiction's code:

* **residence** (:attr:`RuleSet.residence_from_tin`, :attr:`RuleSet.residence_from_pe`,
  :attr:`RuleSet.residence_from_gvs`): the Model Rules take the primary address, unless the
  operator relied on a government verification service (HMRC IEIM902520); DAC7 adds the state
  that issued a TIN and, for an entity, each state of a permanent establishment (Annex V,
  Section II(D); the project's legal notes, Q1), and its rule set forbids GVS data (EU rule
  30030);
* **the Property Listing** (:attr:`RuleSet.listing_same_owner`): DAC7 merges the units at one
  address only where they have the same owner (PStTG § 6(7), the project's legal notes, Q3); the
  OECD definition has no owner condition (IEIM904230);
* **the reportable jurisdictions** (:class:`PartnerList`): DAC7 reports the residents of every
  member state and property located there; the UK reports the residents of the UK and of its
  partner jurisdictions, and property located there, as HMRC lists them for each reportable
  period (IEIM906000, IEIM901820), or as ``[authorities.GB] partner_jurisdictions`` sets them;
* **the scope** (:attr:`RuleSet.scope`): the Model Rules' core scope is personal services and the
  rental of immovable property; the sale of goods and the rental of means of transport are the
  extended scope. DAC7 and the UK apply both; a partner jurisdiction may take only the core
  scope for its residents (New Zealand, IEIM901820).

What both share and :mod:`reporting.rules` applies unchanged, each checked against the Model
Rules' text as HMRC explains it: the excluded sellers (IEIM901630: governmental entities, listed
entities, an entity's listing of more than 2,000 rentals, and the seller that *solely* sold goods
fewer than 30 times for at most EUR 2,000, both tests met), the currency (IEIM901710: consideration
in fiat currency is reported in the currency paid or credited, a conversion is consistent), the
refunds (IEIM901740: consideration on a cash basis, a refund after the period corrects the earlier
period's report, never the next period's), the reportable period (the calendar year) and the
deadlines of the filing and of the seller's copy (31 January of the following year, SI 2023/817
reg. 4(1) and 4(4)); those dates are rows of ``reporting/authorities/deadlines.toml``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from reporting.countries import EU_MEMBER_STATES
from reporting.vocabulary import ACTIVITIES, NOT_REPORTABLE_JURISDICTION, NOT_REPORTABLE_NON_EU, PROPERTY, SERVICES

#: The Model Rules' core scope: personal services and the rental of immovable property
#: (HMRC IEIM901820: New Zealand takes "only" these; OECD DPI XSD v1.0, annotation of
#: RelevantActivities: goods and transport rental are the "Extended Scope").
CORE_SCOPE: frozenset[str] = frozenset({SERVICES, PROPERTY})
#: Both scopes: every relevant activity of the source contract.
EXTENDED_SCOPE: frozenset[str] = frozenset(ACTIVITIES)

IEIM = "https://www.gov.uk/hmrc-internal-manuals/international-exchange-of-information/"


@dataclass(frozen=True, slots=True)
class PartnerList:
    """The jurisdictions whose residents (and property located there) a filing reports for one
    reportable period, each with the activities it receives (its scope), as a source lists them."""

    period: int
    #: jurisdiction -> the activities reported for its residents and its property
    jurisdictions: Mapping[str, frozenset[str]]
    source: str
    #: when the source was read, or the date the source gives itself
    read: str


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules of a jurisdiction's law that decide who is reported, as data (see the module)."""

    #: ``DAC7`` for the EU rule set, else the filing jurisdiction (``GB``)
    code: str
    name: str
    #: the law, in words, for the manifest and the explanations
    law: str
    #: the state that issued a seller's TIN is also a state of residence (DAC7)
    residence_from_tin: bool
    #: each state of an entity's permanent establishment is also a state of residence (DAC7)
    residence_from_pe: bool
    #: a government verification service the operator relied on sets the residence (Model Rules)
    residence_from_gvs: bool
    #: a Property Listing is the units at one address *of one owner* (DAC7), else of any owner
    listing_same_owner: bool
    #: the activities the filing jurisdiction's law covers
    scope: frozenset[str]
    #: the area a seller must be resident in, in words ("the EU", "the UK's reportable jurisdictions")
    area: str
    #: the decision of a seller resident outside the area without property in it
    not_reportable: str
    #: the published lists of reportable jurisdictions, by reportable period (empty for DAC7,
    #: whose list is the member states, :data:`EU_MEMBER_STATES`)
    partner_lists: tuple[PartnerList, ...] = ()
    #: rule -> the paragraph it rests on (with its address)
    sources: Mapping[str, str] = field(default_factory=dict)
    #: the first reportable period the law applies to (its source: ``sources["first_period"]``)
    first_period: int = 2023

    @property
    def model_rules(self) -> bool:
        """Whether this is a transposition of the OECD Model Rules (not DAC7)."""
        return self.code != DAC7.code

    def period_problem(self, year: int, key: str) -> str | None:
        """Why ``year`` cannot be filed under this law (None: it can): a period before the law
        applies. ``key`` names the configuration key that chose the filing jurisdiction."""
        if year >= self.first_period:
            return None
        return (
            f"reporting year {year}: {key} = {self.code!r} files under {self.law}, which applies from the "
            f"{self.first_period} reportable period ({self.sources.get('first_period', '')}); file {year} "
            "only where a law then applied"
        )

    def published_list(self, year: int) -> PartnerList | None:
        """The list published for ``year``, or None (none for that period was found)."""
        return next((p for p in self.partner_lists if p.period == year), None)

    def reportable(self, year: int, configured: Iterable[str] | None = None) -> Reportable:
        """The reportable jurisdictions of a filing for ``year``: ``configured`` (the operator's
        ``partner_jurisdictions``; ``[]``: the filing jurisdiction alone) where given, else the
        list published for the year, else the latest list before it (the first, for a period
        before it), said to be assumed (:attr:`Reportable.assumed`). A configured jurisdiction
        keeps the scope that list gives it (New Zealand: the core scope only, IEIM901820); one the
        list does not name receives the filing jurisdiction's whole scope."""
        if not self.model_rules:
            return Reportable({c: self.scope for c in EU_MEMBER_STATES}, "the EU member states (Annex V)", "")
        own = {self.code: self.scope}
        published, assumed = self._list_for(year)
        if configured is not None:
            chosen = {c: published.jurisdictions.get(c, self.scope) & self.scope for c in sorted(set(configured))}
            chosen.pop(self.code, None)
            source = f"configured: [authorities.{self.code}] partner_jurisdictions (scopes of {published.source})"
            return Reportable({**own, **chosen}, source, "")
        listed = {c: scope & self.scope for c, scope in published.jurisdictions.items()}
        return Reportable({**listed, **own}, f"{published.source} (read {published.read})", assumed)

    def _list_for(self, year: int) -> tuple[PartnerList, str]:
        """The list published for ``year``, else the latest before it, else the first; with why it
        is assumed ("" for the year's own)."""
        published = self.published_list(year)
        if published is not None:
            return published, ""
        earlier = [p for p in self.partner_lists if p.period < year]
        # the latest list before the period; for a period before the first list, the first
        published = max(earlier, key=lambda p: p.period) if earlier else min(self.partner_lists, key=lambda p: p.period)
        return published, (
            f"no list of {self.code}'s partner jurisdictions for the {year} reportable period was found; "
            f"the list for {published.period} is applied: set [authorities.{self.code}] partner_jurisdictions "
            "to the list the authority publishes for the period"
        )


@dataclass(frozen=True, slots=True)
class Reportable:
    """The reportable jurisdictions of one filing, resolved for its period: each with the
    activities reported for its residents and for property located there."""

    jurisdictions: Mapping[str, frozenset[str]]
    source: str
    #: why the list is an assumption ("" when it is the published or the configured one)
    assumed: str

    def __contains__(self, country: object) -> bool:
        return country in self.jurisdictions

    def covers(self, country: str | None, activity: str) -> bool:
        """Whether ``activity`` is reported for a resident of (or property in) ``country``."""
        return country is not None and activity in self.jurisdictions.get(country, frozenset())


#: The EU rule set: Annex V of Directive 2011/16/EU as inserted by Directive (EU) 2021/514.
DAC7 = RuleSet(
    code="DAC7",
    name="DAC7",
    law="Directive (EU) 2021/514, Annex V",
    residence_from_tin=True,
    residence_from_pe=True,
    residence_from_gvs=False,
    listing_same_owner=True,
    scope=EXTENDED_SCOPE,
    area="the EU",
    not_reportable=NOT_REPORTABLE_NON_EU,
    sources={
        "residence": "Annex V, Section II(D); PStTG § 4(6) (the project's legal notes, Q1): the primary address, "
        "and also the member state that issued the TIN and, for an entity, each state of a permanent establishment",
        "gvs": "EU rule 30030 (BR_RS_003): GVS data must not be provided; the electronic identification service "
        "of Annex V, Section II(D) is not implemented",
        "listing": "PStTG § 6(7) (the project's legal notes, Q3): the units at one address, of the same owner, "
        "offered by the same seller",
        "scope": "Annex V, Section I(A)(9): the four relevant activities",
        "first_period": "Directive (EU) 2021/514, Article 2(1): the member states apply the provisions from "
        "1 January 2023",
    },
)

#: HMRC's list of the UK's partner jurisdictions for the 2024 reportable period (IEIM901820,
#: read in a mirror copy of the page; HMRC's manual updates record the list on 3 December 2024).
#: New Zealand counts for the core scope only; the list names the United Kingdom itself too.
_UK_2024 = PartnerList(
    2024,
    {
        "BG": EXTENDED_SCOPE,
        "CA": EXTENDED_SCOPE,
        "IE": EXTENDED_SCOPE,
        "LV": EXTENDED_SCOPE,
        "NZ": CORE_SCOPE,
        "GB": EXTENDED_SCOPE,
    },
    f"HMRC IEIM901820 ({IEIM}ieim901820): reportable jurisdictions for the 2024 reportable period; New Zealand for "
    "the rental of immovable property and personal services only",
    "2024-12-03 (HMRC manual update)",
)
#: HMRC's list for the 2025 reportable period (IEIM906000). New Zealand's core-only scope is
#: not repeated there; it is kept from IEIM901820, as New Zealand applies the core scope alone
#: (Inland Revenue: the extended standard is not implemented): unsure for 2025.
_UK_2025 = PartnerList(
    2025,
    {
        **dict.fromkeys(
            ("BG", "CA", "CO", "HR", "CZ", "IS", "IE", "LV", "LT", "NL", "PL", "SK", "SI", "ES", "SE"), EXTENDED_SCOPE
        ),
        "NZ": CORE_SCOPE,
    },
    f"HMRC IEIM906000 ({IEIM}ieim906000): the UK's partner jurisdictions for the 2025 reportable period; New "
    "Zealand's core-only scope kept from IEIM901820",
    "the page's label '2025 Reportable Period' (no date shown)",
)

#: The United Kingdom: the Platform Operators (Due Diligence and Reporting Requirements)
#: Regulations 2023 (SI 2023/817), which give effect to the OECD Model Rules, as HMRC's
#: International Exchange of Information Manual explains them.
UNITED_KINGDOM = RuleSet(
    code="GB",
    name="United Kingdom (OECD Model Rules)",
    law="The Platform Operators (Due Diligence and Reporting Requirements) Regulations 2023 (SI 2023/817)",
    residence_from_tin=False,
    residence_from_pe=False,
    residence_from_gvs=True,
    listing_same_owner=False,
    scope=EXTENDED_SCOPE,
    area="the UK's reportable jurisdictions",
    not_reportable=NOT_REPORTABLE_JURISDICTION,
    partner_lists=(_UK_2024, _UK_2025),
    first_period=2024,
    sources={
        "first_period": "SI 2023/817 reg. 1, citation and commencement (https://www.legislation.gov.uk/uksi/2023/"
        "817/regulation/1/made): the Regulations apply from 1 January 2024; HMRC IEIM903210 "
        f"({IEIM}ieim903210): the first reportable period is 1 January to 31 December 2024",
        "residence": f"HMRC IEIM902520 ({IEIM}ieim902520): a seller is resident in the jurisdiction of its primary "
        "address; the only exception is a government verification service the operator relied on",
        "gvs": f"HMRC IEIM902520 ({IEIM}ieim902520): where the operator relied on a government verification "
        "service, the seller is resident in the jurisdiction of that service",
        "listing": f"HMRC IEIM904230 ({IEIM}ieim904230): a Property Listing is the units at the same street "
        "address offered for rent by the same seller (no owner condition)",
        "reportable": f"SI 2023/817 reg. 2(1): a partner jurisdiction is one HMRC lists in a notice; HMRC IEIM906000 "
        f"({IEIM}ieim906000) and IEIM901820 ({IEIM}ieim901820) list them per reportable period",
        "scope": "SI 2023/817 reg. 2(1) and 2(2) (https://www.legislation.gov.uk/uksi/2023/817/regulation/2): 'the "
        "model rules' include the OECD (2021) Optional Module for sale of goods, and Relevant Activity has the "
        "model rules' meaning, so the UK applies the extended scope (the sale of goods and the rental of means of "
        f"transport besides personal services and immovable property); HMRC IEIM901540 ({IEIM}ieim901540): the sale "
        "of goods",
        "excluded": f"HMRC IEIM901630 ({IEIM}ieim901630): governmental and listed entities, an entity's listing of "
        "more than 2,000 rentals, and a seller that solely sold goods fewer than 30 times for at most EUR 2,000",
        "currency": f"HMRC IEIM901710 ({IEIM}ieim901710): consideration in fiat currency is reported in the currency "
        "paid or credited; a conversion is consistent for all sellers and periods",
        "refunds": f"HMRC IEIM901740 ({IEIM}ieim901740): consideration on a cash basis, net of the period's refunds; "
        "a later refund corrects the earlier period's report",
        "financial_identifier": f"HMRC IEIM901820 ({IEIM}ieim901820): every listed jurisdiction requires the "
        "financial account identifier where the operator has it",
        "deadline": "SI 2023/817 reg. 4(1) and 4(4) (https://www.legislation.gov.uk/uksi/2023/817/regulation/4/made): "
        "the report to HMRC and the seller's copy by 31 January following the reportable period",
    },
)

#: The rule sets of the jurisdictions outside the EU, by filing jurisdiction. Canada and New
#: Zealand come next: each one more entry, with its profile module in reporting/authorities.
MODEL_RULES: dict[str, RuleSet] = {"GB": UNITED_KINGDOM}


def rule_set_for(filing_state: str) -> RuleSet:
    """The rule set of a filing in ``filing_state``: a Model Rules jurisdiction's own, else DAC7
    (every EU member state; config refuses any other filing state)."""
    return MODEL_RULES.get(filing_state, DAC7)


#: ``[authorities.XX] partner_jurisdictions``: the reportable jurisdictions an operator sets itself
#: (alpha-2 codes), as the configuration keeps them: one text, the codes joined by commas
PARTNERS_KEY = "partner_jurisdictions"


def partner_jurisdictions(authorities: Mapping[str, Mapping[str, str]], filing_state: str) -> list[str] | None:
    """The ``partner_jurisdictions`` of the filing state's ``[authorities.XX]`` table, or None
    when it is not set. An empty list is a choice, not an absence: no partner, the filing
    jurisdiction alone (``[]``, kept as the empty text)."""
    value = authorities.get(filing_state, {}).get(PARTNERS_KEY)
    return None if value is None else [c for c in value.split(",") if c]


def is_filing_jurisdiction(code: str) -> bool:
    """Whether an operator may file in ``code``: an EU member state or a Model Rules jurisdiction."""
    return code in EU_MEMBER_STATES or code in MODEL_RULES


__all__ = [
    "CORE_SCOPE",
    "DAC7",
    "EXTENDED_SCOPE",
    "MODEL_RULES",
    "PARTNERS_KEY",
    "UNITED_KINGDOM",
    "PartnerList",
    "Reportable",
    "RuleSet",
    "is_filing_jurisdiction",
    "partner_jurisdictions",
    "rule_set_for",
]
