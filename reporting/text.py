"""What a text must be to go into a DPI message: the one check shared by the seller records (a
text that fails quarantines its seller) and the configuration (a text that fails is refused at
load, before any work).

* at most 200 characters (``StringMin1Max200_Type``, the type of names, address lines, TINs);
* only characters XML 1.0 can carry, and no other control character (C0 and C1);
* no bidirectional embedding, override or isolate control (U+202A-U+202E, U+2066-U+2069): they
  make a text display as something else than it is (a name that reads backwards, an address
  that hides a part), to the authority's staff and to the seller reading the copy.

Combining characters, right-to-left scripts and the invisible direction marks (U+200E, U+200F)
are ordinary text and pass. A problem is described without quoting the value, which may be
personal data.
"""

from __future__ import annotations

import re

MAX_TEXT = 200
# what XML 1.0 cannot carry, and the C1 controls it can but no name or address holds
_CONTROL = re.compile("[^\u0009\u000a\u000d\u0020-\u007e\u00a0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def text_problem(value: str | None, limit: int = MAX_TEXT) -> str | None:
    """Why a text cannot go into the XML as it is, or None."""
    if value is None:
        return None
    if len(value) > limit:
        return f"is {len(value)} characters long; the schema allows {limit}"
    found = _CONTROL.search(value)
    if found:
        return f"contains a control character (U+{ord(found.group()):04X} at position {found.start() + 1})"
    found = _BIDI.search(value)
    if found:
        return (
            f"contains a bidirectional override or isolate (U+{ord(found.group()):04X} at position "
            f"{found.start() + 1}), which makes the text display as something else than it is"
        )
    return None
