"""The exact analysis of unknown facts (``_unknowns.Thresholds``), checked against enumeration.

Brute force decides every completion of the unknown facts, value by value (not
cell by cell), so the cells, the cell lookup and the diagram are all checked at once.
"""

from __future__ import annotations

import itertools
import random
import shutil
import tomllib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import RULES_DIR, SHIPPED_LEVELS
from levelcare import Level
from levelcare._engine import Engine
from levelcare._rulebase import _conditions as cond
from levelcare._rulebase._vocabulary import CURRENT_LEVEL, Fact, Vocabulary
from levelcare._semantics._mdd import Answer, ThresholdError, Thresholds, cell_index, fact_cells, integer_cells
from levelcare.testing import assessments

# --- brute force --------------------------------------------------------------------


def level_of(thresholds: Sequence[cond.Condition], facts: Mapping[str, Any]) -> int:
    """max{k : g_k holds}, 0 when none holds."""
    return max((k for k, g in enumerate(thresholds, start=1) if cond.holds(g, facts)), default=0)


def domain(fact: Fact) -> tuple[Any, ...]:
    """Every value of a fact, integers included."""
    return tuple(range(fact.minimum or 0, (fact.maximum or 0) + 1)) if fact.kind == "integer" else fact.values


def enumerate_levels(
    thresholds: Sequence[cond.Condition], known: Mapping[str, Any], unknown: Sequence[Fact]
) -> tuple[dict[tuple[Any, ...], int], set[str]]:
    """The level of every completion of ``unknown``, and the unknown facts on which it depends."""
    domains = [domain(f) for f in unknown]
    levels = {
        choice: level_of(thresholds, {**known, **{f.name: v for f, v in zip(unknown, choice, strict=True)}})
        for choice in itertools.product(*domains)
    }
    depends = set()
    for choice, level in levels.items():
        for position, fact in enumerate(unknown):
            if fact.name in depends:
                continue
            for other in domains[position]:
                if levels[(*choice[:position], other, *choice[position + 1 :])] != level:
                    depends.add(fact.name)
                    break
    return levels, depends


def cells_of(vocabulary: Vocabulary, cells: Mapping[str, tuple[Any, ...]], known: Mapping[str, Any]) -> dict[str, int]:
    return {name: cell_index(vocabulary[name], cells[name], value) for name, value in known.items() if name in cells}


# --- (1) random conditions, monotone or not -------------------------------------------


def _intervals(values: Sequence[int]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for v in sorted(set(values)):
        if merged and v == merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], v)
        else:
            merged.append((v, v))
    return tuple(merged)


@st.composite
def small_facts(draw: st.DrawFn) -> Vocabulary:
    facts = []
    for i in range(draw(st.integers(1, 5), label="facts")):
        kind = draw(st.sampled_from(["ordinal", "boolean", "integer"]))
        if kind == "ordinal":
            values: tuple[Any, ...] = tuple(f"v{j}" for j in range(draw(st.integers(2, 4))))
            facts.append(Fact(f"f{i}", "clinical", kind, "", (), values=values))
        elif kind == "boolean":
            facts.append(Fact(f"f{i}", "clinical", kind, "", (), values=(False, True)))
        else:
            need = draw(st.sampled_from(["increasing", "decreasing"]))
            facts.append(Fact(f"f{i}", "clinical", kind, "", (), minimum=0, maximum=draw(st.integers(1, 4)), need=need))
    return Vocabulary(tuple(facts))


def atoms_of(vocabulary: Vocabulary) -> st.SearchStrategy[cond.Condition]:
    """Any set of accepted values: a middle value alone, gaps, nothing, everything."""
    options: list[st.SearchStrategy[cond.Condition]] = []
    for fact in vocabulary.facts:
        if fact.kind == "integer":
            options.append(
                st.sets(st.sampled_from(domain(fact))).map(
                    lambda s, n=fact.name: cond.RangeAtom(n, _intervals(list(s)))
                )
            )
        else:
            options.append(
                st.sets(st.sampled_from(fact.values)).map(lambda s, n=fact.name: cond.ValueAtom(n, frozenset(s)))
            )
    return st.one_of(options)


def conditions_of(vocabulary: Vocabulary) -> st.SearchStrategy[cond.Condition]:
    return st.recursive(
        atoms_of(vocabulary),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda items: cond.All(tuple(items))),
            st.lists(inner, min_size=1, max_size=3).map(lambda items: cond.Any_(tuple(items))),
            inner.map(lambda c: cond.negate(c, vocabulary)),
        ),
        max_leaves=8,
    )


