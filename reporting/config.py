"""The operator's identity and the run settings, read from a TOML file (``dac7.toml``).

The layout documented in the README is a public contract: keys may be added, never renamed.
Every error names the file and the key, and says what is expected.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reporting.countries import is_country
from reporting.diligence_cycle import CycleSettings
from reporting.errors import ConfigError
from reporting.jurisdictions import MODEL_RULES, PARTNERS_KEY, PENDING, filing_refusal, is_filing_jurisdiction
from reporting.text import MAX_TEXT, text_problem
from reporting.vocabulary import (
    DEFAULT_OPERATOR,
    ENVIRONMENTS,
    JURISDICTION,
    NEXUS,
    OPERATOR_ID_PATTERN,
    PROD,
    ROUTINGS,
    TEST,
)

NEXUS_CODES = ("RPONEX1", "RPONEX2", "RPONEX3", "RPONEX4", "RPONEX5")
REPORTING_CURRENCIES = ("original", "EUR")
FX_BASES = ("year_end", "payment_date")
#: ``[source] aggregate``: where the period's transactions are summed. ``local``: every row is
#: read into the run's staging area and summed by the embedded DuckDB; ``source``: the source's
#: engine sums them (:mod:`reporting.pushdown`) and only the aggregates, and the rows the checks
#: must see, are read.
AGGREGATE_WHERE = ("local", "source")
#: ``[source.spark]``: the keys of a source whose tables Apache Spark reads
SPARK_KEYS = {"tables", "database", "master", "conf"}
_SPARK_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
#: a Spark setting whose name says it holds a secret (a key, a password, a token): never in the file
_SPARK_SECRET = re.compile(r"pass|pwd|secret|token|credential|signature|private", re.IGNORECASE)
#: a query parameter of a path or master that may hold a secret (an access key, a SAS signature)
_SECRET_PARAMETER = re.compile(r"key|pass|pwd|secret|token|sas|sig|credential|auth", re.IGNORECASE)
#: ``[operators.ID]``: the id of a further operator of the group (it names folders, task labels
#: and the operator's space in the ledger, so no character that means anything there)
OPERATOR_ID = re.compile(OPERATOR_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Address:
    street: str | None
    building: str | None
    post_code: str | None
    city: str
    country: str


@dataclass(frozen=True, slots=True)
class OtherOperator:
    """Another platform operator, named in this operator's filing: one whose reporting this
    operator assumes (``[[assumed_operators]]``, ``OtherPlatformOperators/AssumedPlatformOperator``)
    or the one that assumes this operator's reporting (``[assuming_operator]``,
    ``OtherPlatformOperators/AssumingPlatformOperator``). Its ResCountryCode is the country of its
    address (its registered office), as for the operator itself.

    ``vat`` is part of the configuration contract (issue 18) but goes into no message: no edition
    of the DPI schema (OECD/EU ``OtherRPO_Type``, DGFiP and NAV ``CorrectableOtherRPO_Type``) has a
    VAT element for another operator, only ResCountryCode, TIN, Name and Address."""

    name: str
    tin: str
    tin_issued_by: str
    address: Address
    vat: str | None = None

    @property
    def key(self) -> str:
        """Its key in the filing ledger (after its role, in the ``seller_key`` of its
        ``other_platform_operators`` record): the TIN's issuing country and a digest of the TIN,
        stable while the TIN is, and without the TIN itself, so that a log line or an error message
        that names the record never shows it. A new TIN is another operator: its record is
        deleted and a new one filed."""
        digest = hashlib.sha256(f"{self.tin_issued_by}:{self.tin}".encode()).hexdigest()[:16]
        return f"{self.tin_issued_by}-{digest}"


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    tin: str
    tin_issued_by: str
    address: Address
    nexus: str
    vat: str | None = None
    platform_business_name: str | None = None
    nexus_country: str = ""
    #: ``[[assumed_operators]]``: the operators whose reporting this one assumes; their sellers
    #: are in this operator's source and reported in its messages
    assumed_operators: tuple[OtherOperator, ...] = ()
    #: ``[assuming_operator]``: the operator that assumes this one's reporting; this operator then
    #: files ``AssumedReporting`` true, the assuming operator, and no sellers
    assuming_operator: OtherOperator | None = None

    @property
    def country(self) -> str:
        """The member state the operator files in (TransmittingCountry)."""
        return self.nexus_country or self.address.country


@dataclass(frozen=True, slots=True)
class GroupOperator:
    """``[operators.ID]``: a further operator of the group, with its own identity, nexus and
    filing state (its keys are those of ``[operator]``), and the identifiers of its filing
    state's profile (``[operators.ID.authorities.XX]``, as ``[authorities.XX]`` for ``[operator]``).
    Each runs a platform of its own: its sellers, thresholds, messages and ledger are its own."""

    operator: Operator
    authorities: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reporting:
    timezone: str = "UTC"
    reporting_currency: str = "original"
    #: ``nexus``: the filing, to the filing state alone; ``jurisdiction``: a preview of what each
    #: member state receives from the filing state (test environment only)
    routing: str = NEXUS
    environment: str = TEST
    fx_basis: str = "year_end"  # the ECB rate of 31 December (or the last before), or of each payment day

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Spark:
    """``[source.spark]``: the contract's tables, with the contract's names and columns, read by
    Apache Spark (:mod:`reporting.stages.extract_spark`): either ``tables``, a folder (any file system
    Spark reads) with one Parquet dataset per table (``<table>/`` or ``<table>.parquet``), or
    ``database``, the tables of a database of Spark's catalog (any format that Spark reads:
    Delta, Iceberg, Parquet ...). ``master``: the Spark master (default ``local[*]``); ``conf``:
    Spark settings for the session (a Hive metastore, Delta's catalog, the driver's memory).

    A run's settings (``settings.json``, ``run_settings.json``) record the names of ``conf``'s
    settings only (``conf_keys``), never their values: a stage loaded from them has an empty
    ``conf`` and reads the values from the configuration file again (:func:`spark_conf`)."""

    tables: str | None = None
    database: str | None = None
    master: str = "local[*]"
    conf: dict[str, str] = field(default_factory=dict)
    #: the names of ``conf``'s settings, when only they are known (settings loaded from a run's record)
    conf_keys: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        """Where the tables are, for logs and the run's records."""
        return f"Parquet tables in {self.tables}" if self.tables else f"the Spark database {self.database}"


#: The BZSt DIP hosts (XDEV bzst-dip-java-client ``BzstDipConfiguration``; tyclipso dac7_reporter
#: ``ApiManager``): a test filing goes to the test host, a production filing to production.
DIP_TEST_URL = "https://mds-ktst.bzst.bund.de"
DIP_PROD_URL = "https://mds.bzst.bund.de"
_TRANSMISSION_KEYS = {"dip_test_url", "dip_prod_url", "attempts", "poll_seconds", "poll_hours", "fr_public_key"}


