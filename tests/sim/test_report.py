"""The report writer: the figures, report.json and a self-contained report.html."""

from __future__ import annotations

import json
import re
from pathlib import Path

from terminals_sim.report import build_report, render_html, render_text, write_report
from terminals_sim.stats import RunStats


def _stats() -> RunStats:
    stats = RunStats(rate=100, duration_s=3)
    for i in range(300):
        stats.scheduled += 1
        latency = (i % 100 + 1) / 1000  # 1..100 ms, three times over
        label = "accept/ok" if i % 10 else "deny/replayed"
        mismatch = {"problem": "fare.amount_fen 100 != 150", "request": {"i": i}} if i == 7 \
            else None
        stats.record(i / 100, latency, label, mismatch=mismatch)
    stats.scheduled += 2
    stats.record(2.5, 2.0, "timeout", error=True)
    stats.record(2.6, None, "generator_overflow", error=True)
    stats.elapsed_s = 3.0
    return stats


def test_figures() -> None:
    doc = build_report(_stats(), {"url": "http://127.0.0.1:1", "scenario": "bus-taps"})
    assert doc["scheduled"] == 302
    assert doc["answered"] == 300
    assert doc["offered_rate"] == 302 / 3
    assert doc["achieved_rate"] == 100
    assert doc["decisions"] == {"accept/ok": 270, "deny/replayed": 30}
    assert doc["errors"] == {"timeout": 1, "generator_overflow": 1}
    assert doc["mismatches"] == 1 and doc["mismatch_samples"][0]["request"] == {"i": 7}
    latency = doc["latency_ms"]
    # 301 samples (3 × 1..100 ms, and the 2 s timeout): nearest rank 151 and 271
    assert latency["p50"] == 51 and latency["p90"] == 91 and latency["max"] == 2000
    assert len(doc["timeline"]) == 5  # until the 2 s timeout scheduled at 2.5 s ended
    assert doc["timeline"][0]["offered"] == 100 and doc["timeline"][0]["max_ms"] == 100
    text = render_text(doc)
    assert "offered 101/s, achieved 100/s" in text
    assert "p99.9" in text and "MISMATCH" in text and "timeout 1" in text


def test_files(tmp_path: Path) -> None:
    doc = build_report(_stats(), {"url": "http://127.0.0.1:1", "note": "<b>escaped</b>"})
    json_path, html_path = write_report(doc, tmp_path / "out")
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(doc))
    page = html_path.read_text()
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 2 and "<polyline" in page
    assert "&lt;b&gt;escaped&lt;/b&gt;" in page and "<b>escaped" not in page
    # no external assets: no scripts, stylesheets or images fetched from anywhere
    assert not re.search(r"<(script|link|img)\b", page)
    urls = set(re.findall(r"https?://[^\s\"'<]+", page))
    assert urls == {"http://www.w3.org/2000/svg", "http://127.0.0.1:1"}  # a namespace, the target


def test_empty_run_renders() -> None:
    doc = build_report(RunStats(rate=10, duration_s=1), {})
    assert doc["latency_ms"]["p99"] == 0.0
    assert "<svg" in render_html(doc)
