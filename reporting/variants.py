"""National readings of the DAC7 rules, as data: the law of the member state an operator files in.

**Which law applies.** An operator files in one member state: the state of its nexus, or the one
it chose among several (Annex V, Section III(A); in Germany an operator that reports in another
member state is exempt, PStTG § 13(2)). That state's transposition decides what is reported about
every seller of the filing, wherever the seller lives (PStTG § 4(5) and (6) define exempt sellers
and residence for sellers resident in any member state). The states of residence and of property
receive what the filing state's law decided, through the exchange between authorities
(Art. 8ac(2) of Directive 2011/16/EU). So a run applies one reading, :func:`reading_for` the filing
state, to every seller: never the reading of a state that merely receives a seller.

Sources: ``dac7-legal-notes.md`` of the reference material, Q2 (de minimis) and Q4 (currency).

- **Germany**, PStTG § 4(5) Nr. 4 and its last sentence: the amount test is "weniger als 2 000
  Euro" (strictly less, where DAC7 says "did not exceed"), and a seller that meets the goods tests
  is exempt only for its sales of goods ("nur in Bezug auf die dort genannte relevante
  Tätigkeit"): a mixed seller is reported for its other activities. Certainty: high (statute,
  consolidated text as amended on 22.12.2025).
- **Ireland**, Revenue Tax and Duty Manual 38-03-31 (eBrief 231/23): an annual average exchange
  rate for the EUR 2,000 threshold. The exact published series was not retrieved; this pipeline
  uses the mean of the year's ``fx_rates`` rates (the ECB daily reference rates in the demo).
  Certainty: low-medium; check against the manual before relying on it.
- **France**, CGI art. 1649 ter C II 4° (an unofficial English translation): "did not exceed
  EUR 2,000", the EU wording; whether a mixed seller is exempt for its goods part only is not
  said there. The EU wording applies.
- **Every other member state**, Lithuania among them: its transposition has not been checked; the
  EU wording of Annex V is assumed (:attr:`LegalVariant.checked` is false, and the manifest, the
  decisions and ``dac7 explain`` say so).

Where the EU wording itself is unclear (whether the de minimis exclusion is of the seller or of
its goods part, Q2; the conversion rate for the threshold, Q4), this module applies the literal
reading: the seller is exempt only when *all* its activities are sales of goods under both
limits, converted at the year-end rate (``fx_basis``) unless a state says otherwise.

**The financial account identifier** (FAI, e.g. an IBAN) is reported where it is available and
"the competent authority of the Member State where the Reportable Seller is resident ... has not
notified the competent authorities of all other Member States that it does not intend to use" it
(Annex V, Section III(B)(2)(b) and (3)(b), as the EU schema's annotation of FinancialIdentifier
numbers them; the EU wording was not read from EUR-Lex: certainty medium). :data:`FAI_NOT_USED`
lists the states known to have said so, each with its source; every other state is treated as
wanting it (unknown is not "no"): where no source could be found, the identifier keeps being
reported. How the notices apply is again the filing state's law (:func:`reports_financial_identifier`):

- the EU wording: the seller's record goes to each of its states of residence, and one state's
  notice does not take the identifier from the others: it is left out only when every EU state
  of residence has said it will not use it. A seller resident outside the EU (reported for its
  property in the EU) has no state whose notice applies: the identifier is reported (literal
  reading; no source addresses this case);
- Germany, PStTG § 14(2) Nr. 6 (and § 14(3) Nr. 7 for entities): "es sei denn, in einer auf der
  Internetseite des Bundeszentralamts für Steuern veröffentlichten Liste ist angegeben, dass die
  zuständige Behörde des Mitgliedstaats ..., in dem der Anbieter als ansässig gilt oder in dem das
  unbewegliche Vermögen belegen ist, ... die Kennung des Finanzkontos nicht zu verwenden
  beabsichtigt": it is left out when a state of residence or a state where a reported property
  lies is on the list.

In a preview of what one state receives, that state's own notice applies too: a state that said
it will not use the identifier is not sent it.

**A jurisdiction outside the EU** that applies the OECD Model Rules has a reading here too, so that
every decision names the law that made it: the United Kingdom (``GB``), whose rules of residence,
listings, reportable jurisdictions and scope are :data:`reporting.jurisdictions.UNITED_KINGDOM`.
Its de minimis test is the EU wording's (a seller that *solely* sold goods, fewer than 30 times
and for at most EUR 2,000: HMRC IEIM901630), and the financial account identifier is always
reported where the operator has it (``fai_rule`` ``model_rules``: every jurisdiction on HMRC's
list requires it, IEIM901820).

The UK states the amount limit in euros, as the Model Rules do: "the total Consideration paid or
credited did not exceed 2000 euros during the Reportable Period. Both tests must be met"
(IEIM901630). No sterling figure was found in HMRC's manual. SI 2023/817 reg. 3(2) has a
reporting platform operator apply the due diligence procedures of section II of the model rules,
and its Explanatory Note names the model rules as the OECD's texts (the Model Rules and their
extended scope): the limit is the OECD's, in euros. Unsure: Schedule 1 to the Regulations defines
"excluded seller" as Section I(B)(4) "subject to the modification in regulation 10", whose wording
was not read here. A UK filing tests a seller's goods
consideration against EUR 2,000.00, "did not exceed" (EUR 2,000.00 exactly is still under it,
where the German reading has crossed), with the 30th sale crossing. For the conversion HMRC asks
only for consistency: "The OECD states that POs should use a consistent exchange rate", with a
link to HMRC's own exchange rates (IEIM901710, written of consideration paid in a non-fiat form;
no paragraph on the threshold's conversion was found). The run's ``fx_basis`` (one basis for
every seller and period) is applied, as for a member state without a rule of its own
(``threshold_rate`` ``year_end``); whether HMRC expects its own monthly rates there is not known.
The quarterly watch (``dags/dac7_support/watch.py``) reads a GB filing's limits from this reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from reporting.countries import EU_MEMBER_STATES
from reporting.results import Reading


@dataclass(frozen=True, slots=True)
class LegalVariant:
    """How one member state reads the rules that decide who is reported with which figures."""

    state: str = ""  # the state whose transposition this is; "" for the EU wording itself
    de_minimis_strict: bool = False  # the amount test is "< EUR 2,000" instead of "<= EUR 2,000"
    goods_part_exclusion: bool = False  # a mixed seller is exempt for its goods part only
    threshold_rate: str = "year_end"  # or "annual_average": the rate for the EUR 2,000 test
    source: str = "Directive (EU) 2021/514, Annex V"
    #: whether the state's transposition was checked; False: the EU wording is assumed for it
    checked: bool = True
    #: the filing state this reading is applied for (the same as ``state`` for a national reading)
    filing_state: str = ""
    #: how the notices of :data:`FAI_NOT_USED` apply: ``all_residence_states`` (the EU wording:
    #: left out when every EU state of residence said it will not use the identifier) or
    #: ``any_residence_or_property_state`` (Germany: when any of them, or a property's state, did);
    #: ``model_rules``: always (a Model Rules jurisdiction whose partners all require it)
    fai_rule: str = "all_residence_states"

    @property
    def code(self) -> str:
        """``DE`` for a national reading, ``EU`` for the EU wording (recorded per seller)."""
        return self.state or "EU"

    @property
    def label(self) -> str:
        """The reading in words, for the manifest, the decisions and ``dac7 explain``."""
        if self.state:
            return f"{self.state} reading ({self.source})"
        if self.filing_state and not self.checked:
            return (
                f"EU wording ({self.source}), assumed for {self.filing_state}: its transposition has not been checked"
            )
        return f"EU wording ({self.source})" + (f" for {self.filing_state}" if self.filing_state else "")

    # ------------------------------------------------------------------ the de minimis test in words
    @property
    def amount_limit_text(self) -> str:
        """The amount limit of the de minimis test as this reading words it."""
        if self.de_minimis_strict:
            return f'less than EUR 2,000.00 ({self.source}: "weniger als 2 000 Euro")'
        return 'at most EUR 2,000.00 ("did not exceed")'

    @property
    def amount_crossed_text(self) -> str:
        """What a seller's goods consideration is when it fails the amount test."""
        return "EUR 2,000.00 or more" if self.de_minimis_strict else "more than EUR 2,000.00"

    def as_dict(self) -> Reading:
        return {
            "filing_state": self.filing_state,
            "reading": self.code,
            "label": self.label,
            "checked": self.checked,
            "de_minimis_strict": self.de_minimis_strict,
            "goods_part_exclusion": self.goods_part_exclusion,
            "threshold_rate": self.threshold_rate,
            "financial_identifier": self.fai_rule,
            "financial_identifier_not_used_by": [] if self.fai_rule == MODEL_RULES_FAI else sorted(FAI_NOT_USED),
            "source": self.source,
        }


