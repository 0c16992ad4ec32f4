"""What the wheel carries is found through the installed package, never through the source tree.

Building and installing the wheel is too slow for this suite: .ci/run does it, outside the repository.
"""

from __future__ import annotations

import tomllib
from importlib import resources

from monitor.core.paths import sample_watchlist, stylesheet
from tests.conftest import ROOT


def test_the_stylesheet_sample_watchlist_and_demo_are_package_resources() -> None:
    assert stylesheet().is_file() and "Screen" in stylesheet().read_text(encoding="utf-8")
    assert "city:" in sample_watchlist() and "type: demo" in sample_watchlist()
    assert resources.files("monitor.data").joinpath("demo_mentions.jsonl").is_file()


def test_the_app_takes_its_stylesheet_from_the_package() -> None:
    from monitor.ui.app import MonitorApp

    assert MonitorApp.CSS_PATH == [stylesheet()]


def test_the_sample_is_the_repository_watchlist() -> None:
    assert sample_watchlist() == (ROOT / "watchlist.yaml").read_text(encoding="utf-8")


def test_every_package_and_its_data_is_listed_for_the_wheel() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "monitor").rglob("__init__.py")}
    assert found | {"monitor.styles"} == set(setuptools["packages"])
    assert setuptools["package-dir"] == {"monitor.styles": "styles"}
    assert "*.tcss" in setuptools["package-data"]["monitor.styles"]
    assert {"*.jsonl", "*.yaml"} <= set(setuptools["package-data"]["monitor.data"])
