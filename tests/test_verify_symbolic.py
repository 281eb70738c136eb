"""The symbolic checks agree with brute force on small generated rule bases.

Each rule base is built in code (random criteria, emergencies, escalations,
readiness signs and a bridge over a small vocabulary). Brute force walks every
combination of cells and settles each with the placement mechanism; the
verifier's diagrams must give the same level everywhere, and its findings the
same violations, counted the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from dd import autoref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from levelcare import Engine, Level
from levelcare._rulebase import Bridge, Emergency, Escalation, Readiness, Rule, RuleBase, Sign
from levelcare._rulebase import _conditions as cond
from levelcare._rulebase._vocabulary import CURRENT_LEVEL, Fact, Vocabulary
from levelcare._semantics import Analysis, Placement
from levelcare._verify import _Verifier

SHIPPED = Engine.default()._rb
LEVELS = SHIPPED.levels
SOURCES = (SHIPPED.sources[0].id,)


def _fact(name: str, group: str, values: Sequence[Any]) -> Fact:
    kind = "boolean" if values == (False, True) else "ordinal"
    return Fact(name=name, group=group, kind=kind, meaning="m", sources=SOURCES, values=tuple(values))


@st.composite
def vocabularies(draw: st.DrawFn) -> Vocabulary:
    facts = []
    for i in range(draw(st.integers(1, 3))):
        size = draw(st.integers(2, 3))
        values = (False, True) if size == 2 and draw(st.booleans()) else tuple(f"v{j}" for j in range(size))
        facts.append(_fact(f"c{i}", "clinical", values))
    facts.append(
        Fact(
            name="score",
            group="clinical",
            kind="integer",
            meaning="m",
            sources=SOURCES,
            minimum=0,
            maximum=9,
            need="increasing",
        )
    )
    facts.append(
        Fact(name=CURRENT_LEVEL, group="progress", kind="level", meaning="m", sources=SOURCES, values=LEVELS.ids)
    )
    facts.append(
        Fact(
            name="weeks",
            group="progress",
            kind="integer",
            meaning="m",
            sources=SOURCES,
            minimum=0,
            maximum=9,
            need="decreasing",
        )
    )
    facts.append(_fact("trend", "progress", ("better", "same", "worse")))
    return Vocabulary(tuple(facts))


def atoms(facts: Sequence[Fact]) -> st.SearchStrategy[cond.Condition]:
    def atom(fact: Fact) -> st.SearchStrategy[cond.Condition]:
        if fact.kind == "integer":
            low, high = fact.minimum or 0, fact.maximum or 0
            return st.tuples(st.integers(low, high), st.integers(low, high)).map(
                lambda b: cond.RangeAtom(fact.name, ((min(b), max(b)),))
            )
        return st.sets(st.sampled_from(fact.values), min_size=1).map(lambda s: cond.ValueAtom(fact.name, frozenset(s)))

    return st.sampled_from(list(facts)).flatmap(atom)


def conditions(facts: Sequence[Fact]) -> st.SearchStrategy[cond.Condition]:
    return st.recursive(
        atoms(facts),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda items: cond.All(tuple(items))),
            st.lists(inner, min_size=1, max_size=3).map(lambda items: cond.Any_(tuple(items))),
        ),
        max_leaves=4,
    )


@st.composite
def rulebases(draw: st.DrawFn) -> RuleBase:
    vocabulary = draw(vocabularies())
    clinical = vocabulary.group("clinical")
    readable = clinical + tuple(f for f in vocabulary.group("progress") if f.name != CURRENT_LEVEL)
    above = [level for level in LEVELS if level != LEVELS.lowest]
    rules = [attrs.evolve(SHIPPED.fallback)]
    for i in range(draw(st.integers(1, 5))):
        rules.append(Rule(f"R-{i}", draw(st.sampled_from(above)), "s", SOURCES, draw(conditions(clinical)), "r.toml"))
    emergencies = [
        Emergency(f"E-{i}", "s", SOURCES, draw(conditions(clinical)), "e.toml") for i in range(draw(st.integers(0, 1)))
    ]
    escalations = [
        Escalation(f"U-{i}", "s", SOURCES, draw(conditions(readable)), draw(st.integers(1, 2)), "t.toml")
        for i in range(draw(st.integers(0, 2)))
    ]
    readiness = []
    for i in range(draw(st.integers(0, 1))):
        signs = []
        for _ in range(draw(st.integers(1, 2))):
            when = draw(conditions(readable))
            signs.append(Sign("s", when, cond.negate(when, vocabulary)))
        applies = frozenset(draw(st.sets(st.sampled_from(above), min_size=1)))
        readiness.append(Readiness(f"D-{i}", "s", SOURCES, applies, tuple(signs), "t.toml"))
    bridges = []
    if draw(st.booleans()):
        bridges.append(Bridge("B-1", "s", SOURCES, frozenset(LEVELS[2:]), LEVELS[1], "t.toml"))
    return attrs.evolve(
        SHIPPED,
        vocabulary=vocabulary,
        rules=tuple(rules),
        emergencies=tuple(emergencies),
        escalations=tuple(escalations),
        readiness=tuple(readiness),
        bridges=tuple(bridges),
        services=(),
        considerations=(),
    )


class BruteForce:
    """Every combination of cells, settled one at a time by the placement mechanism."""

    def __init__(self, rulebase: RuleBase) -> None:
        self.rb = rulebase
        self.placement = Placement(rulebase)
        self.analysis = Analysis(self.placement)
        self.clinical = self.analysis.clinical
        self.progress = self.analysis.progress
        self.cells = self.analysis.cells

    def indicated(self, facts: dict[str, Any]) -> Level:
        return self.placement.indicated([r for r in self.rb.criteria if cond.holds(r.when, facts)])[0]

    def final(self, facts: dict[str, Any], current: Level) -> Level:
        def holds(owner: object) -> bool:
            if isinstance(owner, tuple):
                return cond.holds(owner[1].unmet, facts)
            assert isinstance(owner, Escalation)
            return cond.holds(owner.when, facts)

        return self.placement.settle(self.indicated(facts), current, holds).level

    def combinations(self, names: Sequence[str]) -> list[dict[str, int]]:
        return [dict(zip(names, c)) for c in itertools.product(*(range(len(self.cells[n])) for n in names))]

    def values(self, cells: dict[str, int]) -> dict[str, Any]:
        return {n: self.cells[n][i] for n, i in cells.items()}

    def drops(self) -> int:
        """Steps of one fact (or current_level) that lower the level, counted as the verifier counts them."""
        count = 0
        for combo in self.combinations(self.clinical):
            for name in self.clinical:
                if combo[name] + 1 < len(self.cells[name]):
                    up = {**combo, name: combo[name] + 1}
                    if self.indicated(self.values(up)) < self.indicated(self.values(combo)):
                        count += 1
        names = self.clinical + self.progress
        for combo in self.combinations(names):
            facts = self.values(combo)
            finals = [self.final(facts, level) for level in LEVELS]
            count += sum(1 for c in range(len(LEVELS) - 1) if finals[c + 1] < finals[c])
            for name in names:
                if combo[name] + 1 == len(self.cells[name]):
                    continue
                raised = self.values({**combo, name: combo[name] + 1})
                if name in self.clinical and self.indicated(raised) < self.indicated(facts):
                    continue  # counted once, for admissions
                count += sum(1 for c, level in enumerate(LEVELS) if self.final(raised, level) < finals[c])
        return count


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rulebase=rulebases())
def test_symbolic_checks_agree_with_brute_force(rulebase: RuleBase) -> None:
    """Levels, monotonicity, emergencies and criteria that never decide: the same answers as walking every combination."""
    _agrees_with_brute_force(rulebase)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rulebase=rulebases())
def test_symbolic_checks_agree_with_brute_force_on_a_few_rule_bases(rulebase: RuleBase) -> None:
    """The same comparison on 4 generated rule bases (40 in the slow run)."""
    _agrees_with_brute_force(rulebase)


def _agrees_with_brute_force(rulebase: RuleBase) -> None:
    brute = BruteForce(rulebase)
    verifier = _Verifier(rulebase)
    report = verifier.report("generated", [])
    assert not report.unverified
    for combo in brute.combinations(brute.clinical):
        facts = brute.values(combo)
        assert verifier.level_of(facts) is brute.indicated(facts)
    for combo in brute.combinations(brute.clinical + brute.progress):
        facts = brute.values(combo)
        for level in LEVELS:
            assert verifier.level_of({**facts, CURRENT_LEVEL: level.value}) is brute.final(facts, level)
    monotone = [f for f in report.findings if f.check == "not-monotone"]
    assert sum(f.count for f in monotone) == brute.drops()
    clinical = brute.combinations(brute.clinical)
    for emergency in rulebase.emergencies:
        wrong = sum(
            1
            for combo in clinical
            if cond.holds(emergency.when, brute.values(combo))
            and brute.indicated(brute.values(combo)) != LEVELS.highest
        )
        found = [f.count for f in report.findings if f.check == "emergency-level" and f.rule_id == emergency.id]
        assert found == ([wrong] if wrong else [])
    never_decides = set()
    for rule in rulebase.criteria:
        holding = [brute.values(c) for c in clinical if cond.holds(rule.when, brute.values(c))]
        if holding and rule.level != LEVELS.highest and all(brute.indicated(f) > rule.level for f in holding):
            never_decides.add(rule.id)
    assert {f.rule_id for f in report.findings if f.check == "never-decides"} == never_decides
    never_fires = {r.id for r in rulebase.criteria if not any(cond.holds(r.when, brute.values(c)) for c in clinical)}
    assert {
        f.rule_id for f in report.findings if f.check == "never-fires" and f.rule_id.startswith("R-")
    } == never_fires
    assert not [f for f in report.findings if f.check == "gap"]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rulebase=rulebases())
def test_the_pure_python_diagrams_give_the_same_report(rulebase: RuleBase) -> None:
    """dd's pure-Python diagrams, the fallback when CUDD is missing, give byte-identical reports."""
    default = _Verifier(rulebase).report("generated", []).to_dict()
    assert _Verifier(rulebase, backend=autoref).report("generated", []).to_dict() == default


