"""The record checks of the audit (``mapping._batch_problems``) find a seller's own problems without
building its record (``mapping._row_problems``), and build it only for a profile that checks sellers
itself: the same findings, in the same order, as building every record once per set of account
identifiers and asking every authority's profile (the code before, copied here), on generated rows
with bad names, TINs, texts, addresses, birth dates, figures, several authorities (FR, HU, DE, IT,
GB and the EU generic edition) and account identifiers left out for some of them."""

from __future__ import annotations

import gc
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporting import cyclic_gc, mapping
from reporting.authorities import EU_GENERIC, profile_for
from reporting.authorities.base import AuthorityProfile
from reporting.authorities.eu import EuProfile
from reporting.authorities.registry import NATIONAL
from reporting.errors import DataError
from reporting.findings import Finding
from reporting.mapping import _four, _is_iban, _texts
from reporting.records import ActivityFigures, FinancialAccount, PostalAddress, SellerRecord, Tin
from reporting.text import text_problem
from reporting.variants import reading_for
from reporting.vocabulary import ACTIVITY_ORDER, GOODS, PROPERTY, SERVICES

_S = pa.string()
_FIGURES = pa.list_(pa.int64())
#: The columns of ``mapping.ALL_SELLERS_SQL``, in its order.
SCHEMA = pa.schema(
    [(name, _S) for name in ("seller_id", "seller_type", "first_name", "last_name", "legal_name")]
    + [("birth_date", pa.date32())]
    + [
        (name, _S)
        for name in (
            "birth_city",
            "birth_country",
            "residence_country",
            "address_street",
            "address_building",
            "address_post_code",
            "address_city",
            "address_country",
            "vat_id",
            "business_registration_number",
        )
    ]
    + [("is_governmental", pa.bool_()), ("is_listed", pa.bool_()), ("language", _S), ("gvs_jurisdiction", _S)]
    + [
        ("residence_countries", pa.list_(_S)),
        ("tins", pa.list_(pa.struct([("tin", _S), ("issued_by", _S)]))),
        ("accounts", pa.list_(pa.struct([("identifier", _S), ("holder", _S)]))),
        ("pe_countries", pa.list_(_S)),
        (
            "pe_addresses",
            pa.list_(pa.struct([(n, _S) for n in ("country", "street", "building", "post_code", "city")])),
        ),
        (
            "acts",
            pa.list_(
                pa.struct(
                    [("activity", _S), ("listing_id", _S), ("currency", _S)]
                    + [(n, _FIGURES) for n in ("cons", "numb", "fees", "tax")]
                    + [("rented_days", pa.int64())]
                    + [
                        (n, _S)
                        for n in (
                            "street",
                            "building",
                            "post_code",
                            "city",
                            "country",
                            "land_registration_number",
                            "property_type",
                            "other_property_type",
                        )
                    ]
                )
            ),
        ),
        ("authorities", pa.list_(_S)),
    ]
)


