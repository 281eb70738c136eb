"""Shared test configuration: Hypothesis profiles and the example fixtures."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import levelcare

# A quick profile for local runs and a thorough one for CI (CI=true).
settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_configure(config: pytest.Config) -> None:
    """Hold coverage's bound (fail_under) only on runs that include the default tests.

    ``python -m pytest -m slow`` repeats at length checks whose code the default run
    already covers; on its own it covers a fraction of the package, so the bound,
    which is about the default run, would fail it for nothing. Coverage is still
    measured and reported.
    """
    if config.getoption("markexpr") == "slow":
        plugin = config.pluginmanager.getplugin("_cov")
        if plugin is not None:
            plugin.options.cov_fail_under = None


ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
RULES_DIR = ROOT / "rules"
#: The shipped rule base's levels, by id: ``SHIPPED_LEVELS["iop"]``.
SHIPPED_LEVELS = levelcare.Engine.default().levels


def load_examples() -> list[dict[str, Any]]:
    """Every worked example shipped with the project, sorted by name."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES_DIR.glob("*.json"))]


@pytest.fixture(scope="session")
def renamed_engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The shipped rule base with PHP renamed to day-hospital: code that names a level id breaks on it."""
    from levelcare import Engine

    folder = tmp_path_factory.mktemp("renamed") / "rules"
    shutil.copytree(RULES_DIR, folder)
    for path in folder.glob("*.toml"):
        text = path.read_text(encoding="utf-8").replace('"php"', '"day-hospital"')
        path.write_text(text.replace('label = "PHP"', 'label = "day hospital"'), encoding="utf-8")
    return Engine.from_path(folder)


@pytest.fixture
def unsound_rules(tmp_path: Path) -> Path:
    """The shipped rules with IN-2 requiring PHP: they load, but two of their cases fail ``levelcare check``."""
    folder = tmp_path / "unsound"
    shutil.copytree(RULES_DIR, folder)
    path = folder / "inpatient.toml"
    text = path.read_text(encoding="utf-8")
    assert text.count('id = "IN-2"\nlevel = "inpatient"') == 1
    path.write_text(text.replace('id = "IN-2"\nlevel = "inpatient"', 'id = "IN-2"\nlevel = "php"'), encoding="utf-8")
    return folder
