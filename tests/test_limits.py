"""durable-rules' fixed limits never reach the user.

durable fails when about 64 rules match one fact (its traversal stack, error
303), when one rule's test has 16 or more ``$and``/``$or`` (error 113), and when
a fact has more than 255 fields. The compiled rulesets split tests into pieces
and rulesets into several durable rulesets so that any number of conditions may
hold at once and any condition the loader accepts is evaluated; every answer
here is compared with the plain semantics, ``_conditions.holds``.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import levelcare
from levelcare._engine import _durable
from levelcare._rulebase import _conditions as cond
from levelcare._rulebase._vocabulary import Fact, Vocabulary

DURABLE = _durable._engine

BOOLEANS = 600
ORDINALS = 8
INTEGERS = 8
LEVELS = ("none", "low", "moderate", "high", "severe")
FACTS = (
    tuple(Fact(f"b{i}", "clinical", "boolean", "a yes/no fact", (), (False, True)) for i in range(BOOLEANS))
    + tuple(Fact(f"o{i}", "clinical", "ordinal", "an ordered fact", (), LEVELS) for i in range(ORDINALS))
    + tuple(Fact(f"n{i}", "clinical", "integer", "a count", (), (), 0, 600, "increasing") for i in range(INTEGERS))
)
VOCABULARY = Vocabulary(FACTS)
NAMES = frozenset(f.name for f in FACTS)


def parse(data: dict[str, Any]) -> cond.Condition:
    return cond.parse(data, VOCABULARY, context=False, facts=NAMES)


def yes(i: int) -> dict[str, Any]:
    return {"fact": f"b{i}", "is": True}


def expected(conditions: list[cond.Condition], facts: dict[str, Any]) -> frozenset[int]:
    return frozenset(i for i, c in enumerate(conditions) if cond.holds(c, facts))


def check(ruleset: _durable.CompiledRuleset, conditions: list[cond.Condition], facts: dict[str, Any]) -> None:
    known = VOCABULARY.validate(facts)
    assert ruleset.holding(known) == expected(conditions, known)


def random_facts(rng: random.Random, unknown: float = 0.2) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for fact in FACTS:
        if rng.random() < unknown:
            continue
        if fact.kind == "integer":
            facts[fact.name] = rng.randint(fact.minimum or 0, fact.maximum or 0)
        else:
            facts[fact.name] = rng.choice(fact.values)
    return facts


# --- durable's own limits, the yardstick --------------------------------------------------


def run_plain(definition: dict[str, Any], fact: dict[str, Any]) -> list[str]:
    """Assert ``fact`` into a plain durable ruleset; the names of the rules that fired."""
    handle = DURABLE.create_ruleset(f"plain-{id(definition)}", json.dumps(definition))
    try:
        result, offset = DURABLE.assert_fact(handle, json.dumps({**fact, "sid": "s", "id": "f"}))
        fired = []
        step = DURABLE.start_action_for_state(handle, offset) if result == 0 else None
        message = step[1] if step is not None else None
        while message is not None:
            fired.append(message[2 : message.index('"', 2)])
            message = DURABLE.complete_and_start_action(handle, offset)
        return fired
    finally:
        DURABLE.delete_ruleset(handle)


def test_plain_durable_fails_when_65_rules_match_one_fact() -> None:
    """The yardstick: 64 rules matching one fact work in plain durable, 65 fail with error 303."""
    for count, fails in ((64, False), (65, True)):
        definition = {f"r{i}": {"all": [{"m": {f"f{i}": 1}}]} for i in range(count)}
        fact = {f"f{i}": 1 for i in range(count)}
        if fails:
            with pytest.raises(DURABLE.error, match="303"):
                run_plain(definition, fact)
        else:
            assert len(run_plain(definition, fact)) == count


def test_plain_durable_refuses_a_test_with_16_ands_and_ors() -> None:
    """The yardstick: an 'all' of 14 two-way 'any' groups compiles, of 15 is refused with error 113."""
    for groups, fails in ((14, False), (15, True)):
        test = {"$and": [{"$or": [{f"f{2 * i}": 1}, {f"f{2 * i + 1}": 1}]} for i in range(groups)]}
        text = json.dumps({"r": {"all": [{"m": test}]}})
        if fails:
            with pytest.raises(DURABLE.error, match="113"):
                DURABLE.create_ruleset("plain-wide", text)
        else:
            DURABLE.delete_ruleset(DURABLE.create_ruleset("plain-wide", text))


def test_plain_durable_fails_on_a_fact_of_255_fields() -> None:
    """The yardstick: a fact of 254 fields (sid and id among them) is taken, one of 255 refused (error 302)."""
    for fields, fails in ((252, False), (253, True)):
        definition = {"r": {"all": [{"m": {"f0": 1}}]}}
        fact = {f"f{i}": 1 for i in range(fields)}
        if fails:
            with pytest.raises(DURABLE.error, match="302"):
                run_plain(definition, fact)
        else:
            assert run_plain(definition, fact) == ["r"]


# --- many rules holding at once -----------------------------------------------------------


@pytest.mark.parametrize(("count", "rulesets"), [(64, 1), (65, 2), (500, 8)])
def test_any_number_of_rules_may_hold_at_once(count: int, rulesets: int) -> None:
    """``count`` rules, each reading one boolean fact, all holding at once, give every index."""
    conditions = [parse(yes(i)) for i in range(count)]
    ruleset = _durable.CompiledRuleset(f"many-{count}", conditions, VOCABULARY)
    # 64 rules matching one fact still fit one durable ruleset; more need several.
    assert len(ruleset._chunks) == rulesets
    every = {f"b{i}": True for i in range(count)}
    assert ruleset.holding(every) == frozenset(range(count))
    rng = random.Random(count)
    for _ in range(20):
        check(ruleset, conditions, {f"b{i}": rng.random() < 0.7 for i in range(count)})
    check(ruleset, conditions, {})


def test_500_thresholds_on_one_fact_all_holding() -> None:
    """500 rules 'n0 at least k' on one integer fact: up to 500 match the same field at once."""
    conditions = [parse({"fact": "n0", "at_least": k}) for k in range(500)]
    ruleset = _durable.CompiledRuleset("thresholds", conditions, VOCABULARY)
    assert len(ruleset._chunks) > 1
    for value in (0, 1, 63, 64, 65, 250, 499, 500, 600):
        assert ruleset.holding({"n0": value}) == frozenset(range(min(value, 499) + 1))
    assert ruleset.holding({}) == frozenset()


# --- wide and deep conditions -------------------------------------------------------------


def test_all_of_30_any_groups() -> None:
    """One rule: all of 30 two-way 'any' groups (60 'and'/'or' entries, durable allows 31)."""
    condition = parse({"all": [{"any": [yes(2 * i), yes(2 * i + 1)]} for i in range(30)]})
    conditions = [condition]
    ruleset = _durable.CompiledRuleset("all-of-any", conditions, VOCABULARY)
    every = {f"b{i}": True for i in range(60)}
    assert ruleset.holding(every) == frozenset({0})
    assert ruleset.holding({**every, "b10": False}) == frozenset({0})
    assert ruleset.holding({**every, "b10": False, "b11": False}) == frozenset()
    rng = random.Random(30)
    for _ in range(30):
        check(ruleset, conditions, {f"b{i}": rng.random() < 0.8 for i in range(60)})


def test_any_of_400_and_all_of_400_facts() -> None:
    """An 'any' and an 'all' over 400 boolean facts: more fields than one durable fact can carry."""
    conditions = [parse({"any": [yes(i) for i in range(400)]}), parse({"all": [yes(i) for i in range(400)]})]
    ruleset = _durable.CompiledRuleset("wide", conditions, VOCABULARY)
    every = {f"b{i}": True for i in range(400)}
    assert ruleset.holding(every) == frozenset({0, 1})
    assert ruleset.holding({**every, "b399": False}) == frozenset({0})
    assert ruleset.holding({"b399": True}) == frozenset({0})
    assert ruleset.holding({"b0": False}) == frozenset()


def nested(depth: int, start: int = 0) -> dict[str, Any]:
    """all(b, any(b', all(b'', any(...)))) ``depth`` levels deep, with an ordinal and an integer test at each."""
    inner: dict[str, Any] = {"fact": "o0", "at_least": "moderate"}
    for level in reversed(range(depth)):
        b = start + level
        group = "all" if level % 2 == 0 else "any"
        inner = {group: [yes(b), {"fact": f"n{level % INTEGERS}", "at_most": 300 + level}, inner]}
    return inner


def test_conditions_nested_60_deep() -> None:
    """Conditions nested 60 levels deep, and many of them, agree with the plain semantics."""
    conditions = [parse(nested(60, start)) for start in range(0, 400, 40)]
    ruleset = _durable.CompiledRuleset("deep", conditions, VOCABULARY)
    rng = random.Random(60)
    for _ in range(60):
        check(ruleset, conditions, random_facts(rng, unknown=0.05))
    every = {f"b{i}": True for i in range(BOOLEANS)} | {"o0": "severe"} | {f"n{i}": 0 for i in range(INTEGERS)}
    assert ruleset.holding(every) == frozenset(range(len(conditions)))


# --- any condition, with durable's limits made small ----------------------------------------


def atoms() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda i, v: {"fact": f"b{i}", "is": v}, st.integers(0, 11), st.booleans()),
        st.builds(lambda i, v: {"fact": f"o{i}", "at_least": v}, st.integers(0, 3), st.sampled_from(LEVELS)),
        st.builds(
            lambda i, v: {"fact": f"o{i}", "one_of": v},
            st.integers(0, 3),
            st.lists(st.sampled_from(LEVELS), min_size=1),
        ),
        st.builds(lambda i, v: {"fact": f"n{i}", "at_most": v}, st.integers(0, 3), st.integers(0, 600)),
        st.builds(lambda i, v: {"fact": f"n{i}", "is_not": v}, st.integers(0, 3), st.integers(0, 600)),
    )