# --- the code before, as it was -------------------------------------------------------------
def old_seller_record(row: dict[str, Any], this_year: int = 9999) -> tuple[SellerRecord, list[Finding]]:
    sid = row["seller_id"]
    problems: list[Finding] = []

    def need(value: Any, column: str, rule: str) -> None:
        if value in (None, ""):
            problems.append(
                Finding(
                    rule=rule,
                    table="sellers",
                    key=sid,
                    seller_id=sid,
                    message=f"{column} is required to report this seller; complete it in the source",
                )
            )

    country = row["address_country"] or row["residence_country"]
    need(row["address_city"], "address_city", "seller.address_incomplete")
    if row["seller_type"] == "individual":
        need(row["first_name"], "first_name", "seller.name_missing")
        need(row["last_name"], "last_name", "seller.name_missing")
        need(row["birth_date"], "birth_date", "seller.birth_date_missing")
        if row["birth_date"] and not 1900 <= row["birth_date"].year <= this_year:
            problems.append(
                Finding(
                    rule="seller.birth_date_out_of_range",
                    table="sellers",
                    key=sid,
                    seller_id=sid,
                    message=f"birth_date must lie between 1900 and {this_year} (EU rule 40130); correct it",
                )
            )
        if not row["tins"]:
            need(row["birth_city"], "birth_city (no TIN: EU rule 40140)", "seller.birth_place_missing")
            need(row["birth_country"], "birth_country (no TIN: EU rule 40140)", "seller.birth_place_missing")
    else:
        need(row["legal_name"], "legal_name", "seller.name_missing")
    for table, key, column, value in _texts(row):
        problem = text_problem(value)
        if problem:
            problems.append(
                Finding(
                    rule="seller.text_not_reportable",
                    table=table,
                    key=key,
                    seller_id=sid,
                    message=f"{column} {problem}",
                )
            )
    activities = []
    for a in sorted(row["acts"], key=lambda a: (ACTIVITY_ORDER.index(a["activity"]), a["listing_id"])):
        address = None
        if a["activity"] == PROPERTY:
            address = PostalAddress(
                country=a["country"],
                city=a["city"],
                street=a["street"],
                building=a["building"],
                post_code=a["post_code"],
            )
            listing_problems = (
                (
                    a["property_type"] == "DPI910" and not a["other_property_type"],
                    "listing.other_property_type_missing",
                    "property_type DPI910 (Other) needs the text in other_property_type (EU rule 30050)",
                ),
                (
                    not a["city"],
                    "listing.address_incomplete",
                    "address_city is required for a reported Property Listing",
                ),
            )
            problems.extend(
                Finding(rule=rule, table="property_listings", key=a["listing_id"], seller_id=sid, message=message)
                for failed, rule, message in listing_problems
                if failed
            )
        activities.append(
            ActivityFigures(
                activity=a["activity"],
                currency=a["currency"],
                listing_id=a["listing_id"],
                consideration=_four(a["cons"]),
                activities=_four(a["numb"]),
                fees=_four(a["fees"]),
                taxes=_four(a["tax"]),
                address=address,
                land_registration_number=a["land_registration_number"],
                property_type=a["property_type"],
                other_property_type=a["other_property_type"],
                rented_days=int(a["rented_days"] or 0),
            )
        )
    tins = tuple(
        sorted((Tin(t["tin"], t["issued_by"]) for t in (row["tins"] or [])), key=lambda t: (t.issued_by, t.value))
    )
    accounts = tuple(
        sorted(
            (
                FinancialAccount(a["identifier"], a["holder"], _is_iban(a["identifier"]))
                for a in (row["accounts"] or [])
            ),
            key=lambda a: a.identifier,
        )
    )
    record = SellerRecord(
        seller_id=sid,
        seller_type=row["seller_type"],
        res_countries=tuple(row["residence_countries"]),
        tins=tins,
        address=PostalAddress(
            country=country,
            city=row["address_city"],
            street=row["address_street"],
            building=row["address_building"],
            post_code=row["address_post_code"],
        ),
        activities=tuple(activities),
        first_name=row["first_name"],
        last_name=row["last_name"],
        legal_name=row["legal_name"],
        birth_date=row["birth_date"],
        birth_city=row["birth_city"],
        birth_country=row["birth_country"],
        vat=row["vat_id"],
        brn=row["business_registration_number"],
        accounts=accounts,
        permanent_establishments=tuple(sorted(row["pe_countries"] or [])),
        pe_addresses=tuple(
            sorted(
                (
                    PostalAddress(
                        country=p["country"],
                        city=p["city"],
                        street=p["street"],
                        building=p["building"],
                        post_code=p["post_code"],
                    )
                    for p in row["pe_addresses"] or []
                ),
                key=lambda a: (a.country, a.city or "", a.street or "", a.building or ""),
            )
        ),
    )
    return record, problems


def old_batch_problems(batch: pa.RecordBatch, profile_of: Any, drops: Any, this_year: int) -> list[Finding]:
    """The loop of ``record_problems`` before: every record built, every profile asked."""
    findings: list[Finding] = []
    for row in batch.to_pylist():
        authorities = row.pop("authorities")
        built: dict[bool, tuple[SellerRecord, list[Finding]]] = {}
        for authority in authorities:
            drop = drops(row, authority)
            if drop not in built:
                built[drop] = old_seller_record({**row, "accounts": None} if drop else row, this_year)
            record, problems = built[drop]
            findings += problems + mapping._profile_problems(profile_of(authority), record, authority)
    return findings


# --- generated rows -------------------------------------------------------------------------
TEXT = st.sampled_from([None, "", "Vilnius", "Rue de la Paix", "x" * 201, "bad\x01text", "evil\u202etxt", "né"])
NAME = st.sampled_from([None, "", "Ona", "Jean", "y" * 250])
COUNTRY = st.sampled_from(["LT", "DE", "FR", "HU", "IT", "US", "GB"])
FIGURE = st.integers(min_value=-5, max_value=10**9)
#: Every national profile (the next one included when it is added), and two states of the EU generic edition.
AUTHORITIES = sorted({*NATIONAL, "LT", "NL"})


