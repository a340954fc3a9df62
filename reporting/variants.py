"""National readings of the DAC7 rules, as data: where a member state transposed a rule
differently, its receiving authority gets the seller as its own law reads it. The EU reading
is the default for every other state.

Sources: ../shared/reference/dac7-legal-notes.md, Q2 (de minimis) and Q4 (currency).
- Germany, PStTG § 4(5) Nr. 4 and its last sentence: the amount test is "weniger als 2 000 Euro"
  (strictly less, where DAC7 says "did not exceed"), and a seller that meets the goods tests is
  excluded only for its sales of goods ("nur in Bezug auf die dort genannte relevante
  Tätigkeit"): a mixed seller is reported for its other activities. Certainty: high (statute).
- Ireland, Revenue Tax and Duty Manual 38-03-31 (eBrief 231/23): an annual average exchange
  rate for the EUR 2,000 threshold. The exact published series was not retrieved; this
  pipeline uses the mean of the year's fx_rates rates (the ECB daily reference rates in the
  demo). Certainty: low-medium; check against the manual before relying on it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LegalVariant:
    state: str = ""  # "" is the EU reading
    de_minimis_strict: bool = False  # the amount test is "< EUR 2,000" instead of "<= EUR 2,000"
    goods_part_exclusion: bool = False  # a mixed seller is excluded for its goods part only
    threshold_rate: str = "year_end"  # or "annual_average": the rate for the EUR 2,000 test
    source: str = ""

    @property
    def label(self) -> str:
        return f"{self.state} reading ({self.source})" if self.state else "EU reading"


EU_READING = LegalVariant()

VARIANTS: dict[str, LegalVariant] = {
    "DE": LegalVariant("DE", de_minimis_strict=True, goods_part_exclusion=True, source="PStTG § 4(5)"),
    "IE": LegalVariant("IE", threshold_rate="annual_average", source="Revenue TDM 38-03-31"),
}
