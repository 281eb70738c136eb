"""Hypothesis strategies and invariant checks for levelcare rule bases.

Everything here is derived from a rule base's own vocabulary, so it follows an
organisation's rule base as closely as the shipped one. Needs Hypothesis
(``pip install "levelcare[testing]"``).

The ``check_*`` functions take one assessment and raise :class:`AssertionError`
when an invariant fails, with the assessment and the decisions involved in the
message; inside a ``@given`` test, Hypothesis shrinks the assessment first, so
the message shows the smallest counterexample it found::

    from hypothesis import given
    from levelcare import Engine
    from levelcare.testing import assessments, check_monotone

    engine = Engine.from_path("our-rules/")

    @given(assessments(engine))
    def test_monotone(facts):
        check_monotone(facts, engine)

:func:`check_invariants` runs every check at once, for a test suite that wants
one line per rule base.

.. versionadded:: 1.0
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import attrs

try:
    from hypothesis import HealthCheck, Phase, example, given, settings
    from hypothesis import strategies as st
except ModuleNotFoundError as missing:  # pragma: no cover - the test environment has Hypothesis
    if missing.name != "hypothesis":
        raise
    msg = 'levelcare.testing needs Hypothesis; install it with: pip install "levelcare[testing]"'
    raise ModuleNotFoundError(msg, name="hypothesis") from None

from ._engine import Engine
from ._model import COMPLETE, DATA_REQUIRED, Decision, Level
from ._rulebase import _conditions as cond
from ._rulebase._assessment import Assessment
from ._rulebase._vocabulary import CURRENT_LEVEL, Fact, FactValue, Vocabulary, shorten
from ._semantics import Placement as _Mechanism
from ._semantics._mdd import integer_cuts
from .exceptions import AssessmentProblem, InvalidAssessment

__all__ = [
    "assessments",
    "check_callable",
    "check_candidacy_neutral",
    "check_deterministic",
    "check_emergency",
    "check_invariants",
    "check_monotone",
    "check_rejected",
    "check_total",
    "check_unknowns",
    "fact_values",
    "invalid_assessments",
]

_ABSENT = object()
# Groups whose values are listed in need order and may move the level.
_NEED_GROUPS = ("clinical", "progress")


def _engine(engine: Engine | None) -> Engine:
    return Engine.default() if engine is None else engine


# --- valid assessments --------------------------------------------------------------


def fact_values(fact: Fact) -> st.SearchStrategy[FactValue]:
    """Every allowed value of one fact.

    Args:
        fact: A fact of an engine's vocabulary (``engine.vocabulary.facts``).

    Returns:
        A strategy of the fact's values; for an integer, any whole number in its range.

    .. versionadded:: 1.0
    """
    if fact.kind == "integer":
        return st.integers(min_value=fact.minimum or 0, max_value=fact.maximum or 0)
    return st.sampled_from(fact.values)


def _thresholds(engine: Engine, fact: Fact) -> list[int]:
    """The integers on either side of every threshold the rule base tests ``fact`` against."""
    low, high = fact.minimum or 0, fact.maximum or 0
    found = {low, high}
    rb = engine.loaded_rulebase
    conditions = [*_Mechanism(rb).deciding_conditions(), *(s.when for s in rb.services)]
    conditions += [c.when for c in rb.considerations]
    # Each cut starts an interval on which every condition is constant: the
    # values either side of it are where a mistaken bound shows.
    for cut in integer_cuts(fact.name, low, high, conditions):
        found.update((cut - 1, cut))
    for atom in (a for c in conditions for a in cond.atoms(c)):
        if isinstance(atom, cond.ProgramAtom) and atom.fact == fact.name:
            for program in rb.programs.values():
                minimum = program.hours_per_week[0] if atom.which == "hours" else program.days_per_week[0]
                found.update((minimum - 1, minimum))
    return sorted(v for v in found if low <= v <= high)


def _values(engine: Engine, fact: Fact) -> st.SearchStrategy[FactValue]:
    if fact.kind != "integer":
        return fact_values(fact)
    # Values at the rules' thresholds are where mistakes hide; plain integers
    # alone would hit them rarely.
    return st.one_of(st.sampled_from(_thresholds(engine, fact)), fact_values(fact))


def assessments(
    engine: Engine | None = None,
    *,
    complete: bool = False,
    in_treatment: bool | None = None,
    **fixed: Any,
) -> st.SearchStrategy[dict[str, FactValue | None]]:
    """Valid assessments (as dicts) for ``engine``'s vocabulary.

    Integers are drawn both anywhere in their range and at the thresholds the
    rule base tests them against.

    Args:
        engine: Whose vocabulary to draw from; the shipped rule base by default.
        complete: Every fact known. Otherwise any fact may be absent or ``None``.
        in_treatment: ``True``: ``current_level`` is always known; ``False``: never
            (a new admission); ``None``: either.
        **fixed: Facts pinned to a value, or to a strategy of values.

    Returns:
        A strategy of dicts from fact names to values.

    Raises:
        InvalidAssessment: a pinned fact is unknown or its value is not allowed.

    .. versionadded:: 1.0
    """
    eng = _engine(engine)
    vocabulary = eng.vocabulary
    problems = []
    for name, value in fixed.items():
        if name not in vocabulary:
            problems.append(AssessmentProblem(name, "unknown fact; cannot pin it"))
        elif not isinstance(value, st.SearchStrategy) and value is not None:
            message = vocabulary[name].check(value)
            if message:
                problems.append(AssessmentProblem(name, message))
    if problems:
        raise InvalidAssessment(problems)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for fact in vocabulary.facts:
        if fact.name in fixed:
            value = fixed[fact.name]
            parts[fact.name] = value if isinstance(value, st.SearchStrategy) else st.just(value)
        elif fact.name == CURRENT_LEVEL and in_treatment is not None:
            parts[fact.name] = _values(eng, fact) if in_treatment else st.just(_ABSENT)
        elif complete:
            parts[fact.name] = _values(eng, fact)
        else:
            parts[fact.name] = st.one_of(st.just(_ABSENT), st.none(), _values(eng, fact))
    return st.fixed_dictionaries(parts).map(_drop_absent)


def _drop_absent(drawn: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in drawn.items() if value is not _ABSENT}


# --- invalid input ---------------------------------------------------------------------


def invalid_assessments(engine: Engine | None = None) -> st.SearchStrategy[object]:
    """Inputs that ``engine.decide`` must reject with :class:`~levelcare.InvalidAssessment`.

    Each is either not a mapping at all, or a valid assessment with one to three
    mistakes added: a misspelt fact name, a value of the wrong type (``"true"``
    for a boolean, ``3.5`` or ``True`` for an integer, a number for an ordinal),
    an integer out of range, a misspelt value, or a key that is not a string.
    Every mistake is derived from the vocabulary, so each drawn input is invalid
    by construction.

    Args:
        engine: Whose vocabulary to break; the shipped rule base by default.

    Returns:
        A strategy of invalid inputs (mostly dicts).

    .. versionadded:: 1.0
    """
    eng = _engine(engine)
    vocabulary = eng.vocabulary
    mistakes = st.lists(_mistakes(vocabulary), min_size=1, max_size=3)
    broken = st.builds(_apply, assessments(eng), mistakes)
    # one_of would flatten the many kinds of non-mapping into as many branches as
    # the mistakes; a quarter of the draws is enough.
    return st.integers(min_value=0, max_value=3).flatmap(lambda i: _not_mappings(vocabulary) if i == 0 else broken)


def _not_mappings(vocabulary: Vocabulary) -> st.SearchStrategy[object]:
    names = [f.name for f in vocabulary.facts]
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.binary(max_size=10),
        st.lists(st.sampled_from(names), max_size=3),
        # Pairs that would make a valid mapping are still not one.
        st.lists(st.tuples(st.sampled_from(names), st.none()), min_size=1, max_size=3),
    )


def _apply(base: Mapping[Any, Any], mistakes: list[tuple[Any, Any]]) -> dict[Any, Any]:
    broken: dict[Any, Any] = dict(base)
    for key, value in mistakes:
        broken[key] = value
    return broken


def _mistakes(vocabulary: Vocabulary) -> st.SearchStrategy[tuple[Any, Any]]:
    """One wrong entry: the kind of mistake is chosen first, so that each is common."""
    facts = vocabulary.facts
    kinds = [
        # A misspelt fact name, with a value that would suit the fact.
        st.sampled_from(facts).flatmap(lambda f: st.tuples(_misspelt(f.name, vocabulary.by_name), fact_values(f))),
        # A value of the wrong type, for any fact.
        st.sampled_from(facts).flatmap(lambda f: st.tuples(st.just(f.name), _wrong_value(f))),
        # A key that is not a string.
        st.tuples(st.one_of(st.integers(), st.none(), st.booleans()), st.none()),
    ]
    by_kind = {kind: [f for f in facts if f.kind == kind] for kind in ("boolean", "integer")}
    for chosen in by_kind.values():
        if chosen:
            kinds.append(st.sampled_from(chosen).flatmap(lambda f: st.tuples(st.just(f.name), _wrong_value(f))))
    integers = by_kind["integer"]
    if integers:
        kinds.append(st.sampled_from(integers).flatmap(lambda f: st.tuples(st.just(f.name), _out_of_range(f))))
    named = [f for f in facts if f.kind in ("ordinal", "level")]
    if named:
        kinds.append(st.sampled_from(named).flatmap(lambda f: st.tuples(st.just(f.name), _misspelt_value(f))))
    return st.one_of(kinds)


def _out_of_range(fact: Fact) -> st.SearchStrategy[int]:
    low, high = fact.minimum or 0, fact.maximum or 0
    return st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1))


def _misspelt_value(fact: Fact) -> st.SearchStrategy[str]:
    return st.sampled_from(fact.values).flatmap(lambda value: _misspelt(str(value), fact.values))


def _misspelt(word: str, taken: Mapping[str, Any] | tuple[Any, ...]) -> st.SearchStrategy[str]:
    """``word`` with one slip of the keyboard, never an allowed word."""

    def slip(index: int, letter: str, kind: int) -> str:
        i = index % (len(word) + 1)
        if kind == 0 and word:
            return word[: min(i, len(word) - 1)] + word[min(i, len(word) - 1) + 1 :]  # a letter left out
        if kind == 1 and len(word) > 1:
            j = min(i, len(word) - 2)
            return word[:j] + word[j + 1] + word[j] + word[j + 2 :]  # two letters swapped
        if kind == 2:
            return word[:i] + letter + word[i:]  # a letter too many
        return word.upper() if kind == 3 else word + letter

    candidates = st.builds(
        slip, st.integers(min_value=0, max_value=40), st.sampled_from("abcdefghijklmnopqrstuvwxyz_ "), st.integers(0, 4)
    )
    return candidates.filter(lambda text: text not in taken)


def _wrong_value(fact: Fact) -> st.SearchStrategy[Any]:
    """A value of the wrong type for ``fact``."""
    if fact.kind == "boolean":
        return st.one_of(st.sampled_from(["true", "false", "yes", "no", 1, 0]), st.floats(), st.text(max_size=5))
    if fact.kind == "integer":
        low, high = fact.minimum or 0, fact.maximum or 0
        return st.one_of(
            st.floats(allow_nan=False),  # 3.5, and 3.0 too: an integer is not a float
            st.booleans(),
            st.integers(min_value=low, max_value=high).map(str),
            st.lists(st.integers(), max_size=2),
        )
    return st.one_of(
        st.integers(),
        st.booleans(),
        st.floats(allow_nan=False),
        st.lists(st.sampled_from(fact.values), max_size=2),
    )


# --- reporting ------------------------------------------------------------------------


def _summary(decision: Decision) -> str:
    return json.dumps(
        {
            "level": None if decision.level is None else decision.level.value,
            "transition": None if decision.transition is None else decision.transition.value,
            "status": decision.status,
            "level_range": [decision.level_range[0].value, decision.level_range[1].value],
            "missing": list(decision.missing),
            "emergency": decision.emergency,
            "reasons": [r.rule_id for r in decision.reasons],
        }
    )


def _facts_text(facts: Mapping[str, Any]) -> str:
    return json.dumps(dict(facts), default=repr)


def _fail(invariant: str, what: str, facts: Mapping[str, Any], decision: Decision, **others: Any) -> AssertionError:
    lines = [f"invariant {invariant!r} failed: {what}", f"assessment: {_facts_text(facts)}"]
    for label, (other_facts, _) in others.items():
        lines.append(f"{label.replace('_', ' ')}: {_facts_text(other_facts)}")
    lines.append(f"decision for the assessment: {_summary(decision)}")
    for label, (_, other) in others.items():
        lines.append(f"decision for {label.replace('_', ' ')}: {_summary(other)}")
    return AssertionError("\n".join(lines))


def _range_text(decision: Decision) -> str:
    if decision.level is not None:
        return decision.level.value
    low, high = decision.level_range
    return f"the range {low.value} to {high.value} (data required)"


# --- invariants -------------------------------------------------------------------------


def check_monotone(assessment: Mapping[str, Any], engine: Engine | None = None) -> None:
    """Raising one need-ordered fact one step, others fixed, never lowers the level.

    Each clinical and progress fact and ``current_level`` is walked up its values
    in need order, one step at a time, with every other fact as in
    ``assessment``; an integer with ``need = "decreasing"`` (such as weeks at the
    current level) is walked from large to small. With unknown facts, neither
    end of ``level_range`` may drop.

    Args:
        assessment: A valid assessment.
        engine: The engine to check; the shipped rule base by default.

    Raises:
        AssertionError: a step lowered the level; the message shows both
            assessments and both decisions.
        InvalidAssessment: ``assessment`` is not valid.

    .. versionadded:: 1.0
    """
    _monotone(_Subject(_engine(engine)), dict(assessment))


def _level_part(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a placement says about the level: everything but considerations and services.

    The digest of the input facts records which facts were given, candidacy facts
    too, so it is left out as well.
    """
    return {k: v for k, v in record.items() if k not in ("considerations", "services", "input_sha256")}