@st.composite
def acts(draw: Any, *, figures: Any = FIGURE, seller: int = 0) -> list[dict[str, Any]]:
    out = []
    n = draw(st.integers(1, 4))
    kinds = draw(st.lists(st.sampled_from([PROPERTY, SERVICES, GOODS]), min_size=n, max_size=n))
    for i, kind in enumerate(kinds):
        prop = kind == PROPERTY
        out.append(
            {
                "activity": kind,
                "listing_id": f"L{seller}-{draw(st.integers(0, 3))}-{i}" if prop else "",
                "currency": draw(st.sampled_from(["EUR", "HUF"])),
                **{k: draw(st.lists(figures, min_size=4, max_size=4)) for k in ("cons", "numb", "fees", "tax")},
                "rented_days": draw(st.sampled_from([None, 0, 120])) if prop else None,
                "street": draw(TEXT) if prop else None,
                "building": draw(TEXT) if prop else None,
                "post_code": draw(st.sampled_from([None, "01103"])) if prop else None,
                "city": draw(st.sampled_from([None, "", "Paris", "z" * 201])) if prop else None,
                "country": draw(COUNTRY) if prop else None,
                "land_registration_number": draw(st.sampled_from([None, "LR-1, LR-2"])) if prop else None,
                "property_type": draw(st.sampled_from([None, "DPI901", "DPI910"])) if prop else None,
                "other_property_type": draw(st.sampled_from([None, "", "barn"])) if prop else None,
            }
        )
    return out


@st.composite
def seller_rows(draw: Any, i: int, *, figures: Any = FIGURE, issuers: Any = COUNTRY) -> dict[str, Any]:
    pe = draw(st.lists(st.sampled_from(["DE", "FR", "HU"]), max_size=2, unique=True))
    return {
        "seller_id": f"S{i:04d}",
        "seller_type": draw(st.sampled_from(["individual", "entity"])),
        "first_name": draw(NAME),
        "last_name": draw(NAME),
        "legal_name": draw(NAME),
        "birth_date": draw(st.sampled_from([None, date(1850, 1, 1), date(1980, 5, 17), date(2030, 1, 1)])),
        "birth_city": draw(TEXT),
        "birth_country": draw(st.sampled_from([None, "", "LT"])),
        "residence_country": draw(COUNTRY),
        "address_street": draw(TEXT),
        "address_building": draw(TEXT),
        "address_post_code": draw(st.sampled_from([None, "01103", "p" * 201])),
        "address_city": draw(st.sampled_from([None, "", "Vilnius", "c\x7f"])),
        "address_country": draw(st.sampled_from([None, "LT", "FR"])),
        "vat_id": draw(st.sampled_from([None, "LT100012345678", "v" * 201])),
        "business_registration_number": draw(st.sampled_from([None, "BRN1"])),
        "is_governmental": False,
        "is_listed": draw(st.booleans()),
        "language": draw(st.sampled_from([None, "lt"])),
        "gvs_jurisdiction": None,
        "residence_countries": draw(st.lists(COUNTRY, min_size=1, max_size=3, unique=True)),
        "tins": draw(
            st.lists(
                st.fixed_dictionaries({"tin": st.sampled_from(["123", "t" * 201, "12\u20663"]), "issued_by": issuers}),
                max_size=2,
            )
        )
        or None,
        "accounts": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "identifier": st.sampled_from(["LT121000011101001000", "DE89370400440532013000", "X123"]),
                        "holder": NAME,
                    }
                ),
                max_size=2,
            )
        )
        or None,
        "pe_countries": pe or None,
        "pe_addresses": [
            {
                "country": c,
                "street": None,
                "building": None,
                "post_code": None,
                "city": draw(st.sampled_from([None, "Pest"])),
            }
            for c in pe
            if draw(st.booleans())
        ]
        or None,
        "acts": draw(acts(figures=figures, seller=i)),
        "authorities": sorted(draw(st.lists(st.sampled_from(AUTHORITIES), min_size=1, max_size=4, unique=True))),
    }


@st.composite
def batches(draw: Any, **kwargs: Any) -> pa.RecordBatch:
    n = draw(st.integers(1, 6))
    return pa.RecordBatch.from_pylist([draw(seller_rows(i, **kwargs)) for i in range(n)], schema=SCHEMA)


