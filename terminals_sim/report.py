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


def build_report(stats: RunStats, meta: dict[str, Any]) -> dict[str, Any]:
    """The report document: configuration, rates, latency, decisions, errors, mismatches."""
    answered = stats.completed - sum(stats.errors.values()) + stats.dropped
    elapsed = max(stats.elapsed_s, 1e-9)
    return {
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
        "latency (ms, from the scheduled time): " + "  ".join(
            f"{k} {lat[k]:.2f}" for k in ("p50", "p90", "p99", "p99.9", "max")),
        "decisions: " + (", ".join(f"{k} {v}" for k, v in doc["decisions"].items()) or "none"),
        "errors: " + (", ".join(f"{k} {v}" for k, v in doc["errors"].items()) or "none"),
        f"mismatches: {doc['mismatches']}",
    ]
    for sample in doc["mismatch_samples"][:10]:
        lines.append(f"  MISMATCH {json.dumps(sample, ensure_ascii=False)[:600]}")
    return "\n".join(lines)


def write_report(doc: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    json_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")
    html_path.write_text(render_html(doc), "utf-8")
    return json_path, html_path


# --- HTML ----------------------------------------------------------------------------

_W, _H, _PAD = 860, 260, 76
_STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
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


def _frame(title: str, x_max: float, y_ticks: list[tuple[float, str]], series: str,
           legend: list[tuple[str, str]]) -> str:
    grid = "".join(
        f'<line x1="{_PAD}" x2="{_W - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        f'<text x="{_PAD - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{text}</text>'
        for y, text in y_ticks)
    keys = "".join(f'<text x="{_PAD + 10 + 110 * i}" y="16" fill="{c}" font-size="12">'
                   f"{html.escape(name)}</text>" for i, (name, c) in enumerate(legend))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
            f'role="img" aria-label="{html.escape(title)}">{grid}{keys}'
            f'<line x1="{_PAD}" x2="{_W - 10}" y1="{_H - 30}" y2="{_H - 30}" stroke="#888"/>'
            f'<text x="{_W / 2}" y="{_H - 6}" text-anchor="middle" font-size="11">'
            f"seconds since start (0–{x_max:.0f})</text>{series}</svg>")


def _x(t: float, x_max: float) -> float:
    return _PAD + (_W - 10 - _PAD) * t / max(x_max, 1.0)


def latency_svg(timeline: list[dict[str, float]]) -> str:
    """p50, p99 and max latency per second, log scale (0.1 ms … the worst seen)."""
    worst = max((row["max_ms"] for row in timeline), default=1.0)
    top = 10 ** math.ceil(math.log10(max(worst, 1.0)))
    low, span = -1.0, math.log10(top) + 1.0  # from 0.1 ms

    def y(ms: float) -> float:
        return (_H - 30) - (_H - 50) * (math.log10(max(ms, 0.1)) - low) / span

    x_max = float(len(timeline))
    ticks = [(y(10.0 ** e), f"{10.0 ** e:g} ms") for e in range(-1, int(math.log10(top)) + 1)]
    colours = (("p50_ms", "#1f77b4", "p50"), ("p99_ms", "#ff7f0e", "p99"),
               ("max_ms", "#999999", "max"))
    series = "".join(_polyline([(_x(r["t"] + 0.5, x_max), y(r[key])) for r in timeline
                                if r["offered"]], colour, name) for key, colour, name in colours)
    return _frame("latency over time", x_max, ticks, series,
                  [(name, colour) for _, colour, name in colours])


def rate_svg(timeline: list[dict[str, float]]) -> str:
    """Requests scheduled and answers completed per second."""
    top = max((max(r["offered"], r["completed"]) for r in timeline), default=1.0) or 1.0

    def y(v: float) -> float:
        return (_H - 30) - (_H - 50) * v / top

    x_max = float(len(timeline))
    ticks = [(y(top * f), f"{top * f:.0f}/s") for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    colours = (("offered", "#2ca02c"), ("completed", "#d62728"))
    series = "".join(_polyline([(_x(r["t"] + 0.5, x_max), y(r[key])) for r in timeline],
                               colour, key) for key, colour in colours)
    return _frame("rate over time", x_max, ticks, series, list(colours))


def render_html(doc: dict[str, Any]) -> str:
    summary = {"offered rate (/s)": doc["offered_rate"], "achieved rate (/s)": doc["achieved_rate"],
               "requests scheduled": doc["scheduled"], "answers": doc["answered"],
               "mismatches": doc["mismatches"], **{f"latency {k} (ms)": v
                                                   for k, v in doc["latency_ms"].items()}}
    samples = "".join(f"<pre>{html.escape(json.dumps(s, ensure_ascii=False, indent=1))}</pre>"
                      for s in doc["mismatch_samples"][:20])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Load report</title>"
            f"<style>{_STYLE}</style></head><body><h1>Load report</h1>"
            f"{_table(doc['meta'], ('setting', 'value'))}"
            f"{_table(summary, ('figure', 'value'))}"
            f"<h2>Latency over time (from the scheduled send time)</h2>"
            f"{latency_svg(doc['timeline'])}"
            f"<h2>Offered and completed per second</h2>{rate_svg(doc['timeline'])}"
            f"<h2>Decisions</h2>{_table(doc['decisions'], ('decision/reason', 'count'))}"
            f"<h2>Errors</h2>{_table(doc['errors'], ('kind', 'count'))}"
            f"<h2>Mismatches</h2>{samples or '<p>none</p>'}</body></html>\n")
