"""What the verifier reports: :class:`Finding` and :class:`VerificationReport`."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from .._model import RulebaseInfo
from .._rulebase._vocabulary import FactValue
from ..exceptions import RuleProblem, UnverifiedRuleBase

# Finding kinds, in the order a report lists them.
LOAD = "load"
RESERVED = "reserved-name"
ENGINE = "engine"
NEVER_FIRES = "never-fires"
GAP = "gap"
EMERGENCY = "emergency-level"
NOT_MONOTONE = "not-monotone"
BRIDGE_FLOOR = "bridge-floor"
NEVER_DECIDES = "never-decides"
#: A test vector ([[case]]) whose decision differs from what it expects.
CASE = "case"
CHECKS = (LOAD, RESERVED, ENGINE, NEVER_FIRES, GAP, EMERGENCY, NOT_MONOTONE, BRIDGE_FLOOR, NEVER_DECIDES, CASE)


class Severity(enum.Enum):
    """How serious a finding is.

    An error makes the report fail. ``UNVERIFIED`` marks a property the check
    could not decide within its time budget: the report fails too, because
    nothing is known about that property.

    .. versionadded:: 1.0
    """

    ERROR = "error"
    WARNING = "warning"
    UNVERIFIED = "unverified"


def _frozen_facts(value: Mapping[str, FactValue] | None) -> Mapping[str, FactValue] | None:
    return None if value is None else MappingProxyType(dict(value))


def _frozen_counts(value: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class Finding:
    """One problem the verifier found in a rule base.

    Attributes:
        severity: :attr:`Severity.ERROR`, :attr:`Severity.WARNING` or
            :attr:`Severity.UNVERIFIED`.
        check: Which check found it: ``load``, ``reserved-name``, ``engine``,
            ``never-fires``, ``gap``, ``emergency-level``, ``not-monotone``,
            ``bridge-floor`` or ``never-decides``; for an unverified finding, the
            check that was not decided.
        rule_id: The rule, fact or table it is about; ``""`` for the rule base
            as a whole.
        file: The rule file, relative to the rule base folder; ``""`` when no
            single file is to blame.
        message: What is wrong, in words, and where useful how to fix it.
        counterexample: An assessment that shows the problem, when there is one.
        contrast: For a finding about two assessments (``not-monotone``), the
            one to compare with ``counterexample``: the same facts with one fact
            raised one step.
        count: How many of the checked combinations show the problem.

    .. versionadded:: 1.0
    """

    severity: Severity
    check: str
    rule_id: str
    file: str
    message: str
    counterexample: Mapping[str, FactValue] | None = attrs.field(default=None, converter=_frozen_facts, hash=False)
    contrast: Mapping[str, FactValue] | None = attrs.field(default=None, converter=_frozen_facts, hash=False)
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "severity": self.severity.value,
            "check": self.check,
            "rule_id": self.rule_id,
            "file": self.file,
            "message": self.message,
            "counterexample": None if self.counterexample is None else dict(self.counterexample),
            "contrast": None if self.contrast is None else dict(self.contrast),
            "count": self.count,
        }


@attrs.frozen(kw_only=True)
class VerificationReport:
    """What :func:`verify` found in one rule base.

    Attributes:
        location: The folder verified, or where the engine's rule base came from.
        rulebase: Name, version and sha256; ``None`` when the rule base did not load.
        findings: Every finding: errors first, then unverified checks, then warnings.
        checked: How many combinations the symbolic checks covered:
            ``clinical`` (every combination of the clinical facts) and
            ``transitions`` (current level × the clinical facts × the progress
            facts); empty when a check was left unverified.
        cases: How many test vectors (``[[case]]``) the rule base carries.
        cases_passed: How many of them gave the decision they expect.

    .. versionadded:: 1.0
    """

    location: str
    rulebase: RulebaseInfo | None
    findings: tuple[Finding, ...]
    checked: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_counts, hash=False)
    cases: int = 0
    cases_passed: int = 0

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings of severity error."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """The findings of severity warning."""
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def unverified(self) -> tuple[Finding, ...]:
        """The checks not decided within the budget.

        .. versionadded:: 1.0
        """
        return tuple(f for f in self.findings if f.severity is Severity.UNVERIFIED)

    @property
    def ok(self) -> bool:
        """Whether there are no errors and every check was decided (warnings allowed)."""
        return not self.errors and not self.unverified

    def raise_for_errors(self) -> VerificationReport:
        """This report, unless the rule base did not pass: then :class:`~levelcare.UnverifiedRuleBase`.

        ``levelcare.verify(engine).raise_for_errors()`` refuses a rule base the way
        ``levelcare batch`` and ``levelcare serve`` do.

        Raises:
            UnverifiedRuleBase: naming each error found, and each check not decided
                within the budget (warnings are not problems).
        """
        if self.ok:
            return self
        problems = [
            RuleProblem(f.file, f.rule_id, f"[{f.check}] {f.message}")
            for f in self.findings
            if f.severity is not Severity.WARNING
        ]
        raise UnverifiedRuleBase(problems)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the same rule base always gives the same dict."""
        return {
            "location": self.location,
            "rulebase": None if self.rulebase is None else self.rulebase.to_dict(),
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "unverified": len(self.unverified),
            "checked": dict(self.checked),
            "cases": self.cases,
            "cases_passed": self.cases_passed,
            "findings": [f.to_dict() for f in self.findings],
        }

    def render(self) -> str:
        """The report as plain text."""
        lines: list[str] = []
        info = self.rulebase
        if info is None:
            lines.append(f"Rule base at {self.location}: did not load")
        else:
            lines.append(f"Rule base {info.name} {info.version} at {self.location}")
            lines.append(f"  sha256 {info.sha256}")
        if self.checked:
            lines.append(self.checked_sentence())
        if self.cases:
            lines.append(f"Test vectors: {self.cases_passed} of {_plural(self.cases, 'case')} pass.")
        for finding in self.findings:
            where = " ".join(p for p in (finding.rule_id, f"({finding.file})" if finding.file else "") if p)
            lines += ["", f"{finding.severity.value} [{finding.check}] {where}".rstrip()]
            lines.append(f"  {finding.message}")
            if finding.counterexample is not None:
                lines.append(f"  counterexample: {json.dumps(dict(finding.counterexample))}")
            if finding.contrast is not None:
                lines.append(f"  compared with:  {json.dumps(dict(finding.contrast))}")
            if finding.count > 1:
                lines.append(f"  seen in {finding.count:,} of the checked combinations")
        errors, warnings, unverified = len(self.errors), len(self.warnings), len(self.unverified)
        summary = f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"
        if unverified:
            summary += f", {unverified} unverified"
        lines += ["", summary + "."]
        return "\n".join(lines)

    def checked_sentence(self) -> str:
        """What the symbolic checks covered, as one sentence; ``""`` when a check was left unverified."""
        if not self.checked:
            return ""
        parts = [f"{count:,} {_CHECKED_LABELS.get(name, name)}" for name, count in self.checked.items()]
        return "Checked exhaustively: " + "; ".join(parts) + "."


_CHECKED_LABELS = {
    "clinical": "combinations of the clinical facts",
    "transitions": "combinations of current level, clinical facts and progress facts",
}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def error(check: str, rule_id: str, file: str, message: str, **more: Any) -> Finding:
    return Finding(severity=Severity.ERROR, check=check, rule_id=rule_id, file=file, message=message, **more)


def warning(check: str, rule_id: str, file: str, message: str, **more: Any) -> Finding:
    return Finding(severity=Severity.WARNING, check=check, rule_id=rule_id, file=file, message=message, **more)


def unverified(check: str, message: str) -> Finding:
    return Finding(severity=Severity.UNVERIFIED, check=check, rule_id="", file="", message=message)


_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.UNVERIFIED: 1, Severity.WARNING: 2}


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    order = {check: i for i, check in enumerate(CHECKS)}
    # Python's sort is stable: within one check, findings keep the order they were
    # found in, which follows the rule files.
    return tuple(sorted(findings, key=lambda f: (_SEVERITY_ORDER[f.severity], order.get(f.check, len(order)))))


def show(value: object) -> str:
    """A fact value as it is written in JSON and TOML."""
    return json.dumps(value)