def check_candidacy_neutral(assessment: Mapping[str, Any], engine: Engine | None = None) -> None:
    """Changing candidacy facts changes nothing but considerations and services.

    Each candidacy fact is set to each of its other values (an integer to the
    values around every threshold the rule base tests it against), and all of
    them are also dropped at once.

    Args:
        assessment: A valid assessment.
        engine: The engine to check; the shipped rule base by default.

    Raises:
        AssertionError: a candidacy fact changed the level, transition, status,
            reasons or anything else; the message shows both assessments and
            both decisions.
        InvalidAssessment: ``assessment`` is not valid.

    .. versionadded:: 1.0
    """
    _candidacy_neutral(_Subject(_engine(engine)), dict(assessment))


def check_deterministic(assessment: Mapping[str, Any], engine: Engine | None = None) -> None:
    """The same assessment always gives byte-identical ``json.dumps(to_dict(), sort_keys=True)``.

    The assessment is decided twice as a dict, once with its keys in reverse
    order and once as a validated :class:`~levelcare.Assessment`.

    Args:
        assessment: A valid assessment.
        engine: The engine to check; the shipped rule base by default.

    Raises:
        AssertionError: two decisions differ; the message shows both.
        InvalidAssessment: ``assessment`` is not valid.

    .. versionadded:: 1.0
    """
    _deterministic(_Subject(_engine(engine)), dict(assessment))


