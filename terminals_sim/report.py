"""The load run's report: a document (dict) written as text, report.json and report.html.

The HTML page is self-contained — inline CSS and two inline SVG plots (latency over
time on a log scale; offered vs completed per second) — so it can be mailed or archived
without its assets going missing.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from terminals_sim.stats import RunStats

__all__ = ["build_report", "render_html", "render_text", "write_report"]


def verdict(stats: RunStats, p99_budget_ms: float) -> tuple[bool, str]:
    """Pass or fail, in one line: every request answered, as expected, p99 within budget."""
    p99 = stats.latency_summary_ms()["p99"]
    failed = stats.error_count
    if not stats.completed:
        kinds = ", ".join(f"{k} {v}" for k, v in stats.errors.most_common()) or "none sent"
        return False, f"FAIL: no request was answered ({kinds}); is the service up?"
    problems = []
    if p99 > p99_budget_ms:
        problems.append(f"p99 {p99:.2f} ms over the {p99_budget_ms:g} ms budget")
    if failed:
        problems.append(f"{failed} of {stats.scheduled} requests failed")
    if stats.mismatches:
        problems.append(f"{stats.mismatches} answers not as expected")
    if problems:
        return False, "FAIL: " + "; ".join(problems)
    return True, f"PASS: p99 {p99:.2f} ms within the {p99_budget_ms:g} ms budget, " \
                 "every request answered as expected"


def build_report(stats: RunStats, meta: dict[str, Any], *,
                 p99_budget_ms: float = 400.0) -> dict[str, Any]:
    """The report document: configuration, rates, latency, decisions, errors, mismatches,
    and the verdict against the p99 budget."""
    answered = stats.completed
    elapsed = max(stats.elapsed_s, 1e-9)
    passed, line = verdict(stats, p99_budget_ms)
    return {
        "passed": passed,
        "verdict": line,
        "p99_budget_ms": p99_budget_ms,
        "meta": meta,
        "offered_rate": stats.scheduled / stats.duration_s,
        "achieved_rate": answered / elapsed,
        "scheduled": stats.scheduled,
        "answered": answered,
        "elapsed_s": stats.elapsed_s,
        "latency_ms": stats.latency_summary_ms(),
        "decisions": dict(stats.decisions.most_common()),
        "errors": dict(stats.errors.most_common()),
        "mismatches": stats.mismatches,
        "mismatch_samples": stats.mismatch_samples,
        "timeline": stats.timeline(),
    }


def render_text(doc: dict[str, Any]) -> str:
    lat = doc["latency_ms"]
    lines = [
        f"offered {doc['offered_rate']:.0f}/s, achieved {doc['achieved_rate']:.0f}/s "
        f"({doc['answered']} answers to {doc['scheduled']} requests in {doc['elapsed_s']:.1f} s)",
        "latency of answers (ms, from the scheduled time): " + "  ".join(
            f"{k} {lat[k]:.2f}" for k in ("p50", "p90", "p99", "p99.9", "max")),
        "decisions: " + (", ".join(f"{k} {v}" for k, v in doc["decisions"].items()) or "none"),
        "errors: " + (", ".join(f"{k} {v}" for k, v in doc["errors"].items()) or "none"),
        f"mismatches: {doc['mismatches']}",
    ]
    for sample in doc["mismatch_samples"][:10]:
        lines.append(f"  MISMATCH {json.dumps(sample, ensure_ascii=False)[:600]}")
    lines.append(doc["verdict"])
    return "\n".join(lines)


def write_report(doc: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    json_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")
    html_path.write_text(render_html(doc), "utf-8")
    return json_path, html_path


# --- HTML ----------------------------------------------------------------------------

# drawn in these units, scaled to the page's full width by the viewBox
_W, _H = 1000, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 20, 28, 48
_STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
svg.plot{display:block;width:100%;height:auto;margin-bottom:1.5em}
.verdict{font-size:18px;font-weight:600;padding:.5em .8em;border-radius:4px}
.pass{background:#e3f4e1;color:#1d5e1a}.fail{background:#fbe3e1;color:#8a1c12}
pre{background:#f8f8f8;padding:.5em;white-space:pre-wrap}"""


def _table(rows: dict[str, Any], head: tuple[str, str]) -> str:
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>"
                   for k, v in rows.items())
    return f"<table><tr><th>{head[0]}</th><th>{head[1]}</th></tr>{body}</table>"


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _polyline(points: list[tuple[float, float]], colour: str, label: str) -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return (f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}">'
            f"<title>{label}</title></polyline>")


def _x(t: float, x_max: float) -> float:
    return _LEFT + (_W - _RIGHT - _LEFT) * t / max(x_max, 1.0)