@given(data=st.data(), vocabulary=small_facts(), levels=st.integers(1, 5))
def test_exact_against_brute_force_on_random_conditions(
    data: st.DataObject, vocabulary: Vocabulary, levels: int
) -> None:
    """Range, missing and completions equal enumeration, for any conditions and any split of the facts."""
    # One condition per level above the lowest; "at least k" is any of the levels k and up.
    # The level is max{k : g_k} also when the thresholds are not nested, so test that too.
    per_level = data.draw(st.lists(conditions_of(vocabulary), min_size=levels - 1, max_size=levels - 1), label="rules")
    nested = data.draw(st.booleans(), label="nested")
    thresholds = [cond.Any_(tuple(per_level[k - 1 :])) if nested else per_level[k - 1] for k in range(1, levels)]
    cells = {f.name: fact_cells(f, per_level) for f in vocabulary.facts}
    facts = vocabulary.facts
    values = {f.name: data.draw(st.sampled_from(domain(f)), label=f.name) for f in facts}
    roles = {
        f.name: data.draw(st.sampled_from(["known", "unknown", "unmentioned"]), label=f"{f.name} is") for f in facts
    }
    unknown = data.draw(st.permutations([n for n, r in roles.items() if r == "unknown"]), label="unknown order")
    unmentioned = [f.name for f in facts if roles[f.name] == "unmentioned"]
    known = {n: v for n, v in values.items() if roles[n] == "known"}

    analysis = Thresholds(thresholds, cells)
    answer = analysis.analyse(cells_of(vocabulary, cells, known), unknown)

    # A fact in neither the known nor the unknown facts counts as unknown, listed after the given ones.
    levels_found, depends = enumerate_levels(thresholds, known, [vocabulary[n] for n in [*unknown, *unmentioned]])
    reached = set(levels_found.values())
    assert (answer.low, answer.high) == (min(reached), max(reached))
    assert answer.missing == tuple(n for n in [*unknown, *unmentioned] if n in depends)
    assert set(answer.missing) <= set(analysis.names)

    for rank in range(levels):
        completion = analysis.completion(cells_of(vocabulary, cells, known), rank)
        if rank not in reached:
            assert completion is None
            continue
        assert completion is not None
        assert set(completion) == {n for n in [*unknown, *unmentioned] if n in analysis.names}
        filled = {**known, **{n: cells[n][c] for n, c in completion.items()}}
        # Facts the conditions never read cannot matter: any value will do.
        filled.update({n: domain(vocabulary[n])[0] for n in [*unknown, *unmentioned] if n not in filled})
        assert level_of(thresholds, filled) == rank


@given(vocabulary=small_facts(), data=st.data())
def test_cells_cover_each_value_with_one_cell_the_conditions_cannot_split(
    vocabulary: Vocabulary, data: st.DataObject
) -> None:
    """Every value maps to a cell whose representative every atom treats alike; cells run in need order."""
    conditions = data.draw(st.lists(atoms_of(vocabulary), max_size=4), label="atoms")
    for fact in vocabulary.facts:
        cells = fact_cells(fact, conditions)
        assert len(set(cells)) == len(cells)
        if fact.kind == "integer":
            assert list(cells) == sorted(cells, reverse=fact.need == "decreasing")
            assert min(cells) == fact.minimum
        for value in domain(fact):
            representative = cells[cell_index(fact, cells, value)]
            for atom in conditions:
                if isinstance(atom, (cond.ValueAtom, cond.RangeAtom)) and atom.fact == fact.name:
                    assert cond.atom_holds(atom, {fact.name: value}, {}) == cond.atom_holds(
                        atom, {fact.name: representative}, {}
                    )


# --- (2) the shipped rule base: the engine's answers against enumeration ----------------

ENGINE = Engine.default()
ANALYSIS = ENGINE._analysis
VOCABULARY = ENGINE.vocabulary
LEVELS = ENGINE.levels


def shipped_thresholds(engine: Engine, current: Level | None) -> Thresholds:
    """The diagram the engine's decisions follow, for a new admission or one current level."""
    return engine._analysis.diagram(current)


SHIPPED = {current: shipped_thresholds(ENGINE, current) for current in (None, *LEVELS)}


