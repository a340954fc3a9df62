"""The real samples through `dac7 validate --rules`, with and without an authority.

Why each sample has the findings it has is written next to its expectations in
tests/unit/test_business_rules.py (the same rules, called directly); here the command line must agree
with that and exit 1 exactly when a file has an error.
"""

from __future__ import annotations

import pytest
from resources import marks, require_file
from resources import sample as sample_path

from reporting.cli import main

# (sample, --authority, expected exit code, a text the output must contain)
CASES = [
    # EU-edition messages without findings under the EU exchange rules
    ("it-ade-sogei__dac7-be-test/Valid-Send-InitialMsg-AssumedPO-010.xml", None, 0, "valid (EU exchange rules)"),
    ("it-ade-sogei__dac7-be-test/initialMessage_Prova.xml", None, 0, "valid (EU exchange rules)"),
    # a domestic Italian filing read as an exchange: SendingEntityIN (10010) and a nil report with sellers (20050)
    ("it-ade-sogei__dac7-be-test/DPIXML_v1.09_2.xml", None, 1, "[20050 BR_OPO_006]"),
    # HMRC's XMLSpy sample: meaningless values, e.g. the id formats (50008, 80001)
    ("uk-hmrc-test-resources/SubmissionSample.xml", None, 1, "[50008 BR_MSG_005]"),
    # the Italian envelope samples against the Italian profile: the envelope is valid, the rules find an
    # OECD2 record without CorrDocRefId in the test message (90040)
    ("it-ade-sogei__dac7-be-test/TDAC7_TEST0112_INI-MSG1-5.xml", "IT", 1, "[90040 BR_TR_90040]"),
    # the French samples: not the EU edition; valid for the French profile, with no DGFiP rule broken
    ("fr-dgfip-examples__adapted-by-backmarket/2_initial_sale_of_goods/declaration.xml", None, 1, "DPI_OECD"),
    ("fr-dgfip-examples__adapted-by-backmarket/2_initial_sale_of_goods/declaration.xml", "FR", 0, "valid (DGFiP"),
    ("fr-dgfip-examples__adapted-by-backmarket/1_initial_immovable_properties/declaration.xml", "FR", 0, "valid"),
]


@pytest.mark.parametrize(
    ("sample", "authority", "code", "text"), [pytest.param(*case, marks=marks(sample_path(case[0]))) for case in CASES]
)
def test_samples_through_the_command_line(
    sample: str, authority: str | None, code: int, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    require_file(sample_path(sample))
    args = ["validate", "--rules", str(sample_path(sample))] + (["--authority", authority] if authority else [])
    assert main(args) == code
    assert text in capsys.readouterr().out
