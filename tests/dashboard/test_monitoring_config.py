"""The Prometheus and Grafana examples in config/ only name metrics the service exports."""

from __future__ import annotations

import json
import re

import pytest

from tests.web.harness import CONFIG_DIR
from validator.metrics import Metrics

FILES = ["prometheus.yml", "alerts.yml", "grafana-dashboard.json"]
_SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created")


def exported_names() -> set[str]:
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES)
    return names


@pytest.mark.parametrize("name", FILES)
def test_config_names_only_exported_metrics(name: str) -> None:
    text = (CONFIG_DIR / name).read_text(encoding="utf-8")
    mentioned = set(re.findall(r"\bvalidator_[a-z0-9_]+", text))
    assert mentioned <= exported_names(), mentioned - exported_names()


def test_alerts_cover_what_operators_asked_for() -> None:
    text = (CONFIG_DIR / "alerts.yml").read_text(encoding="utf-8")
    for alert in ("ValidatorDenyRateSpike", "ValidatorTerminalSilent", "ValidatorStoreErrors",
                  "ValidatorP99OverBudget"):
        assert f"alert: {alert}" in text
    assert "> 0.025" in text  # p99 budget: 25 ms


def test_grafana_dashboard_is_importable_json() -> None:
    dashboard = json.loads((CONFIG_DIR / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
