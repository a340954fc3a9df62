"""``dac7 bench`` runs at a tiny scale, writes its table as JSON, and turns the sellers it published
into the flat input of the published ``dac7`` package (which is never installed here: no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dac7_demo.bench import flat_sellers
from reporting.cli import main


def test_the_benchmark_runs_and_writes_its_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "bench"
    assert main(["bench", "--sellers", "120", "--work", str(work), "--no-data-docs"]) == 0
    printed = capsys.readouterr().out
    assert "DAC7 bench" in printed and "data checks" in printed
    result = json.loads((work / "bench-120-jurisdiction.json").read_text(encoding="utf-8"))
    assert [s["stage"] for s in result["stages"]] == [
        "prepare",
        "extract",
        "aggregate",
        "rules",
        "render",
        "validate",
        "publish",
        "statements",
    ]
    assert result["stages"][-1]["per_second"] is None  # a preview writes no statements
    assert all(s["seconds"] >= 0 and s["peak_rss_gb"] > 0 for s in result["stages"])
    assert result["wall_seconds"] >= sum(s["seconds"] for s in result["stages"])
    scale = result["scale"]
    assert scale["routing"] == "jurisdiction" and scale["sellers_generated"] == 120
    assert scale["transactions"] > 0 and scale["reportable"] > 0 and scale["files"] > 1
    assert 0 < result["checks_share"] < 1 and set(result["checks"]) >= {"gx extract", "relational", "records"}
    assert result["machine"]["cores"] >= 1 and result["dac7_package"] is None
    # the marketplace is generated once and reused; every run files into a ledger of its own
    assert main(["bench", "--sellers", "120", "--work", str(work), "--routing", "nexus", "--no-data-docs"]) == 0
    assert len(list(work.glob("marketplace-120-*.db"))) == 1
    nexus = json.loads((work / "bench-120-nexus.json").read_text(encoding="utf-8"))
    assert nexus["scale"]["files"] == 1 and nexus["scale"]["reportable"] == scale["reportable"]
    [statements] = [s for s in nexus["stages"] if s["stage"] == "statements"]
    assert statements["unit"] == "statements/s" and statements["per_second"] > 0

    individuals, entities = flat_sellers(work / "out-jurisdiction")
    assert individuals and len(individuals) + len(entities) <= scale["reportable"] * 2  # residence and property
    one = individuals[0]
    assert {"seller_id", "residence_country_code", "first_name", "last_name", "birth_date", "addresses"} <= set(one)
    assert one["tax_identification_numbers"] == []  # sent as unknown: dac7 checks TIN patterns of its own
    activity = next(v for k, v in one.items() if k in ("sale_of_goods", "personal_services", "transportation_rental"))
    assert {"currency_code", "consideration_amount_q1", "activities_number_q4", "taxes_amount_q2"} <= set(activity)


@pytest.mark.pg
def test_the_benchmark_reads_a_postgresql_copy_summed_there(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "bench"
    args = ["bench", "--sellers", "120", "--work", str(work), "--no-data-docs", "--routing", "nexus"]
    assert main(args) == 0
    local = json.loads((work / "bench-120-nexus.json").read_text(encoding="utf-8"))
    assert main([*args, "--source", pg_url, "--aggregate", "source"]) == 0
    assert "copied the marketplace" in capsys.readouterr().out
    pushed = json.loads((work / "bench-120-nexus.json").read_text(encoding="utf-8"))
    assert pushed["scale"]["aggregate"] == "source" and pushed["scale"]["source"].startswith("postgresql")
    for key in ("transactions", "sellers", "reportable", "files", "xml_bytes"):
        assert pushed["scale"][key] == local["scale"][key], key
    # a second run reads the copy it made
    assert main([*args, "--source", pg_url, "--aggregate", "source"]) == 0
    assert "copied the marketplace" not in capsys.readouterr().out


def test_the_benchmark_times_the_quarterly_watch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "bench"
    assert main(["bench", "--sellers", "120", "--work", str(work), "--no-data-docs", "--watch", "2"]) == 0
    assert "the quarterly watch of Q2 (as of 2025-06-30, no XML" in capsys.readouterr().out
    result = json.loads((work / "bench-120-watch-q2.json").read_text(encoding="utf-8"))
    stages = ["prepare", "extract", "aggregate", "rules", "report", "watch_list"]
    assert [s["stage"] for s in result["stages"]] == stages
    scale = result["scale"]
    assert scale["watch_quarter"] == 2 and scale["as_of"] == "2025-06-30" and scale["routing"] == "nexus"
    assert scale["files"] == 0 and scale["xml_bytes"] == 0 and not list((work / "out-watch-q2").rglob("*.xml"))
    # the watch list the run wrote, one line per seller after the header
    listed = (work / "out-watch-q2" / "watch_list.csv").read_text(encoding="utf-8").splitlines()
    assert scale["watch_list"] == len(listed) - 1
    # the watch reads the payments up to the quarter's end: fewer than the whole year's
    assert main(["bench", "--sellers", "120", "--work", str(work), "--no-data-docs", "--watch", "4"]) == 0
    year = json.loads((work / "bench-120-watch-q4.json").read_text(encoding="utf-8"))["scale"]
    assert 0 < scale["transactions"] < year["transactions"]
    assert main(["bench", "--sellers", "120", "--work", str(work), "--watch", "1", "--against-dac7"]) == 2
    assert "takes no --against-dac7" in capsys.readouterr().err


def test_the_benchmark_measures_the_render_at_scales_of_sellers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "bench"
    assert main(["bench", "--sellers", "120", "--work", str(work), "--render-sellers", "30", "200"]) == 0
    assert "peak RSS" in capsys.readouterr().out
    result = json.loads((work / "bench-render-30-200.json").read_text(encoding="utf-8"))
    routed = result["marketplace"]["routed"]
    first, second = result["scales"]
    # whole copies of the routed sellers: at least as many as asked for
    assert first["reportable"] == routed * -(-30 // routed) and second["reportable"] == routed * -(-200 // routed)
    assert first["messages"] == second["messages"] == 1 and first["peak_rss_gb"] > 0
    assert result["peak_ratio"] == round(
        max(first["peak_rss_gb"], second["peak_rss_gb"]) / min(first["peak_rss_gb"], second["peak_rss_gb"]), 3
    )
    assert not (work / "render-200").exists()  # the copies' personal data is not kept
    assert main(["bench", "--work", str(work), "--render-sellers", "0"]) == 2
