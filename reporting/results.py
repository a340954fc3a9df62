"""What each stage returns, and what a run writes down for its readers (``manifest.json``).

Every value here is written as JSON (a stage's ``<run>/<stage>/<stage>.json``, the output's
``manifest.json``) and handed between Airflow tasks, so each is a :class:`~typing.TypedDict`: a
plain ``dict`` when the program runs, the same bytes written, and a type for every reader.

    extract   -> ExtractResult          (extract/extract.json)
    aggregate -> AggregateResult        (aggregate/aggregate.json)
    rules     -> RulesResult            (rules/rules.json)
    plan      -> the authorities        (render/plan.json: PlanFile)
    render    -> AuthorityRendered      (render/authorities/<XX>.json); all: Rendered (render/render.json)
    validate  -> AuthorityValidation    (validate/authorities/<XX>.json); all: Validation
    publish   -> AuthorityPublished     (publish/authorities/<XX>.json); all: the Manifest
    finalize  -> Manifest               (<out>/manifest.json, and runs/<run>/manifest.json)

A leaf: it imports nothing but the standard library. The annotations are evaluated (no
``from __future__ import annotations``), so that ``NotRequired`` shows in ``__optional_keys__``.
"""

from typing import Any, NotRequired, TypedDict

# ------------------------------------------------------------------------------------ extract


class AggregatedAtSource(TypedDict):
    """What the source summed itself (``[source] aggregate = "source"``)."""

    transactions: int
    refunds: int
    rows: int  # aggregate rows written to extract/pushed_totals.parquet
    seconds: float
    read_transactions: int  # rows read beside them, for the checks
    read_refunds: int


class ExtractResult(TypedDict):
    counts: dict[str, int]  # rows staged per contract table
    control_counts: dict[str, int]  # the source's own counts
    quarantined_sellers: int
    identity_incomplete_sellers: int
    relational_checks_seconds: float
    source: str  # the source as shown (no secret)
    aggregated_at_source: NotRequired[AggregatedAtSource]
    #: transactions summed here although the source aggregates: white space SQL cannot trim
    aggregated_here_for_white_space: NotRequired[int]


class AggregateResult(TypedDict):
    rows: int  # rows of aggregate/activity_totals.parquet
    sellers: int


# -------------------------------------------------------------------------------------- rules


class Reading(TypedDict):
    """The reading of the rules every seller was decided under (:meth:`reporting.variants.LegalVariant.as_dict`)."""

    filing_state: str
    reading: str
    label: str
    checked: bool
    de_minimis_strict: bool
    goods_part_exclusion: bool
    threshold_rate: str
    financial_identifier: str
    financial_identifier_not_used_by: list[str]
    source: str


class PartnerJurisdictions(TypedDict):
    """The reportable jurisdictions a Model Rules filing used (:class:`reporting.jurisdictions.Reportable`)."""

    #: the list: the one published for the period, the latest before it, or the operator's own
    source: str
    #: why the list is an assumption ("" when it is the published or the configured one)
    assumed: str
    jurisdictions: list[str]


class RulesResult(TypedDict):
    sellers: int
    decisions: dict[str, int]  # decision code -> sellers ("reported", "quarantined:<rule>" ...)
    reportable: int
    sellers_per_authority: dict[str, int]
    record_checks_seconds: float
    reading: Reading
    #: the reportable jurisdictions of a Model Rules filing (None under DAC7: the member states)
    partner_jurisdictions: PartnerJurisdictions | None


# --------------------------------------------------------------------------------------- plan


class PlanFile(TypedDict):
    """``render/plan.json``: the authorities the run files to, in order, and the live filings of
    the period to other authorities that the run leaves as they are."""

    authorities: list[str]
    other_live_filings: list[str]


class DiscardedMessage(TypedDict):
    """A message an earlier run rendered and never published, discarded before planning again."""

    authority: str
    message_ref_id: str
    run_id: str


# ------------------------------------------------------------------------------------- render


