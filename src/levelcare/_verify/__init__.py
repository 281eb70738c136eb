"""Static verification of a rule base: :func:`levelcare.verify` and ``levelcare check``.

The verifier never runs durable-rules. It reads the canonical conditions the
engine compiles (see ``_conditions``) and evaluates them in Python over every
combination of *cells*: each finite fact's values, and each integer's range cut
at every threshold a level or transition rule mentions, so that one value stands
for a whole interval. A set of combinations is a Python integer used as a bit
set; ``and``, ``or`` and "raise one fact one step" (a shift by the fact's
stride) then cost one big-integer operation over all combinations at once.

The final level depends on the clinical facts only through the indicated level
and the clinical facts that transition rules read. So the check runs in three
exhaustive passes instead of one over the whole product:

1. the indicated level for every combination of the clinical facts;
2. each combination reduced to what the transition mechanism sees of it: its
   indicated level and its cells of the clinical facts transitions read;
3. the mechanism (escalations, readiness, bridges) for every such pair that
   some assessment produces, every current level and every combination of the
   progress facts.

Raising one fact one step either keeps that pair (a progress fact, the current
level) or moves it to another pair that some assessment produces (a clinical
fact), and every such move is checked, so the result is the same as checking
every step between complete assessments.
"""

from __future__ import annotations

import enum
import json
import os
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from .._engine import Engine
from .._model import Level, RulebaseInfo, Transition
from .._rulebase import Bridge, Escalation, Readiness, Rule, RuleBase, default_location, load
from .._rulebase import _conditions as cond
from .._rulebase._loader import RESERVED_NAMES, _label
from .._rulebase._vocabulary import CURRENT_LEVEL, Fact, FactValue, Vocabulary, shorten, type_name
from .._semantics import Analysis, Placement
from ..exceptions import RuleBaseError

__all__ = ["Finding", "Severity", "VerificationReport", "check_command", "verify"]

#: Above this many combinations of the clinical facts (or of the facts the
#: transition mechanism reads) the exhaustive passes are skipped and reported.
MAX_COMBINATIONS = 4_000_000

# Finding kinds, in the order a report lists them.
LOAD = "load"
RESERVED = "reserved-name"
NEVER_FIRES = "never-fires"
GAP = "gap"
EMERGENCY = "emergency-level"
NOT_MONOTONE = "not-monotone"
NEVER_DECIDES = "never-decides"
TOO_LARGE = "too-large"
CHECKS = (LOAD, RESERVED, NEVER_FIRES, GAP, EMERGENCY, NOT_MONOTONE, NEVER_DECIDES, TOO_LARGE)

Owner = Rule | Escalation | Readiness | Bridge


class Severity(enum.Enum):
    """How serious a finding is: an error makes the report fail.

    .. versionadded:: 1.0
    """

    ERROR = "error"
    WARNING = "warning"


def _frozen_facts(value: Mapping[str, FactValue] | None) -> Mapping[str, FactValue] | None:
    return None if value is None else MappingProxyType(dict(value))