@dataclass(frozen=True, slots=True)
class Transmission:
    """``[transmission]``: how ``dac7 transmit`` reaches the authorities. No secret lives here: the
    DIP client id, key and certificate come from an Airflow Connection or ``DAC7_DIP_*``."""

    #: the DIP hosts of test and production filings (a local server in tests)
    dip_test_url: str = DIP_TEST_URL
    dip_prod_url: str = DIP_PROD_URL
    #: tries of a DIP transfer on a transient error (5xx, 429, timeout), each a new transfer
    attempts: int = 3
    #: how often the protocol is asked for, and for how long before the wait gives up
    poll_seconds: int = 300
    poll_hours: int = 72
    #: the DGFiP's OpenPGP public key file for the French outbox (a public key; TEST or PROD)
    fr_public_key: str | None = None


#: ``[verification.NAME]``: the verification adapters of :mod:`reporting.verification`, in the
#: order they answer (docs/guide/verification.md)
VERIFICATION_ADAPTERS = ("stdnum", "vies", "tin_on_the_web")
#: ``[verification.vies] interface``: VIES's SOAP service or its REST API
VIES_INTERFACES = ("soap", "rest")
#: The European Commission's published endpoints, the defaults of ``url`` (where each was found:
#: docs/guide/verification.md). VIES SOAP: the address of checkVatService.wsdl's port; VIES REST:
#: the base of /check-vat-number and /check-status; TIN on the Web: the address of
#: checkTinService.wsdl's port.
VIES_SOAP_URL = "https://ec.europa.eu/taxation_customs/vies/services/checkVatService"
VIES_REST_URL = "https://ec.europa.eu/taxation_customs/vies/rest-api"
TIN_ON_THE_WEB_URL = "https://ec.europa.eu/taxation_customs/tin/services/checkTinService"
#: PStTG § 20(2) Nr. 1: earlier due diligence may be relied on where the information was collected
#: and checked "vor nicht mehr als 36 Monaten": an answer is reused for at most that long
MAX_CACHE_MONTHS = 36
#: ``[verification.vies] invalid_cache_days``: an "invalid" answer about a registration (VIES) is
#: reused through this many days after the day it was given (0: that day only). A registration
#: can become valid any day, and a "not valid" leads to requests and measures (PStTG § 23): it is
#: asked again soon, not relied on for 36 months. One day: a rerun of the daily task on that day
#: or the next does not ask VIES again; the day after, it does.
INVALID_CACHE_DAYS = 1
MAX_INVALID_DAYS = 31
#: ``[verification] max_per_day``: the calls to the services (VIES, TIN on the Web; a retry is a
#: call) the daily due-diligence verification makes at most (the items left wait for the next
#: day; python-stdnum checks every item): at VIES's default of 2 calls per second, 5,000 calls
#: take about 42 minutes
MAX_PER_DAY = 5000
MAX_PER_DAY_LIMIT = 100_000
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True, slots=True)
class AdapterSettings:
    """``[verification.NAME]``: one verification adapter. ``url``, ``interface``, the timeout,
    the rate limit and the retries apply to the adapters that call a service (``vies``,
    ``tin_on_the_web``); ``cache_months`` to every adapter (0: every item is checked again);
    ``invalid_cache_days`` to the adapters whose answer rests on a registration (``vies``): how
    many days after the day it was given an invalid answer is reused (at most ``cache_months``
    months all the same)."""

    name: str
    enabled: bool
    url: str | None = None
    interface: str = "soap"  # vies only: "soap" or "rest"
    timeout_seconds: float = 30.0  # per HTTP request (connect, read, write)
    rate_per_second: float = 2.0  # requests started per second, at most
    max_attempts: int = 4  # per item: the first request and up to three retries
    backoff_seconds: float = 2.0  # the wait before the first retry; doubled before each further one
    cache_months: int = MAX_CACHE_MONTHS
    invalid_cache_days: int = INVALID_CACHE_DAYS


@dataclass(frozen=True, slots=True)
class VerificationSettings:
    """``[verification]``: the stdnum check is on by default; the services of the European
    Commission are switched on by the operator (they send each identifier to the Commission)."""

    stdnum: AdapterSettings = AdapterSettings("stdnum", True)
    vies: AdapterSettings = AdapterSettings("vies", False, VIES_SOAP_URL)
    tin_on_the_web: AdapterSettings = AdapterSettings("tin_on_the_web", False, TIN_ON_THE_WEB_URL)
    #: ``[verification] max_per_day``: the services' calls the daily verification makes at most
    max_per_day: int = MAX_PER_DAY

    def adapter(self, name: str) -> AdapterSettings:
        if name not in VERIFICATION_ADAPTERS:
            raise ConfigError(
                f"[verification.{name}]: no such verification adapter; they are: {', '.join(VERIFICATION_ADAPTERS)}"
            )
        settings: AdapterSettings = getattr(self, name)
        return settings

    @property
    def enabled(self) -> tuple[AdapterSettings, ...]:
        """The adapters switched on, in the order of :data:`VERIFICATION_ADAPTERS`."""
        return tuple(a for a in map(self.adapter, VERIFICATION_ADAPTERS) if a.enabled)