def compare_with_enumeration(facts: Mapping[str, Any], unknown: Sequence[str]) -> Answer:
    """The engine's range and missing for ``facts`` without ``unknown`` equal those of every completion decided."""
    current = None if facts.get(CURRENT_LEVEL) is None else LEVELS[facts[CURRENT_LEVEL]]
    known = {k: v for k, v in facts.items() if k not in unknown and v is not None}
    decision = ENGINE.decide(known)
    decided: dict[tuple[Any, ...], int] = {}
    for choice in itertools.product(*[ANALYSIS.cells[n] for n in unknown]):
        complete = ENGINE.decide({**known, **dict(zip(unknown, choice, strict=True))})
        assert complete.level is not None
        decided[choice] = complete.level.rank
    ranks = set(decided.values())
    depends = {
        name
        for i, name in enumerate(unknown)
        for choice, rank in decided.items()
        for other in range(len(ANALYSIS.cells[name]))
        if decided[(*choice[:i], ANALYSIS.cells[name][other], *choice[i + 1 :])] != rank
    }
    assert decision.level_range == (LEVELS[min(ranks)], LEVELS[max(ranks)])
    expected_missing = tuple(n for n in unknown if n in depends) if len(ranks) > 1 else ()
    assert decision.missing == expected_missing
    answer = SHIPPED[current].analyse(
        {n: ANALYSIS.cell_of(n, v) for n, v in known.items() if n in ANALYSIS.cells}, unknown
    )
    assert (answer.low, answer.high) == (min(ranks), max(ranks))
    return answer


@given(data=st.data(), facts=assessments(complete=True))
def test_shipped_rule_base_agrees_with_enumeration(data: st.DataObject, facts: dict[str, Any]) -> None:
    """Admissions and people in treatment, one to four unknown facts."""
    current = None if facts.get(CURRENT_LEVEL) is None else LEVELS[facts[CURRENT_LEVEL]]
    relevant = list(ANALYSIS.relevant(current))
    chosen = data.draw(st.sets(st.sampled_from(relevant), min_size=1, max_size=4), label="unknown")
    compare_with_enumeration(facts, [n for n in relevant if n in chosen])


@pytest.mark.parametrize("current", [None, *LEVELS], ids=lambda c: "admission" if c is None else c.id)
def test_shipped_rule_base_agrees_on_many_random_partial_assessments(current: Level | None) -> None:
    """A seeded sweep: 60 partial assessments per current level, 1 to 4 relevant facts unknown."""
    rng = random.Random(f"unknowns-{current}")
    relevant = list(ANALYSIS.relevant(current))
    spread = set()
    for _ in range(60):
        facts: dict[str, Any] = {n: rng.choice(domain(VOCABULARY[n])) for n in relevant}
        if current is not None:
            facts[CURRENT_LEVEL] = current.id
        chosen = set(rng.sample(relevant, rng.randint(1, 4)))
        answer = compare_with_enumeration(facts, [n for n in relevant if n in chosen])
        spread.add((answer.low, answer.high, len(answer.missing)))
    # The sweep reaches both decided and open cases, so the agreement says something.
    assert any(low == high for low, high, _ in spread)
    assert any(low < high for low, high, _ in spread)


def test_shipped_diagrams_are_small() -> None:
    """The level function of the shipped rules needs a few dozen nodes per current level."""
    sizes = {current: t.size for current, t in SHIPPED.items()}
    assert all(0 < size < 100 for size in sizes.values()), sizes
    assert SHIPPED[None].names == ANALYSIS.clinical


# --- (3) a non-monotone example the monotone analysis gets wrong -----------------------

TOY = Vocabulary(
    (
        Fact("a", "clinical", "ordinal", "", (), values=("low", "mid", "high")),
        Fact("b", "clinical", "boolean", "", (), values=(False, True)),
        Fact("n", "clinical", "integer", "", (), minimum=0, maximum=10, need="increasing"),
    )
)
TOY_NAMES = ("a", "b", "n")
# Level 1 when a is not "mid": a hole in the middle of a's need order.
TOY_LEVEL_1 = cond.parse({"fact": "a", "is_not": "mid"}, TOY, context=False, facts=TOY_NAMES)
# Level 2 when b holds and n is not 5: a hole inside n's range.
TOY_LEVEL_2 = cond.parse(
    {"all": [{"fact": "b", "is": True}, {"fact": "n", "is_not": 5}]}, TOY, context=False, facts=TOY_NAMES
)
TOY_THRESHOLDS = [cond.Any_((TOY_LEVEL_1, TOY_LEVEL_2)), TOY_LEVEL_2]
TOY_CELLS = {f.name: fact_cells(f, [TOY_LEVEL_1, TOY_LEVEL_2]) for f in TOY.facts}