def trees() -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        atoms(),
        lambda inner: st.one_of(
            st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=6)),
            st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=6)),
            st.builds(lambda item: {"not": item}, inner),
        ),
        max_leaves=30,
    )


# The facts the trees above read; None is unknown.
READ = [f"b{i}" for i in range(12)] + [f"o{i}" for i in range(4)] + [f"n{i}" for i in range(4)]


def fact_values() -> st.SearchStrategy[dict[str, Any]]:
    def draw(fact: Fact) -> st.SearchStrategy[Any]:
        if fact.kind == "integer":
            return st.one_of(st.none(), st.integers(0, 600))
        return st.one_of(st.none(), st.sampled_from(fact.values))

    return st.fixed_dictionaries({name: draw(VOCABULARY[name]) for name in READ})


@settings(max_examples=30)
@given(data=st.lists(trees(), min_size=1, max_size=12), samples=st.lists(fact_values(), min_size=1, max_size=8))
def test_any_conditions_split_under_small_limits_agree_with_the_plain_semantics(
    data: list[dict[str, Any]], samples: list[dict[str, Any]]
) -> None:
    """With durable's limits shrunk, every test is split and placed in many durable rulesets: same answers."""
    conditions = [parse(d) for d in data]
    limits = {"MAX_EXPRESSIONS": 4, "MAX_PATHS": 2, "MAX_STACK": 3, "MAX_CHILDREN": 3, "MAX_FIELDS": 3}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in limits.items():
            patch.setattr(_durable, name, value)
        ruleset = _durable.CompiledRuleset("small", conditions, VOCABULARY)
    for facts in samples:
        known = {k: v for k, v in facts.items() if v is not None}
        assert ruleset.holding(known) == expected(conditions, known)