def check_total(assessment: Mapping[str, Any], engine: Engine | None = None) -> None:
    """Every valid assessment gets a decision, or a data-required answer.

    Complete: ``level`` and ``transition`` set and ``missing`` empty.
    Data required: ``level`` and ``transition`` are ``None`` and ``missing``
    lists unknown facts of the vocabulary (at least one).

    Args:
        assessment: A valid assessment.
        engine: The engine to check; the shipped rule base by default.

    Raises:
        AssertionError: the decision is neither, or deciding raised anything;
            the message shows the assessment and the decision.

    .. versionadded:: 1.0
    """
    eng = _engine(engine)
    facts = dict(assessment)
    try:
        decision = eng.decide(facts)
    except Exception as error:
        msg = f"invariant 'total' failed: deciding raised {type(error).__name__}: {error}\nassessment: {_facts_text(facts)}"
        raise AssertionError(msg) from error
    problems: list[str] = []
    if decision.status == COMPLETE:
        if decision.level is None or decision.transition is None:
            problems.append("a complete decision without a level or transition")
        if decision.missing:
            problems.append("a complete decision that lists missing facts")
    elif decision.status == DATA_REQUIRED:
        if decision.level is not None or decision.transition is not None:
            problems.append("a data-required answer with a level or transition")
        if not decision.missing:
            problems.append("a data-required answer with no missing facts")
        known = {n for n, v in facts.items() if v is not None}
        wrong = [n for n in decision.missing if n not in eng.vocabulary or n in known]
        if wrong:
            problems.append(f"missing lists facts that are known or not in the vocabulary: {', '.join(wrong)}")
    else:
        problems.append(f"unknown status {decision.status!r}")
    if problems:
        raise _fail("total", "; ".join(problems), facts, decision)


