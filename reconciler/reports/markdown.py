"""A Markdown report of one reconcile, for a CI job to post as a pull-request comment.

The report renders natively in GitHub and GitLab comments: tables, and a Mermaid ``xychart-beta``
block for F1 across iterations (no image hosting needed). It starts with a hidden marker so a CI
step can find its previous comment and update it instead of posting a new one. Everything a user
wrote (label names, error messages, dataset names) is escaped, because it lands in a comment.

Apart from reading the lake (iteration records, evaluations) and, when asked, writing the PNG
charts of :mod:`reconciler.reports.chart`, this is pure rendering.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reconciler.adapters.lake import Lake
from reconciler.core.drift import psi_reading
from reconciler.core.state import (
    METRIC_NAMES,
    DatasetDrift,
    IterationRecord,
    IterationStatus,
    ModelMetrics,
    PromotionRecord,
)
from reconciler.errors import FlywheelError
from reconciler.reports.alarms import alarm_lines
from reconciler.runtime.reconcile import FlywheelResult, ReconcileResult

MARKER = "<!-- flywheel-reconciler report -->"
MAX_CHART_POINTS = 20  # the latest iterations only: more would crowd the comment's chart
MISSING = "—"

# Characters with a meaning in GFM inline text or tables (``<`` opens HTML, ``&`` an entity).
# Escaping them everywhere is simpler than knowing where each one matters, and a backslash
# before any ASCII punctuation renders as the character itself. ``>`` and list markers matter
# only at the start of a line.
_SPECIAL = re.compile(r"([\\`*_\[\]<|~#&])")
_BLOCK_START = re.compile(r"^(\d*)([-+=.)>])")


def markdown_report(root: Path, result: ReconcileResult, *, charts_dir: Path | None = None,
                    charts_url: str | None = None) -> str:
    """The Markdown of one reconcile: spec errors, one section per flywheel, a summary line.

    With ``charts_dir``, the PNG chart of each flywheel that iterated is written there and
    linked: as ``charts_url`` + file name when given (where CI publishes the images), else as a
    path relative to the repository root.
    """
    root = root.resolve()
    lake = Lake(root)
    blocks = [MARKER, "## Flywheel reconcile report"]
    if result.errors:
        blocks.append(load_errors_block(result.errors))
    if not result.flywheels and not result.errors:
        blocks.append("No flywheel spec under `specs/`.")
    for outcome in sorted(result.flywheels, key=lambda f: f.name):
        section = flywheel_section(lake, outcome, charts_dir, charts_url)
        alarms = alarm_lines(root, lake, outcome.name, outcome.spec_file, md_text)
        blocks.append("\n\n".join([section, *alarms]))
    blocks.append(summary_line(result))
    return "\n\n".join(blocks) + "\n"


# escaping and numbers -------------------------------------------------------------------------


def md_text(text: object) -> str:
    """``text`` as one line of literal Markdown text (newlines become spaces).

    Besides the inline specials, a leading ``-``, ``+``, ``>`` or ``1.`` is escaped: after a
    list bullet or at the start of a paragraph it would open a list or a quote.
    """
    line = " ".join(str(text).split())
    return _BLOCK_START.sub(r"\1\\\2", _SPECIAL.sub(r"\\\1", line), count=1)


def md_cell(text: object) -> str:
    """``text`` as the literal content of a table cell: pipes escaped, newlines as ``<br>``."""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<br>".join(_SPECIAL.sub(r"\\\1", " ".join(line.split())) for line in lines)


def code(text: str) -> str:
    """An inline code span that holds ``text`` whatever backticks it contains."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def number(value: float | None) -> str:
    return MISSING if value is None else f"{value:.4f}"


def difference(new: float | None, old: float | None) -> str:
    """Signed, 4 decimals (``+0.0123``); a difference that rounds to zero is ``+0.0000``."""
    if new is None or old is None:
        return MISSING
    delta = new - old
    return f"{0.0 if round(delta, 4) == 0 else delta:+.4f}"


