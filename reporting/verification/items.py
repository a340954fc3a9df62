"""The identifiers to verify, read from a file: CSV with the header
``seller_id,kind,country,value[,seller_type]``, JSON Lines, or a JSON list of objects with those
keys (``dac7 verify check --file``).

``kind`` is ``tin`` or ``vat``; ``country`` the member state that issued the TIN, or the VAT
number's prefix; ``seller_type`` ``individual`` (the default) or ``entity``. The file holds
personal data: it is read, never copied, and an error names the file, the line and the key, never
a value.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from reporting.verification.model import KINDS, MAX_SELLER_ID, MAX_VALUE, Item, VerificationError

REQUIRED = ("seller_id", "kind", "country", "value")
SELLER_TYPES = ("individual", "entity")
MAX_BYTES = 512 << 20


def read_items(path: str | Path) -> list[Item]:
    """Every line of the file as an :class:`Item`, or :class:`VerificationError` for the first
    line that breaks the contract (nothing is verified then). ``-`` reads standard input."""
    name = "standard input" if str(path) == "-" else Path(path).name
    try:
        if str(path) == "-":
            text = sys.stdin.read()
        else:
            p = Path(path)
            if p.stat().st_size > MAX_BYTES:
                raise VerificationError(f"{name}: larger than {MAX_BYTES >> 20} MiB; split it into batches")
            text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise VerificationError(f"{name}: no such file") from None
    except UnicodeDecodeError as exc:
        raise VerificationError(f"{name}: not UTF-8 text (byte {exc.start + 1})") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise VerificationError(f"{name}: not a JSON list (line {getattr(exc, 'lineno', '?')})") from None
        if not isinstance(rows, list):
            raise VerificationError(f"{name}: a JSON file holds a list of objects")
        return [_item(row, name, n) for n, row in enumerate(rows, 1)]
    if stripped.startswith("{"):
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise VerificationError(f"{name}: line {n}: not a JSON object") from None
            items.append(_item(row, name, n))
        return items
    reader = csv.DictReader(io.StringIO(text))
    missing = [k for k in REQUIRED if k not in (reader.fieldnames or [])]
    if missing:
        raise VerificationError(
            f"{name}: the CSV header lacks {', '.join(missing)}; expected seller_id,kind,country,value[,seller_type]"
        )
    return [_item(row, name, n) for n, row in enumerate(reader, 2)]


def _item(row: Any, name: str, line: int) -> Item:
    where = f"{name}: line {line}"
    if not isinstance(row, dict):
        raise VerificationError(f"{where}: not an object with the keys {', '.join(REQUIRED)}")
    values: dict[str, str] = {}
    for key in REQUIRED:
        value = row.get(key)
        if not isinstance(value, str) or not value.strip():
            raise VerificationError(f"{where}: {key} is missing or empty (a string is expected)")
        values[key] = value.strip()
    if values["kind"] not in KINDS:
        raise VerificationError(f"{where}: kind must be tin or vat")
    country = values["country"].upper()
    if len(country) != 2 or not country.isalpha():
        raise VerificationError(f"{where}: country must be a two-letter code (the TIN's issuing state, the VAT prefix)")
    seller_type = row.get("seller_type") or "individual"
    if seller_type not in SELLER_TYPES:
        raise VerificationError(f"{where}: seller_type must be individual or entity")
    if len(values["seller_id"]) > MAX_SELLER_ID:
        raise VerificationError(f"{where}: seller_id is longer than {MAX_SELLER_ID} characters")
    if len(values["value"]) > MAX_VALUE:
        raise VerificationError(f"{where}: value is longer than {MAX_VALUE} characters: not a TIN or VAT number")
    return Item(values["seller_id"], values["kind"], country, values["value"], entity=seller_type == "entity")