def check_emergency(assessment: Mapping[str, Any], engine: Engine | None = None) -> None:
    """An emergency always comes with the highest level, decided.

    Args:
        assessment: A valid assessment.
        engine: The engine to check; the shipped rule base by default.

    Raises:
        AssertionError: ``emergency`` is true and the level is not the highest;
            the message shows the assessment and the decision.
        InvalidAssessment: ``assessment`` is not valid.

    .. versionadded:: 1.0
    """
    eng = _engine(engine)
    facts = dict(assessment)
    decision = eng.decide(facts)
    top = eng.levels.highest
    if decision.emergency and decision.level != top:
        what = f"an emergency, but the level is {_range_text(decision)} rather than {top.value}"
        raise _fail("emergency implies the highest level", what, facts, decision)


def _filled(engine: Engine, facts: Mapping[str, Any], highest: bool) -> dict[str, Any]:
    """``facts`` with every unknown fact that can move the level at its lowest (or highest) need."""
    filled = dict(facts)
    in_treatment = facts.get(CURRENT_LEVEL) is not None
    for fact in engine.vocabulary.facts:
        if facts.get(fact.name) is not None or fact.group not in _NEED_GROUPS or fact.name == CURRENT_LEVEL:
            continue
        if fact.group == "progress" and not in_treatment:
            continue
        if fact.kind != "integer":
            filled[fact.name] = fact.values[-1 if highest else 0]
        else:
            ends = (fact.minimum or 0, fact.maximum or 0)
            rising = fact.need != "decreasing"
            filled[fact.name] = ends[1] if highest == rising else ends[0]
    return filled


