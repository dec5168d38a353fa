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
    # the answers only (3 × 1..100 ms), not the 2 s timeout: nearest rank 150 and 270
    assert latency["p50"] == 50 and latency["p90"] == 90 and latency["max"] == 100
    assert doc["timeline"][0]["offered"] == 100 and doc["timeline"][0]["max_ms"] == 100
    assert doc["timeline"][2]["offered"] == 102  # the two failed requests were offered too
    assert not doc["passed"] and doc["verdict"].startswith("FAIL: ")
    assert "2 of 302 requests failed" in doc["verdict"] and "1 answers not" in doc["verdict"]
    text = render_text(doc)
    assert "offered 101/s, achieved 100/s" in text
    assert "p99.9" in text and "MISMATCH" in text and "timeout 1" in text
    assert text.splitlines()[-1] == doc["verdict"]


def test_files(tmp_path: Path) -> None:
    doc = build_report(_stats(), {"url": "http://127.0.0.1:1", "note": "<b>escaped</b>"})
    json_path, html_path = write_report(doc, tmp_path / "out")
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(doc))
    page = html_path.read_text()
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 2 and "<polyline" in page
    assert "FAIL: " in page and "class='verdict fail'" in page
    assert "&lt;b&gt;escaped&lt;/b&gt;" in page and "<b>escaped" not in page
    # no external assets: no scripts, stylesheets or images fetched from anywhere
    assert not re.search(r"<(script|link|img)\b", page)
    urls = set(re.findall(r"https?://[^\s\"'<]+", page))
    assert urls == {"http://www.w3.org/2000/svg", "http://127.0.0.1:1"}  # a namespace, the target


def test_empty_run_renders() -> None:
    doc = build_report(RunStats(rate=10, duration_s=1), {})
    assert doc["latency_ms"]["p99"] == 0.0
    assert "<svg" in render_html(doc)


def _clean(latency_s: float) -> RunStats:
    stats = RunStats(rate=50, duration_s=2)
    for i in range(100):
        stats.scheduled += 1
        stats.record(i / 50, latency_s, "accept/ok")
    stats.elapsed_s = 2.0
    return stats


def test_the_verdict_holds_the_p99_to_the_budget_given() -> None:
    assert build_report(_clean(0.003), {}, p99_budget_ms=400)["verdict"] == (
        "PASS: p99 3.00 ms within the 400 ms budget, every request answered as expected")
    over = build_report(_clean(0.003), {}, p99_budget_ms=2)
    assert not over["passed"]
    assert over["verdict"] == "FAIL: p99 3.00 ms over the 2 ms budget"


def test_a_run_without_a_single_answer_fails_and_shows_no_latency() -> None:
    """Twenty refused connections: no percentile made of failed attempts, and a verdict
    that says what happened."""
    stats = RunStats(rate=10, duration_s=2)
    for i in range(20):
        stats.scheduled += 1
        stats.record(i / 10, 0.001, "connect_error", error=True)
    stats.elapsed_s = 2.0
    doc = build_report(stats, {})
    assert doc["latency_ms"]["p50"] == 0.0 and doc["answered"] == 0
    assert doc["achieved_rate"] == 0.0
    assert doc["verdict"] == ("FAIL: no request was answered (connect_error 20); "
                              "is the service up?")
    assert sum(row["offered"] for row in doc["timeline"]) == 20


def test_the_page_plots_at_full_width_with_labelled_axes(tmp_path: Path) -> None:
    page = render_html(build_report(_clean(0.003), {}, p99_budget_ms=400))
    svgs = re.findall(r"<svg\b[^>]*>.*?</svg>", page, flags=re.S)
    assert len(svgs) == 2
    assert "svg.plot{display:block;width:100%" in page
    for svg in svgs:
        assert 'class="plot"' in svg and "viewBox=" in svg and " width=" not in svg[:200]
        assert "time since start (s)" in svg
        # tick values on the time axis: 0, and more up to the run's length
        assert re.search(r'text-anchor="middle" font-size="12">0</text>', svg)
        assert re.search(r'text-anchor="middle" font-size="12">1(\.0)?</text>', svg)
    rate, latency = svgs
    assert "requests per second" in rate and "offered" in rate and "achieved" in rate
    assert "latency (ms, log scale)" in latency and "p99 budget 400 ms" in latency
    for tick in ("0.1", "1", "10", "100", "1000"):
        assert f'text-anchor="end" font-size="12">{tick}</text>' in latency
    assert "PASS: p99 3.00 ms" in page and "class='verdict pass'" in page
