"""The one walk of the condition tree: ``fold`` and the readings built on it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import EXAMPLES_DIR as EXAMPLES
from levelcare import Engine
from levelcare._model import Transition
from levelcare._render._wording import PLAIN, condition_text
from levelcare._rulebase import _conditions as cond

ENGINE = Engine.default()
VOCABULARY = ENGINE.vocabulary
LEVELS = ENGINE.levels.ids
FACTS = VOCABULARY.facts
CONTEXT_FIELDS = {"level": LEVELS, "transition": tuple(t.value for t in Transition), "emergency": (False, True)}


# --- an independent reading of conditions, the oracle of the properties below ---------


def direct(condition: cond.Condition, facts: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """Truth of ``condition`` by plain recursion, the way it is defined."""
    if isinstance(condition, cond.All):
        return all(direct(c, facts, context) for c in condition.items)
    if isinstance(condition, cond.Any_):
        return any(direct(c, facts, context) for c in condition.items)
    if isinstance(condition, cond.ContextAtom):
        return condition.name in context and context[condition.name] in condition.allowed
    value = facts.get(condition.fact)
    if value is None:
        return False
    if isinstance(condition, cond.ValueAtom):
        return value in condition.allowed
    if isinstance(condition, cond.RangeAtom):
        return any(lo <= value <= hi for lo, hi in condition.intervals)
    minimum = context.get(f"{condition.which}_minimum")
    if minimum is None:
        return False
    return value < minimum if condition.below else value >= minimum


def direct_relied_on(condition: cond.Condition, facts: Mapping[str, Any], context: Mapping[str, Any]) -> set[str]:
    """The facts of the holding parts, by plain recursion: every part of an all, holding parts of an any."""
    if isinstance(condition, cond.All):
        return set().union(*(direct_relied_on(c, facts, context) for c in condition.items))
    if isinstance(condition, cond.Any_):
        return set().union(*(direct_relied_on(c, facts, context) for c in condition.items if direct(c, facts, context)))
    return set() if isinstance(condition, cond.ContextAtom) else {condition.fact}


def nodes(condition: cond.Condition) -> int:
    if isinstance(condition, (cond.All, cond.Any_)):
        return 1 + sum(nodes(c) for c in condition.items)
    return 1


# --- random conditions and facts from the shipped vocabulary ---------------------------


@st.composite
def atoms(draw: st.DrawFn) -> cond.Condition:
    fact = draw(st.sampled_from(FACTS))
    if fact.kind != "integer":
        allowed = draw(st.sets(st.sampled_from(fact.values)))
        return cond.ValueAtom(fact.name, frozenset(allowed))
    low, high = fact.minimum or 0, fact.maximum or 0
    if draw(st.integers(0, 4)) == 0:
        return cond.ProgramAtom(fact.name, draw(st.sampled_from(cond.PROGRAM_MINIMUMS)), draw(st.booleans()))
    ends = draw(st.lists(st.integers(low, high), max_size=6))
    pairs = [tuple(sorted(ends[i : i + 2])) for i in range(0, len(ends) - 1, 2)]
    return cond.RangeAtom(fact.name, cond.normalise(pairs))


@st.composite
def context_atoms(draw: st.DrawFn) -> cond.Condition:
    name = draw(st.sampled_from(sorted(CONTEXT_FIELDS)))
    return cond.ContextAtom(name, frozenset(draw(st.sets(st.sampled_from(CONTEXT_FIELDS[name])))))


CONDITIONS = st.recursive(
    st.one_of(atoms(), context_atoms()),
    lambda parts: st.one_of(
        st.lists(parts, max_size=4).map(lambda items: cond.All(tuple(items))),
        st.lists(parts, max_size=4).map(lambda items: cond.Any_(tuple(items))),
    ),
    max_leaves=12,
)


@st.composite
def situations(draw: st.DrawFn, *, complete: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    facts: dict[str, Any] = {}
    for fact in FACTS:
        if not complete and draw(st.booleans()):
            continue
        if fact.kind == "integer":
            facts[fact.name] = draw(st.integers(fact.minimum or 0, fact.maximum or 0))
        else:
            facts[fact.name] = draw(st.sampled_from(fact.values))
    context: dict[str, Any] = {}
    for name, domain in CONTEXT_FIELDS.items():
        if complete or draw(st.booleans()):
            context[name] = draw(st.sampled_from(domain))
    for which in cond.PROGRAM_MINIMUMS:
        if complete or draw(st.booleans()):
            context[f"{which}_minimum"] = draw(st.integers(0, 60))
    return facts, context


# --- the fold itself -------------------------------------------------------------------


class Counting:
    """Counts the nodes fold visits, drawing every part."""

    def __init__(self) -> None:
        self.visits: list[cond.Condition | str] = []

    def value(self, atom: cond.ValueAtom) -> int:
        self.visits.append(atom)
        return 1

    def range(self, atom: cond.RangeAtom) -> int:
        self.visits.append(atom)
        return 1

    def program(self, atom: cond.ProgramAtom) -> int:
        self.visits.append(atom)
        return 1

    def context(self, atom: cond.ContextAtom) -> int:
        self.visits.append(atom)
        return 1

    def all(self, items: Iterator[int]) -> int:
        self.visits.append("all")
        return 1 + sum(items)

    def any(self, items: Iterator[int]) -> int:
        self.visits.append("any")
        return 1 + sum(items)


@given(CONDITIONS, situations())
def test_fold_with_the_evaluation_algebra_is_direct_evaluation(condition: cond.Condition, situation: Any) -> None:
    """holds() (fold with Evaluation) agrees with plain recursion, unknown facts and context included."""
    facts, context = situation
    assert cond.holds(condition, facts, context) is direct(condition, facts, context)
    assert cond.fold(condition, cond.Evaluation(facts, context)) is direct(condition, facts, context)


@given(CONDITIONS)
def test_a_counting_algebra_visits_each_node_once(condition: cond.Condition) -> None:
    """An algebra that draws every part is called exactly once per node of the tree."""
    counting = Counting()
    assert cond.fold(condition, counting) == nodes(condition)
    assert len(counting.visits) == nodes(condition)
    atoms_visited = [v for v in counting.visits if not isinstance(v, str)]
    assert atoms_visited == list(cond.atoms(condition))


def test_parts_are_folded_only_when_the_combinator_draws_them() -> None:
    """An all that stops at a false part leaves the parts after it unvisited."""
    never = cond.ValueAtom("harm_risk", frozenset())
    later = cond.ValueAtom("caregiver", frozenset({True}))
    seen: list[cond.Condition] = []

    class Stopping(cond.Evaluation):
        def value(self, atom: cond.Atom) -> bool:
            seen.append(atom)
            return super().value(atom)

    assert cond.fold(cond.All((never, later)), Stopping({"harm_risk": "high", "caregiver": True}, {})) is False
    assert seen == [never]


def test_a_memo_folds_equal_subtrees_once() -> None:
    """With a memo, a subtree equal to one already folded is not walked again."""
    shared = cond.Any_((cond.ValueAtom("harm_risk", frozenset({"high"})), cond.ValueAtom("caregiver", frozenset())))
    copy = cond.Any_((cond.ValueAtom("harm_risk", frozenset({"high"})), cond.ValueAtom("caregiver", frozenset())))
    counting = Counting()
    memo: dict[cond.Condition, int] = {}
    assert cond.fold(cond.All((shared, copy)), counting, memo=memo) == 1 + 3 + 3
    assert counting.visits == ["all", "any", shared.items[0], shared.items[1]]
    assert memo[copy] == 3


def test_rebuild_keeps_a_condition_as_it_is() -> None:
    condition = cond.All(
        (cond.ValueAtom("harm_risk", frozenset({"high"})), cond.Any_((cond.ProgramAtom("x", "hours"),)))
    )
    assert cond.fold(condition, cond.Rebuild()) == condition


# --- the readings built on it ----------------------------------------------------------


@given(CONDITIONS, situations(complete=True))
def test_negation_holds_exactly_where_the_condition_does_not(condition: cond.Condition, situation: Any) -> None:
    """With every fact and context value known, not c holds where c does not, and not not c is c."""
    facts, context = situation
    negated = cond.negate(condition, VOCABULARY, LEVELS)
    assert direct(negated, facts, context) is not direct(condition, facts, context)
    assert cond.negate(negated, VOCABULARY, LEVELS) == condition


@given(CONDITIONS, situations())
def test_relied_on_cites_the_facts_of_the_holding_parts(condition: cond.Condition, situation: Any) -> None:
    facts, context = situation
    assert cond.relied_on(condition, facts, context) == direct_relied_on(condition, facts, context)


@given(CONDITIONS)
def test_facts_read_are_the_facts_of_the_atoms(condition: cond.Condition) -> None:
    expected = {a.fact for a in cond.atoms(condition) if not isinstance(a, cond.ContextAtom)}
    assert cond.facts_read(condition) == expected


@pytest.mark.parametrize("test", [{"level": "iop"}, {"level": ["iop", "php"]}, {"emergency": True}])
def test_a_context_test_under_not_accepts_every_other_value(test: dict[str, Any]) -> None:
    """``not`` of a level test names the other levels of the rule base instead of failing on it."""
    (name,) = test
    condition = cond.parse({"not": test}, VOCABULARY, context=True, facts=[f.name for f in FACTS], levels=LEVELS)
    shown = test[name] if isinstance(test[name], list) else [test[name]]
    assert condition == cond.ContextAtom(name, frozenset(v for v in CONTEXT_FIELDS[name] if v not in shown))


# --- words ------------------------------------------------------------------------------


def _markdown_to_plain(text: str, names: set[str]) -> str:
    """The plain marking of a Markdown condition: names bare, other values as in JSON."""

    def unmark(match: re.Match[str]) -> str:
        word = match.group(1)
        return word if word in names or word in ("true", "false") else json.dumps(word)

    return re.sub(r"`([^`]*)`", unmark, text)


@pytest.mark.parametrize("folder", [None, EXAMPLES / "rulebases" / "continuum"], ids=["shipped", "continuum"])
def test_messages_and_the_reference_word_every_condition_alike(folder: Path | None) -> None:
    """The verifier's plain words for a condition are the reference's, only marked differently."""
    rulebase = (ENGINE if folder is None else Engine.from_path(folder))._rb
    names = {f.name for f in rulebase.vocabulary.facts}
    conditions = [r.when for r in rulebase.rules] + [s.when for s in rulebase.services]
    conditions += [c.when for c in rulebase.considerations]
    for condition in conditions:
        markdown = condition_text(condition, rulebase.vocabulary, rulebase.levels.ids)
        plain = condition_text(condition, rulebase.vocabulary, rulebase.levels.ids, style=PLAIN)
        assert plain == _markdown_to_plain(markdown, names)
        assert "`" not in plain


def test_a_part_of_several_parts_is_put_in_parentheses_inside_a_sentence() -> None:
    high = cond.ValueAtom("harm_risk", frozenset({"high"}))
    carer = cond.ValueAtom("caregiver", frozenset({True}))
    alone = cond.ValueAtom("caregiver", frozenset({False}))
    condition = cond.All((high, cond.Any_((carer, alone)), cond.Any_((high,))))
    said = 'harm_risk is "high" and (caregiver is true or caregiver is false) and harm_risk is "high"'
    assert condition_text(condition, VOCABULARY, style=PLAIN) == said
    assert condition_text(condition, VOCABULARY, style=PLAIN, nested=True) == f"({said})"
    assert condition_text(cond.Any_((high,)), VOCABULARY, style=PLAIN, nested=True) == 'harm_risk is "high"'