def check_unknowns(assessment: Mapping[str, Any], engine: Engine | None = None) -> None:
    """Unknown facts are bounded, never guessed.

    ``status`` is ``"complete"`` exactly when both ends of ``level_range`` are
    equal, a decided level lies within the range, and filling every unknown fact
    with its lowest-need (or highest-need) value gives a level within the range.

    Args:
        assessment: A valid assessment.
        engine: The engine to check; the shipped rule base by default.

    Raises:
        AssertionError: one of these fails; the message shows the assessment and
            the decisions.
        InvalidAssessment: ``assessment`` is not valid.

    .. versionadded:: 1.0
    """
    eng = _engine(engine)
    facts = dict(assessment)
    decision = eng.decide(facts)
    low, high = decision.level_range
    if decision.complete != (low == high):
        what = f"status {decision.status!r} with level_range {low.value} to {high.value}"
        raise _fail("unknown facts", what, facts, decision)
    if decision.level is not None and not low <= decision.level <= high:
        raise _fail("unknown facts", f"level {decision.level.value} outside its level_range", facts, decision)
    for highest in (False, True):
        filled = _filled(eng, facts, highest)
        other = eng.decide(filled)
        level: Level | None = other.level
        if level is None or not low <= level <= high:
            need = "highest" if highest else "lowest"
            what = (
                f"filling the unknown facts at their {need} need gives {_range_text(other)}, outside the "
                f"level_range {low.value} to {high.value}"
            )
            raise _fail("unknown facts", what, facts, decision, the_filled_assessment=(filled, other))


def check_rejected(data: object, engine: Engine | None = None) -> InvalidAssessment:
    """``engine.decide(data)`` rejects ``data`` with :class:`~levelcare.InvalidAssessment`.

    Args:
        data: An invalid input, such as one drawn from :func:`invalid_assessments`.
        engine: The engine to check; the shipped rule base by default.

    Returns:
        The error, for further checks of its problems.

    Raises:
        AssertionError: ``data`` was accepted, or rejected with another exception
            or without naming any problem.

    .. versionadded:: 1.0
    """
    eng = _engine(engine)
    shown = repr(data) if len(repr(data)) <= 200 else repr(data)[:197] + "..."
    try:
        decision = eng.decide(data)  # type: ignore[arg-type]
    except InvalidAssessment as error:
        if not error.problems:
            msg = f"invariant 'invalid input is rejected' failed: InvalidAssessment names no problem\ninput: {shown}"
            raise AssertionError(msg) from error
        return error
    except Exception as error:
        msg = (
            f"invariant 'invalid input is rejected' failed: raised {type(error).__name__} instead of "
            f"InvalidAssessment: {error}\ninput: {shown}"
        )
        raise AssertionError(msg) from error
    msg = f"invariant 'invalid input is rejected' failed: accepted with {_summary(decision)}\ninput: {shown}"
    raise AssertionError(msg)


# The checks check_invariants runs on every valid assessment, cheapest first.
_INVARIANTS: tuple[Callable[[Mapping[str, Any], Engine | None], None], ...] = (
    check_total,
    check_emergency,
    check_unknowns,
    check_deterministic,
    check_candidacy_neutral,
    check_monotone,
)


def _search_settings(max_examples: object) -> settings:
    """The Hypothesis settings of the kit's own searches, ``max_examples`` checked first."""
    if not isinstance(max_examples, int) or isinstance(max_examples, bool) or max_examples < 1:
        msg = f"max_examples must be a whole number of at least 1, got {max_examples!r}"
        raise ValueError(msg)
    return settings(
        max_examples=max_examples,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        # The explain phase re-runs many variants of a failure only to annotate
        # it; the check's own message already names the facts involved.
        phases=[phase for phase in settings().phases if phase is not Phase.explain],
    )


def check_invariants(engine: Engine | None = None, *, max_examples: int = 100) -> None:
    """Run every invariant check against an engine, for a rule base's test suite.

    First tries every need-ordered fact at each of its values with all other
    facts unknown (progress facts with each current level), then draws
    ``max_examples`` valid assessments (complete and partial, new admissions and
    people in treatment). Each of these goes through :func:`check_total`,
    :func:`check_unknowns`, :func:`check_emergency`, :func:`check_monotone`,
    :func:`check_candidacy_neutral` and :func:`check_deterministic`. Last,
    ``max_examples`` invalid inputs go through :func:`check_rejected`. Call it
    from a plain test function, not from inside a ``@given`` test. Other
    Hypothesis settings (database, verbosity) come from the current profile.

    This is a random search with fixed seeds; :func:`levelcare.verify` checks
    monotonicity and emergencies exhaustively.

    Args:
        engine: The engine to check; the shipped rule base by default.
        max_examples: How many assessments (and invalid inputs) to try; at least 1.

    Raises:
        AssertionError: an invariant failed; the message shows the smallest
            counterexample Hypothesis found and the decisions involved.
        ValueError: ``max_examples`` is not a positive whole number.

    .. versionadded:: 1.0
    """
    options = _search_settings(max_examples)
    eng = _engine(engine)
    valid = st.one_of(assessments(eng), assessments(eng, complete=True))
    # One run per invariant, cheapest first, so that shrinking a failure repeats
    # only the check that failed.
    for check in _INVARIANTS:
        _holds(check, eng, valid, options)()

    @options
    @given(invalid_assessments(eng))
    def invalid_input_is_rejected(data: object) -> None:
        check_rejected(data, eng)

    invalid_input_is_rejected()