def _x_ticks(x_max: float) -> list[float]:
    """About eight round tick values from 0 to `x_max` seconds."""
    raw = max(x_max, 1.0) / 8
    step = min((m * 10 ** math.floor(math.log10(raw)) for m in (1, 2, 5, 10)
                if m * 10 ** math.floor(math.log10(raw)) >= raw), default=raw)
    return [step * i for i in range(int(x_max // step) + 1)]


def _frame(title: str, x_max: float, y_ticks: list[tuple[float, str]], y_label: str,
           series: str, legend: list[tuple[str, str]]) -> str:
    """Axes with tick values and units, a legend, and the series, at full page width."""
    base, right = _H - _BOTTOM, _W - _RIGHT
    parts = [f'<line x1="{_LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
             f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12">'
             f"{text}</text>" for y, text in y_ticks]
    parts += [f'<line x1="{_x(t, x_max):.1f}" x2="{_x(t, x_max):.1f}" y1="{base}" '
              f'y2="{base + 5}" stroke="#888"/><text x="{_x(t, x_max):.1f}" y="{base + 18}" '
              f'text-anchor="middle" font-size="12">{t:g}</text>' for t in _x_ticks(x_max)]
    parts += [f'<text x="{_LEFT + 10 + 130 * i}" y="18" fill="{c}" font-size="13">'
              f"■ {html.escape(name)}</text>" for i, (name, c) in enumerate(legend)]
    return (f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" '
            f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{html.escape(title)}">'
            f"{''.join(parts)}"
            f'<line x1="{_LEFT}" x2="{right}" y1="{base}" y2="{base}" stroke="#888"/>'
            f'<line x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{base}" stroke="#888"/>'
            f'<text x="{(_LEFT + right) / 2}" y="{_H - 8}" text-anchor="middle" font-size="13">'
            f"time since start (s)</text>"
            f'<text transform="translate(16 {(_TOP + base) / 2}) rotate(-90)" '
            f'text-anchor="middle" font-size="13">{html.escape(y_label)}</text>'
            f"{series}</svg>")


def latency_svg(timeline: list[dict[str, float]], budget_ms: float | None = None) -> str:
    """p50, p99 and max latency of the answers per second, log scale (0.1 ms up), and
    the p99 budget as a dashed line."""
    worst = max([row["max_ms"] for row in timeline] + [budget_ms or 1.0, 1.0])
    top = 10 ** math.ceil(math.log10(worst))
    low, span = -1.0, math.log10(top) + 1.0  # from 0.1 ms

    def y(ms: float) -> float:
        return (_H - _BOTTOM) - (_H - _BOTTOM - _TOP) * (math.log10(max(ms, 0.1)) - low) / span

    x_max = float(len(timeline))
    ticks = [(y(10.0 ** e), f"{10.0 ** e:g}") for e in range(-1, int(math.log10(top)) + 1)]
    colours = (("p50_ms", "#1f77b4", "p50"), ("p99_ms", "#ff7f0e", "p99"),
               ("max_ms", "#999999", "max"))
    series = "".join(_polyline([(_x(r["t"] + 0.5, x_max), y(r[key])) for r in timeline
                                if r["completed"] or r["p50_ms"]], colour, name)
                     for key, colour, name in colours)
    legend = [(name, colour) for _, colour, name in colours]
    if budget_ms is not None:
        series += (f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(budget_ms):.1f}" '
                   f'y2="{y(budget_ms):.1f}" stroke="#d62728" stroke-dasharray="6 4">'
                   f"<title>p99 budget {budget_ms:g} ms</title></line>")
        legend.append((f"p99 budget {budget_ms:g} ms", "#d62728"))
    return _frame("latency over time", x_max, ticks, "latency (ms, log scale)", series, legend)


def rate_svg(timeline: list[dict[str, float]]) -> str:
    """Requests offered (scheduled) and achieved (answered) per second."""
    top = max((max(r["offered"], r["completed"]) for r in timeline), default=1.0) or 1.0

    def y(v: float) -> float:
        return (_H - _BOTTOM) - (_H - _BOTTOM - _TOP) * v / top

    x_max = float(len(timeline))
    ticks = [(y(top * f), f"{top * f:.0f}") for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    colours = (("offered", "#2ca02c", "offered"), ("completed", "#d62728", "achieved"))
    series = "".join(_polyline([(_x(r["t"] + 0.5, x_max), y(r[key])) for r in timeline],
                               colour, name) for key, colour, name in colours)
    return _frame("rate over time", x_max, ticks, "requests per second", series,
                  [(name, colour) for _, colour, name in colours])


def render_html(doc: dict[str, Any]) -> str:
    summary = {"offered rate (/s)": doc["offered_rate"], "achieved rate (/s)": doc["achieved_rate"],
               "requests scheduled": doc["scheduled"], "answers": doc["answered"],
               "failed requests": sum(doc["errors"].values()),
               "mismatches": doc["mismatches"], **{f"latency {k} (ms)": v
                                                   for k, v in doc["latency_ms"].items()}}
    samples = "".join(f"<pre>{html.escape(json.dumps(s, ensure_ascii=False, indent=1))}</pre>"
                      for s in doc["mismatch_samples"][:20])
    verdict_class = "pass" if doc["passed"] else "fail"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Load report</title>"
            f"<style>{_STYLE}</style></head><body><h1>Load report</h1>"
            f"<p class='verdict {verdict_class}'>{html.escape(doc['verdict'])}</p>"
            f"{_table(doc['meta'], ('setting', 'value'))}"
            f"{_table(summary, ('figure', 'value'))}"
            f"<h2>Offered and achieved rate per second</h2>{rate_svg(doc['timeline'])}"
            f"<h2>Latency over time (answers, from the scheduled send time)</h2>"
            f"{latency_svg(doc['timeline'], doc['p99_budget_ms'])}"
            f"<h2>Decisions</h2>{_table(doc['decisions'], ('decision/reason', 'count'))}"
            f"<h2>Errors</h2>{_table(doc['errors'], ('kind', 'count'))}"
            f"<h2>Mismatches</h2>{samples or '<p>none</p>'}</body></html>\n")