@dataclass(frozen=True, slots=True)
class Config:
    operator: Operator
    reporting: Reporting = field(default_factory=Reporting)
    source: str | None = None
    path: str | None = None
    #: ``[source] aggregate``: one of :data:`AGGREGATE_WHERE`
    aggregate: str = "local"
    #: ``[source.spark]``: the source's tables are read by Apache Spark (then no ``url``)
    spark: Spark | None = None
    #: ``[authorities.XX]``: a member state's own filing identifiers (BZSt id, SIREN ...), which
    #: select its national profile.
    authorities: dict[str, dict[str, str]] = field(default_factory=dict)
    #: ``[quality] max_quarantined``: how many quarantined sellers a production run accepts
    #: (default 0: any quarantined seller fails the production run; test runs go on).
    max_quarantined: int = 0
    #: ``[quality] data_docs``: whether Great Expectations writes its Data Docs HTML into the
    #: run's output (``reports/data-docs/``); default true. The checks run either way.
    data_docs: bool = True
    #: ``[ledger] url``: the filing ledger's SQLAlchemy URL (SQLite or PostgreSQL); default: the
    #: SQLite file ``dac7-ledger.sqlite3`` in the working directory. Never with a password.
    ledger: str | None = None
    #: ``[statements] contact``: where a seller turns when their statement is wrong (text, an
    #: e-mail address or a URL), shown on every statement; default: the platform, unnamed
    statement_contact: str | None = None
    #: ``[operators.ID]``: the further operators of a group, by id, in the order of the file
    operators: dict[str, GroupOperator] = field(default_factory=dict)
    #: the id of the operator that ``operator`` and ``authorities`` are: :data:`DEFAULT_OPERATOR`
    #: (``[operator]``), or a further operator's in the configuration of its run (:meth:`for_operator`)
    operator_id: str = DEFAULT_OPERATOR
    #: ``[transmission]``: the DIP hosts, retries, polling, the French outbox's key
    transmission: Transmission = field(default_factory=Transmission)
    #: ``[verification]``: the verification adapters of the identifiers sellers give
    verification: VerificationSettings = field(default_factory=VerificationSettings)
    #: ``[due_diligence]``: the measure the operator takes and the spacing of the reminders
    #: (:mod:`reporting.diligence_cycle`), for every operator of a group
    due_diligence: CycleSettings = field(default_factory=CycleSettings)

    @property
    def operator_ids(self) -> tuple[str, ...]:
        """Every operator of the configuration: the default operator first, then ``[operators.ID]``
        in the order of the file."""
        return (DEFAULT_OPERATOR, *self.operators)

    def for_operator(self, operator_id: str) -> Config:
        """The configuration of one operator's run: its identity as ``operator`` and its
        identifiers as ``authorities`` (the run, the profiles and the ledger read nothing else);
        everything else (``[reporting]``, ``[source]``, ``[ledger]`` ...) is the group's."""
        if operator_id == self.operator_id:
            return self
        if operator_id == DEFAULT_OPERATOR and self.operator_id == DEFAULT_OPERATOR:
            return self
        found = self.operators.get(operator_id)
        if found is None:
            known = ", ".join(self.operator_ids)
            shown = repr(operator_id) if OPERATOR_ID.fullmatch(operator_id) else "(not an operator id)"
            raise ConfigError(
                f"{self.path or '<config>'}: operator {shown} is not configured; the operators are: {known} "
                f"('{DEFAULT_OPERATOR}' is [operator], the others [operators.ID])"
            )
        return replace(self, operator=found.operator, authorities=found.authorities, operator_id=operator_id)

    def group_operator_of(self, other: OtherOperator) -> str | None:
        """The id of the operator of this group that ``other`` (an assumed or assuming operator)
        is, by its TIN and issuing state; None for an operator outside the group. Read on the
        configuration as loaded (a view of :meth:`for_operator` has lost the default operator)."""
        identity = tin_identity(other.tin_issued_by, other.tin)
        for operator_id in self.operator_ids:
            mine = self.for_operator(operator_id).operator
            if tin_identity(mine.tin_issued_by, mine.tin) == identity:
                return operator_id
        return None

    def authorities_table(self, country: str) -> str:
        """The name of the table that holds this operator's identifiers for ``country``, as an
        error names it: ``[authorities.XX]`` of ``[operator]``, ``[operators.ID.authorities.XX]``."""
        if self.operator_id == DEFAULT_OPERATOR:
            return f"authorities.{country}"
        return f"operators.{self.operator_id}.authorities.{country}"


#: the longest ``[statements] contact`` (a sentence, an address or a URL)
MAX_CONTACT = 300


_OPERATOR_KEYS = {"name", "tin", "tin_issued_by", "vat", "platform_business_name", "nexus", "nexus_country", "address"}
_ADDRESS_KEYS = {"street", "building", "post_code", "city", "country"}
_REPORTING_KEYS = {"timezone", "reporting_currency", "routing", "environment", "fx_basis"}
_OTHER_OPERATOR_KEYS = {"name", "tin", "tin_issued_by", "vat", "address"}
_KNOWN_TABLES = {
    "operator",
    "operators",
    "reporting",
    "source",
    "authorities",
    "quality",
    "ledger",
    "statements",
    "assumed_operators",
    "assuming_operator",
    "transmission",
    "verification",
    "due_diligence",
}
#: ``[due_diligence]``'s keys
_DUE_DILIGENCE_KEYS = {"measure", "reminder_1_days", "reminder_2_days", "measure_day", "reporting_since"}
#: the keys of an ``[operators.ID]`` table: those of ``[operator]``, its filing state's identifiers,
#: and the other operators of its filing (``[[operators.ID.assumed_operators]]``,
#: ``[operators.ID.assuming_operator]``)
_GROUP_OPERATOR_KEYS = _OPERATOR_KEYS | {"authorities", "assumed_operators", "assuming_operator"}