# --- what remains: check_limits -----------------------------------------------------------


def test_no_limit_problems_in_large_rule_sets() -> None:
    """Nothing of the above is a problem for check_limits."""
    conditions = [parse(yes(i)) for i in range(500)]
    conditions += [parse(nested(60)), parse({"all": [{"any": [yes(2 * i), yes(2 * i + 1)]} for i in range(30)]})]
    assert _durable.check_limits(conditions, VOCABULARY) == []


def test_shipped_rule_base_has_no_limit_problems() -> None:
    engine = levelcare.Engine.default()
    vocabulary = engine.vocabulary
    stage_one = [item[1].unmet if kind == "unmet" else item.when for kind, item in engine._stage_one]
    assert _durable.check_limits(stage_one, vocabulary) == []
    assert (
        _durable.check_limits([item.when for _, item in engine._stage_two], vocabulary, levels=engine.levels.ids) == []
    )


HUGE = Vocabulary(
    (
        Fact("huge", "clinical", "integer", "beyond 64 bits", (), (), 0, 10**20, "increasing"),
        Fact("small", "clinical", "integer", "a count", (), (), 0, 10, "increasing"),
    )
)


def test_integers_beyond_64_bits_are_a_limit_problem_naming_the_rule() -> None:
    """durable clamps integers to 64 bits: a rule reading a wider integer fact is refused, by name."""
    conditions = [
        cond.RangeAtom("small", ((3, 10),)),
        cond.RangeAtom("huge", ((10**19, 10**20),)),
        cond.All((cond.RangeAtom("small", ((1, 10),)), cond.RangeAtom("huge", ((0, 5),)))),
    ]
    problems = _durable.check_limits(conditions, HUGE, ["R-1", "R-2", "R-3"])
    assert [(p.index, p.name) for p in problems] == [(1, "R-2"), (2, "R-3")]
    assert "'huge'" in problems[0].message
    assert "64-bit" in problems[0].message
    assert str(problems[0]).startswith("R-2: reads integer fact 'huge'")
    with pytest.raises(levelcare.EngineError, match="cannot evaluate 2 condition") as caught:
        _durable.CompiledRuleset("huge", conditions, HUGE, ["R-1", "R-2", "R-3"])
    assert "- R-2: " in str(caught.value)
    assert "- R-3: " in str(caught.value)


