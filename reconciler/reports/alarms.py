"""The report's lines for the alarms: Degraded (with the labels that fell most) and DataDrift,
from the flywheel's records after the reconcile and its spec's thresholds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reconciler.adapters.lake import Lake
from reconciler.adapters.loader import load_spec
from reconciler.core.degradation import degradation
from reconciler.core.drift import findings
from reconciler.errors import FlywheelError
from reconciler.runtime.alerts import drops


def alarm_lines(root: Path, lake: Lake, name: str, spec_file: str,
                text: Callable[[object], str]) -> list[str]:
    """Markdown lines (``text`` escapes user text); none when the flywheel is healthy or its
    spec or records do not read (the report says so elsewhere)."""
    try:
        spec = load_spec(root / spec_file, root).spec
        observed = lake.observe(name)
    except (FlywheelError, OSError):
        return []
    lines = []
    found = degradation(observed, spec.promotion)
    if found is not None:
        fell = drops(lake, name, observed, found)[:3]
        labels = "; labels that fell most: " + ", ".join(
            f"{text(d.label)} {d.before:.4f} → {d.after:.4f}" for d in fell) if fell else ""
        lines.append(f"**Degraded**: {text(found.message)}{labels}.")
    drifted = findings(observed.iterations, spec.drift)
    if drifted:
        lines.append("**Data drift**: " + "; ".join(text(f.message) for f in drifted[:3]) + ".")
    return lines