#: Who checks: every national profile, and the EU generic edition for the others.
PROFILES: dict[str, AuthorityProfile] = {a: profile_for(a) for a in AUTHORITIES}


def outcome(f: Any, *args: Any) -> Any:
    try:
        return ("ok", f(*args))
    except Exception as exc:  # the same failure, of the same kind, with the same words
        return ("raised", type(exc), str(exc))


@settings(max_examples=300, deadline=None)
@given(
    batch=batches(),
    preview=st.booleans(),
    filing_state=st.sampled_from(["LT", "DE", "FR"]),
    only_generic=st.booleans(),
    this_year=st.sampled_from([2026, 9999]),
)
def test_the_problems_are_those_of_every_record_built(
    batch: pa.RecordBatch, preview: bool, filing_state: str, only_generic: bool, this_year: int
) -> None:
    reading = reading_for(filing_state)

    def profile_of(authority: str) -> AuthorityProfile:
        return EU_GENERIC if only_generic else PROFILES[authority]

    def drops(row: dict[str, Any], authority: str) -> bool:
        return mapping._drops_accounts(row, authority, preview, reading)

    assert mapping._records_buildable(batch)
    new = mapping._batch_problems(batch, profile_of, drops, this_year)
    assert new == old_batch_problems(batch, profile_of, drops, this_year)
    for row in batch.to_pylist():
        del row["authorities"]
        assert mapping.seller_record(row, this_year) == old_seller_record(row, this_year)


@settings(max_examples=150, deadline=None)
@given(
    batch=batches(figures=st.one_of(st.none(), FIGURE), issuers=st.one_of(st.none(), st.sampled_from(["DE", "FR"]))),
    preview=st.booleans(),
)
def test_a_batch_whose_records_cannot_be_built_fails_as_before(batch: pa.RecordBatch, preview: bool) -> None:
    """A missing quarterly figure, or a TIN without its state: every record is built, and the
    checks fail (or not) exactly as building every record did; where that was ``int``'s
    ``TypeError`` at a missing figure, it is now a :class:`DataError` naming the staged file, the
    row and the rule."""
    reading = reading_for("LT")

    def drops(row: dict[str, Any], authority: str) -> bool:
        return mapping._drops_accounts(row, authority, preview, reading)

    new = outcome(mapping._batch_problems, batch, PROFILES.__getitem__, drops, 2026)
    old = outcome(old_batch_problems, batch, PROFILES.__getitem__, drops, 2026)
    if new[:2] == ("raised", DataError):
        assert old[:2] == ("raised", TypeError) and "NoneType" in old[2]
        assert f"[{mapping.FIGURE_RULE}] {mapping.REPORTED_FILE} S" in new[2] and "is missing (NULL)" in new[2]
    else:
        assert new == old


def _one(**changes: Any) -> pa.RecordBatch:
    row: dict[str, Any] = {name: None for name in SCHEMA.names}
    row.update(
        seller_id="S1",
        seller_type="individual",
        first_name="Ona",
        last_name="Ona",
        birth_date=date(1980, 5, 17),
        address_city="Vilnius",
        residence_countries=["FR"],
        tins=[{"tin": "123", "issued_by": "FR"}],
        accounts=[{"identifier": "X" * 201, "holder": "Ona"}],
        acts=[
            {
                "activity": PROPERTY,
                "listing_id": "P1",
                "currency": "EUR",
                "cons": [1, -2, 0, 0],
                "numb": [1, 1, 0, 0],
                "fees": [0, 0, 0, 0],
                "tax": [0, 0, 0, 0],
                "rented_days": 3,
                "city": None,
                "country": "FR",
                "property_type": "DPI901",
            }
        ],
        authorities=["DE", "FR"],
    )
    row.update(changes)
    return pa.RecordBatch.from_pylist([row], schema=SCHEMA)