EU_READING = LegalVariant()
#: :attr:`LegalVariant.fai_rule` of a Model Rules jurisdiction
MODEL_RULES_FAI = "model_rules"

VARIANTS: dict[str, LegalVariant] = {
    "DE": LegalVariant(
        "DE",
        de_minimis_strict=True,
        goods_part_exclusion=True,
        source="PStTG § 4(5) Nr. 4 and last sentence",
        fai_rule="any_residence_or_property_state",
    ),
    "IE": LegalVariant("IE", threshold_rate="annual_average", source="Revenue TDM 38-03-31"),
    "GB": LegalVariant(
        "GB",
        source="SI 2023/817 (OECD Model Rules); HMRC IEIM901630: fewer than 30 sales, did not exceed EUR 2,000",
        fai_rule=MODEL_RULES_FAI,
    ),
}

#: Member states whose transposition of the de minimis rule was read and found to be the EU
#: wording (so the EU reading applies to them as checked, not as an assumption).
EU_WORDING_CHECKED: dict[str, str] = {
    "FR": "CGI art. 1649 ter C II 4° (unofficial translation): did not exceed EUR 2,000",
}


def reading_for(filing_state: str) -> LegalVariant:
    """The reading that decides every seller of a filing in ``filing_state``: the state's own
    where :data:`VARIANTS` has one, else the EU wording (said to be assumed where the state's
    transposition was not checked, Lithuania among them)."""
    national = VARIANTS.get(filing_state)
    if national is not None:
        return replace(national, filing_state=filing_state)
    if filing_state in EU_WORDING_CHECKED:
        source = f"{EU_READING.source}; {EU_WORDING_CHECKED[filing_state]}"
        return replace(EU_READING, filing_state=filing_state, source=source)
    return replace(EU_READING, filing_state=filing_state, checked=False)