@pytest.mark.parametrize(
    ("known", "low", "high", "missing"),
    [
        # known facts              low high  missing             monotone analysis said
        ({},                        0,  2,  ("a", "b", "n")),  # range 1..2, missing b
        ({"a": "mid"},              0,  2,  ("b", "n")),       # range 0..2, missing b
        ({"n": 0},                  0,  2,  ("a", "b")),       # range 1..2, missing b
        ({"a": "high", "b": True},  1,  2,  ("n",)),           # complete at 2
        ({"b": False, "n": 5},      0,  1,  ("a",)),           # complete at 1
        ({"b": True, "n": 3},       2,  2,  ()),               # complete at 2 (right)
    ],
)  # fmt: skip
def test_non_monotone_example(known: dict[str, Any], low: int, high: int, missing: tuple[str, ...]) -> None:
    """Levels: 1 when ``a`` is not "mid"; 2 when ``b`` holds and ``n`` is not 5.

    The monotone analysis fills the unknown facts with their lowest and highest
    values and looks for facts that flip a threshold from its lowest value. Here
    the level drops in the middle of ``a`` and of ``n``, so neither end sees it:
    with nothing known it fills ``a=low, b=false, n=0`` (level 1) and
    ``a=high, b=true, n=10`` (level 2) and answers range 1..2 with only ``b``
    missing, but ``a=mid, b=false`` gives level 0 and ``n=5`` can drop level 2.
    With ``b=false, n=5`` it answers "complete at 1" from ``a=low`` and
    ``a=high``, yet ``a=mid`` gives 0. The right column of the table is what it
    answered; the expected values come from the definitions, and a brute-force
    check below confirms them.
    """
    unknown = [n for n in TOY_NAMES if n not in known]
    answer = Thresholds(TOY_THRESHOLDS, TOY_CELLS).analyse(cells_of(TOY, TOY_CELLS, known), unknown)
    assert answer == Answer(low, high, missing)
    levels, depends = enumerate_levels(TOY_THRESHOLDS, known, [TOY[n] for n in unknown])
    assert (min(levels.values()), max(levels.values())) == (low, high)
    assert set(missing) == depends


def test_non_monotone_example_completions() -> None:
    """With ``a=mid`` known, a completion for each level, and the cells behind them."""
    analysis = Thresholds(TOY_THRESHOLDS, TOY_CELLS)
    assert TOY_CELLS == {"a": ("low", "mid", "high"), "b": (False, True), "n": (0, 5, 6)}
    known = cells_of(TOY, TOY_CELLS, {"a": "mid"})
    assert analysis.completion(known, 0) == {"b": 0, "n": 0}
    assert analysis.completion(known, 1) is None
    assert analysis.completion(known, 2) == {"b": 1, "n": 0}


# --- a non-monotone variant of the shipped rule base ------------------------------------

CASE = Path(__file__).resolve().parent / "rulebases" / "lowers-level-when-risk-rises.toml"


