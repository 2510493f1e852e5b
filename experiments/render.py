"""An experiment report as text, JSON, CSV or a self-contained HTML page (inline
CSS and SVG, no external assets); the dashboard serves the same HTML."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from experiments import charts, formatting
from experiments.analysis import Comparison, ExperimentReport, VariationResult
from experiments.decisions import GUARDRAIL, PRIMARY, SECONDARY, Decision, MetricResult, change
from experiments.metrics import HIGHER, MEAN, MONEY
from experiments.stats import ALPHA, SRM_THRESHOLD

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORMATS = ("text", "json", "html", "csv")
CSV_COLUMNS = ("section", "metric", "label", "role", "variation", "variation_name", "control_units", "units",
               "control_value", "value", "uplift", "ci_low", "ci_high", "p_value", "adjusted_p_value", "test",
               "verdict", "direction", "cuped_variance_reduction", "note")


def template_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(count=formatting.count, units=formatting.units, percent=formatting.percent,
                       signed_percent=formatting.signed_percent, interval=formatting.interval,
                       p_value=formatting.p_value, chance=formatting.chance, moment=formatting.moment,
                       zip=lambda a, b: zip(a, b, strict=False))
    return env


_environment = template_environment()


def render(report: ExperimentReport, output_format: str) -> str:
    if output_format == "json":
        return render_json(report)
    if output_format == "html":
        return render_html(report)
    if output_format == "csv":
        return render_csv(report)
    return render_text(report)


def render_json(report: ExperimentReport) -> str:
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


def render_csv(report: ExperimentReport) -> str:
    """One row per funnel step and variation, per verdict, and per metric and variation."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    control = report.variations[0]
    names = {v.index: v.name for v in report.variations}
    for variation in report.variations:
        for base, step in zip(control.steps, variation.steps, strict=True):
            comparison = next((c for c in report.comparisons
                               if c.variation == variation.index and c.step == step.step), None)
            writer.writerow({
                "section": "funnel", "metric": step.step, "label": step.label, "variation": variation.index,
                "variation_name": variation.name, "control_units": control.units, "units": variation.units,
                "control_value": base.rate, "value": step.rate, "test": "fixed-horizon, uncorrected",
                **({"uplift": comparison.uplift, "ci_low": comparison.ci_low, "ci_high": comparison.ci_high,
                    "p_value": comparison.p_value, "note": comparison.note} if comparison else {})})
    decision = report.decision
    if decision is not None:
        for verdict in decision.verdicts:
            writer.writerow({"section": "verdict", "metric": decision.plan.primary, "role": PRIMARY,
                             "variation": verdict.variation, "variation_name": verdict.name,
                             "test": decision.test, "verdict": verdict.verdict, "note": verdict.reason})
        for r in decision.results:
            writer.writerow({
                "section": "metric", "metric": r.metric, "label": r.label, "role": r.role,
                "variation": r.variation, "variation_name": names.get(r.variation, r.variation),
                "control_units": r.control_units, "units": r.units, "control_value": r.control_mean,
                "value": r.mean, "uplift": r.uplift, "ci_low": r.ci_low, "ci_high": r.ci_high,
                "p_value": r.p_value, "adjusted_p_value": r.adjusted_p_value, "test": decision.test,
                "direction": r.direction, "cuped_variance_reduction": r.cuped_variance_reduction,
                "note": r.note})
    return out.getvalue()


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
    decision = report.decision
    return {
        "report": report, "control": control, "tables": tables, "alpha": ALPHA, "decision": decision,
        "panels": _panels(decision) if decision else [],
        "curve": (charts.time_to_convert_chart(decision.time_to_convert, report.window_days)
                  if decision else None),
        "step_definitions": report.step_definitions,
        "srm_threshold": SRM_THRESHOLD,
        "funnels": [(v, charts.funnel_chart(v)) for v in report.variations],
        "expected_split": formatting.split([v.weight for v in report.variations]),
        "observed_split": formatting.split(_observed_shares(report.variations)),
    }


