"""The rule set of the jurisdiction an operator files in, as data with its sources.

An operator files in one jurisdiction, and that jurisdiction's law decides every seller of the
filing. Two families of law are known here:

* **DAC7** (Directive (EU) 2021/514, Annex V), for every EU member state: the rule set
  :data:`DAC7`. A member state's own reading of it (the German de minimis ...) is
  :mod:`reporting.variants`; this module holds what all member states share.
* **The OECD Model Rules for Reporting by Platform Operators**, as a jurisdiction outside the EU
  transposed them: the United Kingdom (:data:`UNITED_KINGDOM`). Canada and New Zealand apply the
  same Model Rules; each becomes one more :class:`RuleSet` here and one profile module once the
  facts a filing needs are found. Until then each is a :class:`PendingJurisdiction`
  (:data:`PENDING`): what was found, each fact with its source, and what was searched for and not
  found, which the configuration names when it refuses the jurisdiction (see the end of this text).

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

Canada and New Zealand are not filed yet, and neither is guessed (:data:`CANADA`,
:data:`NEW_ZEALAND`; the sources, read for the 2024 and 2025 reportable periods, are in each
entry):

* **Canada** (Income Tax Act, Part XX): the return is not the OECD DPI message but the Canada
  Revenue Agency's own XML layout, the "Part XX Information Return" (versions 2025V3 and 2026V2),
  sent with a T619 electronic transmittal by Internet file transfer (at most 150 MB a file). Its
  XML schema files could not be read or vendored, only the first fields of its layout were read,
  and the form of its document reference ids was not found: no file could be written and
  validated against the CRA's schema.
* **New Zealand** (Tax Administration Act 1994, s. 185S): the OECD DPI XML Schema, uploaded in
  myIR to a Digital Platform Information account (at most 200 MB an upload), report and seller
  copy by 7 February, the core scope only. What SendingEntityIN holds, the MessageRefId and
  DocRefId forms Inland Revenue expects, its checks of an upload and its list of partner
  jurisdictions were not found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from reporting.countries import EU_MEMBER_STATES
from reporting.vocabulary import (
    ACTIVITIES,
    NOT_REPORTABLE_JURISDICTION,
    NOT_REPORTABLE_NON_EU,
    PROPERTY,
    SERVICES,
    TRANSPORT,
)

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
#: Zealand come next (:data:`PENDING`): each one more entry, with its profile module in
#: reporting/authorities, once the facts :attr:`PendingJurisdiction.missing` names are found.
MODEL_RULES: dict[str, RuleSet] = {"GB": UNITED_KINGDOM}


@dataclass(frozen=True, slots=True)
class PendingJurisdiction:
    """A jurisdiction of the OECD Model Rules that this version does not file in yet: the facts
    found, each with its source, and the facts a filing needs that no source read gives. Nothing
    here is guessed: a fact not found is in :attr:`missing`, never filled in."""

    code: str
    name: str
    #: the law, in words
    law: str
    #: the authority that receives the report
    authority: str
    #: the first reportable period the law applies to
    first_period: int
    #: the activities its law covers
    scope: frozenset[str]
    #: the due day (``MM-DD``) of the report to the authority, in the year after the period
    filing_due: str
    #: the due day (``MM-DD``) of the seller's copy, in the year after the period; None: not found
    seller_copy_due: str | None
    #: the partner jurisdictions the authority lists, by reportable period (empty: no list found)
    partners: Mapping[int, frozenset[str]]
    #: fact -> what the source says, with the source (its address, and its date where shown)
    found: Mapping[str, str]
    #: fact a filing needs -> where it was searched for and not found
    missing: Mapping[str, str]

    def refusal(self, key: str) -> str:
        """Why the configuration refuses this jurisdiction as a filing jurisdiction (``key``:
        the configuration key that named it), naming every missing fact."""
        return (
            f"{key}: {self.code} ({self.name}) applies the OECD Model Rules ({self.law}), but this version does not "
            f"file there yet: not found in the published sources read: {'; '.join(self.missing)}. "
            "Nothing is guessed; the facts found and the sources searched are in the jurisdiction table of "
            "docs/rules/authorities.md"
        )


CRA = "https://www.canada.ca/en/revenue-agency/"
CRA_DPI = f"{CRA}programs/about-canada-revenue-agency-cra/compliance/reporting-rules-digital-platforms/"
CRA_EFILE = f"{CRA}services/e-services/filing-information-returns-electronically-t4-t5-other-types-returns-overview/"

#: Canada: Part XX of the Income Tax Act, as the Canada Revenue Agency (CRA) publishes it.
CANADA = PendingJurisdiction(
    code="CA",
    name="Canada",
    law="Income Tax Act, Part XX (Reporting Rules for Digital Platform Operators)",
    authority="Canada Revenue Agency (CRA)",
    first_period=2024,
    scope=EXTENDED_SCOPE - {TRANSPORT},
    filing_due="01-31",
    seller_copy_due=None,
    partners={2024: frozenset({"BG", "LV", "NZ", "GB", "IE", "SE"})},
    found={
        "law": f"CRA, Guidance on the Reporting Rules for Digital Platform Operators, 1.1 ({CRA_DPI}"
        "guidance-on-reporting-rules.html): the rules were implemented by the addition of Part XX of the Income "
        "Tax Act; the OECD commentaries and FAQ are aids to interpret it, the CRA guidance prevails (1.4)",
        "deadline": f"CRA, Filing information returns ({CRA_DPI}filing-information-returns.html): a reporting "
        "platform operator files its report for the previous calendar year by January 31; the first deadline is "
        "January 31, 2025, for the 2024 calendar year",
        "scope": "CRA tax tip 'Operating a digital platform?' of 10 September 2024 (https://canada.ca/en/revenue-"
        "agency/news/newsroom/tax-tips/tax-tips-2024/operating-digital-platform.html): sellers who sell goods or "
        "offer services, such as the rental of real or immovable property (the rental of means of transport: see "
        "missing)",
        "account": f"CRA, Filing information returns ({CRA_DPI}filing-information-returns.html): a business number "
        "and an information returns RZ program account of the type 'Compliance and Exchange' before the first "
        "Part XX return",
        "format": f"CRA, Filing information returns ({CRA_DPI}filing-information-returns.html): the Part XX "
        "information is filed 'in prescribed form using an extensible markup language (XML) Schema'; CRA, Part "
        f"XX Information Return ({CRA_EFILE}t619-next-year/partxx.html, 2025V3 updated 2024-12-23, and "
        "partxx-2026.html, 2026V2 updated 2025-12-02: UserName and AccountCreateDate removed, CanadianNexus "
        "removed from sellers, BN15 and ReportingYearEnd added to the reporting platform operator): a layout of "
        "the CRA's own (PartXX/PartXXBody/PlatformOperator with ResCountryCode, TIN with issuedBy and unknown, "
        "'NOTIN'), not the OECD DPI message, sent with a T619 Electronic Transmittal record",
        "transmission": f"CRA, Internet File Transfer (IFT) Reference Guide ({CRA_EFILE}filing-information-"
        "returns-electronically-t4-t5-other-types-returns-file/common-errors.html): an XML file of at most 150 MB "
        "(compressed allowed, at most 1 GB uncompressed); a submission is rejected when the T619's transmitter "
        "account number is not the account used to log in",
        "gvs": f"CRA, Completing a Part XX information return ({CRA_DPI}completing-part-xx-information-return.html):"
        " the Government Verification Service procedures referenced in the Part XX XML schema are not operational "
        "and are not used",
        "partners": f"CRA, List of partner jurisdictions ({CRA_DPI}list-partner-jurisdictions.html): Bulgaria, "
        "Latvia, New Zealand, the United Kingdom, Ireland and Sweden, each in effect from 2024 (the page's date "
        "of modification was not read); it is updated as partnerships are confirmed",
    },
    missing={
        "the CRA's XML schema files for the Part XX return": "the CRA publishes them as a schema package of "
        "their own; the only public copy found (partXXxmlschm1-26-1.zip, among the test resources of the GitHub "
        "repository replikativ/kontor) is a binary that could not be opened here, and the CRA's terms for "
        "redistributing it were not checked, so no file could be written and validated against them",
        "the Part XX layout after the platform operator's identification fields": "only the start of the 2025V3 "
        "and 2026V2 layout pages was read (ResCountryCode, TIN, IN, VAT, Name, PlatformBusinessName, BN15)",
        "the form of the document reference ids and how a correction or deletion refers to an earlier record": (
            f"'Fields for document specification' of {CRA_DPI}completing-part-xx-information-return.html was not "
            "read beyond its table of contents"
        ),
        "the T619 fields of a Part XX submission": f"the T619 layout read ({CRA_EFILE}t619.html, 2022V1) names the "
        "MM transmitter number of other returns; the RZ account's place in a Part XX T619 was not read",
        "whether Part XX covers the rental of means of transport": "the CRA pages read name goods, services and "
        "the rental of immovable property only; it is left out of the scope here until a source names it",
        "the seller's copy and its due day": "not in the CRA pages read (a secondary source, Andersen Canada's "
        "blog 'New reporting requirements for Digital Platform Operator', gives 31 January)",
    },
)

IRD = "https://ird.govt.nz/"

#: New Zealand: the Tax Administration Act 1994 as amended by the Taxation (Annual Rates for
#: 2022-23, Platform Economy, and Remedial Matters) Act 2023, as Inland Revenue publishes it.
NEW_ZEALAND = PendingJurisdiction(
    code="NZ",
    name="New Zealand",
    law="Tax Administration Act 1994, s. 185S (model reporting standard for digital platforms)",
    authority="Inland Revenue (IRD)",
    first_period=2024,
    scope=CORE_SCOPE,
    filing_due="02-07",
    seller_copy_due="02-07",
    partners={},
    found={
        "law": f"Inland Revenue, Model rules for sharing and gig economy ({IRD}international-tax/exchange-of-"
        "information/model-rules-for-sharing-and-gig-economy, last updated 15 May 2024): New Zealand adopted the "
        "model rules into its legislation (Tax Information Bulletin Vol 35 No 6, July 2023, pp. 5-15, cited "
        "there, not read); Tax Administration Act 1994 s. 185S (reporting platform operators and sellers: model "
        "reporting standard) and s. 185T (the extended standard, only by Order in Council), read in a plain-"
        "language summary of legislation.govt.nz (plainlanguagelaw.ackama.com), not in the Act itself",
        "first_period": f"Inland Revenue, Model rules for sharing and gig economy ({IRD}international-tax/exchange-"
        "of-information/model-rules-for-sharing-and-gig-economy): from 1 January 2024 platform operators based "
        "in New Zealand collect the information, and report it in early 2025",
        "scope": f"Inland Revenue, Information reporting overview ({IRD}sharing-economy/online-marketplaces/"
        "income-reporting-rules/information-reporting-overview): the rental of immovable property and personal "
        "services; the extended standard (sale of goods, vehicle rental) 'has not been implemented in New Zealand "
        "at this stage' (model rules page, 15 May 2024)",
        "deadline": f"Inland Revenue, Information reporting overview ({IRD}sharing-economy/online-marketplaces/"
        "income-reporting-rules/information-reporting-overview) and How to report information ({IRD}sharing-"
        "economy/online-marketplaces/income-reporting-rules/how-to-report-information): the report by 7 February "
        "for the past calendar year, and the sellers' copy by 7 February",
        "format": f"Inland Revenue, How to report information ({IRD}sharing-economy/online-marketplaces/income-"
        "reporting-rules/how-to-report-information, last updated 13 June 2024 and a later version): annually, "
        "with the information in quarterly periods, 'using the OECD model rules XML Schema'",
        "transmission": f"Inland Revenue, How to report information ({IRD}sharing-economy/online-marketplaces/"
        "income-reporting-rules/how-to-report-information): in myIR, to a Digital Platform Information (DPI) "
        "account, by XML file upload (at most 200MB an upload) or an Excel template (at most 1,000 sellers); "
        "corrections by the same methods",
        "exchange": f"Inland Revenue, Model rules for sharing and gig economy ({IRD}international-tax/exchange-of-"
        "information/model-rules-for-sharing-and-gig-economy): exchanged under the Multilateral Convention on "
        "Mutual Administrative Assistance in Tax Matters with foreign tax authorities that implemented the Model "
        "Rules (no list named)",
    },
    missing={
        "what MessageSpec/SendingEntityIN holds": "no Inland Revenue page on the DPI file says (for CRS, Inland "
        "Revenue's draft validations of February 2017 ask for the IRD number in SendingCompanyIN: "
        "taxpolicy.ird.govt.nz/publications/2017/2017-other-aeoi-technical/ird-validations-draft; nothing says "
        "the same of the DPI file)",
        "the MessageRefId and DocRefId forms Inland Revenue expects": "not on its DPI pages, nor in its public "
        "GitHub repositories (InlandRevenue/File_Upload_Services-Returns-and-Information, "
        "Gateway_Services-Returns-and-Information: no DPI product); the CRS form [IRD number].[unique id] of 2017 "
        "is not said to apply to the DPI file",
        "Inland Revenue's checks of an uploaded DPI file and the result it returns": "not found",
        "the list of New Zealand's partner jurisdictions per reportable period": "Inland Revenue names none "
        "beyond 'foreign tax authorities that have implemented the Model Rules' (once the rest is found, "
        "[authorities.NZ] partner_jurisdictions can set it, as for the UK)",
    },
)

#: The jurisdictions of the OECD Model Rules not filed yet, by code: the configuration refuses
#: each as a filing jurisdiction with :meth:`PendingJurisdiction.refusal`.
PENDING: dict[str, PendingJurisdiction] = {"CA": CANADA, "NZ": NEW_ZEALAND}


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


def filing_refusal(code: str, key: str) -> str | None:
    """Why an operator may not file in ``code`` (``key``: the configuration key that named it),
    or None where it may (:func:`is_filing_jurisdiction`). A jurisdiction of :data:`PENDING` is
    refused naming the facts not found; any other is neither a member state nor a Model Rules
    jurisdiction this version knows."""
    if is_filing_jurisdiction(code):
        return None
    pending = PENDING.get(code)
    if pending is not None:
        return pending.refusal(key)
    return (
        f"{key}: {code!r} is not an EU member state code, nor a jurisdiction of the OECD Model Rules this version "
        f"knows ({', '.join(sorted(MODEL_RULES))})"
    )


__all__ = [
    "CANADA",
    "CORE_SCOPE",
    "DAC7",
    "EXTENDED_SCOPE",
    "MODEL_RULES",
    "NEW_ZEALAND",
    "PARTNERS_KEY",
    "PENDING",
    "UNITED_KINGDOM",
    "PartnerList",
    "PendingJurisdiction",
    "Reportable",
    "RuleSet",
    "filing_refusal",
    "is_filing_jurisdiction",
    "partner_jurisdictions",
    "rule_set_for",
]
