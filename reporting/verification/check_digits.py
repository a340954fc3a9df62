"""The ``stdnum`` adapter: an identifier's format and check digits, as python-stdnum knows them
(:mod:`reporting.identifiers`, the checks of the due-diligence report). No service is called; a
verified answer rests on the format only (:data:`reporting.verification.model.FORMAT`), which is
not the check of an interface that PStTG § 18(1) sentence 2 asks for where one exists."""

from __future__ import annotations

import stdnum

from reporting.config import AdapterSettings
from reporting.identifiers import check_tin, check_vat
from reporting.ledger.model import INVALID, UNVERIFIED, VERIFIED
from reporting.verification.model import FORMAT, TIN, Answer, Item, split_vat


class StdnumAdapter:
    name = "stdnum"
    level = FORMAT
    remote = False

    def __init__(self, settings: AdapterSettings) -> None:
        self.settings = settings

    @property
    def source(self) -> str:
        return f"python-stdnum {stdnum.__version__}"

    def accepts(self, item: Item) -> bool:
        return True

    def pace(self) -> None:
        return None

    def unavailable(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        return None

    def call(self, item: Item) -> Answer:
        if item.kind == TIN:
            c = check_tin(item.value, item.country.upper(), "entity" if item.entity else "individual")
        else:  # the number VIES would be asked about, under the key it is cached by (Greece as EL)
            c = check_vat("".join(split_vat(item)))
        if c.status == "valid":
            return Answer(VERIFIED, f"format and check digits valid ({c.detail})")
        if c.status == "malformed":
            return Answer(INVALID, c.detail)
        return Answer(UNVERIFIED, c.detail)