def variant_of(code: str) -> LegalVariant:
    """The reading recorded as ``code`` (``DE``, ``IE`` ... or ``EU``/"")."""
    return VARIANTS.get(code, EU_READING)


# --------------------------------------------------------------------------- financial account identifier


@dataclass(frozen=True, slots=True)
class FaiNotice:
    """A member state's notice that it does not intend to use the financial account identifier."""

    state: str
    source: str
    certainty: str


#: The states known to have notified that they do not intend to use the financial account
#: identifier. A state missing here is treated as wanting it: no published list of the notices
#: could be read (not the BZSt list that PStTG § 14(2) Nr. 6 refers to, not the French arrêté of
#: CGI art. 1649 ter A II 4° (JORFTEXT000046820256), not the Commission's), so only what a statute
#: says is here. Update it from the BZSt list when it can be read, with the date it was read.
FAI_NOT_USED: dict[str, FaiNotice] = {
    "DE": FaiNotice(
        "DE",
        "PStTG § 9(6) Nr. 1 sentence 2: the Federal Ministry of Finance notifies the competent authorities of "
        "all other member states that the German authority does not intend to use the financial account "
        "identifier (consolidated text as amended on 22.12.2025)",
        "high (statute); the date of the notification and the BZSt list itself were not read",
    ),
}


def reports_financial_identifier(
    residence: Iterable[str],
    receiving: str | None = None,
    *,
    property_states: Iterable[str] = (),
    reading: LegalVariant = EU_READING,
) -> bool:
    """Whether a seller's financial account identifier goes into its record (see the module's
    text for the two readings). ``residence``: the seller's states of residence; ``property_states``:
    where its reported property lies; ``receiving``: the state a preview is for (None in a filing)."""
    if reading.fai_rule == MODEL_RULES_FAI:
        return True
    eu = [c for c in residence if c in EU_MEMBER_STATES]
    if reading.fai_rule == "any_residence_or_property_state":
        filed = not any(c in FAI_NOT_USED for c in (*eu, *property_states))
    else:
        filed = not eu or any(c not in FAI_NOT_USED for c in eu)
    if receiving is None:
        return filed
    return filed and receiving not in FAI_NOT_USED