def _seeds(engine: Engine) -> list[dict[str, Any]]:
    """Assessments that know one need-ordered fact (progress facts: with each current level).

    Unknown facts are bounded at their lowest need, so stepping every other fact
    from one of these looks at each pair of facts just above the lowest need,
    where no rule for a higher level hides a mistake.
    """
    seeds: list[dict[str, Any]] = [{}]
    levels = list(engine.levels.ids)
    for fact, ladder in _Subject(engine).ladders({CURRENT_LEVEL: levels[-1]}):
        if fact == CURRENT_LEVEL or engine.vocabulary[fact].group == "clinical":
            seeds += [{fact: value} for value in ladder]
        else:
            seeds += [{CURRENT_LEVEL: level, fact: value} for level in levels for value in ladder]
    return seeds


def _holds(
    check: Callable[[Mapping[str, Any], Engine | None], None],
    engine: Engine,
    valid: st.SearchStrategy[dict[str, Any]],
    options: settings,
) -> Callable[[], None]:
    @options
    @given(valid)
    def invariant_holds(facts: dict[str, Any]) -> None:
        check(facts, engine)

    for seed in reversed(_seeds(engine)):
        invariant_holds = example(seed)(invariant_holds)
    return invariant_holds


# --- any placement function --------------------------------------------------------------

#: A placement function: complete facts in, a level id (or a Level) out.
Placement = Callable[[Mapping[str, FactValue]], Any]


@attrs.frozen
class _Placed:
    """Where one assessment was placed, as the checks compare it.

    Attributes:
        low: The rank of the lowest level the placement allows.
        high: The rank of the highest (equal to ``low`` once decided).
        text: The level, or the range, in words.
        record: Everything the placement says, by field: a decision's
            ``to_dict()``, or the level alone.
        decision: The engine's decision, shown in messages; ``None`` for a
            placement function.
    """

    low: int
    high: int
    text: str
    record: Mapping[str, Any]
    decision: Decision | None = None

    @property
    def output(self) -> str:
        """The exact output that must repeat for the same assessment."""
        return json.dumps(self.record, sort_keys=True)