def test_a_seller_s_problems_by_hand() -> None:
    """To DE (a preview: DE does not use account identifiers) and FR (its own profile): the
    account's too long identifier only for FR; the listing without its city for both; FR's
    negative figure; each in the order of the authorities."""
    reading = reading_for("LT")
    problems = mapping._batch_problems(
        _one(), PROFILES.__getitem__, lambda row, a: mapping._drops_accounts(row, a, True, reading), 2026
    )
    listing = Finding(
        rule="listing.address_incomplete",
        table="property_listings",
        key="P1",
        seller_id="S1",
        message="address_city is required for a reported Property Listing",
    )
    too_long = Finding(
        rule="seller.text_not_reportable",
        table="seller_financial_accounts",
        key="S1",
        seller_id="S1",
        message="identifier is 201 characters long; the schema allows 200",
    )
    assert [(f.rule, f.table, f.key) for f in problems] == [
        ("listing.address_incomplete", "property_listings", "P1"),  # DE: the account left out
        ("seller.text_not_reportable", "seller_financial_accounts", "S1"),  # FR: the account's identifier
        ("listing.address_incomplete", "property_listings", "P1"),
        ("fr.amount_negative", "property_listings", "P1"),
    ]
    assert problems[0] == problems[2] == listing
    assert problems[1] == too_long
    assert problems[3].message.endswith("(FR)")


def test_the_buildable_batches() -> None:
    assert mapping._records_buildable(_one())
    assert not mapping._records_buildable(_one(residence_countries=None))
    assert not mapping._records_buildable(_one(tins=[{"tin": "1", "issued_by": None}, {"tin": "2", "issued_by": "FR"}]))
    act = _one().column("acts").to_pylist()[0][0]
    assert not mapping._records_buildable(_one(acts=[{**act, "fees": [0, None, 0, 0]}]))
    assert not mapping._records_buildable(_one(acts=[{**act, "tax": [0, 0, 0]}]))
    assert not mapping._records_buildable(_one(acts=[{**act, "numb": None}]))


def test_a_figure_a_record_cannot_hold_is_an_error_naming_the_file_row_and_rule() -> None:
    """A NULL quarter (the batch builds every record) and a text that is no whole number: a
    :class:`DataError` (one finding: the staged file, the seller/activity/listing/currency key,
    the rule), never ``int``'s bare ``TypeError`` or ``ValueError``, and never the value."""
    act = _one().column("acts").to_pylist()[0][0]
    hint = (
        "; a reported figure is a whole number (minor units, a count, days): the staged file is damaged or was "
        "not written by this version's rules stage, run the rules stage again"
    )
    with pytest.raises(DataError) as caught:
        mapping._batch_problems(
            _one(acts=[{**act, "fees": [0, None, 0, 0]}]), PROFILES.__getitem__, lambda row, a: False, 2026
        )
    assert str(caught.value) == (
        "a staged figure that no record can hold (staged.figure_not_integer); nothing was published:\n"
        "  [staged.figure_not_integer] rules/reported.parquet S1/immovable_property/P1/EUR: fees_q2 is missing (NULL)"
        + hint
    )
    assert caught.value.findings == [
        Finding(
            rule="staged.figure_not_integer",
            table="rules/reported.parquet",
            key="S1/immovable_property/P1/EUR",
            seller_id="S1",
            message="fees_q2 is missing (NULL)" + hint,
        )
    ]
    row = _one().to_pylist()[0]
    del row["authorities"]
    row["acts"][0]["tax"] = ["0", "0", "0", "DE123456789"]  # a text read where a figure belongs
    with pytest.raises(DataError) as caught:
        mapping.seller_record(row)
    assert caught.value.findings[0].message == "tax_q4 is not a whole number (a str)" + hint
    assert "DE123456789" not in str(caught.value)
    row["acts"][0]["tax"] = [0, 0, 0, 0]
    row["acts"][0]["rented_days"] = "three"
    with pytest.raises(DataError) as caught:
        mapping.seller_record(row)
    assert caught.value.findings[0].message == "rented_days is not a whole number (a str)" + hint


@pytest.mark.parametrize(
    ("column_type", "refused"), [("BIGINT", False), ("INTEGER", False), ("VARCHAR", True), ("DOUBLE", True)]
)
def test_a_figure_column_that_is_not_of_an_integer_type_is_refused_before_any_row_is_read(
    column_type: str, refused: bool
) -> None:
    """The staged ``reported`` file's schema is asked first: a text column among the quarters
    would make DuckDB refuse the query in its own words, a floating-point one would be cut to
    whole numbers silently. Named: the file, the column, the rule."""
    con = duckdb.connect()
    con.execute(
        f"create table reported as select 'S1' as seller_id, 1::bigint as cons_q1, '12'::{column_type} as cons_q3"
    )
    con.execute("create table routing as select 'S1' as seller_id, 'FR' as authority")
    readers = mapping._ranged_readers(con, "select seller_id from routing group by seller_id")
    if not refused:
        assert [r.read_all().to_pylist() for r in readers] == [[{"seller_id": "S1"}]]
        return
    with pytest.raises(DataError) as caught:
        next(readers)
    assert caught.value.findings == [
        Finding(
            rule="staged.figure_not_integer",
            table="rules/reported.parquet",
            key="cons_q3",
            message=f"the column cons_q3 is of type {column_type}, not an integer type; a reported figure is a whole "
            "number (minor units, a count, days): the staged file is damaged or was not written by this version's "
            "rules stage, run the rules stage again",
        )
    ]


