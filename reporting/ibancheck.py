"""A fast IBAN validity check that answers exactly as python-stdnum's ``iban.is_valid``.

The rules (the record checks of every routed seller) and the due-diligence report ask whether
each financial account identifier is a valid IBAN: some 10,000 identifiers per 30,000 sellers,
and stdnum spends about 0.1 ms on each (a prefix-database walk, a regular expression compiled
from the country's structure on every call, a base-36 conversion character by character).

:func:`is_valid` takes the common case itself: a ``str`` made only of ASCII letters, digits,
spaces, hyphens and dots (the separators stdnum removes). For it the answer is stdnum's: the
same compact form (those separators removed, upper case), the same country table and BBAN
structure (read from stdnum's own database and compiled with stdnum's own function, once), the
same ISO 7064 mod 97-10 sum; these tests are conjunctive and side-effect free, so their order
does not change the answer. For a country with a check of its own in stdnum (Belgium, Spain,
Montenegro, Norway), that module then decides: the call stdnum makes last, with the same
argument. Any other input (other characters, which stdnum maps or rejects in its own ways; not
a ``str``) goes to stdnum unchanged.

The equality is proven by a property test (``tests/properties/test_ibancheck.py``) for the
stdnum version named in :data:`VERIFIED_STDNUM`; with another version every call goes to stdnum
until the test has been run against it and the constant updated.
"""

from __future__ import annotations

import re
from typing import Any

import stdnum
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError

#: The python-stdnum version the property test proved this check equal to.
VERIFIED_STDNUM = "2.2"

#: Whether the fast path is in use (stdnum is the version the equality was proven for).
FAST = stdnum.__version__ == VERIFIED_STDNUM

# the inputs taken here: ASCII letters and digits, and the separators stdnum's compact() removes
_SIMPLE = re.compile(r"[A-Za-z0-9 .\-]*")
_SEPARATORS = str.maketrans("", "", " .-")
# base 36 as ISO 7064 reads it: A -> 10 ... Z -> 35 (digits stay)
_BASE10 = str.maketrans({chr(ord("A") + i): str(10 + i) for i in range(26)})


def _bban_patterns() -> dict[str, re.Pattern[str]]:
    """Per country code of stdnum's IBAN database, the BBAN structure compiled as stdnum does."""
    patterns: dict[str, re.Pattern[str]] = {}
    for length, low, high, props, _children in stdnum_iban._ibandb.prefixes:
        if length != 2 or low != high or not props:  # pragma: no cover - not in stdnum 2.2
            raise RuntimeError("stdnum's IBAN database is not a table of two-letter country codes")
        patterns[low] = stdnum_iban._struct_to_re(props.get("bban", ""))
    return patterns


_PATTERNS: dict[str, re.Pattern[str]] = _bban_patterns() if FAST else {}
#: the countries with a check of their own in stdnum (Belgium, Spain, Montenegro, Norway)
_OWN_CHECK: dict[str, Any] = {c: m for c in _PATTERNS if (m := stdnum_iban._get_cc_module(c)) is not None}


def is_valid(number: str) -> bool:
    """Exactly ``stdnum.iban.is_valid(number)``, computed without stdnum where that is proven equal."""
    if not FAST or type(number) is not str or _SIMPLE.fullmatch(number) is None:
        return bool(stdnum_iban.is_valid(number))
    compact = number.translate(_SEPARATORS).upper()
    pattern = _PATTERNS.get(compact[:2])
    if pattern is None or pattern.match(compact[4:]) is None:
        return False  # a country stdnum does not know (or shorter than two), or the wrong structure
    # the structure bounded the length, so this integer is small (stdnum: int() of the same digits)
    if int((compact[4:] + compact[:4]).translate(_BASE10)) % 97 != 1:
        return False
    own = _OWN_CHECK.get(compact[:2])
    if own is None:
        return True
    try:  # the call stdnum makes last, with the same compact form
        own.validate(compact)
    except ValidationError:
        return False
    return True