class _Subject:
    """What the checks run on: a vocabulary, its level order and thresholds, and a way to place an assessment.

    Every check has one implementation, on a subject. An engine's subject places
    with :meth:`Engine.decide`, which takes partial assessments too; a placement
    function's subject is given complete assessments only.

    Args:
        source: The engine (its vocabulary, levels and rule thresholds), or a
            vocabulary alone.
        levels: The level ids, least intensive first, when not the engine's.
        placement: The function to place with; ``None``: ``source.decide``.
    """

    def __init__(
        self, source: Engine | Vocabulary, levels: Sequence[str] | None = None, placement: Placement | None = None
    ) -> None:
        if isinstance(source, Engine):
            self.engine: Engine | None = source
            self.vocabulary = source.vocabulary
            order: Sequence[str] | None = source.levels.ids if levels is None else levels
        elif isinstance(source, Vocabulary):
            self.engine = None
            self.vocabulary = source
            level_fact = source.by_name.get(CURRENT_LEVEL)
            declared = None if level_fact is None else [str(v) for v in level_fact.values]
            order = declared if levels is None else levels
        else:
            msg = f"expected an Engine or a Vocabulary (engine.vocabulary), got {type(source).__name__}"
            raise TypeError(msg)
        if order is None or len(order) < 2 or not all(isinstance(i, str) for i in order):
            msg = "give the level order as levels=[...] (least intensive first): the vocabulary has no current_level"
            raise ValueError(msg)
        self.levels = tuple(order)
        self.rank = {level: rank for rank, level in enumerate(self.levels)}
        if placement is None and self.engine is None:
            msg = "a vocabulary alone has no placement to check: give a placement function"
            raise TypeError(msg)
        self.placement = placement
        self.partial = placement is None
        self._thresholds: dict[str, list[int]] = {}

    def place(self, facts: Mapping[str, Any] | Assessment) -> _Placed:
        """Where ``facts`` are placed."""
        if self.placement is not None:
            level = _place(self.placement, self, facts.to_dict() if isinstance(facts, Assessment) else facts)
            rank = self.rank[level]
            return _Placed(rank, rank, level, {"level": level})
        decision = cast(Engine, self.engine).decide(facts)
        low, high = decision.level_range
        return _Placed(low.rank, high.rank, _range_text(decision), decision.to_dict(), decision)

    def fail(
        self,
        invariant: str,
        what: str,
        facts: Mapping[str, Any],
        placed: _Placed,
        label: str,
        other_facts: Mapping[str, Any],
        other: _Placed,
    ) -> AssertionError:
        """The failure of ``invariant``, showing both assessments (and both decisions, for an engine)."""
        if placed.decision is not None and other.decision is not None:
            return _fail(invariant, what, facts, placed.decision, **{label: (other_facts, other.decision)})
        return _callable_fail(invariant, what, facts, other_facts)

    def thresholds(self, fact: Fact) -> list[int]:
        found = self._thresholds.get(fact.name)
        if found is None:
            ends = sorted({fact.minimum or 0, fact.maximum or 0})
            found = self._thresholds[fact.name] = ends if self.engine is None else _thresholds(self.engine, fact)
        return found

    def values(self, fact: Fact) -> st.SearchStrategy[FactValue]:
        if fact.kind != "integer":
            return fact_values(fact)
        return st.one_of(st.sampled_from(self.thresholds(fact)), fact_values(fact))

    def ladders(self, facts: Mapping[str, Any]) -> Iterator[tuple[str, list[Any]]]:
        """Each need-ordered fact with its values from lowest to highest need.

        An integer's ladder holds the values around every threshold a rule tests
        it against, and around the assessment's own value, where single steps of
        one would rarely change anything. Progress facts only count in treatment;
        ``current_level`` is walked on an admission too when the subject takes
        partial assessments (a complete admission has no progress facts).
        """
        in_treatment = facts.get(CURRENT_LEVEL) is not None
        for fact in self.vocabulary.facts:
            if fact.group not in _NEED_GROUPS:
                continue
            if fact.group == "progress" and not in_treatment and not (self.partial and fact.name == CURRENT_LEVEL):
                continue
            if fact.kind != "integer":
                yield fact.name, list(fact.values)
                continue
            if fact.need is None:
                continue
            points = set(self.thresholds(fact))
            value = facts.get(fact.name)
            if value is not None:
                low, high = fact.minimum or 0, fact.maximum or 0
                points |= {v for v in (value - 1, value, value + 1) if low <= v <= high}
            yield fact.name, sorted(points, reverse=fact.need == "decreasing")

    def candidacy_variants(self, facts: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """``facts`` with each candidacy fact at each of its other values; first, for partial assessments, with none."""
        candidacy = [f for f in self.vocabulary.facts if f.group == "candidacy"]
        if self.partial:
            yield {n: v for n, v in facts.items() if n not in {f.name for f in candidacy}}
        for fact in candidacy:
            options = self.thresholds(fact) if fact.kind == "integer" else list(fact.values)
            for value in options:
                if value != facts.get(fact.name) or type(value) is not type(facts.get(fact.name)):
                    yield {**facts, fact.name: value}

    def repeats(self, facts: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any] | Assessment]]:
        """The same assessment given again: as it is, with its keys reversed, and to an engine validated."""
        again: list[tuple[str, Mapping[str, Any] | Assessment]] = [
            ("the same assessment again", dict(facts)),
            ("the assessment with its keys reversed", dict(reversed(list(facts.items())))),
        ]
        if self.placement is None and self.engine is not None:
            again.append(("the assessment as an Assessment", self.engine.assessment(facts)))
        return again

    def complete(self) -> st.SearchStrategy[dict[str, Any]]:
        """Complete assessments: new admissions (no progress facts) and people in treatment."""
        parts = {f.name: self.values(f) for f in self.vocabulary.facts}
        progress = {f.name for f in self.vocabulary.facts if f.group == "progress"}

        def admission_or_not(drawn: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
            admission = {n: v for n, v in drawn.items() if n not in progress}
            # Admissions first: a failure shrinks towards the smaller assessment.
            return st.sampled_from([admission, drawn] if CURRENT_LEVEL in progress else [drawn])

        return st.fixed_dictionaries(parts).flatmap(admission_or_not)


def _place(placement: Placement, subject: _Subject, facts: Mapping[str, Any]) -> str:
    try:
        found = placement(dict(facts))
    except Exception as error:
        msg = f"the placement function raised {type(error).__name__}: {error}\nassessment: {_facts_text(facts)}"
        raise AssertionError(msg) from error
    level = found.id if isinstance(found, Level) else found
    if not isinstance(level, str) or level not in subject.rank:
        msg = (
            f"the placement function returned {shorten(found)}, not one of the levels "
            f"{', '.join(subject.levels)}\nassessment: {_facts_text(facts)}"
        )
        raise AssertionError(msg)
    return level


def _callable_fail(invariant: str, what: str, facts: Mapping[str, Any], other: Mapping[str, Any]) -> AssertionError:
    changed = sorted(n for n in {*facts, *other} if facts.get(n, _ABSENT) != other.get(n, _ABSENT))
    lines = [f"invariant {invariant!r} failed for the placement function: {what}", f"assessment: {_facts_text(facts)}"]
    if changed:
        lines.append(
            "changed: " + ", ".join(f"{n} {json.dumps(facts.get(n))} -> {json.dumps(other.get(n))}" for n in changed)
        )
    return AssertionError("\n".join(lines))


# --- the checks, once --------------------------------------------------------------------


def _monotone(subject: _Subject, facts: Mapping[str, Any]) -> None:
    """Raising one need-ordered fact one step never lowers either end of the level range."""
    for name, ladder in subject.ladders(facts):
        below = {**facts, name: ladder[0]}
        placed = subject.place(below)
        for value in ladder[1:]:
            raised = {**facts, name: value}
            other = subject.place(raised)
            if other.low < placed.low or other.high < placed.high:
                what = (
                    f"raising {name} from {json.dumps(below[name])} to {json.dumps(value)} in need (every other "
                    f"fact the same) lowered the level from {placed.text} to {other.text}"
                )
                raise subject.fail("monotone in need", what, below, placed, "the_raised_assessment", raised, other)
            below, placed = raised, other


def _deterministic(subject: _Subject, facts: Mapping[str, Any]) -> None:
    """The same assessment, given again in any form, gives exactly the same output."""
    placed = subject.place(facts)
    for label, data in subject.repeats(facts):
        other = subject.place(data)
        if other.output != placed.output:
            changed = sorted(k for k in placed.record if placed.record[k] != other.record.get(k))
            what = f"deciding {label} gave different output in {', '.join(changed)}:\n{placed.output}\n{other.output}"
            raise subject.fail("deterministic", what, facts, placed, "the_repeat", dict(facts), other)


def _candidacy_neutral(subject: _Subject, facts: Mapping[str, Any]) -> None:
    """Changing candidacy facts changes nothing but considerations and services."""
    placed = subject.place(facts)
    expected = _level_part(placed.record)
    for variant in subject.candidacy_variants(facts):
        other = subject.place(variant)
        found = _level_part(other.record)
        if found != expected:
            changed = sorted(k for k in expected if expected[k] != found.get(k))
            what = f"changing candidacy facts changed {', '.join(changed)}"
            if other.text != placed.text:
                what += f" (the level from {placed.text} to {other.text})"
            raise subject.fail("candidacy-neutral", what, facts, placed, "the_changed_assessment", variant, other)


def check_callable(
    placement: Placement,
    engine: Engine | Vocabulary | None = None,
    *,
    max_examples: int = 100,
    levels: Sequence[str] | None = None,
) -> None:
    """Check any placement function for the invariants a level of care must keep.

    ``placement`` takes a complete assessment (a dict of every fact: new
    admissions without progress facts, people in treatment with them) and
    returns a level id (or a :class:`~levelcare.Level`). It may be anything: a
    legacy implementation, another rules engine, a model. Three invariants are
    checked, each in its own Hypothesis run so that a failure shrinks to the
    smallest assessment that shows it:

    * **monotone in need**: raising one need-ordered fact one step (every
      other fact the same) never lowers the level;
    * **deterministic**: the same assessment, again or with its keys in
      another order, gives the same level;
    * **candidacy-neutral**: changing a candidacy fact never changes the level.

    Every call must also return one of the levels and not raise.

    Args:
        placement: The function to check.
        engine: An engine, whose vocabulary, level order and rule thresholds
            (integers are tried on both sides of each) are used; or a
            :class:`~levelcare.Vocabulary` alone (``engine.vocabulary``), whose
            ``current_level`` fact gives the level order. The shipped rule
            base by default.
        max_examples: How many assessments each invariant tries; at least 1.
        levels: The level ids, least intensive first, when they are not the
            engine's (or the vocabulary has no ``current_level``).

    Raises:
        AssertionError: an invariant failed; the message names it and shows
            the shrunk assessment and the fact that changed.
        ValueError: ``max_examples`` is not a positive whole number, or the
            level order is unknown.
        TypeError: ``placement`` is not callable, or ``engine`` is neither an
            Engine nor a Vocabulary.

    .. versionadded:: 1.0
    """
    if not callable(placement):
        msg = f"placement must be a function from facts to a level id, got {type(placement).__name__}"
        raise TypeError(msg)
    options = _search_settings(max_examples)
    subject = _Subject(_engine(None) if engine is None else engine, levels, placement)
    strategy = subject.complete()
    # One run per invariant, cheapest first, so that shrinking repeats only the one that failed.
    for invariant in (_deterministic, _candidacy_neutral, _monotone):
        _callable_run(invariant, subject, strategy, options)


def _callable_run(
    invariant: Callable[[_Subject, Mapping[str, Any]], None],
    subject: _Subject,
    strategy: st.SearchStrategy[dict[str, Any]],
    options: settings,
) -> None:
    @options
    @given(strategy)
    def invariant_holds(facts: dict[str, Any]) -> None:
        invariant(subject, facts)

    invariant_holds()
