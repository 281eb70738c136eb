"""Rule bases with 2, 5 and 12 levels load, decide, explain, verify and render.

Each rule base is generated: levels ``tier-0`` (least intensive) to ``tier-{n-1}``,
one ordinal ``severity`` whose value ``s{k}`` requires ``tier-k``, a boolean that
requires the top level, an escalation of one level on worsening, a readiness sign
and, from the top level, a bridge that stops a step down at ``tier-1``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import levelcare
from levelcare import Engine, Transition, testing
from levelcare._render._reference import levels_svg, rules_markdown
from levelcare._render._schema import assessment_schema

SIZES = [2, 5, 12]


def _toml(value: Any) -> str:
    return json.dumps(value)


def write_rulebase(folder: Path, n: int) -> Path:
    """A rule base with ``n`` levels in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"tier-{k}" for k in range(n)]
    severity = [f"s{k}" for k in range(n)]
    out: list[str] = [
        '[rulebase]\nname = "tiers"\nversion = "0.1.0"\n',
        "[wording]",
        'ruled_out_below = "{Level} is ruled out: {statement}"',
        'none_holds = "None of the criteria for {level} holds ({rules})."',
        'none_can_hold = "None of the criteria for {level} ({rules}) can hold."',
        'no_criterion = "No criterion requires {level}."',
        'step_down_held_back = "Held back: {sign}"\n',
        '[[source]]\nid = "src"\ntitle = "A generated source"\n',
    ]
    for k, lid in enumerate(ids):
        out.append(f'[[level]]\nid = "{lid}"\nlabel = "Tier {k}"\ndescription = "Generated level {k}."\n')
        out.append(
            f'[[program]]\nlevel = "{lid}"\nhours_per_week = [{k}, {k + 1}]\ndays_per_week = [1, 7]\n'
            f'typical_length = "Some weeks."\nsources = ["src"]\n'
        )
    facts = [
        ("severity", "clinical", "ordinal", severity),
        ("unsafe", "clinical", "boolean", [False, True]),
        ("current_level", "progress", "level", ids),
        ("worsening", "progress", "boolean", [False, True]),
        ("skills", "progress", "boolean", [True, False]),
        ("working", "candidacy", "boolean", [False, True]),
    ]
    for name, group, kind, values in facts:
        out.append(
            f'[[fact]]\nname = "{name}"\ngroup = "{group}"\nkind = "{kind}"\nvalues = {_toml(values)}\n'
            f'meaning = "Generated fact {name}."\nsources = ["src"]\n'
        )
    out.append(
        f'[[rule]]\nid = "R-0"\nlevel = "{ids[0]}"\notherwise = true\n'
        'statement = "Nothing more is needed."\nsources = ["src"]\n'
    )
    for k in range(1, n):
        out.append(
            f'[[rule]]\nid = "R-{k}"\nlevel = "{ids[k]}"\nstatement = "Severity {k} or more needs tier {k}."\n'
            f'sources = ["src"]\nwhen = {{ fact = "severity", at_least = "s{k}" }}\n'
        )
    out.append(
        f'[[rule]]\nid = "R-top"\nlevel = "{ids[-1]}"\nstatement = "An unsafe situation needs the top tier."\n'
        'sources = ["src"]\nwhen = { fact = "unsafe", is = true }\n'
    )
    out.append(
        '[[emergency]]\nid = "EM"\nstatement = "Unsafe."\nsources = ["src"]\nwhen = { fact = "unsafe", is = true }\n'
    )
    out.append(
        '[[escalation]]\nid = "UP"\nstatement = "Worsening moves one tier up."\nsources = ["src"]\n'
        'levels_above_current = 1\nwhen = { fact = "worsening", is = true }\n'
    )
    out.append(
        '[[readiness]]\nid = "READY"\nstatement = "Stepping down needs skills."\nsources = ["src"]\n'
        'signs = [{ statement = "Skills are learned.", when = { fact = "skills", is = true } }]\n'
    )
    if n >= 3:
        out.append(
            f'[[bridge]]\nid = "BRIDGE"\nfrom = ["{ids[-1]}"]\nfloor = "{ids[1]}"\n'
            'statement = "Leaving the top tier goes no lower than tier 1."\nsources = ["src"]\n'
        )
    out.append(
        f'[[service]]\nname = "review"\nsources = ["src"]\nwhen = {{ level = {_toml(ids[1:])} }}\n'
        f'[[consideration]]\nid = "CF"\nstatement = "Work can be planned around."\nsources = ["src"]\n'
        'when = { fact = "working", is = true }\n'
    )
    (folder / "rules.toml").write_text("\n".join(out), encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=SIZES, ids=[f"{n}-levels" for n in SIZES])
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Engine]:
    n: int = request.param
    folder = write_rulebase(tmp_path_factory.mktemp(f"tiers{n}") / "rules", n)
    return n, Engine.from_path(folder)