def load_config(path: str | Path) -> Config:
    """Read and check a dac7.toml file."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {p} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start + 1}); save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"configuration file {p} cannot be read: {exc.strerror or type(exc).__name__}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(raw, origin=str(p))


def parse_config(raw: dict[str, Any], *, origin: str = "<config>") -> Config:
    _no_unknown(raw, _KNOWN_TABLES, "", origin)
    op = _table(raw, "operator", origin, required=True)
    _no_unknown(op, _OPERATOR_KEYS, "operator", origin)
    operator = parse_operator(op, "operator", origin)
    assumed, assuming = other_operators(raw, "", origin)
    operator = with_other_operators(operator, assumed, assuming, "", origin)
    rep = _table(raw, "reporting", origin, required=False)
    _no_unknown(rep, _REPORTING_KEYS, "reporting", origin)
    reporting = Reporting(
        timezone=_str(rep, "timezone", "reporting", origin) or "UTC",
        reporting_currency=_choice(rep, "reporting_currency", REPORTING_CURRENCIES, "original", origin),
        routing=_choice(rep, "routing", ROUTINGS, NEXUS, origin),
        environment=_choice(rep, "environment", ENVIRONMENTS, TEST, origin),
        fx_basis=_choice(rep, "fx_basis", FX_BASES, "year_end", origin),
    )
    check_routing(reporting, operator.country, origin)
    try:
        ZoneInfo(reporting.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{origin}: reporting.timezone = {reporting.timezone!r} is not an IANA time zone (e.g. 'Europe/Vilnius')"
        ) from None
    src = _table(raw, "source", origin, required=False)
    _no_unknown(src, {"url", "aggregate", "spark"}, "source", origin)
    url = _str(src, "url", "source", origin)
    spark = _spark(src, origin)
    if spark is not None and url is not None:
        raise ConfigError(
            f"{origin}: [source] url and [source.spark] name two sources; a run reads one: keep the url "
            "(a database) or [source.spark] (tables read by Apache Spark)"
        )
    operators = _shared_identifiers(_operators(raw, operator, origin), _authorities(raw, origin), origin)
    for group_operator in operators.values():
        check_routing(reporting, group_operator.operator.country, origin)
    return Config(
        operator=operator,
        reporting=reporting,
        source=url,
        path=origin,
        aggregate=_choice(src, "aggregate", AGGREGATE_WHERE, "local", origin, "source"),
        spark=spark,
        authorities=_authorities(raw, origin),
        max_quarantined=_max_quarantined(raw, origin),
        data_docs=_data_docs(raw, origin),
        ledger=_ledger_url(raw, origin),
        statement_contact=_statement_contact(raw, origin),
        operators=operators,
        transmission=_transmission(raw, origin),
        verification=_verification(raw, origin),
        due_diligence=_due_diligence(raw, origin),
    )


def _due_diligence(raw: dict[str, Any], origin: str) -> CycleSettings:
    """``[due_diligence]``: every key optional (the defaults of :class:`CycleSettings`); a value
    the law does not allow is refused, naming the key."""
    table = _table(raw, "due_diligence", origin, required=False)
    _no_unknown(table, _DUE_DILIGENCE_KEYS, "due_diligence", origin)
    values: dict[str, Any] = {}
    if "measure" in table:
        values["measure"] = _str(table, "measure", "due_diligence", origin)
    for key in ("reminder_1_days", "reminder_2_days", "measure_day"):
        if key in table:
            value = table[key]
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{origin}: due_diligence.{key} must be a whole number of days")
            values[key] = value
    if "reporting_since" in table:
        since = table["reporting_since"]
        if isinstance(since, str):
            try:
                since = date.fromisoformat(since.strip())
            except ValueError:
                raise ConfigError(f"{origin}: due_diligence.reporting_since must be a date (2023-01-01)") from None
        if not isinstance(since, date) or isinstance(since, datetime):
            raise ConfigError(f"{origin}: due_diligence.reporting_since must be a date (2023-01-01)")
        values["reporting_since"] = since
    settings = CycleSettings(**values)
    problems = settings.problems()
    if problems:
        raise ConfigError(f"{origin}: due_diligence.{problems[0]}")
    return settings


def _address(table: dict[str, Any], name: str, origin: str) -> Address:
    """``[<name>.address]``: the keys of ``[operator.address]``, city and country required."""
    addr = _table(table, "address", origin, required=True, prefix=f"{name}.")
    _no_unknown(addr, _ADDRESS_KEYS, f"{name}.address", origin)
    return Address(
        street=_str(addr, "street", f"{name}.address", origin),
        building=_str(addr, "building", f"{name}.address", origin),
        post_code=_str(addr, "post_code", f"{name}.address", origin),
        city=_req(addr, "city", f"{name}.address", origin),
        country=_country(_req(addr, "country", f"{name}.address", origin), f"{name}.address.country", origin),
    )


def parse_operator(op: dict[str, Any], name: str, origin: str) -> Operator:
    """An operator's identity from its table (``[operator]``, ``[operators.ID]``: ``name`` is the
    table's name, as every error names the key), the address included. The caller refuses the
    keys the table may not have, and adds the other operators of its filing
    (:func:`other_operators`)."""
    address = _address(op, name, origin)
    nexus = _req(op, "nexus", name, origin)
    if nexus not in NEXUS_CODES:
        raise ConfigError(f"{origin}: {name}.nexus = {nexus!r}; expected one of {', '.join(NEXUS_CODES)}")
    nexus_country = _str(op, "nexus_country", name, origin)
    operator = Operator(
        name=_req(op, "name", name, origin),
        tin=_req(op, "tin", name, origin),
        tin_issued_by=_country(_req(op, "tin_issued_by", name, origin), f"{name}.tin_issued_by", origin),
        vat=_str(op, "vat", name, origin),
        platform_business_name=_str(op, "platform_business_name", name, origin),
        nexus=nexus,
        nexus_country=_country(nexus_country, f"{name}.nexus_country", origin) if nexus_country else "",
        address=address,
    )
    if operator.country in PENDING:
        key = f"{name}.nexus_country" if operator.nexus_country else f"{name}.address.country"
        raise ConfigError(f"{origin}: {PENDING[operator.country].refusal(key)}")
    if not is_filing_jurisdiction(operator.country):
        raise ConfigError(
            f"{origin}: {'the operator' if name == 'operator' else f'the operator of [{name}]'} files in "
            f"{operator.country}, which is not an EU member state, nor a jurisdiction of the OECD Model Rules "
            f"this version knows ({', '.join(sorted(MODEL_RULES))}); "
            f"set {name}.nexus_country to the member state of its registration (e.g. RPONEX5)"
        )
    if operator.country in MODEL_RULES and nexus == "RPONEX5":
        raise ConfigError(
            f"{origin}: {name}.nexus = 'RPONEX5' names the EU's Qualified Non-Union Platform Operator test, which "
            f"the OECD Model Rules of {operator.country} do not have (the DPI schema's Nexus is '[EU Specific]'); "
            f"an operator files in {operator.country} as resident there (RPONEX1), incorporated under its laws "
            "(RPONEX2), managed there (RPONEX3) or with a permanent establishment there (RPONEX4)"
        )
    return operator


def tin_identity(issued_by: str, tin: str) -> tuple[str, str]:
    """An operator's TIN as compared to tell two legal entities apart (never as filed): upper
    case, without spaces or punctuation, and without its issuing state's code in front
    (``LT 304-567-891`` and ``304567891`` issued by LT are one TIN)."""
    compact = re.sub(r"[^0-9A-Z]", "", tin.upper())
    if compact.startswith(issued_by) and len(compact) > len(issued_by):
        compact = compact[len(issued_by) :]
    return issued_by, compact


def _operators(raw: dict[str, Any], default: Operator, origin: str) -> dict[str, GroupOperator]:
    """``[operators.ID]``: the further operators of a group, each with the keys of ``[operator]``
    and its own ``[operators.ID.authorities.XX]``. An id is a safe name (:data:`OPERATOR_ID`):
    it names folders, Airflow task labels and the operator's space in the ledger. Two operators
    with one TIN are refused: one legal entity is one platform operator, with one filing per
    period (several platforms of one operator, or several operators of one platform, are not
    what ``[operators]`` describes)."""
    tables = _table(raw, "operators", origin, required=False)
    out: dict[str, GroupOperator] = {}
    seen = {tin_identity(default.tin_issued_by, default.tin): "[operator]"}
    for operator_id, table in tables.items():
        if operator_id == DEFAULT_OPERATOR:
            raise ConfigError(
                f"{origin}: [operators.{DEFAULT_OPERATOR}]: '{DEFAULT_OPERATOR}' is the id of [operator], the "
                "default operator; give this operator another id"
            )
        if not OPERATOR_ID.fullmatch(operator_id):
            raise ConfigError(
                f"{origin}: [operators.{operator_id}]: {operator_id!r} is not an operator id: a lower-case letter, "
                "then lower-case letters, digits and _, 32 characters at most (e.g. 'de_gmbh'); it names the "
                "operator's folder, its Airflow tasks and its space in the ledger"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: [operators.{operator_id}] must be a table, with the keys of [operator]")
        name = f"operators.{operator_id}"
        _no_unknown(table, _GROUP_OPERATOR_KEYS, name, origin)
        operator = parse_operator(table, name, origin)
        assumed, assuming = other_operators(table, f"{name}.", origin)
        operator = with_other_operators(operator, assumed, assuming, f"{name}.", origin)
        identity = tin_identity(operator.tin_issued_by, operator.tin)
        if identity in seen:
            raise ConfigError(
                f"{origin}: [{name}] has the TIN of {seen[identity]} ({operator.tin_issued_by}): one legal entity "
                "is one platform operator, which files one report per period in its member state; "
                "[operators] holds the other legal entities of the group, each with its own TIN"
            )
        seen[identity] = f"[{name}]"
        out[operator_id] = GroupOperator(operator=operator, authorities=_authorities(table, origin, prefix=f"{name}."))
    _assumptions_within_the_group(default, out, origin)
    return out


#: The keys of ``[authorities.XX]`` that an authority's profile files as the operator's identity:
#: the French profile writes ``siren`` as the PlatformOperator's TIN and in the file's name
#: (reporting/authorities/fr.py). The others name a sender or an account (HU ``tax_number`` is
#: SendingEntityIN, the sender's; DE ``bzst_id``; IT ``codice_fiscale``, the submitter's), which an
#: intermediary filing for several operators may share.
OPERATOR_IDENTITY_KEYS: dict[str, tuple[str, ...]] = {"FR": ("siren",), "GB": ("platform_operator_id",)}


def _shared_identifiers(
    further: dict[str, GroupOperator], default: dict[str, dict[str, str]], origin: str
) -> dict[str, GroupOperator]:
    """An identifier that an authority files as the operator's own identity
    (:data:`OPERATOR_IDENTITY_KEYS`) is that operator's alone: two operators of a group holding one
    would file under one identity (the same TIN in both files, even the same file name). Refused,
    naming both tables; ``further`` returned as it is. Other keys of ``[authorities.XX]`` (a
    schema folder, the BZSt's DIP account, an Italian submitter's codice fiscale) may be shared:
    one intermediary may file for several operators."""
    seen: dict[tuple[str, str, str], str] = {}
    tables = [("authorities", default), *((f"operators.{i}.authorities", g.authorities) for i, g in further.items())]
    for prefix, authorities in tables:
        for country, identifiers in authorities.items():
            for key, value in identifiers.items():
                if key not in OPERATOR_IDENTITY_KEYS.get(country, ()):
                    continue
                where = f"[{prefix}.{country}] {key}"
                first = seen.setdefault((country, key, re.sub(r"[^0-9A-Z]", "", value.upper())), where)
                if first != where:
                    raise ConfigError(
                        f"{origin}: {where} is the same as {first}: an authority knows each operator of the group "
                        "by identifiers of its own (one legal entity is one platform operator); give each its own"
                    )
    return further


def _assumptions_within_the_group(default: Operator, further: dict[str, GroupOperator], origin: str) -> None:
    """Where one operator of the group assumes the reporting of another operator of the group, both
    sides say so: the assuming one names the other in its ``assumed_operators``, and the other names
    it as its ``assuming_operator``. One side alone would have one operator report sellers another
    reports as well (the assumed one files its own), or no operator report them (the assuming one
    never names the assumed one): refused, naming both tables. An other operator outside the group
    is not checked (its configuration is not here)."""
    members = {tin_identity(default.tin_issued_by, default.tin): ("", default)}
    members |= {
        tin_identity(g.operator.tin_issued_by, g.operator.tin): (f"operators.{i}.", g.operator)
        for i, g in further.items()
    }

    def table(prefix: str) -> str:
        return f"[{prefix.removesuffix('.')}]" if prefix else "[operator]"

    for prefix, operator in members.values():
        identity = tin_identity(operator.tin_issued_by, operator.tin)
        for i, assumed in enumerate(operator.assumed_operators, 1):
            found = members.get(tin_identity(assumed.tin_issued_by, assumed.tin))
            if found is None:
                continue
            other_prefix, other = found
            theirs = other.assuming_operator
            if theirs is None or tin_identity(theirs.tin_issued_by, theirs.tin) != identity:
                raise ConfigError(
                    f"{origin}: {prefix}assumed_operators[{i}] is {table(other_prefix)} of this group, which does "
                    f"not name {table(prefix)} as its {other_prefix}assuming_operator: an operator of the group "
                    "whose reporting another assumes declares it too (it then files no seller), else both would "
                    "report its sellers"
                )
        assuming = operator.assuming_operator
        found = members.get(tin_identity(assuming.tin_issued_by, assuming.tin)) if assuming is not None else None
        if found is not None:
            other_prefix, other = found
            if identity not in {tin_identity(a.tin_issued_by, a.tin) for a in other.assumed_operators}:
                raise ConfigError(
                    f"{origin}: {prefix}assuming_operator is {table(other_prefix)} of this group, whose "
                    f"{other_prefix}assumed_operators do not name {table(prefix)}: the assuming operator names "
                    "each operator whose reporting it assumes, else no operator would report its sellers"
                )


def _other_operator(table: Any, name: str, origin: str) -> OtherOperator:
    """One ``[[assumed_operators]]`` entry or the ``[assuming_operator]`` table (``name`` says
    which, for the messages): ``name``, ``tin``, ``tin_issued_by`` required, ``vat`` optional,
    ``[<name>.address]`` with the keys of ``[operator.address]``; the same checks as the
    operator's own (texts as the XML text they become, ISO country codes)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{origin}: [{name}] must be a table (name, tin, tin_issued_by, vat, [{name}.address])")
    _no_unknown(table, _OTHER_OPERATOR_KEYS, name, origin)
    return OtherOperator(
        name=_req(table, "name", name, origin),
        tin=_req(table, "tin", name, origin),
        tin_issued_by=_country(_req(table, "tin_issued_by", name, origin), f"{name}.tin_issued_by", origin),
        vat=_str(table, "vat", name, origin),
        address=_address(table, name, origin),
    )


