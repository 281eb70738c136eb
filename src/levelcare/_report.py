"""A decision as plain text a clinician can read."""

from __future__ import annotations

import textwrap

from ._model import Decision, Reason


def _fact_text(reason: Reason) -> str:
    if not reason.facts:
        return ""
    parts = []
    for name, value in reason.facts.items():
        shown = "unknown" if value is None else ("true" if value is True else "false" if value is False else value)
        parts.append(f"{name}={shown}")
    return "facts: " + ", ".join(parts)


def _reason_lines(reason: Reason, indent: str = "  ") -> list[str]:
    head = f"{indent}{reason.rule_id}"
    if reason.level is not None:
        head += f" [{reason.level.value}]"
    body = textwrap.wrap(reason.statement, width=88, initial_indent=head + ": ", subsequent_indent=indent + "    ")
    details = [d for d in (_fact_text(reason), "sources: " + ", ".join(reason.sources) if reason.sources else "") if d]
    return body + [f"{indent}    {d}" for d in details]


def render(decision: Decision) -> str:
    """The full report for one decision."""
    lines: list[str] = []
    if decision.emergency:
        lines += ["!" * 72, "EMERGENCY: an immediate crisis response is needed before any placement.", "!" * 72, ""]
    low, high = decision.level_range
    if decision.level is None:
        lines.append(f"Level: not decided (data required); the unknown facts allow {low.value} to {high.value}")
        lines.append("Missing facts that can change the level: " + ", ".join(decision.missing))
    else:
        transition = decision.transition.value if decision.transition else ""
        lines.append(f"Level: {decision.level.value} ({decision.level.label})   Transition: {transition}")
    lines.append(f"Status: {decision.status}")
    sections = (
        ("Reasons", decision.reasons),
        ("Ruled out", decision.ruled_out),
        ("Considerations", decision.considerations),
    )
    for title, reasons in sections:
        if reasons:
            lines += ["", f"{title}:"]
            for reason in reasons:
                lines += _reason_lines(reason)
    if decision.services:
        lines += ["", "Services: " + ", ".join(decision.services)]
    p = decision.program
    lines += [
        "",
        f"Programme ({p.level.value}): {p.hours_per_week[0]}-{p.hours_per_week[1]} hours/week, "
        f"{p.days_per_week[0]}-{p.days_per_week[1]} days/week",
    ]
    lines += textwrap.wrap(p.typical_length, width=88, initial_indent="  Length: ", subsequent_indent="    ")
    info = decision.rulebase
    lines += ["", f"Rule base: {info.name} {info.version} (sha256 {info.sha256})"]
    if decision.as_of is not None:
        lines.append(f"As of: {decision.as_of.isoformat()}")
    return "\n".join(lines)