def test_the_brute_force_finds_what_it_should() -> None:
    """The yardstick itself: on a rule written with is where at_least was meant, it counts drops."""
    vocabulary = Vocabulary(
        (
            _fact("c0", "clinical", ("v0", "v1", "v2")),
            Fact(name=CURRENT_LEVEL, group="progress", kind="level", meaning="m", sources=SOURCES, values=LEVELS.ids),
        )
    )
    rule = Rule("R-0", LEVELS[1], "s", SOURCES, cond.ValueAtom("c0", frozenset({"v1"})), "r.toml")
    rulebase = attrs.evolve(
        SHIPPED,
        vocabulary=vocabulary,
        rules=(SHIPPED.fallback, rule),
        emergencies=(),
        escalations=(),
        readiness=(),
        bridges=(),
        services=(),
        considerations=(),
    )
    # Admission: v1 -> v2 drops (1). In treatment the indicated drop is left to admissions: none more.
    assert BruteForce(rulebase).drops() == 1
    report = _Verifier(rulebase).report("built", [])
    assert [(f.check, f.rule_id, f.count) for f in report.findings] == [("not-monotone", "R-0", 1)]


@pytest.mark.parametrize("budget", [None, 600.0])
def test_the_shipped_rule_base_agrees_with_or_without_a_budget(budget: float | None) -> None:
    """No budget and a generous one give the same, empty, report."""
    report = _Verifier(SHIPPED, budget).report("shipped", [])
    assert report.findings == ()