def other_operators(
    table: dict[str, Any], prefix: str, origin: str
) -> tuple[tuple[OtherOperator, ...], OtherOperator | None]:
    """``[[<prefix>assumed_operators]]`` and ``[<prefix>assuming_operator]`` of ``table`` (the
    top level for ``[operator]``, with ``prefix`` ""; an ``[operators.ID]`` table of a group with
    ``prefix`` "operators.ID."): the operators whose reporting this one assumes, and the one that
    assumes its reporting.

    Both at once is refused: the DPI schema lets a message name either one
    AssumingPlatformOperator or one or more AssumedPlatformOperators, never both
    (``OtherPlatformOperators_Type`` is an ``xsd:choice`` in the OECD/EU and DGFiP editions), and an
    operator whose reporting is assumed files no seller (``AssumedReporting``, reference §2.8) while
    one that assumes others reports theirs. An operator assumed by another whose own reporting is
    assumed in turn is named in the last operator's ``[[assumed_operators]]``. Two entries with
    the same TIN are refused (one operator, one record)."""
    assumed_key, assuming_key = f"{prefix}assumed_operators", f"{prefix}assuming_operator"
    raw_assumed = table.get("assumed_operators")
    if raw_assumed is None:
        raw_assumed = []
    if isinstance(raw_assumed, dict):
        raise ConfigError(
            f"{origin}: {assumed_key} must be an array of tables: write [[{assumed_key}]] (two brackets), "
            "once per operator whose reporting this operator assumes"
        )
    if not isinstance(raw_assumed, list):
        raise ConfigError(f"{origin}: {assumed_key} must be an array of tables ([[{assumed_key}]])")
    assumed = tuple(_other_operator(t, f"{assumed_key}[{i}]", origin) for i, t in enumerate(raw_assumed, 1))
    raw_assuming = table.get("assuming_operator")
    if isinstance(raw_assuming, list):
        raise ConfigError(
            f"{origin}: {assuming_key} must be one table: write [{assuming_key}] (one bracket); the DPI message "
            "names one AssumingPlatformOperator"
        )
    assuming = None if raw_assuming is None else _other_operator(raw_assuming, assuming_key, origin)
    if assumed and assuming is not None:
        raise ConfigError(
            f"{origin}: [[{assumed_key}]] and [{assuming_key}] are both given; an operator either assumes the "
            "reporting of others (it reports their sellers, naming them as AssumedPlatformOperator) or has its "
            "own reporting assumed (it files no seller, naming the AssumingPlatformOperator), never both: the DPI "
            "schema's OtherPlatformOperators holds one or the other. Name the operators this one assumed under "
            f"the [[assumed_operators]] of the operator that assumes them all, and keep [{assuming_key}] here"
        )
    seen: dict[tuple[str, str], int] = {}
    for i, other in enumerate(assumed, 1):
        first = seen.setdefault(tin_identity(other.tin_issued_by, other.tin), i)
        if first != i:
            raise ConfigError(
                f"{origin}: {assumed_key}[{i}] has the TIN of {assumed_key}[{first}] (issued by "
                f"{other.tin_issued_by}); each assumed operator is named once"
            )
    return assumed, assuming


