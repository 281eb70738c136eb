"""Refusing bad input costs a small constant per key: errors list at most MAX_PROBLEMS
problems and count the rest, and suggestions are looked for only for listed problems.

No test here times anything: the expensive part of a refusal is the search for a
suggestion, so the tests count those searches instead.
"""

from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import levelcare
from conftest import RULES_DIR
from inprocess import run_levelcare
from levelcare import AssessmentProblem, Engine, InvalidAssessment, InvalidOverride, RuleBaseError
from levelcare._batch import InputError, read_assessment
from levelcare.exceptions import MAX_PROBLEMS
from levelcare.fhir import assessment_from_response

MANY = 10_000


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every name a suggestion is looked for, in order (difflib does the looking)."""
    names: list[str] = []
    search = difflib.get_close_matches

    def counted(word: str, *args: Any, **kwargs: Any) -> list[str]:
        names.append(word)
        return search(word, *args, **kwargs)

    monkeypatch.setattr(difflib, "get_close_matches", counted)
    return names


def unknown(count: int) -> list[str]:
    return [f"harm_rysk_{i}" for i in range(count)]


def assert_bounded(problems: tuple[AssessmentProblem, ...], found: int) -> None:
    """``found`` problems shown as MAX_PROBLEMS of them and one line counting the rest."""
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == AssessmentProblem("", f"... and {found - MAX_PROBLEMS:,} more problems")
    assert all("more problem" not in p.message for p in problems[:-1])


def test_the_bound_is_twenty() -> None:
    """The documented bound: twenty problems listed."""
    assert MAX_PROBLEMS == 20


def test_decide_lists_the_first_problems_in_order_and_counts_the_rest(engine: Engine, lookups: list[str]) -> None:
    """decide() with 10,000 unknown facts lists the first 20, each with its suggestion, then '... and 9,980 more'."""
    keys = unknown(MANY)
    with pytest.raises(InvalidAssessment) as caught:
        engine.decide(dict.fromkeys(keys, "none"))
    error = caught.value
    assert_bounded(error.problems, MANY)
    assert [p.fact for p in error.problems[:MAX_PROBLEMS]] == keys[:MAX_PROBLEMS]
    assert error.problems[0].message == "unknown fact; did you mean 'harm_risk'?"
    assert error.omitted == MANY - MAX_PROBLEMS
    text = str(error)
    assert text.startswith("invalid assessment, 10,000 problems:\n- harm_rysk_0: unknown fact; did you mean")
    assert text.endswith("\n- ... and 9,980 more problems")
    assert len(text.splitlines()) == MAX_PROBLEMS + 2
    assert lookups == keys[:MAX_PROBLEMS]


def test_module_decide_is_bounded_too(lookups: list[str]) -> None:
    """levelcare.decide() refuses 10,000 unknown facts with at most 20 suggestion searches."""
    with pytest.raises(InvalidAssessment) as caught:
        levelcare.decide(dict.fromkeys(unknown(MANY), True))
    assert_bounded(caught.value.problems, MANY)
    assert len(lookups) <= MAX_PROBLEMS


def test_wrong_values_after_the_bound_are_counted_without_suggestions(engine: Engine, lookups: list[str]) -> None:
    """A misspelt value past the bound is counted, and no allowed value is searched for it."""
    facts: dict[str, Any] = dict.fromkeys(unknown(MAX_PROBLEMS), "none")
    facts["harm_risk"] = "hihg"
    with pytest.raises(InvalidAssessment) as caught:
        engine.decide(facts)
    assert caught.value.problems[-1].message == "... and 1 more problem"
    assert caught.value.omitted == 1
    assert "hihg" not in lookups
    assert len(lookups) == MAX_PROBLEMS


def test_exactly_the_bound_lists_every_problem(engine: Engine) -> None:
    """Twenty problems are all listed, with no count line: ordinary input reads as before."""
    with pytest.raises(InvalidAssessment) as caught:
        engine.decide(dict.fromkeys(unknown(MAX_PROBLEMS), "none"))
    assert len(caught.value.problems) == MAX_PROBLEMS
    assert caught.value.omitted == 0
    assert all(p.message.startswith("unknown fact") for p in caught.value.problems)
    assert str(caught.value).startswith("invalid assessment, 20 problems:\n")


def test_a_long_unknown_name_is_never_compared(engine: Engine, lookups: list[str]) -> None:
    """A megabyte-long key gets no suggestion search and is echoed in at most 40 characters."""
    key = "harm_risk" + "x" * (1 << 20)
    with pytest.raises(InvalidAssessment) as caught:
        engine.decide({key: "none"})
    (problem,) = caught.value.problems
    assert problem.message == "unknown fact"
    assert len(problem.fact) <= 40
    assert lookups == []


def test_suggestions_are_still_given_to_names_of_ordinary_length(engine: Engine) -> None:
    """The length bound leaves room for every ordinary misspelling, 64 characters included."""
    key = "harm_rsk" + "_" * (64 - len("harm_rsk"))
    with pytest.raises(InvalidAssessment) as caught:
        engine.decide({key: "none"})
    assert caught.value.problems[0].message == "unknown fact; did you mean 'harm_risk'?"


def test_errors_built_from_other_errors_keep_the_exact_count(engine: Engine) -> None:
    """Problems passed on from one error to another are bounded once, and the count of the rest adds up."""
    with pytest.raises(InvalidAssessment) as caught:
        engine.decide(dict.fromkeys(unknown(MANY), "none"))
    first = caught.value
    again = InvalidAssessment([AssessmentProblem("as_of", "expected a datetime"), *first.problems])
    assert again.problems[0].fact == "as_of"
    assert_bounded(again.problems, MANY + 1)
    assert again.omitted == MANY + 1 - MAX_PROBLEMS
    override = InvalidOverride(AssessmentProblem(f"facts.{p.fact}", p.message) for p in first.problems)
    assert override.omitted == first.omitted
    assert override.problems[-1].message == first.problems[-1].message


def test_a_batch_line_is_bounded(engine: Engine, lookups: list[str]) -> None:
    """A batch line of 10,000 unknown facts and 30 duplicate keys: 20 problems, the rest counted."""
    keys = unknown(MANY)
    duplicated = ", ".join(f'"dup_{i}": 1, "dup_{i}": 2' for i in range(30))
    line = ("{" + duplicated + ", " + json.dumps(dict.fromkeys(keys, "none"))[1:]).encode()
    with pytest.raises(InputError) as caught:
        read_assessment(line, engine.vocabulary)
    problems = caught.value.problems
    assert_bounded(problems, 30 + 30 + MANY)  # each duplicate is also an unknown fact
    assert problems[0] == AssessmentProblem("dup_0", "given more than once; give each fact once")
    assert len(lookups) <= MAX_PROBLEMS


def test_levelcare_batch_writes_a_bounded_error_record(tmp_path: Path) -> None:
    """`levelcare batch` answers a 148 KB line of unknown facts with 20 problems and the count of the rest."""
    line = json.dumps(dict.fromkeys(unknown(MANY), "none"))
    path = tmp_path / "in.jsonl"
    path.write_text(line + "\n" + json.dumps({"harm_rsk": "none"}) + "\n", encoding="utf-8")
    done = run_levelcare("batch", str(path), "--no-progress")
    records = [json.loads(text) for text in done.stdout.splitlines()]
    first, second = records[0], records[1]
    assert first["error"] == "invalid-input"
    assert len(first["problems"]) == MAX_PROBLEMS + 1
    assert first["problems"][-1] == {"fact": "", "message": "... and 9,980 more problems"}
    assert second["problems"] == [{"fact": "harm_rsk", "message": "unknown fact; did you mean 'harm_risk'?"}]


def questionnaire_response(links: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": [{"linkId": link, "answer": [{"valueBoolean": True}]} for link in links],
    }


def test_a_questionnaire_response_is_bounded(engine: Engine, lookups: list[str]) -> None:
    """30,000 unknown linkIds: 20 problems listed, the rest counted, at most 20 suggestion searches."""
    links = unknown(30_000)
    with pytest.raises(InvalidAssessment) as caught:
        assessment_from_response(questionnaire_response(links), engine)
    assert_bounded(caught.value.problems, 30_000)
    assert caught.value.problems[0] == AssessmentProblem("harm_rysk_0", "unknown linkId; did you mean 'harm_risk'?")
    assert caught.value.omitted == 30_000 - MAX_PROBLEMS
    assert lookups == links[:MAX_PROBLEMS]


def test_a_long_answer_key_is_echoed_short(engine: Engine) -> None:
    """An answer's value key is echoed in at most 40 characters, however long it is."""
    key = "value" + "X" * 100_000
    response = {"resourceType": "QuestionnaireResponse", "item": [{"linkId": "harm_risk", "answer": [{key: 1}]}]}
    with pytest.raises(InvalidAssessment) as caught:
        assessment_from_response(response, engine)
    (problem,) = caught.value.problems
    assert problem.fact == "harm_risk"
    assert len(problem.message) < 200
    assert "XXXX" * 20 not in problem.message


@pytest.fixture
def rules_with_unknown_tables(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder)
    tables = "\n".join(f"rulz_{i} = 1" for i in range(MANY))
    (folder / "extra.toml").write_text(tables + "\n", encoding="utf-8")
    return folder


def test_a_rule_base_error_is_bounded(rules_with_unknown_tables: Path, lookups: list[str]) -> None:
    """A rule file with 10,000 unknown tables: 20 problems, the count of the rest, at most 20 searches."""
    with pytest.raises(RuleBaseError) as caught:
        Engine.from_path(rules_with_unknown_tables)
    error = caught.value
    assert len(error.problems) == MAX_PROBLEMS + 1
    assert str(error.problems[0]) == "extra.toml: rulz_0: unknown table 'rulz_0'; did you mean 'rule'?"
    assert str(error.problems[-1]) == "... and 9,980 more problems"
    assert error.omitted == MANY - MAX_PROBLEMS
    assert str(error).startswith("invalid rule base, 10,000 problems:\n")
    assert len(lookups) <= MAX_PROBLEMS
