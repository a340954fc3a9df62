"""The settings of one run, fixed when it starts and kept with its staging data.

Every stage reads them from ``settings.json`` in the run's staging directory, so that the CLI
and the Airflow tasks (possibly on different workers) run the very same computation. The run id
and the message timestamp are inputs here; the renderer never reads the clock.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from reporting.config import Config, Transmission, parse_config
from reporting.jurisdictions import MODEL_RULES, PARTNERS_KEY
from reporting.period import Period
from reporting.vocabulary import DEFAULT_OPERATOR, JURISDICTION, OPERATORS_DIR

SETTINGS_FILE = "settings.json"

#: URLs that carry a secret, given to this process for a run (``dac7 run --ledger URL`` with a
#: password): the stages of the run in this process use them; they are never written down.
_SECRET_URLS: dict[tuple[str, str], str] = {}


def remember_secret_url(run_id: str, what: str, url: str) -> None:
    _SECRET_URLS[(run_id, what)] = url


def secret_url(run_id: str, what: str) -> str | None:
    return _SECRET_URLS.get((run_id, what))


@dataclass(frozen=True, slots=True)
class RunSettings:
    config: Config
    year: int
    as_of: date
    run_id: str
    timestamp: datetime
    out_dir: str
    run_dir: str
    source_url: str | None = None
    xsd_dir: str | None = None
    #: the filing ledger (a URL without password) and what this run files: ``auto`` (the
    #: difference to the ledger), or a kind forced by compliance staff (``new``, ``correction``,
    #: ``deletion`` of ``sellers``, ``nil``)
    ledger_url: str | None = None
    #: the ledger's URL with its secrets masked, when it carries one (then ``ledger_url`` is None:
    #: the URL itself stays in this process's memory, or comes from ``DAC7_LEDGER_URL``)
    ledger_shown: str | None = None
    mode: str = "auto"
    sellers: tuple[str, ...] | None = None
    #: the authorities this run may file to (default: every authority with something due)
    authorities: tuple[str, ...] | None = None
    #: every operator of the configuration, when it declares further operators (``[operators.ID]``);
    #: empty for ``[operator]`` alone. The run is one operator's (``config.operator_id``,
    #: ``config.operator``): it reads that operator's transactions, and stops on any transaction
    #: that is none of these operators'.
    operator_ids: tuple[str, ...] = ()
    #: a group's run of an operator whose reporting another operator of the group assumes (its
    #: ``assuming_operator`` has that operator's TIN): that operator's id. Its run reports the
    #: sellers from the transactions attributed to it, so none may be attributed to this one.
    assumed_by: str | None = None
    #: a group's run of an operator that assumes the reporting of other operators of the group
    #: (its ``assumed_operators`` name their TINs): their ids. No transaction may be attributed to
    #: them: this run decides the sellers on the transactions attributed to it alone.
    assumes: tuple[str, ...] = ()

    @property
    def environment(self) -> str:
        return self.config.reporting.environment

    @property
    def operator_id(self) -> str:
        """The operator this run files for: :data:`DEFAULT_OPERATOR` (``[operator]``) or the id of
        an ``[operators.ID]``. It scopes the run's transactions, messages and ledger."""
        return self.config.operator_id

    @property
    def group(self) -> tuple[str, ...]:
        """Every operator of the configuration (the default operator alone without ``[operators]``)."""
        return self.operator_ids or (DEFAULT_OPERATOR,)

    @property
    def filing_state(self) -> str:
        """The member state the operator files in: its law decides every seller of the run."""
        return self.config.operator.country

    def identifiers(self, authority: str) -> dict[str, str]:
        """The ``[authorities.XX]`` table that applies to the messages to ``authority``: the filing
        state's, in a filing; none otherwise (a table of another state is ignored, and a preview
        is in the EU generic edition, which takes no identifiers)."""
        if authority != self.filing_state or self.preview:
            return {}
        return dict(self.config.authorities.get(authority, {}))

    @property
    def preview(self) -> bool:
        """Routing ``jurisdiction``: a preview of what each member state receives from the filing
        state, in the EU generic edition; test environment only, never approved or transmitted,
        and filed into a ledger of its own in the run's staging, never the filing ledger."""
        return self.config.reporting.routing == JURISDICTION

    @property
    def period(self) -> Period:
        return Period(self.year, self.config.reporting.timezone, self.as_of)

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir)

    def stage_dir(self, stage: str) -> Path:
        d = self.run_path / stage
        d.mkdir(parents=True, exist_ok=True)
        return d

    def to_json(self) -> dict[str, Any]:
        cfg = asdict(self.config)
        operator = cfg["operator"]
        # [[assumed_operators]] and [assuming_operator] are top-level tables of the file
        assumed, assuming = operator.pop("assumed_operators"), operator.pop("assuming_operator")
        raw_config = {
            "operator": operator,
            "reporting": cfg["reporting"],
            "authorities": _authorities_as_written(cfg["authorities"]),
            "quality": {"max_quarantined": cfg["max_quarantined"], "data_docs": cfg["data_docs"]},
        }
        if assumed:
            raw_config["assumed_operators"] = list(assumed)
        if assuming is not None:
            raw_config["assuming_operator"] = assuming
        if cfg["ledger"]:
            raw_config["ledger"] = {"url": cfg["ledger"]}
        if cfg["statement_contact"]:
            raw_config["statements"] = {"contact": cfg["statement_contact"]}
        if cfg["transmission"] != asdict(Transmission()):  # hosts, retries, polling: no secret
            raw_config["transmission"] = {k: v for k, v in cfg["transmission"].items() if v is not None}
        if cfg["aggregate"] != "local":  # the URL itself travels as source_url
            raw_config["source"] = {"aggregate": cfg["aggregate"]}
        if cfg["spark"] is not None:  # where Spark reads the tables (no secret: refused in the file)
            spark = {k: cfg["spark"][k] for k in ("tables", "database", "master") if cfg["spark"][k]}
            keys = sorted(cfg["spark"]["conf"]) or list(cfg["spark"]["conf_keys"])
            if keys:  # the names only: a value may still be sensitive, the stages read it from the file
                spark["conf_keys"] = keys
            raw_config.setdefault("source", {})["spark"] = spark
        return {
            "config": raw_config,
            "config_path": self.config.path,
            "year": self.year,
            "as_of": self.as_of.isoformat(),
            "run_id": self.run_id,
            "timestamp": self.timestamp.isoformat(),
            "out_dir": self.out_dir,
            "run_dir": self.run_dir,
            "source_url": self.source_url,
            "xsd_dir": self.xsd_dir,
            "ledger_url": self.ledger_url,
            "ledger_shown": self.ledger_shown,
            "mode": self.mode,
            "sellers": list(self.sellers) if self.sellers is not None else None,
            "authorities": list(self.authorities) if self.authorities is not None else None,
            # a group's run only: the settings of a single operator's run stay as they were
            **({"operator_id": self.operator_id, "operator_ids": list(self.operator_ids)} if self.operator_ids else {}),
            **({"assumed_by": self.assumed_by} if self.assumed_by else {}),
            **({"assumes": list(self.assumes)} if self.assumes else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSettings:
        raw = copy.deepcopy(data["config"])
        spark = raw.get("source", {}).get("spark")
        conf_keys = tuple(spark.pop("conf_keys", ())) if isinstance(spark, dict) else ()
        config = parse_config(raw, origin=data.get("config_path") or "<settings>")
        config = replace(config, path=data.get("config_path"), operator_id=data.get("operator_id") or DEFAULT_OPERATOR)
        if config.spark is not None and conf_keys:
            config = replace(config, spark=replace(config.spark, conf_keys=conf_keys))
        return cls(
            config=config,
            year=int(data["year"]),
            as_of=date.fromisoformat(data["as_of"]),
            run_id=data["run_id"],
            timestamp=datetime.fromisoformat(data["timestamp"]),
            out_dir=data["out_dir"],
            run_dir=data["run_dir"],
            source_url=data.get("source_url"),
            xsd_dir=data.get("xsd_dir"),
            ledger_url=data.get("ledger_url"),
            ledger_shown=data.get("ledger_shown"),
            mode=data.get("mode", "auto"),
            sellers=tuple(data["sellers"]) if data.get("sellers") is not None else None,
            authorities=tuple(data["authorities"]) if data.get("authorities") is not None else None,
            operator_ids=tuple(data.get("operator_ids") or ()),
            assumed_by=data.get("assumed_by") or None,
            assumes=tuple(data.get("assumes") or ()),
        )

    def save(self) -> Path:
        path = self.run_path / SETTINGS_FILE
        write_json(path, self.to_json())
        return path


def load_settings(run_dir: str | Path) -> RunSettings:
    """The settings of the run staged in ``run_dir``. ``run_dir`` is where the run is now: a
    worker's copy of a run on shared staging has another path than the one ``prepare`` saw."""
    path = Path(run_dir) / SETTINGS_FILE
    settings = RunSettings.from_json(json.loads(path.read_text(encoding="utf-8")))
    here = str(Path(run_dir).resolve())
    return settings if settings.run_dir == here else replace(settings, run_dir=here)


def new_run_id() -> str:
    return str(uuid.uuid4())


def operator_run_id(run_id: str, operator_id: str) -> str:
    """The run id of one operator's run within the run ``run_id`` of a group: the run's own for
    the default operator (its ids are those of a single operator's run), else a UUID derived from
    both, so that the MessageRefIds and DocRefIds of two operators (made from their run's id)
    are never the same, and a rerun of the run makes each operator's again."""
    if operator_id == DEFAULT_OPERATOR:
        return run_id
    return str(uuid.uuid5(uuid.UUID(run_id), f"operator/{operator_id}"))


def operator_out_dir(out_dir: str | Path, operator_id: str) -> Path:
    """Where one operator's files are published: the run's output directory for the default
    operator (the layout of a single operator), ``<out>/operators/<ID>/`` for a further one."""
    if operator_id == DEFAULT_OPERATOR:
        return Path(out_dir)
    return Path(out_dir) / OPERATORS_DIR / operator_id


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp name, then rename), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _authorities_as_written(authorities: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """``[authorities.XX]`` as the configuration file writes it, so that :meth:`RunSettings.from_json`
    reads it back: ``partner_jurisdictions`` of a Model Rules jurisdiction is a list of codes in the
    file and kept as one text of the codes joined by commas (``""``: none, the filing jurisdiction
    alone), written back as the list."""
    return {
        country: {
            key: (value.split(",") if value else []) if key == PARTNERS_KEY and country in MODEL_RULES else value
            for key, value in table.items()
        }
        for country, table in authorities.items()
    }