def with_other_operators(
    operator: Operator,
    assumed: tuple[OtherOperator, ...],
    assuming: OtherOperator | None,
    prefix: str,
    origin: str,
) -> Operator:
    """``operator`` with the result of :func:`other_operators`; an entry with the operator's own
    TIN is refused (an operator neither assumes nor is assumed by itself)."""
    own = tin_identity(operator.tin_issued_by, operator.tin)
    named = [(f"{prefix}assumed_operators[{i}]", o) for i, o in enumerate(assumed, 1)]
    named += [(f"{prefix}assuming_operator", assuming)] if assuming is not None else []
    for key, other in named:
        if tin_identity(other.tin_issued_by, other.tin) == own:
            raise ConfigError(
                f"{origin}: {key} has the operator's own TIN (issued by {other.tin_issued_by}); it names "
                "another platform operator"
            )
    return replace(operator, assumed_operators=assumed, assuming_operator=assuming)


def _statement_contact(raw: dict[str, Any], origin: str) -> str | None:
    """``[statements] contact``: one line of text, at most :data:`MAX_CONTACT` characters."""
    table = _table(raw, "statements", origin, required=False)
    _no_unknown(table, {"contact"}, "statements", origin)
    if table.get("contact") is None:
        return None
    contact = (_str(table, "contact", "statements", origin) or "").strip()
    if not contact or len(contact) > MAX_CONTACT or any(ord(c) < 32 for c in contact):
        raise ConfigError(
            f"{origin}: statements.contact must be one line of 1 to {MAX_CONTACT} characters "
            "(e.g. 'support@example.com' or 'https://example.com/dac7')"
        )
    return contact


def _spark(src: dict[str, Any], origin: str) -> Spark | None:
    """``[source.spark]``: exactly one of ``tables`` and ``database``; no secret in the file."""
    if "spark" not in src:
        return None
    table = _table(src, "spark", origin, required=True, prefix="source.")
    _no_unknown(table, SPARK_KEYS, "source.spark", origin)
    tables = _str(table, "tables", "source.spark", origin)
    database = _str(table, "database", "source.spark", origin)
    if (tables is None) == (database is None):
        raise ConfigError(
            f"{origin}: [source.spark] needs exactly one of tables (a folder with one Parquet dataset per "
            "contract table) or database (a database of Spark's catalog), "
            + ("not both" if tables else "and has neither")
        )
    master = _str(table, "master", "source.spark", origin) or "local[*]"
    for key, value in (("tables", tables), ("master", master)):
        if value is not None and _url_secret(value):
            raise ConfigError(
                f"{origin}: source.spark.{key} holds a password (user:password@) or a secret query parameter; "
                "secrets never go in the configuration file: give them to Spark through its own configuration"
            )
    if database is not None and not _SPARK_DATABASE.fullmatch(database):
        raise ConfigError(
            f"{origin}: source.spark.database = {database!r} is not a Spark database name "
            "(letters, digits and _, optionally catalog.database)"
        )
    conf: dict[str, str] = {}
    for key, value in _table(table, "conf", origin, required=False, prefix="source.spark.").items():
        if not key.startswith("spark."):
            raise ConfigError(f"{origin}: [source.spark.conf] {key!r}: not a Spark setting (they start with 'spark.')")
        if _SPARK_SECRET.search(key):
            raise ConfigError(
                f"{origin}: [source.spark.conf] {key!r} holds a secret; secrets never go in the configuration "
                "file: give them to Spark through its own configuration (spark-defaults.conf, the environment)"
            )
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        elif not isinstance(value, str) or text_problem(value, 4000):
            raise ConfigError(f"{origin}: [source.spark.conf] {key!r} must be a string, a number or true/false")
        conf[key] = value
    return Spark(
        tables=tables,
        database=database,
        master=master,
        conf=conf,
    )


