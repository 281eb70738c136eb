"""A decision as plain text a clinician can read."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from .._model import Decision, Reason
from .._rulebase import RuleBase

_WIDTH = 88
_BANNER = "!" * 72
_UNDECIDED = "none recommended until the level is decided; give the missing facts above and decide again."


def _shown(value: object) -> str:
    if value is None:
        return "unknown"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _wrap(text: str, first: str, rest: str) -> list[str]:
    wrapped = textwrap.wrap(text, width=_WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False)
    return wrapped or [first.rstrip()]


def _span(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}-{pair[1]}"


def _per_week(pair: tuple[int, int], unit: str) -> str:
    """``9-19 hours/week``, ``1 day/week``."""
    return f"{_span(pair)} {unit}{'' if pair == (1, 1) else 's'}/week"


def _reason_lines(reason: Reason, indent: str = "  ") -> list[str]:
    head = f"{indent}{reason.rule_id}"
    if reason.level is not None:
        head += f" [{reason.level.value}]"
    lines = _wrap(reason.statement, head + ": ", indent + "    ")
    if reason.facts:
        facts = ", ".join(f"{name}={_shown(value)}" for name, value in reason.facts.items())
        lines += _wrap(facts, indent + "    facts: ", indent + "      ")
    if reason.sources:
        lines.append(f"{indent}    sources: {', '.join(reason.sources)}")
    return lines


def _cited(decision: Decision) -> list[str]:
    seen: dict[str, None] = {}
    reasons: Iterable[Reason] = (*decision.reasons, *decision.ruled_out, *decision.considerations)
    for reason in reasons:
        for source in reason.sources:
            seen.setdefault(source)
    if decision.level is not None:  # the programme is shown only for a decided level
        for source in decision.program.sources:
            seen.setdefault(source)
    return list(seen)


def render(decision: Decision, rulebase: RuleBase | None = None) -> str:
    """The full report for one decision.

    Args:
        decision: What the engine decided.
        rulebase: The rule base that decided; when given, missing facts are shown
            with their meaning and allowed values, and sources with their titles.

    Returns:
        Plain text, lines at most 88 characters where words allow.
    """
    lines: list[str] = []
    if decision.emergency:
        lines += [_BANNER, "EMERGENCY: an immediate crisis response is needed before any placement.", _BANNER, ""]
    low, high = decision.level_range
    if decision.level is None:
        lines.append(f"Level: not decided (data required); the unknown facts allow {low.value} to {high.value}")
    else:
        transition = decision.transition.value if decision.transition else ""
        lines.append(f"Level: {decision.level.value} ({decision.level.label})   Transition: {transition}")
    lines.append(f"Status: {decision.status}")
    if decision.missing:
        lines += ["", "Missing facts that can change the level:"]
        for name in decision.missing:
            if rulebase is not None and name in rulebase.vocabulary:
                fact = rulebase.vocabulary[name]
                lines += _wrap(f"{fact.meaning} Give {fact.allowed_text()}.", f"  {name}: ", "      ")
            else:
                lines.append(f"  {name}")
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
    if decision.level is None:
        # Nothing is recommended before the level is decided: the programme and
        # services of the top of the range would read as a recommendation.
        lines += ["", *_wrap(_UNDECIDED, "Programme and services: ", "  ")]
    else:
        if decision.services:
            lines += ["", *_wrap(", ".join(decision.services), "Services: ", "  ")]
        p = decision.program
        lines += [
            "",
            f"Programme ({p.level.value}): {_per_week(p.hours_per_week, 'hour')}, {_per_week(p.days_per_week, 'day')}",
        ]
        lines += _wrap(p.typical_length, "  Length: ", "    ")
    if rulebase is not None:
        titles = {s.id: s.title for s in rulebase.sources}
        cited = _cited(decision)
        if cited:
            lines += ["", "Sources:"]
            for source in cited:
                lines += _wrap(titles.get(source, ""), f"  {source}: ", "      ")
    info = decision.rulebase
    lines += ["", f"Rule base: {info.name} {info.version} (sha256 {info.sha256})"]
    if info.unverified:
        lines.append("  UNVERIFIED: this rule base did not pass levelcare check")
    if decision.input_sha256 is not None:
        lines.append(f"Input facts: sha256 {decision.input_sha256}")
    if decision.as_of is not None:
        lines.append(f"As of: {decision.as_of.isoformat()}")
    return "\n".join(lines)