def test_levels_are_the_declared_ones(generated: tuple[int, Engine]) -> None:
    n, engine = generated
    assert engine.levels.ids == tuple(f"tier-{k}" for k in range(n))
    assert [level.rank for level in engine.levels] == list(range(n))
    assert engine.levels["tier-1"].label == "Tier 1"
    with pytest.raises(levelcare.UnknownLevel, match="tier-99"):
        engine.levels["tier-99"]


def test_each_severity_decides_its_own_level_with_every_other_level_explained(generated: tuple[int, Engine]) -> None:
    n, engine = generated
    for k in range(n):
        decision = engine.decide({"severity": f"s{k}", "unsafe": False})
        assert decision.status == "complete"
        assert decision.level == f"tier-{k}"
        assert decision.reasons[0].rule_id == ("R-0" if k == 0 else f"R-{k}")
        assert sorted(r.level.rank for r in decision.ruled_out if r.level) == [j for j in range(n) if j != k]
        below = [r for r in decision.ruled_out if r.level is not None and r.level.rank < k]
        assert all(r.statement.startswith(f"Tier {r.level.rank} is ruled out: ") for r in below if r.level)
        assert decision.program.level == f"tier-{k}"
        assert round_trips(decision, engine)


def round_trips(decision: levelcare.Decision, engine: Engine) -> bool:
    return levelcare.Decision.from_dict(decision.to_dict(), levels=engine.levels) == decision


def test_unknown_facts_give_the_range_and_what_is_missing(generated: tuple[int, Engine]) -> None:
    _, engine = generated
    decision = engine.decide({})
    assert decision.status == "data-required"
    assert decision.level is None
    assert decision.level_range == (engine.levels.lowest, engine.levels.highest)
    assert decision.missing == ("severity", "unsafe")
    top_known = engine.decide({"unsafe": True})
    assert (top_known.status, top_known.level, top_known.emergency) == ("complete", engine.levels.highest, True)


def test_transitions_follow_the_mechanism(generated: tuple[int, Engine]) -> None:
    n, engine = generated
    top = engine.levels.highest.id
    ready = {"unsafe": False, "worsening": False, "skills": True}
    stay = engine.decide({**ready, "severity": f"s{n - 1}", "current_level": top})
    assert (stay.level, stay.transition) == (top, Transition.CONTINUE)
    down = engine.decide({**ready, "severity": "s0", "current_level": top})
    expected = "tier-1" if n >= 3 else "tier-0"
    assert (down.level, down.transition) == (expected, Transition.STEP_DOWN)
    if n >= 3:
        assert down.reasons[0].rule_id == "BRIDGE"
    held = engine.decide({**ready, "skills": False, "severity": "s0", "current_level": top})
    assert (held.level, held.transition, held.reasons[0].rule_id) == (top, Transition.CONTINUE, "READY")
    assert held.reasons[0].statement == "Held back: Skills are learned."
    up = engine.decide({**ready, "worsening": True, "severity": "s0", "current_level": "tier-0"})
    assert (up.level, up.transition, up.reasons[0].rule_id) == ("tier-1", Transition.STEP_UP, "UP")


def test_the_verifier_finds_nothing_wrong(generated: tuple[int, Engine]) -> None:
    _, engine = generated
    report = levelcare.verify(engine)
    assert report.errors == ()
    assert report.warnings == ()


def test_the_references_render_every_level(generated: tuple[int, Engine]) -> None:
    n, engine = generated
    rulebase = engine._rb
    markdown = rules_markdown(rulebase)
    svg = levels_svg(rulebase)
    for k in range(n):
        assert f"## Tier {k} (`tier-{k}`)" in markdown
        assert f">Tier {k}</text>" in svg
    schema = assessment_schema(engine.vocabulary, engine.rulebase)
    assert schema["properties"]["current_level"]["enum"] == [*engine.levels.ids, None]


def test_the_testing_kit_checks_it(generated: tuple[int, Engine]) -> None:
    _, engine = generated
    testing.check_invariants(engine, max_examples=15)