def _panels(decision: Decision) -> list[dict[str, Any]]:
    """The decision's metrics grouped for reading: primary, revenue, secondary, guardrails."""
    def rows(results: tuple[MetricResult, ...]) -> list[dict[str, Any]]:
        scale = charts.interval_scale(results)
        return [{"result": r, "mark": charts.interval_mark(r, scale, higher_is_better=r.better == HIGHER),
                 "change": change(r), "interval": _interval(r), "value": _value(r, r.mean),
                 "control_value": _value(r, r.control_mean)} for r in results]
    secondary = decision.role(SECONDARY)
    revenue = tuple(r for r in secondary if r.kind == MEAN)
    return [p for p in (
        {"id": "primary", "title": "Primary metric: the verdict rests on this alone",
         "rows": rows(decision.role(PRIMARY))},
        {"id": "revenue", "title": "Revenue", "rows": rows(revenue)},
        {"id": "secondary", "title": f"Other secondary metrics (corrected: {decision.plan.correction})",
         "rows": rows(tuple(r for r in secondary if r not in revenue))},
        {"id": "guardrails", "title": "Guardrails: must not get worse",
         "rows": rows(decision.role(GUARDRAIL))},
    ) if p["rows"]]


def _interval(result: MetricResult) -> str:
    if result.relative or result.ci_low is None or result.ci_high is None:
        return formatting.interval(result.ci_low, result.ci_high)
    return f"[{formatting.signed_points(result.ci_low)}, {formatting.signed_points(result.ci_high)}]"


def _value(result: MetricResult, value: float | None) -> str:
    if result.kind != MEAN:
        return formatting.percent(value)
    if value is None:
        return formatting.DASH
    return formatting.cents(value) if result.value_property in MONEY else f"{value:,.2f}"


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
        *(_decision_text(report.decision) if report.decision else []),
        "".ljust(label_width) + "".join(n.ljust(w) for n, w in zip(names, widths, strict=True)),
        "Exposed units".ljust(label_width)
        + "".join(formatting.count(v.units).ljust(w) for v, w in zip(report.variations, widths, strict=True)),
    ]
    for position, (_, label) in enumerate(report.steps):
        cells = [f"{formatting.count(v.steps[position].units)} ({formatting.percent(v.steps[position].rate)})"
                 for v in report.variations]
        lines.append(label.ljust(label_width)
                     + "".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    lines += ["", "What each step counts:",
              *(f"  {label}: {meaning}"
                for (_, label), meaning in zip(report.steps, report.step_definitions, strict=False))]
    for variation in report.variations[1:]:
        lines += ["", f"{variation.name} vs {report.variations[0].name}", _comparison_header(label_width)]
        for c in (c for c in report.comparisons if c.variation == variation.index):
            lines.append(_comparison_line(c, label_width))
    lines += ["", *_warnings_text(report)]
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


def _decision_text(decision: Decision) -> list[str]:
    plan = decision.plan
    lines = [
        f"PLAN: {plan.hypothesis}",
        f"primary {plan.primary} · MDE {formatting.percent(plan.mde, 0)}"
        f" · power {formatting.percent(plan.power, 0)} · alpha {plan.alpha:g}"
        f" · planned {formatting.count(decision.planned_per_variation)} per variation"
        f" ({formatting.count(decision.planned_total)} in all) · mode {plan.mode}"
        f" · correction {plan.correction}",
        "progress: " + ", ".join(f"{p.name} {formatting.count(p.complete)} complete"
                                 f" (+{formatting.count(p.in_window)} still in their window)"
                                 for p in decision.progress)
        + f" · {formatting.percent(decision.progress_share, 0)} of plan"
        + f" · {decision.test} test at {decision.alpha:g}",
        "",
        *(f"VERDICT {v.name}: {v.verdict.upper()} · {v.reason}" for v in decision.verdicts),
        *(f"!! GUARDRAIL: {alert}" for alert in decision.guardrail_alerts),
        *(f"note: {note}" for note in decision.unit_notes),
        "",
        "role".ljust(11) + "metric".ljust(38) + "var".ljust(5) + "uplift".ljust(10) + "interval".ljust(26)
        + "p".ljust(9) + "adjusted p",
    ]
    for r in decision.results:
        head = r.role.ljust(11) + r.label[:36].ljust(38) + str(r.variation).ljust(5)
        if r.p_value is None:
            lines.append(head + (r.note or ""))
            continue
        lines.append(head + change(r).ljust(10) + _interval(r).ljust(26)
                     + formatting.p_value(r.p_value).ljust(9) + formatting.p_value(r.adjusted_p_value)
                     + (f"  CUPED -{formatting.percent(r.cuped_variance_reduction, 0)} variance"
                        if r.cuped_variance_reduction else "") + (f"  ({r.note})" if r.note else ""))
    return [*lines, "", "Funnel (descriptive; each step fixed-horizon and uncorrected: the verdict is above)"]


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
