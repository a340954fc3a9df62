"""The statements written by several processes: the same bytes as by one (the feed, every page,
each line's ``sha256``), the same counts and findings, the same problem reported for a faulty
filing with any number of processes; no part file left; small filings written in one process."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from test_statements_feed import XML

from reporting.statements import feed as feed_module
from reporting.statements import writer
from reporting.statements.feed import MixedCurrencyError, Published, Written, write_statements

HEAD, _, REST = XML.partition("<dpi:ReportableSeller>")
ENTITY, _, REST = REST.partition("</dpi:ReportableSeller>")
PERSON, _, _ = REST.partition("<dpi:ReportableSeller>")[2].partition("</dpi:ReportableSeller>")
TAIL = "</dpi:DPIBody></dpi:DPI_OECD>\n"
KINDS = ("OECD11", "OECD12", "OECD13")  # initial, correction, deletion
CURRENCIES = ("EUR", "PLN", "USD", "CHF")
#: sellers.language in turn: none, the project's languages with regions, an invalid tag (a finding)
TAGS = (None, "de", "fr-BE", "lt", "pl", "en-GB", "fr", "de_DE!", "pt")
NAMES = ("Maison Durand SARL", "Žemaitė & <Sūnūs> UAB", 'Łódź "Meble" Sp. z o.o.', "Müller GmbH")


def record(n: int, authority: str) -> str:
    """Seller ``n`` of a message: an entity or a person, in turn an initial record, a correction
    or a deletion, in one of four currencies, with a name that needs escaping now and then."""
    body = ENTITY if n % 2 == 0 else PERSON
    kind = KINDS[n % 3]
    spec = f"<stf:DocTypeIndic>{kind}</stf:DocTypeIndic><stf:DocRefId>{authority}2025-R{n:06d}</stf:DocRefId>"
    if kind != "OECD11":
        spec += f"<stf:CorrDocRefId>{authority}2025-E{n:06d}</stf:CorrDocRefId>"
    head, _, _ = body.partition("<dpi:DocSpec>")
    head = head.replace('currCode="EUR"', f'currCode="{CURRENCIES[n % 4]}"')
    head = head.replace(
        "Maison Durand SARL", NAMES[n % 4].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    )
    head = head.replace("<dpi:LastName>Lee</dpi:LastName>", f"<dpi:LastName>Lee-{n}</dpi:LastName>")
    return f"<dpi:ReportableSeller>{head}<dpi:DocSpec>{spec}</dpi:DocSpec></dpi:ReportableSeller>\n"


def filing(folder: Path, authority: str, sellers: int, *, broken: dict[int, str] | None = None) -> Path:
    """A message of ``sellers`` records filed with ``authority``; ``broken``: record -> what is
    wrong with it (``currencies``: amounts in two currencies; ``identity``: no Identity)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{authority}.xml"
    head = HEAD.replace("<dpi:TransmittingCountry>LT<", f"<dpi:TransmittingCountry>{authority}<")
    head = head.replace("LT2025LTMSG2", f"{authority}2025MSG")
    with open(path, "w", encoding="utf-8") as f:
        f.write(head)
        for n in range(sellers):
            text = record(n, authority)
            problem = (broken or {}).get(n)
            if problem == "currencies":
                text = text.replace('currCode="', 'currCode="X', 1).replace('currCode="X', 'currCode="JPY" data="', 1)
            elif problem == "identity":
                text = text.replace("<dpi:Identity>", "<dpi:Other>").replace("</dpi:Identity>", "</dpi:Other>")
            f.write(text)
        f.write(TAIL)
    return path


def sellers_of(ids: list[str]) -> dict[str, str]:
    return {d: f"S-{d}" for d in ids if not d.endswith("-missing")}


def languages_of(ids: list[str]) -> dict[str, str | None]:
    return {s: TAGS[int(s[-6:]) % len(TAGS)] for s in ids}