def _frozen_counts(value: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class Finding:
    """One problem the verifier found in a rule base.

    Attributes:
        severity: :attr:`Severity.ERROR` or :attr:`Severity.WARNING`.
        check: Which check found it: ``load``, ``reserved-name``, ``never-fires``,
            ``gap``, ``emergency-level``, ``not-monotone``, ``never-decides`` or
            ``too-large``.
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
        findings: Every finding, errors first.
        checked: How many combinations each exhaustive pass covered:
            ``clinical`` (every combination of the clinical facts) and
            ``transitions`` (current level × the transition facts × the
            progress facts, for every indicated level an assessment can reach).

    .. versionadded:: 1.0
    """

    location: str
    rulebase: RulebaseInfo | None
    findings: tuple[Finding, ...]
    checked: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_counts, hash=False)

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings of severity error."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """The findings of severity warning."""
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """Whether there are no errors (warnings allowed)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the same rule base always gives the same dict."""
        return {
            "location": self.location,
            "rulebase": None if self.rulebase is None else self.rulebase.to_dict(),
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "checked": dict(self.checked),
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
            parts = [f"{count:,} {_CHECKED_LABELS.get(name, name)}" for name, count in self.checked.items()]
            lines.append("Checked exhaustively: " + "; ".join(parts) + ".")
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
        errors, warnings = len(self.errors), len(self.warnings)
        lines += ["", f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}."]
        return "\n".join(lines)


_CHECKED_LABELS = {
    "clinical": "combinations of the clinical facts",
    "transitions": "combinations of current level, transition facts and progress facts",
}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --- entry points ---------------------------------------------------------------


def verify(target: Engine | str | os.PathLike[str] | Traversable) -> VerificationReport:
    """Check a rule base for mistakes a test suite of examples would miss.

    The check is static: it reads the conditions the engine compiles and
    evaluates them in Python over every combination of the facts' cells, so it
    is exhaustive for the level and transition rules. It reports:

    * problems the loader finds (schema, vocabulary, duplicate ids, unknown
      sources), as findings rather than an exception;
    * fact or field names that would match the engine's own session state;
    * rules that can never fire, with the reason;
    * gaps: complete assessments that get no decision;
    * emergencies that do not come with the highest level;
    * monotonicity violations: raising one need-ordered fact (clinical,
      progress or ``current_level``) one step lowers the level;
    * rules that never decide anything (warning): whenever they fire, a rule
      for a higher level fires too;
    * cases (``[[case]]`` test vectors) whose decision, made by the engine,
      differs from what they expect (check ``case``).

    Args:
        target: An engine, or the folder of a rule base.

    Returns:
        The report; :attr:`VerificationReport.ok` is false when there are errors.

    .. versionadded:: 1.0
    """
    from ._vectors import with_cases  # here, not at the top: it reads this module's names

    if isinstance(target, Engine):
        rulebase = target._rb
        report = _Verifier(rulebase).report(rulebase.location, _vocabulary_reserved(rulebase))
        return with_cases(report, rulebase, target)
    if not isinstance(target, (str, os.PathLike, Traversable)):
        finding = Finding(
            severity=Severity.ERROR,
            check=LOAD,
            rule_id="",
            file="",
            message=f"expected an Engine or a rule base folder, got {type_name(target)} {shorten(target)}",
        )
        return VerificationReport(location=shorten(target), rulebase=None, findings=(finding,))
    location = target if isinstance(target, Traversable) else Path(os.fspath(target))
    reserved = _raw_reserved(location)
    try:
        rulebase = load(location)
    except RuleBaseError as error:
        findings = list(reserved)
        for problem in error.problems:
            if not any(_same_problem(problem.file, problem.rule_id, problem.message, r) for r in reserved):
                findings.append(_error(LOAD, problem.rule_id, problem.file, problem.message))
        return VerificationReport(location=str(target), rulebase=None, findings=_sorted(findings))
    except OSError as error:
        message = f"cannot read the rule base: {error.strerror or error}"
        findings = [_error(LOAD, "", str(getattr(error, "filename", "") or ""), message)]
        return VerificationReport(location=str(target), rulebase=None, findings=tuple(findings))
    return with_cases(_Verifier(rulebase).report(str(target), reserved), rulebase)


def check_command(rules_dir: str | None, as_json: bool) -> int:
    """``levelcare check [RULES_DIR] [--json]``: verify a rule base and print the report.

    Args:
        rules_dir: The rule base folder; ``None`` checks the shipped rule base.
        as_json: Print the report as JSON instead of text.

    Returns:
        The exit status: 0 when there are no errors (warnings allowed), 1 otherwise.

    .. versionadded:: 1.0
    """
    target: Traversable | str = default_location() if rules_dir is None else rules_dir
    report = verify(target)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        print(report.render())
    return 0 if report.ok else 1


# --- findings helpers -------------------------------------------------------------


def _error(check: str, rule_id: str, file: str, message: str, **more: Any) -> Finding:
    return Finding(severity=Severity.ERROR, check=check, rule_id=rule_id, file=file, message=message, **more)


def _warning(check: str, rule_id: str, file: str, message: str, **more: Any) -> Finding:
    return Finding(severity=Severity.WARNING, check=check, rule_id=rule_id, file=file, message=message, **more)


def _sorted(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    order = {check: i for i, check in enumerate(CHECKS)}
    # Python's sort is stable: within one check, findings keep the order they were
    # found in, which follows the rule files.
    return tuple(sorted(findings, key=lambda f: (f.severity is not Severity.ERROR, order.get(f.check, len(order)))))


def _show(value: object) -> str:
    """A fact value as it is written in JSON and TOML."""
    return json.dumps(value)


# --- names that would match the engine's session state -----------------------------

_RESERVED_WHY = (
    "the engine itself writes a field of that name into every durable-rules session, "
    "so the engine's own session state would match"
)


def _reserved_fact(file: str, name: str) -> Finding:
    return _error(
        RESERVED,
        name,
        file,
        f"fact {name!r} is named like a session field: {_RESERVED_WHY} a rule that reads it. "
        "Rename the fact, and every rule that reads it.",
    )


def _reserved_use(file: str, label: str, name: str, how: str) -> Finding:
    return _error(
        RESERVED,
        label,
        file,
        f"the condition {how} {name!r}: {_RESERVED_WHY} it instead of the assessment. "
        "Use a fact with another name.",
    )


def _same_problem(file: str, rule_id: str, message: str, finding: Finding) -> bool:
    """Whether a loader problem says, less precisely, what a reserved-name finding says."""
    if finding.check != RESERVED or finding.file != file:
        return False
    if finding.rule_id != rule_id and not rule_id.startswith(finding.rule_id + " sign "):
        return False
    return any(repr(name) in message for name in RESERVED_NAMES)


def _raw_reserved(location: Traversable | Path) -> list[Finding]:
    """Reserved names in the rule files as written, read before (and whether or not) they load."""
    findings: list[Finding] = []
    try:
        if not location.is_dir():
            return findings
        files = sorted((f for f in location.iterdir() if f.name.endswith(".toml") and f.is_file()), key=lambda f: f.name)
        for file in files:
            try:
                data = tomllib.loads(file.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError):
                continue  # the loader reports it
            findings += _reserved_in_file(file.name, data)
    except OSError:
        pass  # the loader reports what it cannot read
    return findings


def _reserved_in_file(file: str, data: Mapping[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for table, items in data.items():
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict):
                continue
            label = _label(table, item)
            if table == "fact" and item.get("name") in RESERVED_NAMES:
                findings.append(_reserved_fact(file, str(item["name"])))
            if "when" in item:
                findings += [_reserved_use(file, label, n, h) for n, h in _reserved_in_condition(item["when"])]
            signs = item.get("signs") if table == "readiness" else None
            for sign in signs if isinstance(signs, list) else []:
                if isinstance(sign, dict) and "when" in sign:
                    findings += [_reserved_use(file, label, n, h) for n, h in _reserved_in_condition(sign["when"])]
    return findings


def _reserved_in_condition(data: object) -> Iterator[tuple[str, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key in RESERVED_NAMES:
                yield str(key), "tests the field"
            if key == "fact" and value in RESERVED_NAMES:
                yield str(value), "reads fact"
            yield from _reserved_in_condition(value)
    elif isinstance(data, list):
        for item in data:
            yield from _reserved_in_condition(item)


def _vocabulary_reserved(rulebase: RuleBase) -> list[Finding]:
    """Reserved names in a rule base that was built without the loader's checks."""
    findings: list[Finding] = []
    for fact in rulebase.vocabulary.facts:
        if fact.name in RESERVED_NAMES:
            findings.append(_reserved_fact("", fact.name))
    for owner, file, condition in _every_condition(rulebase):
        for name in sorted(cond.facts_read(condition) & RESERVED_NAMES):
            findings.append(_reserved_use(file, owner, name, "reads fact"))
    return findings