@pytest.mark.parametrize(
    ("quarters", "expected"),
    [
        pytest.param(None, "the quarters of numb_q1 ... numb_q4 are missing", id="no list"),
        pytest.param([1, 1, 0], "the quarters of numb_q1 ... numb_q4 are missing", id="three quarters"),
    ],
)
def test_a_figure_list_that_is_missing_or_short_is_an_error_naming_the_row(
    quarters: list[int] | None, expected: str
) -> None:
    """A quarters' list that is NULL or has fewer than four: the same DataError naming the row and
    the rule (was ``TypeError`` or ``IndexError``)."""
    row = _one().to_pylist()[0]
    del row["authorities"]
    row["acts"][0]["numb"] = quarters
    with pytest.raises(DataError) as caught:
        mapping.seller_record(row)
    (finding,) = caught.value.findings
    assert (finding.rule, finding.table, finding.key, finding.seller_id) == (
        "staged.figure_not_integer",
        "rules/reported.parquet",
        "S1/immovable_property/P1/EUR",
        "S1",
    )
    assert finding.message.startswith(expected + "; a reported figure is a whole number")


#: Every column of rules/reported.parquet that a record holds as a whole number, by hand.
FIGURES = (
    *("cons_q1", "cons_q2", "cons_q3", "cons_q4", "numb_q1", "numb_q2", "numb_q3", "numb_q4"),
    *("fees_q1", "fees_q2", "fees_q3", "fees_q4", "tax_q1", "tax_q2", "tax_q3", "tax_q4", "rented_days"),
)


def test_every_figure_column_is_asked_its_type() -> None:
    """Each of the 17 figure columns, made text in turn (the others integers), is refused by
    name; the text columns beside them (``exact_cons_q1``, ids, the currency) are not figures."""
    con = duckdb.connect()
    con.execute("create table routing as select 'S1' as seller_id")
    texts = "'S1' as seller_id, 'EUR' as currency, '1.5' as exact_cons_q1"
    con.execute(f"create table reported as select {texts}, " + ", ".join(f"1::bigint as {c}" for c in FIGURES))
    mapping.check_figure_types(con)  # all integers: nothing to say
    for column in FIGURES:
        others = ", ".join(f"1::bigint as {c}" if c != column else f"'1' as {c}" for c in FIGURES)
        con.execute(f"create or replace table reported as select {texts}, {others}")
        with pytest.raises(DataError) as caught:
            mapping.check_figure_types(con)
        assert [f.key for f in caught.value.findings] == [column]
        assert f"the column {column} is of type VARCHAR, not an integer type" in str(caught.value)


def test_which_profiles_check_sellers_themselves() -> None:
    assert mapping._checks_sellers(profile_for("FR"))
    assert mapping._checks_sellers(profile_for("HU"))
    for country in ("DE", "IT", "GB", "LT"):
        assert not mapping._checks_sellers(profile_for(country))
    assert not mapping._checks_sellers(EU_GENERIC)

    class Own:
        def seller_problems(self, seller: SellerRecord) -> list[tuple[str, str, str, str]]:
            return [("own.rule", "sellers", seller.seller_id, "no")]

    assert mapping._checks_sellers(Own())  # type: ignore[arg-type]

    class Quiet(EuProfile):
        pass

    registered = Quiet()
    assert not mapping._checks_sellers(registered)
    registered.seller_problems = Own().seller_problems  # type: ignore[method-assign]
    assert mapping._checks_sellers(registered)  # checks given to the instance count too


@pytest.mark.parametrize("enabled", [True, False])
def test_the_cycle_collector_is_left_as_it_was(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with pytest.raises(RuntimeError), cyclic_gc.paused():
            assert not gc.isenabled()
            raise RuntimeError("a failure inside")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