def table(header: Iterable[str], rows: Iterable[Iterable[str]], *,
          right: Iterable[int] = ()) -> str:
    """A GFM table; cells must already be escaped (see :func:`md_cell`)."""
    header = list(header)
    aligned = set(right)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if i in aligned else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _metric(metrics: ModelMetrics | None, key: str) -> float | None:
    return metrics.figures().get(key) if metrics is not None else None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


# sections -------------------------------------------------------------------------------------


def load_errors_block(errors: Iterable[FlywheelError]) -> str:
    lines = ["**Spec files that did not load**", ""]
    lines += [f"- {md_text(error)}" for error in errors]
    return "\n".join(lines)


def flywheel_section(lake: Lake, outcome: FlywheelResult, charts_dir: Path | None,
                     charts_url: str | None) -> str:
    """One flywheel: its heading, one status line, then only the parts that apply."""
    blocks = [f"### {md_text(outcome.name)}", status_line(outcome)]
    record = outcome.iteration
    if record is not None:
        blocks.append(iteration_facts(record))
        blocks.append(metrics_table(record))
        blocks.append(per_label_block(lake, record))
        blocks.append(decision_line(record))
    if outcome.promotions:
        blocks.append(promotions_block(outcome.promotions))
    if record is not None:
        blocks.append(charts_block(lake, outcome.name, charts_dir, charts_url))
    return "\n\n".join(block for block in blocks if block)


def state(outcome: FlywheelResult) -> str:
    """The one word for what happened to a flywheel, as the summary counts it."""
    if outcome.error is not None:
        return "failed"
    if outcome.stopped:
        return "stopped"
    if outcome.busy:
        return "busy"
    if outcome.iteration is not None:
        return "iterated"
    if outcome.promotions:
        return "promoted"
    if outcome.plan is not None and outcome.plan.suspended:
        return "suspended"
    return "up to date"


def status_line(outcome: FlywheelResult) -> str:
    kind = state(outcome)
    if kind == "failed":
        return f"**Failed**: {md_text(outcome.error)}"
    if kind == "stopped":
        return "**Stopped**: a stop was asked for; the next reconcile resumes the work."
    if kind == "busy":
        return "**Busy**: another reconciler is working on this flywheel; it was left alone."
    promoted = promoted_text(outcome.promotions)
    if kind == "promoted":
        return f"**Promoted**: {promoted}."
    notes = "; ".join(outcome.plan.notes) if outcome.plan else ""
    if kind == "suspended":
        return f"**Suspended**: {md_text(notes)}."
    if kind == "up to date":
        if notes.startswith("up to date "):  # the planner's "up to date (iteration …)"
            return f"**Up to date** {md_text(notes[len('up to date '):])}."
        return "**Up to date**" + (f": {md_text(notes)}." if notes else ": nothing to do.")
    record = outcome.iteration
    assert record is not None
    done = f"iteration {code(record.flywheel_iteration_id)} {record.status.value.lower()}"
    if outcome.promotions:
        return f"**Iterated and promoted**: {done}; {promoted}."
    if record.trained_model_version:
        active = record.evaluated_model_version
        stays = f"{md_text(active)} stays active" if active else "no model is active"
        return (f"**Iterated**: {done}; {md_text(record.trained_model_version)} "
                f"was not promoted, {stays}.")
    return f"**Iterated**: {done}."


def promoted_text(promotions: list[PromotionRecord]) -> str:
    """``v2 (POLICY) is now active``; several in one reconcile (a pin, then a decision) in order."""
    if not promotions:
        return ""
    steps = ", then ".join(f"{md_text(p.version)} ({p.kind})" for p in promotions)
    if len(promotions) == 1:
        return f"{steps} is now active"
    return f"{steps}; {md_text(promotions[-1].version)} is now active"