class RenderedMessage(TypedDict):
    """One rendered file (a message, or one part of a message split by the profile's limits)."""

    authority: str
    profile: str
    edition: str
    schema: str  # the profile's schema resource
    message_ref_id: str
    message_type_indic: str  # DPI401, DPI402, DPI403
    file: str  # <XX>/<name>, relative to render/ (and to the output once published)
    sellers: int
    records: dict[str, int]  # seller records per kind: new, correction, deletion
    platform_operator: str  # what the PlatformOperator record is: new, resend, correction, deletion
    part: int  # 1-based, in the order rendered
    parts: NotRequired[int]  # of the authority's files; set once every file of it is written
    sha256: str


class PendingMessage(RenderedMessage):
    """A rendered message as the approver sees it: whether the run has published its authority;
    in a group's run, the operator whose message it is."""

    published: bool
    operator_id: NotRequired[str]


class AuthorityRendered(TypedDict):
    authority: str
    messages: list[RenderedMessage]
    discarded: list[DiscardedMessage]


class Rendered(TypedDict):
    """Every planned authority's messages, in order (``render/render.json``)."""

    messages: list[RenderedMessage]
    discarded: list[DiscardedMessage]


# ----------------------------------------------------------------------------------- validate


class RuleFindingDict(TypedDict):
    """A business rule's finding (:meth:`reporting.checks.business.RuleFinding.as_dict`)."""

    code: str
    rule_id: str
    severity: str  # "error" or "warning"
    doc_ref_id: str | None  # None: the message as a whole
    xpath: str
    message: str


class FileValidation(TypedDict):
    file: str
    valid: bool
    schema_errors: list[str]  # the first 20
    rule_findings: list[RuleFindingDict]  # the first 200


class AuthorityValidation(TypedDict):
    authority: str
    files: list[FileValidation]
    valid: bool
    failures: list[str]
    part: NotRequired[int]  # the report of one file (validate/parts/<XX>/<part>.json), 0-based


class Validation(TypedDict):
    """Every planned authority's files (``validate/validate.json``)."""

    files: list[FileValidation]
    valid: bool


# ------------------------------------------------------------------------------------ publish


class PublishedFile(TypedDict):
    """A file this run published (a :class:`RenderedMessage` with its size in the output)."""

    authority: str
    profile: str
    file: str
    message_ref_id: str
    message_type_indic: str
    sellers: int
    records: dict[str, int]
    platform_operator: str
    part: int
    parts: int
    bytes: int
    sha256: str


class SetAsideFile(TypedDict):
    """A file in the output whose message the ledger does not hold as published: moved aside."""

    file: str
    message_ref_id: str
    status: str


class AuthorityPublished(TypedDict):
    authority: str
    files: list[PublishedFile]
    set_aside: list[SetAsideFile]


class LedgerFile(TypedDict):
    """A file of the period the ledger holds as published (or answered), by any run."""

    authority: str
    file: str
    message_ref_id: str
    message_type_indic: str
    status: str
    published_utc: str | None
    sha256: str
    in_output: bool


class FailedExpectation(TypedDict):
    table: str
    rule: str
    severity: str  # "error" or "warning"
    structural: bool
    unexpected: int  # rows


class DataCheckStage(TypedDict):
    """One suite's run (``checks/<stage>.json``)."""

    stage: str
    suite: str
    success: bool
    stops_run: bool
    seconds: float
    expectations: int
    failed: list[FailedExpectation]
    quarantined_sellers: int
    warnings: int
    data_docs: str | None  # the suite's Data Docs page, relative to the output once published


class DataChecks(TypedDict):
    expectations: int
    failed: int
    seconds: float
    stages: dict[str, DataCheckStage]  # extract, identity, aggregates


class SellerReports(TypedDict):
    """What :func:`reporting.reports.sellers.write_reports` wrote: the report files, relative to
    the output directory (``reports/decisions.parquet``, ``reports/decisions.csv`` ...)."""

    reports: list[str]


