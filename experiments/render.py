"""An experiment report as text, JSON or a self-contained HTML page (inline CSS
and SVG, no external assets); the dashboard serves the same HTML."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from experiments import charts, formatting
from experiments.analysis import Comparison, ExperimentReport, VariationResult
from experiments.stats import ALPHA, SRM_THRESHOLD

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORMATS = ("text", "json", "html")


def template_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(count=formatting.count, units=formatting.units, percent=formatting.percent,
                       signed_percent=formatting.signed_percent, interval=formatting.interval,
                       p_value=formatting.p_value, chance=formatting.chance, moment=formatting.moment)
    return env


_environment = template_environment()


def render(report: ExperimentReport, output_format: str) -> str:
    if output_format == "json":
        return render_json(report)
    if output_format == "html":
        return render_html(report)
    return render_text(report)


def render_json(report: ExperimentReport) -> str:
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


def render_html(report: ExperimentReport, **page: Any) -> str:
    """The report page; the dashboard adds `dashboard=True` and who is signed in."""
    return _environment.get_template("report.html").render(**report_context(report), **page)


def render_page(template: str, context: Mapping[str, Any]) -> str:
    return _environment.get_template(template).render(**context)


def report_context(report: ExperimentReport) -> dict[str, Any]:
    control = report.variations[0]
    tables = []
    for variation in report.variations[1:]:
        rows = [c for c in report.comparisons if c.variation == variation.index]
        scale = charts.interval_scale(rows)
        tables.append({
            "variation": variation,
            "rows": [{"comparison": c, "control": control.steps[i], "step": variation.steps[i],
                      "mark": charts.interval_mark(c, scale),
                      "verdict": formatting.verdict(c.p_value, c.uplift, ALPHA)}
                     for i, c in enumerate(rows)],
        })
    return {
        "report": report, "control": control, "tables": tables, "alpha": ALPHA,
        "srm_threshold": SRM_THRESHOLD,
        "funnels": [(v, charts.funnel_chart(v)) for v in report.variations],
        "expected_split": formatting.split([v.weight for v in report.variations]),
        "observed_split": formatting.split(_observed_shares(report.variations)),
    }


def _observed_shares(variations: tuple[VariationResult, ...]) -> list[float]:
    total = sum(v.units for v in variations)
    return [v.units / total if total else 0.0 for v in variations]


# --- text ---------------------------------------------------------------------
def render_text(report: ExperimentReport) -> str:
    names = [v.name + (" (control)" if i == 0 else "") for i, v in enumerate(report.variations)]
    label_width = max(len("Exposed units"), *(len(label) for _, label in report.steps)) + 2
    widths = [max(len(n), 18) + 2 for n in names]
    lines = [
        f"{report.key}: {report.name}",
        f"status {report.status} · unit {report.unit} · window {report.window_days} days"
        + (f" · feature {report.feature}" if report.feature else ""),
        f"data collected {formatting.moment(report.collected_at)}",
        "",
        "".ljust(label_width) + "".join(n.ljust(w) for n, w in zip(names, widths, strict=True)),
        "Exposed units".ljust(label_width)
        + "".join(formatting.count(v.units).ljust(w) for v, w in zip(report.variations, widths, strict=True)),
    ]
    for position, (_, label) in enumerate(report.steps):
        cells = [f"{formatting.count(v.steps[position].units)} ({formatting.percent(v.steps[position].rate)})"
                 for v in report.variations]
        lines.append(label.ljust(label_width)
                     + "".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    for variation in report.variations[1:]:
        lines += ["", f"{variation.name} vs {report.variations[0].name}", _comparison_header(label_width)]
        for c in (c for c in report.comparisons if c.variation == variation.index):
            lines.append(_comparison_line(c, label_width))
    lines += ["", *_warnings_text(report)]
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


def _comparison_header(label_width: int) -> str:
    return ("step".ljust(label_width) + "uplift".ljust(10) + "95% CI".ljust(20) + "p-value".ljust(10)
            + "chance to win")


def _comparison_line(c: Comparison, label_width: int) -> str:
    if c.note:
        return c.label.ljust(label_width) + c.note
    return (c.label.ljust(label_width) + formatting.signed_percent(c.uplift).ljust(10)
            + formatting.interval(c.ci_low, c.ci_high).ljust(20) + formatting.p_value(c.p_value).ljust(10)
            + formatting.chance(c.chance_to_win))


def _warnings_text(report: ExperimentReport) -> list[str]:
    expected = formatting.split([v.weight for v in report.variations])
    observed = formatting.split(_observed_shares(report.variations))
    srm = (f"SRM p-value {report.srm_p_value:.4g} (expected {expected}, observed {observed})")
    lines = [f"!! SAMPLE RATIO MISMATCH: {srm} is below {SRM_THRESHOLD}; do not trust these results "
             "until the assignment or exposure logging is fixed." if report.srm_warning else f"{srm}: OK"]
    if report.weights_assumed:
        lines.append("The payload no longer has this experiment's rule: an equal split was assumed.")
    if report.multi_variant_units:
        lines.append(f"{formatting.units(report.multi_variant_units, report.unit)} saw more than one "
                     "variation; each is counted once, in the variation of its first exposure.")
    if report.unknown_variation_units:
        lines.append(f"{formatting.units(report.unknown_variation_units, report.unit)} exposed to a "
                     "variation the payload does not define: left out.")
    return lines