def iteration_facts(record: IterationRecord) -> str:
    """Id, status, new datasets, documents, and F1 of both models with their difference."""
    lines = [f"- Iteration {code(record.flywheel_iteration_id)}: {record.status.value}",
             "- New datasets: " + (", ".join(md_text(n) for n in record.new_datasets)
                                   or "none")]
    if record.number_of_train_documents is not None:
        source = f" ({md_text(record.test_source)})" if record.test_source else ""
        lines.append(f"- Documents: {record.number_of_train_documents} train, "
                     f"{record.number_of_test_documents} test{source}")
    trained, active = record.trained_f1, record.active_f1
    if record.trained_model_version:
        lines.append(f"- Trained: {md_text(record.trained_model_version)}, "
                     f"F1 {number(trained)}")
    if record.evaluated_model_version:
        lines.append(f"- Active (evaluated): {md_text(record.evaluated_model_version)}, "
                     f"F1 {number(active)}")
    else:
        lines.append("- Active (evaluated): none yet")
    if trained is not None and active is not None:
        lines.append(f"- F1 difference (trained - active): **{difference(trained, active)}**")
    if record.drift is not None:
        lines.append(f"- Data drift vs {md_text(record.drift.reference.version)}'s training data: "
                     + ("; ".join(_drift_text(name, d) for name, d
                                  in record.drift.datasets.items()) or "no new dataset"))
    if record.status is not IterationStatus.COMPLETED and record.message:
        lines.append(f"- Message: {md_text(record.message)}")
    return "\n".join(lines)


def _drift_text(name: str, d: DatasetDrift) -> str:
    """``d2 label PSI 0.312 (large shift), unseen tokens 4.1%, length ratio 1.05``."""
    oov = "—" if d.oov_share is None else f"{d.oov_share:.1%}"
    ratio = "—" if d.length_ratio is None else f"{d.length_ratio:.2f}"
    return (f"{md_text(name)} label PSI {number(d.label_psi)} ({psi_reading(d.label_psi)}), "
            f"unseen tokens {oov}, length ratio {ratio}")


def metrics_table(record: IterationRecord) -> str:
    """Comprehend's four averages for both models; empty when neither model was scored."""
    trained, active = record.trained_model_metrics, record.evaluated_model_metrics
    if not trained and not active:
        return ""
    header = ["Metric", _model_header("Trained", record.trained_model_version),
              _model_header("Active", record.evaluated_model_version), "Difference"]
    rows = [[key, number(_metric(trained, key)), number(_metric(active, key)),
             difference(_metric(trained, key), _metric(active, key))] for key in METRIC_NAMES]
    return table(header, rows, right=(1, 2, 3))


def _model_header(role: str, version: str | None) -> str:
    return f"{role} {md_cell(version)}" if version else f"{role} (none)"


def per_label_block(lake: Lake, record: IterationRecord) -> str:
    """Per-label F1 of both models, from the lake's evaluation files of this iteration."""
    try:
        trained = lake.evaluation(record.flywheel_name, record.flywheel_iteration_id, "trained")
        active = lake.evaluation(record.flywheel_name, record.flywheel_iteration_id, "active")
    except (OSError, ValueError, FlywheelError) as exc:
        return f"Per-label F1 unavailable: {md_text(exc)}"
    rows = per_label_rows(trained, active)
    if not rows:
        return ""
    return "**Per-label F1** (same test data)\n\n" + table(
        ["Label", "Support", "Trained F1", "Active F1", "Difference"], rows, right=(1, 2, 3, 4))


def per_label_rows(trained: dict[str, Any] | None,
                   active: dict[str, Any] | None) -> list[list[str]]:
    """Rows in the trained evaluation's label order, then any label only the active one has."""
    new = {row["label"]: row for row in (trained or {}).get("perLabel", [])}
    old = {row["label"]: row for row in (active or {}).get("perLabel", [])}
    rows = []
    for label in [*new, *(name for name in old if name not in new)]:
        t, a = new.get(label, {}), old.get(label, {})
        support = t.get("support", a.get("support"))
        rows.append([md_cell(label), MISSING if support is None else str(support),
                     number(t.get("f1Score")), number(a.get("f1Score")),
                     difference(t.get("f1Score"), a.get("f1Score"))])
    return rows


def decision_line(record: IterationRecord) -> str:
    if record.decision is None:
        return ""
    verdict = (f"promoted {md_text(record.trained_model_version)}" if record.decision.promote
               else "not promoted")
    return f"**Decision**: {verdict}: {md_text(record.decision.reason)}"