class DueDiligence(TypedDict):
    """The counts of ``reports/due_diligence.csv``."""

    sellers: int
    findings: int
    by_kind: dict[str, int]


class RunCounts(TypedDict):
    sellers_read: int
    transactions_read: int
    reportable: int
    decisions: dict[str, int]
    sellers_per_authority: dict[str, int]


class Manifest(TypedDict):
    """``<out>/manifest.json``: what a run published and what it found, for people and programs
    (``dac7 manifest``, the run summary page, the DAG's metrics, the DAC7 view).

    Manifests written by earlier versions lack some keys (their readers use ``.get``); the kept
    copy under ``runs/<run>/`` is the manifest itself."""

    run_id: str
    reporting_year: int
    as_of: str  # ISO date
    environment: str  # "prod" or "test"
    routing: str  # "nexus" (a filing) or "jurisdiction" (a preview)
    filing_state: str
    preview: bool
    reading: Reading | None
    #: the reportable jurisdictions of a Model Rules filing and whether the list is assumed
    partner_jurisdictions: PartnerJurisdictions | None
    timestamp_utc: str  # ISO, without an offset
    watch: bool  # the quarterly watch: reports only, no XML
    files: list[PublishedFile]
    published_files: list[LedgerFile]
    set_aside: list[SetAsideFile]
    reports: list[str]  # relative to the output
    due_diligence: DueDiligence
    #: the warnings of the business rules, each with its file
    warnings: list[dict[str, Any]]
    data_checks: DataChecks
    superseded: list[Any]  # always empty: kept for readers of older manifests
    discarded: list[DiscardedMessage]
    other_live_filings: list[str]
    staging: str  # the run's staging directory
    summary: RunCounts
    #: ``runs/<run>``, where the run's copy is kept (absent from manifests written before runs were kept)
    run_copy: NotRequired[str]
    #: a group's run (``[operators.ID]``): the operator whose filing this is (``default``: ``[operator]``)
    #: and its name; absent for a single operator's run
    operator_id: NotRequired[str]
    operator_name: NotRequired[str]
    #: another platform operator assumes this operator's reporting (``[assuming_operator]``): its
    #: files declare it and carry no seller (absent from manifests written before issue 18)
    assumed_reporting: NotRequired[bool]


__all__ = [
    "AggregateResult",
    "AggregatedAtSource",
    "AuthorityPublished",
    "AuthorityRendered",
    "AuthorityValidation",
    "DataCheckStage",
    "DataChecks",
    "DiscardedMessage",
    "DueDiligence",
    "ExtractResult",
    "FailedExpectation",
    "FileValidation",
    "LedgerFile",
    "Manifest",
    "PartnerJurisdictions",
    "PlanFile",
    "PublishedFile",
    "Reading",
    "Rendered",
    "RenderedMessage",
    "RuleFindingDict",
    "RulesResult",
    "RunCounts",
    "SetAsideFile",
    "Validation",
]


class StatementsResult(TypedDict):
    """What :func:`reporting.pipeline.write_statements` wrote: counts only (the statements hold
    personal data; they are in ``<out>/statements/``)."""

    written: bool  # False for a preview (routing jurisdiction): no filing, no statements
    reason: str | None  # why none were written ("preview")
    statements: int
    recorded: int  # of those, new in the ledger's delivery record (0 when written again)
    kinds: dict[str, int]  # initial | correction | deletion -> count
    languages: dict[str, int]  # the statements' language tags -> count
    #: invalid sellers.language tags (rule, table, key = seller_id): those statements are in English
    findings: list[dict[str, str | None]]
    feed: str | None  # relative to the output: statements/statements.jsonl (the latest run's)
    run_feed: str | None  # this run's own feed, statements/runs/<run_id>.jsonl (the same bytes)
    sha256: str | None  # of the feed's bytes as this run wrote them (those of run_feed)
    seconds: float