def _url_secret(value: str) -> bool:
    """Whether a path or master of ``[source.spark]`` carries a secret: a password in a URL's user
    part (``user:password@``, also in a URL nested in another, as ``k8s://https://...``) or a
    query parameter that looks like one. A user name alone is no secret: ``abfss://`` and
    ``wasbs://`` name their container so (``container@account.dfs.core.windows.net``)."""
    from reporting.source import has_secret

    if "://" not in value:
        return False
    for start in [m.start() for m in re.finditer(r"[A-Za-z][A-Za-z0-9+.-]*://", value)]:
        parts = urlsplit(value[start:])
        if parts.password is not None:
            return True
        if any(_SECRET_PARAMETER.search(k) for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
            return True
        try:
            if has_secret(value[start:]):
                return True
        except Exception:  # not a database URL: what urlsplit saw decides
            pass
    return False


def spark_conf(config: Config) -> dict[str, str]:
    """The values of ``[source.spark.conf]`` for a session the run starts. A run's record keeps
    their names only: a configuration loaded from it takes the values from its configuration
    file (``config.path``) again, which must still hold the same settings."""
    spark = config.spark
    if spark is None:
        return {}
    if spark.conf or not spark.conf_keys:
        return dict(spark.conf)
    if not config.path:
        raise ConfigError(
            "[source.spark.conf] settings are named in the run's settings, but no configuration file is known "
            "to read their values from (the values are never recorded)"
        )
    again = load_config(config.path).spark
    if again is None or sorted(again.conf) != sorted(spark.conf_keys):
        raise ConfigError(
            f"{config.path}: its [source.spark.conf] settings are not those the run started with "
            f"({', '.join(sorted(spark.conf_keys))}): the file changed since; start a new run"
        )
    return dict(again.conf)


def check_routing(reporting: Reporting, filing_state: str, origin: str = "<config>") -> None:
    """Routing ``jurisdiction`` is a preview, never a filing: refused in production, and for a
    filing state outside the EU (the preview is of the exchange between member states, in the EU
    edition; a Model Rules jurisdiction's exchange with its partners is not previewed)."""
    if reporting.routing == JURISDICTION and filing_state in MODEL_RULES:
        raise ConfigError(
            f"{origin}: routing 'jurisdiction' previews what each EU member state receives from the filing state; "
            f"{filing_state} files under the OECD Model Rules and its exchange with its partner jurisdictions is "
            "not previewed: use routing 'nexus'"
        )
    if reporting.routing == JURISDICTION and reporting.environment == PROD:
        raise ConfigError(
            f"{origin}: routing 'jurisdiction' with environment 'prod' is refused. It is a preview of what each "
            f"member state receives from {filing_state} through the exchange between authorities, not a filing: "
            f"the operator files in {filing_state} alone, under {filing_state}'s law for every seller, and "
            f"{filing_state} forwards each seller to its states of residence and property (Art. 8ac(2) of "
            "Directive 2011/16/EU). File with routing 'nexus', or run the preview with environment 'test'"
        )


def _ledger_url(raw: dict[str, Any], origin: str) -> str | None:
    """``[ledger] url``: optional; a URL that carries a password is refused, as ``[source] url`` is."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from reporting.source import has_secret

    table = _table(raw, "ledger", origin, required=False)
    _no_unknown(table, {"url"}, "ledger", origin)
    url = _str(table, "url", "ledger", origin)
    if url is None:
        return None
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"{origin}: ledger.url is not a database URL (e.g. 'sqlite:///ledger.sqlite3')") from None
    if has_secret(parsed):
        raise ConfigError(
            f"{origin}: [ledger] url holds a password (or a secret query parameter); secrets never go in "
            "the configuration file. "
            "Pass the URL with --ledger or DAC7_LEDGER_URL (an Airflow Connection in production)"
        )
    return url


#: the keys of each ``[verification.NAME]`` table
_ADAPTER_KEYS = {
    "stdnum": {"enabled", "cache_months"},
    "vies": {
        "enabled", "interface", "url", "timeout_seconds", "rate_per_second", "max_attempts", "backoff_seconds",
        "cache_months", "invalid_cache_days",
    },
    "tin_on_the_web": {
        "enabled", "url", "timeout_seconds", "rate_per_second", "max_attempts", "backoff_seconds", "cache_months",
    },
}  # fmt: skip


def _verification(raw: dict[str, Any], origin: str) -> VerificationSettings:
    """``[verification]`` with a table per adapter (``[verification.vies]`` ...); a key left out
    keeps its default, an unknown adapter or key is refused."""
    table = _table(raw, "verification", origin, required=False)
    _no_unknown(table, {*VERIFICATION_ADAPTERS, "max_per_day"}, "verification", origin)
    defaults = VerificationSettings()
    max_per_day = int(
        _number(table, "max_per_day", "verification", origin, defaults.max_per_day, 1, MAX_PER_DAY_LIMIT, integer=True)
    )
    adapters = {}
    for name in VERIFICATION_ADAPTERS:
        sub = _table(table, name, origin, required=False, prefix="verification.")
        key = f"verification.{name}"
        _no_unknown(sub, _ADAPTER_KEYS[name], key, origin)
        base = defaults.adapter(name)
        enabled = sub.get("enabled", base.enabled)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{origin}: {key}.enabled must be true or false")
        interface = _choice(sub, "interface", VIES_INTERFACES, "soap", origin, key)
        default_url = VIES_REST_URL if (name == "vies" and interface == "rest") else base.url
        url = _service_url(sub, key, origin) or default_url
        adapters[name] = AdapterSettings(
            name=name,
            enabled=enabled,
            url=url,
            interface=interface,
            timeout_seconds=_number(sub, "timeout_seconds", key, origin, base.timeout_seconds, 0, 300, low_open=True),
            rate_per_second=_number(sub, "rate_per_second", key, origin, base.rate_per_second, 0, 100, low_open=True),
            max_attempts=int(_number(sub, "max_attempts", key, origin, base.max_attempts, 1, 10, integer=True)),
            backoff_seconds=_number(sub, "backoff_seconds", key, origin, base.backoff_seconds, 0, 300),
            cache_months=int(
                _number(sub, "cache_months", key, origin, base.cache_months, 0, MAX_CACHE_MONTHS, integer=True)
            ),
            invalid_cache_days=int(
                _number(
                    sub, "invalid_cache_days", key, origin, base.invalid_cache_days, 0, MAX_INVALID_DAYS, integer=True
                )
            ),
        )
    return VerificationSettings(**adapters, max_per_day=max_per_day)


def _service_url(table: dict[str, Any], key: str, origin: str) -> str | None:
    """An adapter's ``url``: https (plain http only to this machine, as a test server listens),
    with a host, and without a user, a password or a query (no secret in the file; the services
    need none)."""
    url = _str(table, "url", key, origin)
    if url is None:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host or (parts.scheme == "http" and host not in _LOOPBACK):
        raise ConfigError(
            f"{origin}: {key}.url must be an https URL (e.g. the default, the Commission's published address); "
            "plain http is accepted for this machine only (127.0.0.1, localhost)"
        )
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ConfigError(
            f"{origin}: {key}.url must not hold a user, a password, a query or a fragment: the service needs no "
            "credentials, and secrets never go in the configuration file"
        )
    return url.rstrip("/")


def _number(
    table: dict[str, Any],
    key: str,
    name: str,
    origin: str,
    default: float,
    low: float,
    high: float,
    *,
    integer: bool = False,
    low_open: bool = False,
) -> float:
    """A number of ``[name]`` between ``low`` and ``high`` (``low`` excluded with ``low_open``),
    a whole number with ``integer``."""
    value = table.get(key, default)
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    number = not isinstance(value, bool) and isinstance(value, kinds)
    if not number or (value <= low if low_open else value < low) or value > high:
        what = "a whole number" if integer else "a number"
        bound = f"greater than {low:g}" if low_open else f"from {low:g}"
        raise ConfigError(f"{origin}: {name}.{key} must be {what} {bound} to {high:g}")
    return float(value)


def _max_quarantined(raw: dict[str, Any], origin: str) -> int:
    quality = _table(raw, "quality", origin, required=False)
    _no_unknown(quality, {"max_quarantined", "data_docs"}, "quality", origin)
    value = quality.get("max_quarantined", 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{origin}: quality.max_quarantined must be a whole number >= 0")
    return value


def _data_docs(raw: dict[str, Any], origin: str) -> bool:
    value = _table(raw, "quality", origin, required=False).get("data_docs", True)
    if not isinstance(value, bool):
        raise ConfigError(f"{origin}: quality.data_docs must be true or false")
    return value


def _authorities(raw: dict[str, Any], origin: str, prefix: str = "") -> dict[str, dict[str, str]]:
    """``[authorities.XX]`` of ``raw`` (``prefix``: where ``raw`` is, ``operators.ID.`` for a
    further operator's own tables)."""
    tables = _table(raw, "authorities", origin, required=False, prefix=prefix)
    out: dict[str, dict[str, str]] = {}
    for country, table in tables.items():
        refusal = filing_refusal(country, f"[{prefix}authorities.{country}]")
        if refusal is not None:
            raise ConfigError(f"{origin}: {refusal}")
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: [{prefix}authorities.{country}] must be a table of identifiers")
        values = {}
        for key in table:
            if key == PARTNERS_KEY and country in MODEL_RULES:
                values[key] = _partners(table[key], f"{prefix}authorities.{country}", origin)
                continue
            value = _str(table, key, f"{prefix}authorities.{country}", origin)
            if value:
                values[key] = value
        out[country] = values
    return out


def _partners(value: Any, name: str, origin: str) -> str:
    """``partner_jurisdictions``: the reportable jurisdictions a Model Rules filing reports to,
    besides its own (a list of ISO 3166 alpha-2 codes, which may be empty), kept as one text of
    the codes joined by commas (:func:`reporting.jurisdictions.partner_jurisdictions`)."""
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ConfigError(f'{origin}: {name}.{PARTNERS_KEY} must be a list of country codes (e.g. ["IE", "NZ"])')
    codes = [_country(c.strip().upper(), f"{name}.{PARTNERS_KEY}", origin) for c in value]
    return ",".join(sorted(set(codes)))


def _table(raw: dict[str, Any], key: str, origin: str, *, required: bool, prefix: str = "") -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{origin}: the table [{prefix}{key}] is required")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{origin}: [{prefix}{key}] must be a table")
    return value


def _no_unknown(table: dict[str, Any], allowed: set[str], name: str, origin: str) -> None:
    """A key this version does not know is refused (a typo would otherwise be ignored and its
    setting silently take the default), with the valid keys and the likely one."""
    unknown = sorted(set(table) - allowed)
    if unknown:
        where = f"in [{name}]" if name else "at the top level (tables)"
        hints = [
            f"{u} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(u, allowed, n=1)) else u
            for u in unknown
        ]
        raise ConfigError(
            f"{origin}: unknown key(s) {where}: {', '.join(hints)}; the valid keys are: {', '.join(sorted(allowed))}"
        )


#: Keys whose value goes into the DPI message: checked as the XML text they become.
_XML_TEXT_KEYS = {
    "operator.name",
    "operator.tin",
    "operator.vat",
    "operator.platform_business_name",
    "operator.address.street",
    "operator.address.building",
    "operator.address.post_code",
    "operator.address.city",
}


_FURTHER_OPERATOR = re.compile(r"^operators\.[^.]+")
#: The tables of another operator (``assumed_operators[2]``, ``operators.ID.assuming_operator.address``):
#: every text of theirs goes into the message.
_OTHER_OPERATOR_TABLE = re.compile(r"(operators\.[^.]+\.)?(assumed_operators\[\d+\]|assuming_operator)(\.address)?")


def _str(table: dict[str, Any], key: str, name: str, origin: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{origin}: {name}.{key} must be a string")
    value = value.strip()
    generic = _FURTHER_OPERATOR.sub("operator", name)  # [operators.ID] reads as [operator]
    xml_text = (
        f"{generic}.{key}" in _XML_TEXT_KEYS
        or generic.startswith(("authorities.", "operator.authorities."))
        or (_OTHER_OPERATOR_TABLE.fullmatch(name) is not None and key != "country")
    )
    problem = text_problem(value, MAX_TEXT if xml_text else 4000)
    if problem:
        raise ConfigError(f"{origin}: {name}.{key} {problem}; correct it before the run")
    return value or None


def _req(table: dict[str, Any], key: str, name: str, origin: str) -> str:
    value = _str(table, key, name, origin)
    if value is None:
        raise ConfigError(f"{origin}: {name}.{key} is required")
    return value


def _choice(
    table: dict[str, Any], key: str, choices: tuple[str, ...], default: str, origin: str, name: str = "reporting"
) -> str:
    value = _str(table, key, name, origin) or default
    if value not in choices:
        raise ConfigError(f"{origin}: {name}.{key} = {value!r}; expected one of {', '.join(choices)}")
    return value


def _country(value: str, key: str, origin: str) -> str:
    if not is_country(value):
        raise ConfigError(f"{origin}: {key} = {value!r} is not an ISO 3166 alpha-2 country code")
    return value


#: the hosts plain http may reach: this machine only (a local test server), by exact name
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def _dip_url(url: str, key: str, origin: str) -> str:
    """A DIP host URL: https, or plain http to this machine only (the host parsed and compared
    exactly, so ``http://localhost.example`` is no local host); never with credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise ConfigError(f"{origin}: transmission.{key} is not a URL") from None
    if not host or parts.scheme not in ("https", "http"):
        raise ConfigError(f"{origin}: transmission.{key} must be an https:// URL (plain http only to this machine)")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{origin}: transmission.{key} carries credentials; they never go in the file")
    if parts.scheme == "http" and host not in LOCAL_HOSTS:
        raise ConfigError(
            f"{origin}: transmission.{key} must be an https:// URL (plain http only to this machine: "
            f"{', '.join(LOCAL_HOSTS)})"
        )
    return url.rstrip("/")


def _same_host(a: str, b: str) -> bool:
    """Two URLs reach the same server (scheme, host and port compared, case-blind)."""
    pa, pb = urlsplit(a), urlsplit(b)
    port = {"https": 443, "http": 80}
    return (pa.scheme, pa.hostname, pa.port or port.get(pa.scheme)) == (
        pb.scheme,
        pb.hostname,
        pb.port or port.get(pb.scheme),
    )


def _transmission(raw: dict[str, Any], origin: str) -> Transmission:
    table = _table(raw, "transmission", origin, required=False)
    _no_unknown(table, _TRANSMISSION_KEYS, "transmission", origin)
    values: dict[str, Any] = {}
    for key in ("dip_test_url", "dip_prod_url"):
        url = _str(table, key, "transmission", origin)
        if url is not None:
            values[key] = _dip_url(url, key, origin)
    test_url = values.get("dip_test_url", DIP_TEST_URL)
    prod_url = values.get("dip_prod_url", DIP_PROD_URL)
    if _same_host(test_url, DIP_PROD_URL):
        raise ConfigError(
            f"{origin}: transmission.dip_test_url names the BZSt's production host; test filings never go there"
        )
    if _same_host(prod_url, DIP_TEST_URL):
        raise ConfigError(
            f"{origin}: transmission.dip_prod_url names the BZSt's test host; production filings never go there"
        )
    if _same_host(test_url, prod_url):
        raise ConfigError(
            f"{origin}: transmission.dip_test_url and dip_prod_url name the same host; test and production "
            "filings must go to different hosts"
        )
    for key, low in (("attempts", 1), ("poll_seconds", 5), ("poll_hours", 1)):
        if key in table:
            value = table[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{origin}: transmission.{key} must be a whole number of at least {low}")
            values[key] = value
    key_file = _str(table, "fr_public_key", "transmission", origin)
    if key_file:
        values["fr_public_key"] = key_file
    return Transmission(**values)
