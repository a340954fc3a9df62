"""The architecture as a test: the layers of the package (import-linter), the types of its domain
(mypy, strict), both configured in pyproject.toml, and ruff's lint and format over what `make lint`
checks, so that `make test` and CI keep them.

`make lint` runs the same tools over everything. A tool that is not installed skips its test,
except under ``CI`` (set by CI), where it fails.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed in {BIN}: CI must check the architecture (make venv)")
        pytest.skip(f"{name} is not installed (make venv installs it)")
    return path


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=REPO, capture_output=True, text=True, timeout=600)


def strict_targets() -> list[str]:
    """mypy's arguments for the modules of the strict override in pyproject.toml that exist: a
    package pattern (``reporting.ledger.*``) as ``-p``, a module as ``-m``."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    overrides = config["tool"]["mypy"]["overrides"]
    (strict,) = [o for o in overrides if o.get("disallow_untyped_defs")]
    args: list[str] = []
    for name in strict["module"]:
        package = name.removesuffix(".*")
        if importlib.util.find_spec(package) is not None:
            args += ["-p" if name.endswith(".*") else "-m", package]
    return args


def test_the_layers_of_the_package_hold() -> None:
    result = run(tool("lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_domain_is_strictly_typed() -> None:
    targets = strict_targets()
    assert "reporting.money" in targets and "reporting.ledger" in targets
    result = run(tool("mypy"), *targets)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_the_whole_package_type_checks() -> None:
    """The default checks over every module, as `make lint` runs them (a minute from a cold cache)."""
    packages = [name for name in ("reporting", "dac7_demo") if (REPO / name).is_dir()]
    result = run(tool("mypy"), *packages)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_override_switches_strict_mode_on_for_everything() -> None:
    """mypy reads ``strict = true`` in a per-module override as the global flag: the strict
    override spells out the per-module flags instead."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert not any("strict" in o for o in config["tool"]["mypy"]["overrides"])


def lint_paths() -> list[str]:
    """The paths `make lint` gives ruff (``LINT_PATHS`` in the Makefile), those that exist."""
    for line in (REPO / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith("LINT_PATHS :="):
            return [p for p in line.split(":=", 1)[1].split() if (REPO / p).exists()]
    raise AssertionError("the Makefile has no LINT_PATHS")


def test_ruff_finds_nothing_and_every_file_is_formatted() -> None:
    paths = lint_paths()
    assert "reporting" in paths and "tests" in paths
    ruff = tool("ruff")
    checked = run(ruff, "check", "--no-cache", *paths)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    formatted = run(ruff, "format", "--check", "--no-cache", *paths)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