@pytest.fixture(scope="module")
def non_monotone(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The shipped rules with IO-3 written with is_not: higher relapse risk can lower the level."""
    target = tmp_path_factory.mktemp("rules") / "rules"
    shutil.copytree(RULES_DIR, target)
    for patch in tomllib.loads(CASE.read_text(encoding="utf-8"))["patch"]:
        path = target / patch["file"]
        path.write_text(path.read_text(encoding="utf-8").replace(patch["old"], patch["new"]), encoding="utf-8")
    return Engine.from_path(target)


def test_non_monotone_rule_base_against_its_engine(non_monotone: Engine) -> None:
    """Every completion decided by the engine itself: the exact answers match it.

    The first assessment has every clinical fact at its lowest need but relapse
    risk and support unknown. The monotone analysis fills both low (relapse risk
    low: IOP by the rewritten rule) and both high (no support: IOP by another
    rule) and answers "complete at IOP"; yet high relapse risk with strong
    support gives outpatient.
    """
    vocabulary = non_monotone.vocabulary
    analysis = non_monotone._analysis
    thresholds = shipped_thresholds(non_monotone, None)
    rng = random.Random(7)
    clinical = list(analysis.clinical)
    checked_open = 0
    for round_ in range(40):
        facts = {n: vocabulary[n].values[0] for n in clinical}
        if round_:
            facts.update({n: rng.choice(vocabulary[n].values) for n in rng.sample(clinical, 3)})
        unknown = (
            ["relapse_risk", "support_system"] if not round_ else sorted(rng.sample(clinical, 3), key=clinical.index)
        )
        known = {n: v for n, v in facts.items() if n not in unknown}
        answer = thresholds.analyse(cells_of(vocabulary, analysis.cells, known), unknown)
        decided: dict[tuple[Any, ...], int] = {}
        for choice in itertools.product(*[vocabulary[n].values for n in unknown]):
            decision = non_monotone.decide({**known, **dict(zip(unknown, choice, strict=True))})
            assert decision.level is not None
            decided[choice] = decision.level.rank
        depends = {
            name
            for choice, rank in decided.items()
            for i, name in enumerate(unknown)
            for other in vocabulary[name].values
            if decided[(*choice[:i], other, *choice[i + 1 :])] != rank
        }
        assert (answer.low, answer.high) == (min(decided.values()), max(decided.values()))
        assert answer.missing == tuple(n for n in unknown if n in depends)
        # decide() itself reports the exact range and missing facts for this rule base.
        partial = non_monotone.decide(known)
        levels = non_monotone.levels
        assert partial.level_range == (levels[answer.low], levels[answer.high])
        assert partial.missing == (tuple(answer.missing) if answer.low < answer.high else ())
        assert partial.level == (levels[answer.low] if answer.low == answer.high else None)
        checked_open += answer.low < answer.high
        if not round_:
            assert answer == Answer(0, 1, ("relapse_risk", "support_system"))
    assert checked_open > 0


def test_one_instance_answers_for_many_threads_at_once() -> None:
    """Answers given from four threads at once equal the answers given one at a time."""
    analysis = SHIPPED[SHIPPED_LEVELS["iop"]]
    relevant = list(ANALYSIS.relevant(SHIPPED_LEVELS["iop"]))
    rng = random.Random(11)
    questions = []
    for _ in range(300):
        chosen = set(rng.sample(relevant, rng.randint(1, len(relevant))))
        known = {n: rng.randrange(len(ANALYSIS.cells[n])) for n in relevant if n not in chosen}
        questions.append((known, [n for n in relevant if n in chosen]))
    expected = [analysis.analyse(known, unknown) for known, unknown in questions]

    def answer_all(_: int) -> list[Answer]:
        return [analysis.analyse(known, unknown) for known, unknown in questions * 5]

    with ThreadPoolExecutor(4) as pool:
        for answers in pool.map(answer_all, range(4)):
            assert answers == expected * 5


# --- errors -------------------------------------------------------------------------------


def test_a_condition_reading_a_fact_without_cells_is_refused() -> None:
    """The message names every such fact."""
    with pytest.raises(ThresholdError, match=r"without cells: 'a', 'n'; give each at least one cell"):
        Thresholds(TOY_THRESHOLDS, {"b": (False, True)})


@pytest.mark.parametrize(
    "atom", [cond.ProgramAtom("n", "hours"), cond.ContextAtom("level", frozenset({"iop"}))], ids=["program", "context"]
)
def test_a_condition_on_the_decided_level_is_refused(atom: cond.Condition) -> None:
    """Programme minimums and the decided level, transition or emergency cannot be thresholds."""
    with pytest.raises(ThresholdError, match=f"tests only facts' values, not {type(atom).__name__}"):
        Thresholds([atom], TOY_CELLS)


def test_a_known_cell_out_of_range_is_refused() -> None:
    """A cell index past the fact's cells (or negative) is an error, not a wrapped index."""
    analysis = Thresholds(TOY_THRESHOLDS, TOY_CELLS)
    for cell in (3, -1):
        with pytest.raises(ThresholdError, match=rf"'a' has 3 cells, got cell {cell}"):
            analysis.analyse({"a": cell}, ["b", "n"])
        with pytest.raises(ThresholdError, match="'a' has 3 cells"):
            analysis.completion({"a": cell}, 0)


def test_no_thresholds_means_one_level_and_nothing_missing() -> None:
    """Without conditions every completion is level 0; known facts nobody reads are ignored."""
    analysis = Thresholds([], TOY_CELLS)
    assert analysis.size == 0
    assert analysis.analyse({"a": 1, "zzz": 9}, ["b", "n"]) == Answer(0, 0, ())
    assert analysis.completion({}, 0) == {}
    assert analysis.completion({}, 1) is None


def test_integer_cells_follow_need_and_cut_at_every_bound() -> None:
    """Decreasing need lists the cells from the top of the range down."""
    weeks = Fact("w", "progress", "integer", "", (), minimum=0, maximum=520, need="decreasing")
    at_least = cond.RangeAtom("w", ((12, 520),))
    between = cond.RangeAtom("w", ((4, 7),))
    assert integer_cells(weeks, [at_least, between]) == (12, 8, 4, 0)
    cells = integer_cells(weeks, [at_least, between])
    assert [cell_index(weeks, cells, v) for v in (0, 3, 4, 7, 8, 11, 12, 520)] == [3, 3, 2, 2, 1, 1, 0, 0]
