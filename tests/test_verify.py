"""levelcare.verify and `levelcare check`: the shipped rule base is sound, and every kind of mistake is found precisely."""

from __future__ import annotations

import json
import math
import shutil
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given

import levelcare
from conftest import RULES_DIR, SHIPPED_LEVELS
from levelcare import Engine, Finding, Severity, VerificationReport
from levelcare._cli import main
from levelcare._cli._common import EXIT_UNVERIFIED
from levelcare._rulebase import Rule
from levelcare._rulebase import _conditions as cond
from levelcare._rulebase._vocabulary import Fact, Vocabulary
from levelcare._verify import _conflict, _satisfiable, _Verifier
from levelcare.testing import assessments

CASES_DIR = Path(__file__).resolve().parent / "rulebases"
CASES = sorted(CASES_DIR.glob("*.toml"))


def build(case_file: Path, folder: Path) -> Path:
    """A copy of the shipped rules with the case's patches applied."""
    case = tomllib.loads(case_file.read_text(encoding="utf-8"))
    target = folder / case_file.stem
    shutil.copytree(RULES_DIR, target)
    # Each case isolates one static finding; the shipped test vectors, which a broken
    # rule would also fail, are tested in test_cases.py.
    (target / "cases.toml").unlink()
    for patch in case["patch"]:
        path = target / patch["file"]
        text = path.read_text(encoding="utf-8")
        assert text.count(patch["old"]) == 1, (
            f"{case_file.name}: the patch's old text must occur once in {patch['file']}"
        )
        path.write_text(text.replace(patch["old"], patch["new"]), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every broken rule base of tests/rulebases, built once for the module."""
    folder = tmp_path_factory.mktemp("rulebases")
    return {case.stem: build(case, folder) for case in CASES}


def key(finding: Finding) -> tuple[str, str, str, str]:
    return (finding.severity.value, finding.check, finding.rule_id, finding.file)


def lowest_need(engine: Engine) -> dict[str, Any]:
    """Every clinical fact at its lowest need: no criterion of the shipped rules holds."""
    return {f.name: f.values[0] for f in engine.vocabulary.facts if f.group == "clinical"}


# --- the shipped rule base ----------------------------------------------------------


def test_shipped_rule_base_has_zero_findings() -> None:
    """The shipped rules pass every check, and the clinical pass covers the whole product."""
    report = levelcare.verify(RULES_DIR)
    assert report.findings == ()
    assert report.ok
    clinical = [f for f in Engine.default().vocabulary.facts if f.group == "clinical"]
    assert all(f.kind != "integer" for f in clinical)
    assert report.checked["clinical"] == math.prod(len(f.values) for f in clinical)
    assert report.checked["transitions"] > 0
    assert report.rulebase == Engine.default().rulebase


def test_verifying_an_engine_or_its_folder_gives_the_same_report() -> None:
    """An engine is verified from the rule base it was built on."""
    by_path = levelcare.verify(RULES_DIR).to_dict()
    by_engine = levelcare.verify(Engine.from_path(RULES_DIR)).to_dict()
    assert by_path == by_engine


# --- the broken rule bases --------------------------------------------------------------


@pytest.mark.parametrize("case_file", CASES, ids=lambda p: p.stem)
def test_each_broken_rule_base_is_caught_precisely(case_file: Path, broken: dict[str, Path]) -> None:
    """Each mistake gives a finding with its severity, check, rule id, file and message."""
    case = tomllib.loads(case_file.read_text(encoding="utf-8"))
    report = levelcare.verify(broken[case_file.stem])
    for expected in case["expect"]:
        wanted = (expected["severity"], expected["check"], expected["rule_id"], expected["file"])
        matching = [f for f in report.findings if key(f) == wanted]
        assert matching, f"no finding {wanted} in:\n{report.render()}"
        assert any(all(part in f.message for part in expected["message"]) for f in matching), report.render()
    if case["exact"]:
        expected_keys = sorted((e["severity"], e["check"], e["rule_id"], e["file"]) for e in case["expect"])
        assert sorted(key(f) for f in report.findings) == expected_keys, report.render()
    assert report.ok == all(e["severity"] != "error" for e in case["expect"])


@pytest.mark.parametrize("case_file", CASES, ids=lambda p: p.stem)
def test_counterexamples_are_real_assessments_the_engine_agrees_with(case_file: Path, broken: dict[str, Path]) -> None:
    """Every counterexample, decided by the engine, shows what the finding says."""
    report = levelcare.verify(broken[case_file.stem])
    if report.rulebase is None:
        assert all(f.counterexample is None for f in report.findings)
        return
    engine = Engine.from_path(broken[case_file.stem])
    for finding in report.findings:
        check_counterexample(engine, finding)


def check_counterexample(engine: Engine, finding: Finding) -> None:
    if finding.check == "not-monotone":
        assert finding.counterexample is not None and finding.contrast is not None
        changed = [n for n in finding.counterexample if finding.counterexample[n] != finding.contrast[n]]
        assert len(changed) == 1
        before, after = engine.decide(finding.counterexample), engine.decide(finding.contrast)
        assert before.complete and after.complete
        assert before.level is not None and after.level is not None
        assert after.level < before.level
        assert f"from {before.level.value} to {after.level.value}" in finding.message
    elif finding.check == "emergency-level":
        assert finding.counterexample is not None
        decision = engine.decide(finding.counterexample)
        assert decision.emergency
        assert decision.level is not None and decision.level is not SHIPPED_LEVELS["inpatient"]
        assert f"the level is {decision.level.value} instead of inpatient" in finding.message
    elif finding.check == "never-decides":
        assert finding.counterexample is not None
        rule = next(r for r in engine._rb.criteria if r.id == finding.rule_id)
        decision = engine.decide(finding.counterexample)
        assert cond.holds(rule.when, finding.counterexample)
        assert decision.level is not None and decision.level > rule.level
    else:
        assert finding.counterexample is None, finding


def test_a_readiness_sign_that_can_never_be_met_is_named_with_its_number(tmp_path: Path) -> None:
    """A contradictory sign means no one ever steps down; the message says which sign and why."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    path = target / "transitions.toml"
    old = '{ fact = "harm_risk", at_most = "low" }'
    new = '{ all = [{ fact = "harm_risk", at_most = "low" }, { fact = "harm_risk", is = "high" }] }'
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    report = levelcare.verify(target)
    [finding] = [f for f in report.findings if f.check == "never-fires"]
    assert key(finding) == ("error", "never-fires", "TR-4", "transitions.toml")
    assert "sign 1 of TR-4 can never be met" in finding.message
    assert 'it asks that harm_risk is "none" or "low" and that harm_risk is "high"' in finding.message


def test_a_service_whose_facts_force_a_level_outside_its_own_never_fires(tmp_path: Path) -> None:
    """PH-7 widened to any: an unstable home always reaches php, so the referral for iop or outpatient never fires.

    Its facts alone and its levels alone both occur; only together do they not.
    """
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    (target / "cases.toml").unlink()  # PH-7's own test vectors would fail too
    path = target / "php.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index('id = "PH-7"')
    at = text.index("when.all", start)
    path.write_text(text[:at] + "when.any" + text[at + len("when.all") :], encoding="utf-8")
    report = levelcare.verify(target)
    [finding] = [f for f in report.findings if f.check == "never-fires"]
    assert key(finding) == ("error", "never-fires", "sober_living_referral", "services.toml")
    assert "sober_living_referral can never fire: it needs a decision with level outpatient or iop" in finding.message
    assert "is decided php (admit)" in finding.message
    assert finding.counterexample is not None
    facts = dict(finding.counterexample)
    assert facts["home_environment"] == "unstable"
    decision = Engine.from_path(target).decide(facts)
    assert decision.level is not None and decision.level.id == "php"
    assert "sober_living_referral" not in decision.services


# --- rule bases built without the loader ----------------------------------------------


def test_no_fallback_rule_leaves_a_gap_with_a_counterexample() -> None:
    """Without an otherwise rule, assessments that meet no criterion get no level.

    The loader and the engine both refuse such a rule base, so the verifier is
    driven directly.
    """
    rulebase = Engine.default()._rb
    report = _Verifier(attrs.evolve(rulebase, rules=rulebase.criteria)).report("built in code", [])
    [gap] = [f for f in report.findings if f.check == "gap"]
    assert gap.severity is Severity.ERROR
    assert "no criterion holds" in gap.message
    assert gap.counterexample == lowest_need(Engine.default())
    assert not any(cond.holds(r.when, gap.counterexample) for r in rulebase.criteria)
    assert gap.count > 1


def test_a_reachable_level_without_a_programme_is_a_gap() -> None:
    """A level assessments reach but with no [[program]] cannot be decided."""
    rulebase = Engine.default()._rb
    programs = {level: p for level, p in rulebase.programs.items() if level != "php"}
    report = levelcare.verify(Engine(attrs.evolve(rulebase, programs=programs)))
    [gap] = [f for f in report.findings if f.check == "gap"]
    assert (gap.rule_id, gap.severity) == ("php", Severity.ERROR)
    assert "no [[program]] for it" in gap.message
    assert gap.counterexample is not None
    verifier = _Verifier(rulebase)
    verifier.report("", [])
    assert verifier.level_of(gap.counterexample) is SHIPPED_LEVELS["php"]


def test_an_engine_with_a_session_field_as_fact_is_reported() -> None:
    """A rule base built in code, past the loader, is still checked for reserved names."""
    rulebase = Engine.default()._rb
    sid = Fact(name="sid", group="clinical", kind="boolean", meaning="m", sources=("jc-iop",), values=(False, True))
    rule = Rule("XX-1", SHIPPED_LEVELS["php"], "s", ("jc-iop",), cond.ValueAtom("sid", frozenset({True})), "extra.toml")
    built = attrs.evolve(
        rulebase, vocabulary=Vocabulary((*rulebase.vocabulary.facts, sid)), rules=(*rulebase.rules, rule)
    )
    report = levelcare.verify(Engine(built))
    reserved = [key(f) for f in report.findings if f.check == "reserved-name"]
    assert sorted(reserved) == [("error", "reserved-name", "XX-1", "extra.toml"), ("error", "reserved-name", "sid", "")]


def test_a_check_not_decided_within_the_budget_is_unverified_never_passed(
    capsys: pytest.CaptureFixture[str], broken: dict[str, Path]
) -> None:
    """With no time left every symbolic check is reported unverified, and the command exits 4, not 0."""
    report = levelcare.verify(broken["shadowed-rule"], budget=1e-9)
    assert report.findings and all(f.severity is Severity.UNVERIFIED for f in report.findings)
    assert {f.check for f in report.unverified} >= {"not-monotone", "gap", "emergency-level", "never-decides"}
    assert all("not decided within the time budget" in f.message for f in report.findings)
    assert not report.ok and report.errors == ()
    assert report.checked == {}
    assert main(["check", str(broken["shadowed-rule"]), "--budget", "1e-9"]) == EXIT_UNVERIFIED
    out = capsys.readouterr().out
    assert "unverified [not-monotone]" in out
    assert out.rstrip().endswith(f"0 errors, 0 warnings, {len(report.findings)} unverified.")
    assert main(["check", str(broken["contradictory-condition"]), "--json", "--budget", "1e-9"]) == EXIT_UNVERIFIED
    data = json.loads(capsys.readouterr().out)
    assert data["unverified"] == len(data["findings"]) > 0 and data["errors"] == 0 and not data["ok"]
    # An error found takes precedence over a check left undecided.
    both = attrs.evolve(
        report, findings=(*report.findings, levelcare.verify(broken["contradictory-condition"]).errors[0])
    )
    assert not both.ok and both.errors
    # With time enough, the same rule base passes with its one warning.
    assert main(["check", str(broken["shadowed-rule"]), "--budget", "600"]) == 0


def test_a_faulty_rule_in_a_vocabulary_too_large_to_enumerate_is_found(
    capsys: pytest.CaptureFixture[str], broken: dict[str, Path]
) -> None:
    """Past millions of combinations the check still proves monotonicity, and fails with a counterexample."""
    folder = broken["larger-vocabulary-lowers-level"]
    report = levelcare.verify(folder)
    assert report.checked["clinical"] == 69_120 * 3**4 > 4_000_000
    [finding] = report.findings
    assert key(finding) == ("error", "not-monotone", "PH-8", "php.toml")
    assert finding.counterexample is not None and finding.contrast is not None
    assert (finding.counterexample["support_system"], finding.contrast["support_system"]) == ("limited", "none")
    assert finding.count == 72 * 3**4
    assert main(["check", str(folder)]) == 1
    assert "error [not-monotone] PH-8 (php.toml)" in capsys.readouterr().out


def large_condition(vocabulary: Vocabulary, groups: int) -> dict[str, Any]:
    """``all`` over ``groups`` ``any`` groups, each of two clinical facts at their highest need."""
    facts = [f for f in vocabulary.facts if f.group == "clinical" and f.kind == "ordinal"]
    items = []
    for i in range(groups):
        pair = (facts[i % len(facts)], facts[(i + 1) % len(facts)])
        items.append({"any": [{"fact": f.name, "is": f.values[-1]} for f in pair]})
    return {"all": items}


def test_a_condition_too_large_for_one_durable_rule_compiles_and_checks(tmp_path: Path) -> None:
    """`all` over 30 `any` groups (durable error 113 when compiled whole) is split by the engine and checks clean."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    condition = large_condition(Engine.default().vocabulary, 30)
    rule = {"id": "PH-9", "level": "php", "statement": "s", "sources": ["jc-iop"], "when": condition}
    lines = ["", "[[rule]]"] + [f"{k} = {json.dumps(v)}" for k, v in rule.items() if k != "when"]
    lines.append("when = " + _toml_inline(condition))
    (target / "php.toml").write_text((target / "php.toml").read_text(encoding="utf-8") + "\n".join(lines) + "\n")
    Engine.from_path(target)
    report = levelcare.verify(target)
    assert [f for f in report.findings if f.check == "engine"] == []


def test_a_rule_the_engine_cannot_compile_fails_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rule base that loads but that durable-rules cannot evaluate is an error naming the rule.

    durable reads integers as 64-bit numbers, so a fact whose range reaches past
    them cannot be compared there; the engine refuses it, and so does the check.
    """
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    vocabulary = (target / "vocabulary.toml").read_text(encoding="utf-8")
    (target / "vocabulary.toml").write_text(vocabulary.replace("maximum = 520", "maximum = 99999999999999999999", 1))
    with pytest.raises(levelcare.EngineError):
        Engine.from_path(target)
    report = levelcare.verify(target)
    engine = [f for f in report.findings if f.check == "engine"]
    # Both rules that read the fact are named: a readiness sign and a consideration.
    assert sorted(key(f)[:3] for f in engine) == [("error", "engine", "CF-5"), ("error", "engine", "TR-6")]
    assert all("weeks_at_current_level" in f.message for f in engine)
    assert main(["check", str(target)]) == 1
    assert "error [engine] TR-6" in capsys.readouterr().out


def _toml_inline(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_inline(v) for v in value) + "]"
    return json.dumps(value)


def test_an_engine_that_fails_to_decide_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule base the engine builds but cannot run fails the check, with the assessment it failed on."""
    engine = Engine.from_path(RULES_DIR)

    def fail(facts: object) -> None:
        raise levelcare.EngineError("durable-rules failed: error code 303")

    monkeypatch.setattr(engine, "decide", fail)
    report = levelcare.verify(engine)
    [finding] = [f for f in report.findings if f.check != "case"]
    # The shipped test vectors cannot be decided either, and each says so by name.
    cases = [f for f in report.findings if f.check == "case"]
    assert len(cases) == len(engine._rb.cases) > 0
    assert all("no decision: EngineError" in f.message for f in cases)
    assert key(finding) == ("error", "engine", "", "")
    assert (
        "every fact at its highest need, for a new admission: durable-rules failed: error code 303" in finding.message
    )
    assert finding.counterexample is not None and finding.counterexample["harm_risk"] == "imminent"


def test_a_bridge_whose_floor_is_ignored_is_reported() -> None:
    """Built in code past the loader, a second bridge from the same level is never applied: step downs go below it."""
    rulebase = Engine.default()._rb
    first = rulebase.bridges[0]
    levels = rulebase.levels
    top = max(first.applies_to)
    second = attrs.evolve(first, id="TR-9", applies_to=frozenset({top}), floor=levels[top.rank - 1])
    report = levelcare.verify(Engine(attrs.evolve(rulebase, bridges=(first, second))))
    [finding] = report.findings
    assert key(finding) == ("error", "bridge-floor", "TR-9", first.file)
    assert f"someone in treatment at {top.value} steps down to" in finding.message
    assert finding.counterexample is not None and finding.counterexample["current_level"] == top.value
    decision = Engine.default().decide(finding.counterexample)
    assert decision.level is not None and decision.level < levels[top.rank - 1]


# --- the verifier's level function against the engine ----------------------------------

SPOT_CHECKED = ["shipped", "lowers-level-when-risk-rises", "transition-lowers-level", "current-level-lowers-level"]


@pytest.fixture(scope="module")
def level_functions(broken: dict[str, Path]) -> dict[str, tuple[_Verifier, Engine]]:
    found = {}
    for name in SPOT_CHECKED:
        folder = RULES_DIR if name == "shipped" else broken[name]
        engine = Engine.from_path(folder)
        verifier = _Verifier(engine._rb)
        verifier.report(str(folder), [])
        found[name] = (verifier, engine)
    return found


@pytest.mark.parametrize("name", SPOT_CHECKED)
@given(facts=assessments(complete=True))
def test_the_static_level_function_matches_engine_decide(
    name: str, level_functions: dict[str, tuple[_Verifier, Engine]], facts: dict[str, Any]
) -> None:
    """The verifier evaluates conditions in Python; on complete assessments it agrees with durable."""
    verifier, engine = level_functions[name]
    assert verifier.level_of(facts) is engine.decide(facts).level


# --- report and command ------------------------------------------------------------------


def test_report_is_json_ready_deterministic_and_readable(broken: dict[str, Path]) -> None:
    """to_dict survives JSON unchanged and twice gives the same bytes; render shows each finding."""
    folder = broken["lowers-level-when-risk-rises"]
    report = levelcare.verify(folder)
    text = json.dumps(report.to_dict(), sort_keys=True)
    assert text == json.dumps(levelcare.verify(folder).to_dict(), sort_keys=True)
    data = json.loads(text)
    assert (data["ok"], data["errors"], data["warnings"]) == (False, 1, 0)
    [finding] = report.findings
    assert data["findings"] == [finding.to_dict()]
    rendered = report.render()
    assert "error [not-monotone] IO-3 (iop.toml)" in rendered
    assert "counterexample: " + json.dumps(dict(finding.counterexample or {})) in rendered
    assert "compared with:  " + json.dumps(dict(finding.contrast or {})) in rendered
    assert rendered.endswith("1 error, 0 warnings.")
    assert isinstance(report, VerificationReport)


def test_report_objects_are_frozen() -> None:
    """Reports and findings cannot be changed after the fact."""
    report = levelcare.verify(42)  # type: ignore[arg-type]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        report.findings = ()  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        report.findings[0].message = ""  # type: ignore[misc]


def test_something_that_is_not_a_rule_base_gives_a_finding_not_an_exception() -> None:
    """A value that is neither an engine nor a path is reported, naming its type."""
    report = levelcare.verify(42)  # type: ignore[arg-type]
    assert [key(f) for f in report.findings] == [("error", "load", "", "")]
    assert report.findings[0].message == "expected an Engine or a rule base folder, got integer 42"
    assert report.rulebase is None and not report.ok


def test_check_command_on_the_shipped_rules(capsys: pytest.CaptureFixture[str]) -> None:
    """`levelcare check` exits 0 for the shipped rules, as text and as JSON."""
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "Rule base levelcare-core" in out
    assert out.rstrip().endswith("0 errors, 0 warnings.")
    assert main(["check", str(RULES_DIR), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["ok"], data["findings"]) == (True, [])


def test_check_command_fails_on_errors_and_passes_on_warnings(
    capsys: pytest.CaptureFixture[str], broken: dict[str, Path], tmp_path: Path
) -> None:
    """Errors give exit status 1; a rule base with only warnings passes."""
    assert main(["check", str(broken["emergency-without-inpatient"])]) == 1
    assert "error [emergency-level] EM-1 (emergency.toml)" in capsys.readouterr().out
    assert main(["check", str(broken["shadowed-rule"])]) == 0
    assert "warning [never-decides] IO-1 (iop.toml)" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "nowhere"), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [(f["check"], f["message"]) for f in data["findings"]] == [("load", "no such rule base folder")]


def test_load_findings_keep_every_loader_problem(broken: dict[str, Path]) -> None:
    """A rule base that fails to load reports each of the loader's problems, none lost."""
    with pytest.raises(levelcare.RuleBaseError) as caught:
        Engine.from_path(broken["missing-source"])
    report = levelcare.verify(broken["missing-source"])
    expected = [(p.file, p.rule_id, p.message) for p in caught.value.problems]
    assert sorted((f.file, f.rule_id, f.message) for f in report.findings) == sorted(expected)
    assert all(f.counterexample is None for f in report.findings)


def test_findings_hold_read_only_assessments(broken: dict[str, Path]) -> None:
    """A finding's counterexample cannot be changed through the report."""
    finding = levelcare.verify(broken["emergency-without-inpatient"]).findings[0]
    assert isinstance(finding.counterexample, Mapping)
    with pytest.raises(TypeError):
        finding.counterexample["harm_risk"] = "none"  # type: ignore[index]


def test_a_condition_too_large_to_expand_is_not_reported_as_never_firing() -> None:
    """Past the expansion limit the verifier reports nothing rather than guess; below it, contradictions are exact."""
    vocabulary = Engine.default().vocabulary
    finite = [f for f in vocabulary.facts if f.group == "clinical"]
    lowest_or_highest = [
        cond.Any_((cond.ValueAtom(f.name, frozenset({f.values[0]})), cond.ValueAtom(f.name, frozenset({f.values[-1]}))))
        for f in finite
    ]
    large = cond.All(tuple(lowest_or_highest) * 2)
    assert _satisfiable(large, vocabulary)
    assert not _satisfiable(cond.All((cond.ValueAtom("harm_risk", frozenset()), large)), vocabulary)


def test_a_contradiction_too_large_to_expand_is_still_found() -> None:
    """Satisfiability is decided on diagrams, so a condition past the expansion limit is not waved through."""
    rulebase = Engine.default()._rb
    vocabulary = rulebase.vocabulary
    finite = [f for f in vocabulary.facts if f.group == "clinical"]
    # Each fact at one of its values: the normal form has a term per combination, 69,120 of them.
    each_value = [cond.Any_(tuple(cond.ValueAtom(f.name, frozenset({v})) for v in f.values)) for f in finite]
    large = cond.All((*each_value, cond.ValueAtom("harm_risk", frozenset())))
    # The normal form gives up before it reaches the impossible last part, and guesses "can hold".
    assert _satisfiable(large, vocabulary)
    first = rulebase.criteria[0]
    rules = tuple(attrs.evolve(r, when=large) if r is first else r for r in rulebase.rules)
    verifier = _Verifier(attrs.evolve(rulebase, rules=rules))
    never = [f for f in verifier.report("built in code", []).findings if f.check == "never-fires"]
    assert [(f.rule_id, f.severity) for f in never] == [(first.id, Severity.ERROR)]
    assert "harm_risk is never any value" in never[0].message


NEVER = [
    (
        {"not": {"fact": "harm_risk", "at_least": "none"}},
        "its condition asks that harm_risk is never any value, which no assessment can be",
    ),
    (
        {
            "all": [
                {"fact": "weeks_at_current_level", "at_least": 12},
                {"fact": "weeks_at_current_level", "at_most": 11},
            ]
        },
        "it asks that weeks_at_current_level is at least 12 and that weeks_at_current_level is at most 11",
    ),
    (
        {
            "any": [
                {"all": [{"fact": "caregiver", "is": True}, {"fact": "caregiver", "is": False}]},
                {"all": [{"level": "iop"}, {"level": "php"}]},
            ]
        },
        (
            "every alternative is impossible: it is contradictory: it asks that caregiver is true and that caregiver is "
            'false, which cannot both be true at once; it is contradictory: it asks that the decided level is "iop" and '
            'that the decided level is "php"'
        ),
    ),
    (
        {
            "all": [
                {"any": [{"fact": "motivation", "is": "high"}, {"fact": "motivation", "is": "moderate"}]},
                {"any": [{"fact": "motivation", "is": "low"}, {"not": {"fact": "motivation", "at_least": "high"}}]},
            ]
        },
        (
            '(motivation is "high" or motivation is "moderate") and (motivation is "low" or motivation is never any '
            "value) cannot both be true"
        ),
    ),
    (
        {
            "all": [
                {"fact": "motivation", "one_of": ["high", "moderate"]},
                {"fact": "motivation", "is": "low"},
                {"fact": "motivation", "is_not": "high"},
            ]
        },
        (
            'motivation is "high" or "moderate" and that motivation is "low" and that motivation is "moderate" or '
            '"low", which cannot all be true at once'
        ),
    ),
]


@pytest.mark.parametrize(("data", "reason"), NEVER)
def test_why_a_condition_can_never_hold_is_said_in_words(data: dict[str, Any], reason: str) -> None:
    """Each shape of impossible condition is explained by the parts that clash."""
    vocabulary = Engine.default().vocabulary
    condition = cond.parse(
        data, vocabulary, context=True, facts=[f.name for f in vocabulary.facts], levels=Engine.default().levels.ids
    )
    assert not _satisfiable(condition, vocabulary)
    assert reason in _conflict(condition, vocabulary)