def promotions_block(promotions: Iterable[PromotionRecord]) -> str:
    rows = [[md_cell(p.version), md_cell(p.previous_version or MISSING), p.kind,
             md_cell(p.reason)] for p in promotions]
    return "**Promotions applied**\n\n" + table(["Version", "Previous", "Kind", "Reason"], rows)


def summary_line(result: ReconcileResult) -> str:
    """Flywheels, iterations and promotions always; the other counts when not zero."""
    states = [state(f) for f in result.flywheels]
    parts = [_plural(len(result.flywheels), "flywheel"),
             _plural(sum(1 for f in result.flywheels if f.iteration), "iteration"),
             _plural(sum(len(f.promotions) for f in result.flywheels), "promotion")]
    parts += [f"{states.count(kind)} {kind}" for kind in
              ("up to date", "suspended", "failed", "busy", "stopped") if kind in states]
    if result.errors:
        parts.append(_plural(len(result.errors), "spec file") + " not loaded")
    return "**Summary**: " + ", ".join(parts) + "."


# charts ---------------------------------------------------------------------------------------


def charts_block(lake: Lake, name: str, charts_dir: Path | None, charts_url: str | None) -> str:
    """The Mermaid chart of F1 across completed iterations, and the linked PNG when asked for."""
    try:
        observed = lake.observe(name)
    except FlywheelError as exc:
        return f"F1 history unavailable: {md_text(exc)}"
    completed = observed.completed()
    if not completed:
        return ""
    blocks = [mermaid_f1_chart(completed)]
    if charts_dir is not None:
        from reconciler.core.layout import chart_file_name
        from reconciler.reports.chart import write_chart  # matplotlib: only when asked
        from reconciler.runtime.queries import FlywheelView

        target = charts_dir / chart_file_name(name)
        write_chart(lake.root, FlywheelView(name, None, observed, None, None), target)
        blocks.append(f"![F1 of {md_text(name)} across iterations and per label]"
                      f"({chart_link(lake.root, target, charts_url)})")
    return "\n\n".join(blocks)


def chart_link(root: Path, target: Path, charts_url: str | None) -> str:
    if charts_url:
        return charts_url.rstrip("/") + "/" + quote(target.name)
    return quote(Path(os.path.relpath(target.resolve(), root)).as_posix())


def mermaid_f1_chart(completed: list[IterationRecord]) -> str:
    """F1 across the latest completed iterations as a Mermaid ``xychart-beta`` block.

    xychart has no gaps in a line and no per-point x values, so both lines are drawn only over
    the iterations where both models were scored (the first iteration never has an active model
    to compare with), and only when there are at least two of them to draw a line through.
    Otherwise the chart shows the trained F1 of every completed iteration alone.
    """
    shown = [it for it in completed if it.trained_f1 is not None]
    shown = shown[-MAX_CHART_POINTS:]
    both = [it for it in shown if it.active_f1 is not None]
    if len(both) >= 2:
        points = both
        series = [[it.trained_f1 for it in both],
                  [it.active_f1 for it in both]]
        caption = ("F1 across iterations (x: the version each iteration trained; first line: "
                   "the trained version, second line: the active model, both on that "
                   "iteration's test data).")
    else:
        points = shown
        series = [[it.trained_f1 for it in shown]]
        caption = ("F1 of the trained version across iterations (x: the version each iteration "
                   "trained; too few iterations had an active model to compare with).")
    values = [v for line in series for v in line if v is not None]
    low = max(0.0, math.floor((min(values, default=0.0) - 0.05) * 10) / 10)
    labels = ", ".join(_mermaid_string(it.trained_model_version or it.flywheel_iteration_id)
                       for it in points)
    lines = ["```mermaid", "xychart-beta", '    title "F1 across iterations"',
             f"    x-axis [{labels}]", f'    y-axis "AverageF1Score" {low:.1f} --> 1']
    lines += ["    line [" + ", ".join(f"{v:.4f}" for v in line) + "]" for line in series]
    lines.append("```")
    return caption + "\n\n" + "\n".join(lines)


def _mermaid_string(text: str) -> str:
    """A quoted xychart category; the grammar has no escape for a double quote inside."""
    return '"' + re.sub(r'["\n\r`]', "", text) + '"'