def test_engine_names_the_rule_that_reads_a_too_wide_integer(tmp_path: Any) -> None:
    """A rule base whose integer fact reaches past 64 bits is refused when the engine is built, naming the rules."""
    from conftest import RULES_DIR

    folder = tmp_path / "rules"
    folder.mkdir()
    for source in RULES_DIR.iterdir():
        (folder / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    vocabulary = (folder / "vocabulary.toml").read_text(encoding="utf-8")
    widened = vocabulary.replace("maximum = 520", "maximum = 99999999999999999999", 1)
    assert widened != vocabulary
    (folder / "vocabulary.toml").write_text(widened, encoding="utf-8")
    with pytest.raises(levelcare.EngineError, match="weeks_at_current_level") as caught:
        levelcare.Engine.from_path(folder)
    assert "- TR-6 (a readiness sign): reads integer fact 'weeks_at_current_level'" in str(caught.value)
    assert "condition " not in str(caught.value)


def test_a_piece_too_large_for_durable_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a single comparison ever exceed durable's limits, the ruleset is refused, naming the rule."""
    monkeypatch.setattr(_durable, "MAX_STACK", 0)
    conditions = [parse(yes(0)), parse({"any": [yes(1), yes(2)]})]
    problems = _durable.check_limits(conditions, VOCABULARY, ["A", "B"])
    assert [p.name for p in problems] == ["A", "B"]
    assert "stack of 0" in problems[0].message
    with pytest.raises(levelcare.EngineError, match="- A: can leave 1 alpha nodes pending"):
        _durable.CompiledRuleset("refused", conditions, VOCABULARY, ["A", "B"])