def _every_condition(rulebase: RuleBase) -> Iterator[tuple[str, str, cond.Condition]]:
    for rule in rulebase.criteria:
        yield rule.id, rule.file, rule.when
    for emergency in rulebase.emergencies:
        yield emergency.id, emergency.file, emergency.when
    for escalation in rulebase.escalations:
        yield escalation.id, escalation.file, escalation.when
    for readiness in rulebase.readiness:
        for sign in readiness.signs:
            yield readiness.id, readiness.file, sign.when
    for service in rulebase.services:
        yield service.name, service.file, service.when
    for consideration in rulebase.considerations:
        yield consideration.id, consideration.file, consideration.when


# --- combinations of cells as bit sets ---------------------------------------------


class _Product:
    """Every combination of the cells of some facts; combination ``i`` is bit ``i``.

    The first fact varies slowest. Cells are in need order, so the combination
    with the lowest index has every fact at its lowest need.
    """

    def __init__(self, names: Sequence[str], cells: Mapping[str, tuple[Any, ...]]) -> None:
        self.names = tuple(names)
        self.cells = {name: cells[name] for name in self.names}
        self.stride: dict[str, int] = {}
        size = 1
        for name in reversed(self.names):
            self.stride[name] = size
            size *= len(self.cells[name])
        self.size = size
        self.everything = (1 << size) - 1
        self._masks: dict[tuple[str, frozenset[int]], int] = {}

    def digit(self, index: int, name: str) -> int:
        return (index // self.stride[name]) % len(self.cells[name])

    def values(self, index: int) -> dict[str, Any]:
        """The cell values of combination ``index``."""
        return {name: self.cells[name][self.digit(index, name)] for name in self.names}

    def mask(self, name: str, positions: frozenset[int]) -> int:
        """The combinations whose cell of ``name`` is one of ``positions``."""
        key = (name, positions)
        found = self._masks.get(key)
        if found is None:
            stride, radix = self.stride[name], len(self.cells[name])
            block = (1 << stride) - 1
            period = 0
            for position in positions:
                period |= block << (position * stride)
            found = _repeat(period, stride * radix, self.size // (stride * radix))
            self._masks[key] = found
        return found

    def evaluate(self, condition: cond.Condition) -> int:
        """The combinations where ``condition`` holds."""
        if isinstance(condition, cond.All):
            result = self.everything
            for item in condition.items:
                result &= self.evaluate(item)
            return result
        if isinstance(condition, cond.Any_):
            result = 0
            for item in condition.items:
                result |= self.evaluate(item)
            return result
        if isinstance(condition, (cond.ValueAtom, cond.RangeAtom)) and condition.fact in self.cells:
            cells = self.cells[condition.fact]
            positions = frozenset(
                i for i, value in enumerate(cells) if cond.atom_holds(condition, {condition.fact: value}, {})
            )
            return self.mask(condition.fact, positions)
        msg = f"condition {condition!r} reads something outside the facts {self.names}"
        raise LookupError(msg)


def _repeat(pattern: int, period: int, count: int) -> int:
    """``pattern`` (``period`` bits long) repeated ``count`` times."""
    if count <= 0:
        return 0
    result, length, done = pattern, period, 1
    while done * 2 <= count:
        result |= result << length
        length *= 2
        done *= 2
    if done < count:
        result |= _repeat(pattern, period, count - done) << length
    return result


def _bits(value: int, size: int) -> Iterator[int]:
    """The positions of the set bits of ``value``, lowest first."""
    if not value:
        return
    text = format(value, f"0{size}b")[::-1]
    position = text.find("1")
    while position != -1:
        yield position
        position = text.find("1", position + 1)


def _lowest(value: int) -> int:
    return (value & -value).bit_length() - 1


def _edge_values(fact: Fact, cells: tuple[Any, ...], position: int) -> tuple[Any, Any]:
    """Two neighbouring values on either side of the step from cell ``position`` to the next.

    Finite facts have one value per cell. For an integer, the values nearest the
    threshold read best in a report: weeks 12 and 11, not 12 and 0.
    """
    if fact.kind != "integer":
        return cells[position], cells[position + 1]
    if fact.need == "decreasing":
        # Cells hold interval starts from highest to lowest.
        return cells[position], cells[position] - 1
    return cells[position + 1] - 1, cells[position + 1]


# --- the verifier -------------------------------------------------------------------


@attrs.frozen
class _Violation:
    """One step that lowers the level, with what caused it."""

    owner: Owner | None
    fact: str
    before: dict[str, Any]
    after: dict[str, Any]
    levels: tuple[Level, Level]
    current: Level | None


class _Verifier:
    """Every check on one loaded rule base."""

    def __init__(self, rulebase: RuleBase) -> None:
        self.rb = rulebase
        self.vocabulary: Vocabulary = rulebase.vocabulary
        self.placement = Placement(rulebase)
        self.levels = rulebase.levels
        self.analysis = Analysis(self.placement)
        self.top = len(self.levels) - 1
        self.findings: list[Finding] = []
        self.checked: dict[str, int] = {}
        self.contexts: dict[tuple[Level, Transition, bool], dict[str, Any]] = {}
        self.clinical = _Product(self.analysis.clinical, self.analysis.cells)
        self.exhaustive = self.clinical.size <= MAX_COMBINATIONS
        self.in_treatment = CURRENT_LEVEL in self.vocabulary
        self.transition_facts = tuple(
            name
            for name in self.analysis.clinical
            if any(
                name in cond.facts_read(c)
                for c in [e.when for e in rulebase.escalations] + [s.when for r in rulebase.readiness for s in r.signs]
            )
        )
        self.progress = _Product(self.analysis.progress, self.analysis.cells)
        self.mechanism = _Product(self.transition_facts + self.analysis.progress, self.analysis.cells)
        if self.in_treatment and self.mechanism.size > MAX_COMBINATIONS:
            self.exhaustive = False

    # --- report -------------------------------------------------------------

    def report(self, location: str, reserved: Iterable[Finding]) -> VerificationReport:
        self.findings = list(reserved)
        if self.exhaustive:
            self._indicated()
            self._realised()
            if self.in_treatment:
                self._transitions()
            self._emergencies()
            self._gaps()
            self._never_decides()
        else:
            size = max(self.clinical.size, self.mechanism.size if self.in_treatment else 0)
            self.findings.append(
                _warning(
                    TOO_LARGE,
                    "",
                    "",
                    f"{size:,} combinations are more than the {MAX_COMBINATIONS:,} the exhaustive checks "
                    "(monotonicity, gaps, emergencies, rules that never decide) cover; they were skipped. "
                    "Cut integer facts at fewer thresholds or split the vocabulary.",
                )
            )
        self._never_fires()
        return VerificationReport(
            location=location, rulebase=self.rb.info, findings=_sorted(self.findings), checked=self.checked
        )

    # --- pass 1: the indicated level over the clinical facts -----------------

    def _indicated(self) -> None:
        product = self.clinical
        self.checked["clinical"] = product.size
        self.fires = [product.evaluate(rule.when) for rule in self.rb.criteria]
        covered = 0
        for bits in self.fires:
            covered |= bits
        self.covered = covered
        fallback = any(rule.otherwise for rule in self.rb.rules)
        # at_least[k]: the combinations whose indicated level is at least self.levels[k].
        self.at_least = [product.everything if fallback else covered]
        for level in self.levels[1:]:
            bits = 0
            for rule, fired in zip(self.rb.criteria, self.fires):
                if rule.level >= level:
                    bits |= fired
            self.at_least.append(bits)
        indicated = [0] * product.size
        for k in range(1, len(self.levels)):
            text = format(self.at_least[k], f"0{product.size}b")[::-1]
            indicated = [i + (ch == "1") for i, ch in zip(indicated, text)]
        self.indicated = indicated
        self.fired_text = [format(bits, f"0{product.size}b")[::-1] for bits in self.fires]
        emergency = 0
        self.emergency_bits = []
        for item in self.rb.emergencies:
            bits = product.evaluate(item.when)
            self.emergency_bits.append(bits)
            emergency |= bits
        self.emergency_text = format(emergency, f"0{product.size}b")[::-1]

        violations: list[_Violation] = []
        for name in product.names:
            stride, radix = product.stride[name], len(product.cells[name])
            for position in range(radix - 1):
                dropped = 0
                for k in range(1, len(self.levels)):
                    below = self.at_least[k] & product.mask(name, frozenset({position}))
                    dropped |= (below << stride) & ~self.at_least[k] & product.everything
                for upper in _bits(dropped, product.size):
                    lower = upper - stride
                    before, after = self._clinical_pair(lower, name, position)
                    levels = (self.levels[indicated[lower]], self.levels[indicated[upper]])
                    culprit = next(
                        (
                            rule
                            for rule, text in zip(self.rb.criteria, self.fired_text)
                            if rule.level == levels[0] and text[lower] == "1" and text[upper] == "0"
                        ),
                        None,
                    )
                    violations.append(_Violation(culprit, name, before, after, levels, None))
        self._report_violations(violations)

    def _clinical_pair(self, lower: int, name: str, position: int) -> tuple[dict[str, Any], dict[str, Any]]:
        fact = self.vocabulary[name]
        low, high = _edge_values(fact, self.clinical.cells[name], position)
        before = self.clinical.values(lower)
        after = dict(before)
        before[name], after[name] = low, high
        return before, after

    # --- pass 2: what the transition mechanism sees of each combination ---------

    def _realised(self) -> None:
        product = self.clinical
        # Where each combination lands among the transition facts' cells.
        x_product = _Product(self.transition_facts, self.analysis.cells)
        self.x_product = x_product
        x_index = [0] * product.size
        for name in self.transition_facts:
            stride, radix, x_stride = product.stride[name], len(product.cells[name]), x_product.stride[name]
            x_index = [x + ((c // stride) % radix) * x_stride for c, x in enumerate(x_index)]
        self.x_index = x_index
        # For each transition cell, the lowest indicated level reaching it and a witness.
        self.lowest: dict[int, tuple[int, int]] = {}
        self.pairs: dict[tuple[int, int], int] = {}
        for c, (x, i) in enumerate(zip(x_index, self.indicated)):
            known = self.lowest.get(x)
            if known is None or i < known[0]:
                self.lowest[x] = (i, c)
            self.pairs.setdefault((i, x), c)
        for c, i in enumerate(self.indicated):
            emergency = self.emergency_text[c] == "1"
            key = (self.levels[i], Transition.ADMIT, emergency)
            if key not in self.contexts and self._decided(c):
                self.contexts[key] = self.clinical.values(c)

    def _decided(self, c: int) -> bool:
        """Whether combination ``c`` gets a level at all (no gap)."""
        return bool((self.at_least[0] >> c) & 1)

    # --- pass 3: the transition mechanism --------------------------------------

    def _parts(self, current: Level, level: Level) -> list[tuple[Owner, cond.Condition]]:
        """What, besides the indicated level, makes the final level at least ``level``.

        The placement mechanism's own parts; an unmet readiness sign is reported
        as its readiness rule.
        """
        return [
            (owner[0] if isinstance(owner, tuple) else owner, condition)
            for owner, condition in self.placement.parts(current, level)
        ]

    def _transitions(self) -> None:
        mechanism, progress = self.mechanism, self.progress
        width = progress.size
        full = progress.everything
        self.checked["transitions"] = len(self.pairs) * width * len(self.levels)
        # lifted[current][k]: mechanism combinations where the final level is at
        # least self.levels[k] whatever the indicated level (below k) is.
        self.lifted: list[list[int]] = []
        for now in self.levels:
            row = [mechanism.everything]
            for level in self.levels[1:]:
                bits = 0
                for _, condition in self._parts(now, level):
                    bits |= mechanism.evaluate(condition)
                row.append(bits)
            self.lifted.append(row)

        def slice_of(current: int, k: int, x: int) -> int:
            return (self.lifted[current][k] >> (x * width)) & full

        violations: list[_Violation] = []
        # A progress fact raised one step.
        for name in progress.names:
            stride, radix = mechanism.stride[name], len(mechanism.cells[name])
            for position in range(radix - 1):
                for current in range(len(self.levels)):
                    seen: set[int] = set()
                    for k in range(1, len(self.levels)):
                        lifted = self.lifted[current][k]
                        below = lifted & mechanism.mask(name, frozenset({position}))
                        dropped = (below << stride) & ~lifted & mechanism.everything
                        for upper in _bits(dropped, mechanism.size):
                            x = upper // width
                            witness = self.lowest.get(x)
                            if upper in seen or witness is None or witness[0] >= k:
                                continue
                            seen.add(upper)
                            violations.append(self._progress_step(name, position, witness[1], current, upper - stride, upper))
        # current_level raised one step.
        for current in range(len(self.levels) - 1):
            seen = set()
            for k in range(1, len(self.levels)):
                dropped = self.lifted[current][k] & ~self.lifted[current + 1][k]
                for combination in _bits(dropped, mechanism.size):
                    witness = self.lowest.get(combination // width)
                    if combination in seen or witness is None or witness[0] >= k:
                        continue
                    seen.add(combination)
                    violations.append(self._current_violation(current, witness[1], combination))
        # A clinical fact that transitions read, raised one step: the indicated
        # level and the transition cells move together.
        clinical = self.clinical
        for name in self.transition_facts:
            stride, radix = clinical.stride[name], len(clinical.cells[name])
            moves: dict[tuple[int, int, int, int], int] = {}
            for c in range(clinical.size):
                if clinical.digit(c, name) < radix - 1:
                    up = c + stride
                    moves.setdefault((self.indicated[c], self.x_index[c], self.indicated[up], self.x_index[up]), c)
            for (i, x, i_up, x_up), c in moves.items():
                if i_up < i:
                    continue  # the indicated level itself drops; reported for admissions
                for current in range(len(self.levels)):
                    seen = set()
                    for k in range(i_up + 1, len(self.levels)):
                        dropped = slice_of(current, k, x) & ~slice_of(current, k, x_up)
                        for p in _bits(dropped, width):
                            if p in seen:
                                continue
                            seen.add(p)
                            violations.append(self._clinical_move(name, c, current, p))
        self._report_violations(violations)
        # Which decisions (level, transition, emergency) assessments in treatment reach.
        for (i, x), c in self.pairs.items():
            if not self._decided(c):
                continue
            emergency = self.emergency_text[c] == "1"
            for current in range(len(self.levels)):
                rows = [full] + [full if i >= k else slice_of(current, k, x) for k in range(1, len(self.levels))] + [0]
                for j in range(len(self.levels)):
                    exactly = rows[j] & ~rows[j + 1]
                    if not exactly:
                        continue
                    transition = (
                        Transition.STEP_UP if j > current else Transition.CONTINUE if j == current else Transition.STEP_DOWN
                    )
                    self.contexts.setdefault((self.levels[j], transition, emergency), self._assessment(c, current, _lowest(exactly)))

    def level_of(self, facts: Mapping[str, Any]) -> Level:
        """The final level the passes computed for one complete assessment.

        Only for checking the verifier against the engine; needs :meth:`report` first.
        """
        c = sum(self.analysis.cell_of(n, facts[n]) * self.clinical.stride[n] for n in self.clinical.names)
        if facts.get(CURRENT_LEVEL) is None:
            return self.levels[self.indicated[c]]
        p = sum(self.analysis.cell_of(n, facts[n]) * self.progress.stride[n] for n in self.progress.names)
        return self._final(c, self.levels[facts[CURRENT_LEVEL]].rank, p)

    def _assessment(self, c: int, current: int, p: int) -> dict[str, Any]:
        facts = self.clinical.values(c)
        facts[CURRENT_LEVEL] = self.levels[current].value
        facts.update(self.progress.values(p))
        return facts

    def _final(self, c: int, current: int, p: int) -> Level:
        i = self.indicated[c]
        x = self.x_index[c]
        width = self.progress.size
        level = i
        for k in range(i + 1, len(self.levels)):
            if (self.lifted[current][k] >> (x * width + p)) & 1:
                level = k
        return self.levels[level]

    def _culprit(
        self, level: Level, before: tuple[Level, Mapping[str, Any]], after: tuple[Level, Mapping[str, Any]]
    ) -> Owner | None:
        """The escalation, readiness or bridge that held the level up before a step and not after."""
        after_parts = self._parts(after[0], level)
        for owner, condition in self._parts(before[0], level):
            if cond.holds(condition, before[1]) and not any(o is owner and cond.holds(c, after[1]) for o, c in after_parts):
                return owner
        return None

    def _progress_step(self, name: str, position: int, c: int, current: int, lower: int, upper: int) -> _Violation:
        width = self.progress.size
        p_low, p_up = lower % width, upper % width
        before = self._assessment(c, current, p_low)
        after = self._assessment(c, current, p_up)
        low, high = _edge_values(self.vocabulary[name], self.progress.cells[name], position)
        before[name], after[name] = low, high
        levels = (self._final(c, current, p_low), self._final(c, current, p_up))
        culprit = self._culprit(levels[0], (self.levels[current], before), (self.levels[current], after))
        return _Violation(culprit, name, before, after, levels, self.levels[current])

    def _current_violation(self, current: int, c: int, combination: int) -> _Violation:
        p = combination % self.progress.size
        before = self._assessment(c, current, p)
        after = self._assessment(c, current + 1, p)
        levels = (self._final(c, current, p), self._final(c, current + 1, p))
        culprit = self._culprit(levels[0], (self.levels[current], before), (self.levels[current + 1], after))
        return _Violation(culprit, CURRENT_LEVEL, before, after, levels, self.levels[current])

    def _clinical_move(self, name: str, c: int, current: int, p: int) -> _Violation:
        position = self.clinical.digit(c, name)
        up = c + self.clinical.stride[name]
        before = self._assessment(c, current, p)
        after = self._assessment(up, current, p)
        low, high = _edge_values(self.vocabulary[name], self.clinical.cells[name], position)
        before[name], after[name] = low, high
        levels = (self._final(c, current, p), self._final(up, current, p))
        culprit = self._culprit(levels[0], (self.levels[current], before), (self.levels[current], after))
        return _Violation(culprit, name, before, after, levels, self.levels[current])

    def _report_violations(self, violations: Sequence[_Violation]) -> None:
        groups: dict[tuple[str, str], list[_Violation]] = {}
        for violation in violations:
            owner_id = violation.owner.id if violation.owner is not None else ""
            groups.setdefault((owner_id, violation.fact), []).append(violation)
        for (owner_id, name), found in groups.items():
            first = found[0]
            low, high = first.levels
            values = f"from {_show(first.before[name])} to {_show(first.after[name])}"
            fact = self.vocabulary[name]
            if name == CURRENT_LEVEL:
                setting, step = "for someone in treatment", f"moving {CURRENT_LEVEL} up {values}"
            else:
                setting = "for a new admission" if first.current is None else f"with {CURRENT_LEVEL} {_show(first.current.value)}"
                step = f"raising {name} {values}"
                if fact.kind == "integer" and fact.need == "decreasing":
                    step = f"lowering {name} {values}, which means more need"
            message = (
                f"{setting}, {step} (every other fact the same) lowers the level from {low.value} to {high.value}"
            )
            if first.owner is not None:
                message += f"; {owner_id} holds before the change and not after"
            message += ". Raising need must never lower the level."
            file = first.owner.file if first.owner is not None else ""
            self.findings.append(
                _error(
                    NOT_MONOTONE,
                    owner_id,
                    file,
                    message,
                    counterexample=first.before,
                    contrast=first.after,
                    count=len(found),
                )
            )

    # --- emergencies, gaps, rules that never decide --------------------------

    def _emergencies(self) -> None:
        top = self.at_least[self.top]
        for item, bits in zip(self.rb.emergencies, self.emergency_bits):
            wrong = bits & ~top
            if not wrong:
                continue
            c = _lowest(wrong)
            level = self.levels[self.indicated[c]] if self._decided(c) else None
            where = f"the level is {level.value}" if level is not None else "no level is decided"
            self.findings.append(
                _error(
                    EMERGENCY,
                    item.id,
                    item.file,
                    f"when {item.id} declares an emergency, {where} instead of {self.levels[-1].value}: "
                    f"a crisis response must come with the highest level. "
                    f"Add a criterion for {self.levels[-1].value} whose condition covers {item.id}'s.",
                    counterexample=self.clinical.values(c),
                    count=wrong.bit_count(),
                )
            )

    def _gaps(self) -> None:
        undecided = self.clinical.everything & ~self.at_least[0]
        if undecided:
            c = _lowest(undecided)
            self.findings.append(
                _error(
                    GAP,
                    "",
                    "",
                    "complete assessments get no level: no criterion holds and there is no "
                    "[[rule]] with otherwise = true to fall back on",
                    counterexample=self.clinical.values(c),
                    count=undecided.bit_count(),
                )
            )
        reached: dict[Level, dict[str, Any]] = {}
        for (level, _, _), facts in self.contexts.items():
            reached.setdefault(level, facts)
        for level in self.levels:
            if level in reached and level.id not in self.rb.programs:
                self.findings.append(
                    _error(
                        GAP,
                        level.value,
                        "",
                        f"assessments reach {level.value}, but there is no [[program]] for it, so no "
                        "decision can be made for them",
                        counterexample=reached[level],
                    )
                )

    def _never_decides(self) -> None:
        for index, rule in enumerate(self.rb.criteria):
            fired = self.fires[index]
            if not fired or rule.level == self.levels.highest:
                continue
            above = self.at_least[rule.level.rank + 1]
            if fired & ~above:
                continue
            c = _lowest(fired)
            higher = next(
                r
                for r, text in zip(self.rb.criteria, self.fired_text)
                if r.level > rule.level and text[c] == "1"
            )
            self.findings.append(
                _warning(
                    NEVER_DECIDES,
                    rule.id,
                    rule.file,
                    f"whenever {rule.id} holds, a criterion for a higher level holds too (here {higher.id}, "
                    f"{higher.level.value}), so {rule.id} never decides a level. Widen its condition or remove it.",
                    counterexample=self.clinical.values(c),
                    count=fired.bit_count(),
                )
            )

    # --- rules that can never fire -----------------------------------------------

    def _never_fires(self) -> None:
        vocabulary = self.vocabulary
        for owner, file, condition in self._level_conditions():
            if not _satisfiable(condition, vocabulary):
                self.findings.append(
                    _error(NEVER_FIRES, owner, file, f"{owner} can never fire: {_conflict(condition, vocabulary)}.")
                )
        for readiness in self.rb.readiness:
            for number, sign in enumerate(readiness.signs, start=1):
                if not _satisfiable(sign.when, vocabulary):
                    self.findings.append(
                        _error(
                            NEVER_FIRES,
                            readiness.id,
                            readiness.file,
                            f"sign {number} of {readiness.id} can never be met, so no one ever steps down from "
                            f"{_levels_text(self.levels, readiness.applies_to)}: {_conflict(sign.when, vocabulary)}.",
                        )
                    )
            if all(level == self.levels.lowest for level in readiness.applies_to):
                self.findings.append(
                    _error(
                        NEVER_FIRES,
                        readiness.id,
                        readiness.file,
                        f"{readiness.id} can never fire: it applies only to {self.levels[0].value}, and there is "
                        "no lower level to step down to.",
                    )
                )
        for name, file, condition in self._outcome_conditions():
            self._outcome_fires(name, file, condition)

    def _level_conditions(self) -> Iterator[tuple[str, str, cond.Condition]]:
        for rule in self.rb.criteria:
            yield rule.id, rule.file, rule.when
        for emergency in self.rb.emergencies:
            yield emergency.id, emergency.file, emergency.when
        for escalation in self.rb.escalations:
            yield escalation.id, escalation.file, escalation.when

    def _outcome_conditions(self) -> Iterator[tuple[str, str, cond.Condition]]:
        for service in self.rb.services:
            yield service.name, service.file, service.when
        for consideration in self.rb.considerations:
            yield consideration.id, consideration.file, consideration.when

    def _outcome_fires(self, name: str, file: str, condition: cond.Condition) -> None:
        """Services and considerations: is there a decision under which the condition can hold?"""
        every = [
            (level, transition, emergency)
            for level in self.levels
            for transition in Transition
            for emergency in (False, True)
        ]
        possible = [c for c in every if _satisfiable(self._fixed(condition, c), self.vocabulary)]
        if not possible:
            self.findings.append(
                _error(
                    NEVER_FIRES,
                    name,
                    file,
                    f"{name} can never fire: {_conflict(condition, self.vocabulary)}.",
                )
            )
            return
        if not self.exhaustive:
            return
        reached = [c for c in possible if c in self.contexts]
        if not reached:
            self.findings.append(
                _error(
                    NEVER_FIRES,
                    name,
                    file,
                    f"{name} can never fire: it needs a decision with {_contexts_text(possible, len(self.levels))}, "
                    "and no assessment leads to one.",
                )
            )

    def _fixed(self, condition: cond.Condition, context: tuple[Level, Transition, bool]) -> cond.Condition:
        """``condition`` with the decided level, transition and emergency flag filled in."""
        level, transition, emergency = context
        if isinstance(condition, cond.All):
            return cond.All(tuple(self._fixed(c, context) for c in condition.items))
        if isinstance(condition, cond.Any_):
            return cond.Any_(tuple(self._fixed(c, context) for c in condition.items))
        if isinstance(condition, cond.ContextAtom):
            value = {"level": level.value, "transition": transition.value, "emergency": emergency}[condition.name]
            return cond.TRUE if value in condition.allowed else cond.FALSE
        if isinstance(condition, cond.ProgramAtom):
            program = self.rb.programs.get(level.id)
            if program is None:
                return cond.FALSE
            minimum = program.hours_per_week[0] if condition.which == "hours" else program.days_per_week[0]
            fact = self.vocabulary[condition.fact]
            low, high = fact.minimum or 0, fact.maximum or 0
            interval = (low, minimum - 1) if condition.below else (minimum, high)
            return cond.RangeAtom(condition.fact, cond._normalise([interval]))
        return condition


def _levels_text(order: Sequence[Level], levels: Iterable[Level]) -> str:
    return ", ".join(level.id for level in order if level in set(levels))


def _contexts_text(contexts: Sequence[tuple[Level, Transition, bool]], every_level: int) -> str:
    """The decisions a condition needs, as briefly as they can be said."""
    levels = sorted({c[0] for c in contexts}, key=lambda level: level.rank)
    transitions = [t for t in Transition if any(c[1] is t for c in contexts)]
    flags = sorted({c[2] for c in contexts})
    product = {(a, b, e) for a in levels for b in transitions for e in flags}
    if product == set(contexts):
        parts = []
        if len(levels) < every_level:
            parts.append("level " + " or ".join(level.value for level in levels))
        if len(transitions) < len(Transition):
            parts.append("transition " + " or ".join(t.value for t in transitions))
        if len(flags) == 1:
            parts.append(f"emergency {_show(flags[0])}")
        return " and ".join(parts) or "any level"
    shown = [f"({a.value}, {b.value}, emergency {_show(e)})" for a, b, e in contexts[:4]]
    more = ", ..." if len(contexts) > 4 else ""
    return "(level, transition, emergency) one of " + ", ".join(shown) + more


# --- satisfiability and why a condition cannot hold ------------------------------------

Allowed = frozenset[Any] | tuple[tuple[int, int], ...]
Term = dict[str, Allowed]
_MAX_TERMS = 20_000


class _TooLarge(Exception):
    """A condition's normal form outgrew ``_MAX_TERMS``."""


def _satisfiable(condition: cond.Condition, vocabulary: Vocabulary) -> bool:
    """Whether some values of the facts make ``condition`` hold (context atoms: any value).

    A condition too large to expand counts as satisfiable: the verifier reports
    only what it has shown.
    """
    try:
        return bool(_terms(condition, vocabulary))
    except _TooLarge:
        return True


def _terms(condition: cond.Condition, vocabulary: Vocabulary) -> list[Term]:
    """Disjunctive normal form, without contradictory terms.

    Raises:
        _TooLarge: more than ``_MAX_TERMS`` terms.
    """
    if isinstance(condition, cond.Any_):
        terms: list[Term] = []
        for item in condition.items:
            terms += _terms(item, vocabulary)
            if len(terms) > _MAX_TERMS:
                raise _TooLarge
        return terms
    if isinstance(condition, cond.All):
        acc: list[Term] = [{}]
        for item in condition.items:
            acc = [m for a in acc for b in _terms(item, vocabulary) if (m := _merge(a, b)) is not None]
            if not acc:
                return []
            if len(acc) > _MAX_TERMS:
                raise _TooLarge
        return acc
    if isinstance(condition, cond.ValueAtom):
        return [{condition.fact: condition.allowed}] if condition.allowed else []
    if isinstance(condition, cond.RangeAtom):
        return [{condition.fact: condition.intervals}] if condition.intervals else []
    if isinstance(condition, cond.ContextAtom):
        return [{"@" + condition.name: condition.allowed}] if condition.allowed else []
    return [{}]  # a programme minimum can always be met or missed by some value


def _merge(a: Term, b: Term) -> Term | None:
    merged = dict(a)
    for name, allowed in b.items():
        if name in merged:
            both = _intersect(merged[name], allowed)
            if not both:
                return None
            merged[name] = both
        else:
            merged[name] = allowed
    return merged


def _intersect(a: Allowed, b: Allowed) -> Allowed:
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return a & b
    result: list[tuple[int, int]] = []
    for lo, hi in a:
        for lo2, hi2 in b:
            if max(lo, lo2) <= min(hi, hi2):
                result.append((max(lo, lo2), min(hi, hi2)))
    return tuple(result)


def _describe(condition: cond.Condition, vocabulary: Vocabulary) -> str:
    """A condition in words, for messages."""
    if isinstance(condition, cond.ValueAtom):
        fact = vocabulary[condition.fact]
        values = [v for v in fact.values if v in condition.allowed]
        if not values:
            return f"{condition.fact} is none of its values"
        if len(values) == 1:
            return f"{condition.fact} is {_show(values[0])}"
        return f"{condition.fact} is one of {json.dumps(values)}"
    if isinstance(condition, cond.RangeAtom):
        if not condition.intervals:
            return f"{condition.fact} is no number in its range"
        ranges = " or ".join(str(lo) if lo == hi else f"from {lo} to {hi}" for lo, hi in condition.intervals)
        return f"{condition.fact} is {ranges}"
    if isinstance(condition, cond.ContextAtom):
        values = sorted(condition.allowed, key=str)
        if not values:
            return f"the decided {condition.name} is nothing it can be"
        return f"the decided {condition.name} is " + " or ".join(_show(v) for v in values)
    if isinstance(condition, cond.ProgramAtom):
        return f"{condition.fact} is {'below' if condition.below else 'at least'} the programme's minimum {condition.which}"
    joiner = " and " if isinstance(condition, cond.All) else " or "
    if not condition.items:
        return "always" if isinstance(condition, cond.All) else "never"
    return "(" + joiner.join(_describe(c, vocabulary) for c in condition.items) + ")"


def _conflict(condition: cond.Condition, vocabulary: Vocabulary) -> str:
    """Why no values of the facts make ``condition`` hold."""

    def sat(condition: cond.Condition) -> bool:
        return _satisfiable(condition, vocabulary)

    if isinstance(condition, (cond.ValueAtom, cond.RangeAtom, cond.ContextAtom)):
        return f"its condition asks that {_describe(condition, vocabulary)}, which no assessment can be"
    if isinstance(condition, cond.Any_):
        if not condition.items:
            return "its condition is empty"
        reasons = [_conflict(c, vocabulary) for c in condition.items]
        return "every alternative is impossible: " + "; ".join(reasons)
    if isinstance(condition, cond.All):
        for item in condition.items:
            if not sat(item):
                return _conflict(item, vocabulary)
        atoms_by_name: dict[str, list[cond.Condition]] = {}
        for item in condition.items:
            if isinstance(item, (cond.ValueAtom, cond.RangeAtom)):
                atoms_by_name.setdefault(item.fact, []).append(item)
            elif isinstance(item, cond.ContextAtom):
                atoms_by_name.setdefault("@" + item.name, []).append(item)
        for group in atoms_by_name.values():
            if len(group) > 1 and not sat(cond.All(tuple(group))):
                parts = " and that ".join(_describe(a, vocabulary) for a in group)
                together = "both" if len(group) == 2 else "all"
                return f"it is contradictory: it asks that {parts}, which cannot {together} be true at once"
        for i, first in enumerate(condition.items):
            for second in condition.items[i + 1 :]:
                if not sat(cond.All((first, second))):
                    return (
                        f"it is contradictory: {_describe(first, vocabulary)} and "
                        f"{_describe(second, vocabulary)} cannot both be true"
                    )
        return "it is contradictory: its parts cannot all be true at once"
    return "its condition cannot hold"  # pragma: no cover - a program atom alone is satisfiable