def write(out: Path, messages: list[Published], workers: int, **kw: Any) -> Written:
    return write_statements(
        out,
        messages,
        environment="test",
        year=2025,
        seller_of=kw.pop("seller_of", sellers_of),
        language_of=languages_of,
        run_id="run-1",
        issued=date(2026, 1, 20),
        contact="help@example.com",
        workers=workers,
        **kw,
    )


def files(out: Path) -> dict[str, bytes]:
    folder = out / "statements"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 7 statements and lookups of 50: a filing of a few hundred sellers is many chunks
    and several batches, with a short chunk at the end of each batch."""
    monkeypatch.setattr(writer, "CHUNK", 7)
    monkeypatch.setattr(feed_module, "BATCH", 50)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("workers", [1, 2])
def test_page_writers_write_the_same_bytes_as_one_process(tmp_path: Path, workers: int) -> None:
    messages = [
        Published(filing(tmp_path / "in", "LT", 233), "LT"),
        Published(filing(tmp_path / "in", "DE", 61), "DE"),  # chunks run on from one message into the next
    ]
    one = write(tmp_path / "one", messages, 0)
    many = write(tmp_path / f"many{workers}", messages, workers)

    alone, shared = files(tmp_path / "one"), files(tmp_path / f"many{workers}")
    assert len(alone) == 1 + 1 + 294  # the feed, the run's own feed, a page per statement
    assert shared.keys() == alone.keys()
    assert [name for name in alone if shared[name] != alone[name]] == []
    # the lines as the contract has them, in the order of the filed records, each naming its page
    lines = [json.loads(line) for line in alone["statements.jsonl"].decode().splitlines()]
    assert [s["filed_with"]["doc_ref_id"] for s in lines] == [f"LT2025-R{n:06d}" for n in range(233)] + [
        f"DE2025-R{n:06d}" for n in range(61)
    ]
    assert {s["kind"] for s in lines} == {"initial", "correction", "deletion"}
    assert {s["currency"] for s in lines} == set(CURRENCIES)
    assert {s["language"] for s in lines} == {"en", "de", "fr-BE", "lt", "pl", "en-GB", "fr"}
    for s in lines:
        assert hashlib.sha256(alone[s["html_path"].removeprefix("statements/")]).hexdigest() == s["sha256"]
    # the same result: counts, findings in the order of the records, the feed's hash
    assert (many.statements, many.kinds, many.languages, many.kept) == (one.statements, one.kinds, one.languages, 0)
    numbers = [*range(233), *range(61)]
    assert many.kinds == {
        kind: sum(1 for n in numbers if n % 3 == i) for i, kind in enumerate(("initial", "correction", "deletion"))
    }
    assert [f.key for f in many.findings] == [f.key for f in one.findings]
    invalid = [f"S-LT2025-R{n:06d}" for n in range(233) if n % 9 == 7] + [
        f"S-DE2025-R{n:06d}" for n in range(61) if n % 9 == 7
    ]
    assert [f.key for f in one.findings] == invalid  # "de_DE!", every ninth seller's tag
    assert many.sha256 == one.sha256 == hashlib.sha256(alone["statements.jsonl"]).hexdigest()
    assert alone["runs/run-1.jsonl"] == alone["statements.jsonl"]
    assert not list((tmp_path / f"many{workers}" / "statements").glob(".*"))  # no part file, no temporary feed


@pytest.mark.usefixtures("small_chunks")
def test_recorded_statements_are_kept_whichever_process_writes_them(tmp_path: Path) -> None:
    """Every fifth statement recorded before with another page and an older ``issued``: its line
    is the recorded one and its page is not written, in one process as with two page writers."""
    messages = [Published(filing(tmp_path / "in", "LT", 150), "LT")]
    first = write(tmp_path / "first", messages, 0)
    lines = (tmp_path / "first" / "statements" / "statements.jsonl").read_text("utf-8").splitlines()
    given = {s["statement_id"]: s for s in map(json.loads, lines)}
    recorded = {
        sid: ("0" * 64, json.dumps({**s, "issued": "2025-12-31", "sha256": "0" * 64}, sort_keys=True))
        for n, (sid, s) in enumerate(given.items())
        if n % 5 == 0
    }
    outs = []
    for workers in (0, 2):
        out = tmp_path / f"again{workers}"
        written = write(out, messages, workers, recorded=lambda ids: {i: recorded[i] for i in ids if i in recorded})
        assert (written.statements, written.kept) == (first.statements, len(recorded))
        outs.append(files(out))
    assert outs[0] == outs[1]
    lines = [json.loads(line) for line in outs[1]["statements.jsonl"].decode().splitlines()]
    kept = [s for s in lines if s["statement_id"] in recorded]
    assert len(kept) == 30 and {(s["issued"], s["sha256"]) for s in kept} == {("2025-12-31", "0" * 64)}
    assert all(s["html_path"].removeprefix("statements/") not in outs[1] for s in kept)  # not written


def problem(tmp_path: Path, messages: list[Published], workers: int, **kw: Any) -> tuple[type, str]:
    with pytest.raises((ValueError, LookupError)) as raised:
        write(tmp_path / f"out{workers}", messages, workers, **kw)
    assert not (tmp_path / f"out{workers}" / "statements" / "statements.jsonl").exists()
    assert not list((tmp_path / f"out{workers}" / "statements").glob(".*"))
    return type(raised.value), str(raised.value)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize(
    ("broken", "missing", "expected"),
    [
        # two currencies in record 90 (batch 1), a record without Identity in 20 (batch 0): the
        # earlier batch's problem, although reading runs a batch ahead of writing
        ({90: "currencies", 20: "identity"}, None, "ReportableSeller LT2025-R000020 without Identity"),
        # in one batch, a record that cannot be read comes before the lookups, and the lookups
        # before the figures (as one process meets them: the batch read, looked up, written)
        ({63: "currencies", 95: "identity"}, None, "ReportableSeller LT2025-R000095 without Identity"),
        ({63: "currencies"}, 70, "1 seller record(s) of the published files are not in the ledger"),
        ({30: "currencies"}, 70, "seller S-LT2025-R000030 (DocRefId LT2025-R000030)"),
        ({140: "currencies"}, None, "seller S-LT2025-R000140 (DocRefId LT2025-R000140)"),
    ],
)
def test_a_faulty_filing_is_refused_with_the_same_problem_by_any_number_of_processes(
    tmp_path: Path, broken: dict[int, str], missing: int | None, expected: str
) -> None:
    messages = [Published(filing(tmp_path / "in", "LT", 160, broken=broken), "LT")]

    def seller_of(ids: list[str]) -> dict[str, str]:
        return {d: f"S-{d}" for d in ids if missing is None or d != f"LT2025-R{missing:06d}"}

    found = {workers: problem(tmp_path, messages, workers, seller_of=seller_of) for workers in (0, 1, 2)}
    assert found[0] == found[1] == found[2]
    kind, message = found[0]
    assert expected in message
    if "currencies" in message:
        assert kind is MixedCurrencyError


def test_a_small_filing_is_written_in_this_process(tmp_path: Path) -> None:
    """By default page writers start only for published files of 4 MiB or more, one fewer than
    the cores (at most three): starting a process costs more than a small filing takes."""
    small = filing(tmp_path / "in", "LT", 20)
    assert writer.auto_workers([(str(small), "LT")]) == 0
    big = tmp_path / "big.xml"
    with open(big, "wb") as f:
        f.truncate(writer.AUTO_WORKERS_FROM_BYTES)
    cores = len(os.sched_getaffinity(0))
    assert writer.auto_workers([(str(big), "LT")]) == max(0, min(cores - 1, writer.MAX_AUTO_WORKERS))
    written = write_statements(
        tmp_path / "out",
        [Published(small, "LT")],
        environment="test",
        year=2025,
        seller_of=sellers_of,
        language_of=languages_of,
    )
    assert written.statements == 20
