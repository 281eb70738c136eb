"""The shipped rule base decides exactly as recorded, byte for byte.

Every admission in the complete clinical space (each combination of the clinical
facts' values) and a seeded sample of in-treatment assessments (any fact may be
unknown) are decided, and the sha256 of their ``to_dict()`` output, one canonical
JSON line each, is compared with the digest recorded in ``tests/golden/``. The
rule base's own sha256 is recorded apart and left out of each line, so that a change
to how the rule files are written (a new file, a comment) shows as a new hash with the
decisions' digest unchanged.

A change to the engine, the rule files or the decision format that alters any
decision fails here. When a change of decisions is intended, refresh the record on
purpose and say why in the commit and the changelog::

    LEVELCARE_REFRESH_GOLDEN=1 python -m pytest -m slow tests/test_golden.py

The whole record takes minutes, so it is marked slow (``python -m pytest -m slow``
runs it). The default run checks a sample recorded beside it: every 17th admission
and the first 4,000 in-treatment assessments of the same seeded stream. The sample is
refreshed with the whole record, from the same decisions.

The assessments are generated from ``rules/vocabulary.toml`` read as plain TOML,
so the generator does not depend on the code under test.

Two keys of ``to_dict()`` are left out of the digest, exactly these two:
``levelcare_version`` and ``input_sha256`` (``AUDIT_KEYS``). They record how a
decision was made (which release, which input), not what was decided, so the
recorded digest does not change with a release; everything else is pinned.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

import levelcare
from conftest import RULES_DIR

GOLDEN = RULES_DIR.parent / "tests" / "golden" / "shipped.json"
QUICK_GOLDEN = GOLDEN.with_name("shipped-sample.json")
AUDIT_KEYS = ("input_sha256", "levelcare_version")
IN_TREATMENT_SAMPLE = 100_000
# The default run's sample: every 17th admission (17 is prime to the 69,120
# combinations, so the sample is spread over all of them) and a prefix of the
# in-treatment stream.
ADMISSION_STRIDE = 17
IN_TREATMENT_QUICK = 4_000
SEED = 20261128


def _facts() -> list[dict[str, Any]]:
    data = tomllib.loads((RULES_DIR / "vocabulary.toml").read_text(encoding="utf-8"))
    return list(data["fact"])


def admissions() -> Iterator[dict[str, Any]]:
    """Every combination of the clinical facts' values, in vocabulary order."""
    clinical = [f for f in _facts() if f["group"] == "clinical"]
    for values in itertools.product(*(f["values"] for f in clinical)):
        yield {f["name"]: v for f, v in zip(clinical, values, strict=True)}


def _draw(rng: random.Random, fact: dict[str, Any]) -> Any:
    if "values" in fact:
        return rng.choice(fact["values"])
    low, high = fact["minimum"], fact["maximum"]
    # Small integers most of the time: that is where the thresholds are.
    return rng.randint(low, min(high, 30)) if rng.random() < 0.9 else rng.randint(low, high)


def in_treatment(count: int = IN_TREATMENT_SAMPLE, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """Seeded assessments of people in treatment; each other fact unknown one time in six."""
    rng = random.Random(seed)
    facts = _facts()
    for _ in range(count):
        assessment: dict[str, Any] = {}
        for fact in facts:
            if fact["name"] == "current_level":
                assessment["current_level"] = rng.choice(fact["values"])
            elif rng.random() >= 1 / 6:
                assessment[fact["name"]] = _draw(rng, fact)
        yield assessment


def _digest(assessments: Iterator[dict[str, Any]]) -> tuple[str, int]:
    engine = levelcare.Engine.default()
    digest = hashlib.sha256()
    count = 0
    for facts in assessments:
        data = engine.decide(facts).to_dict()
        data["rulebase"].pop("sha256")
        for key in AUDIT_KEYS:
            del data[key]  # a KeyError here means the audit keys changed: update AUDIT_KEYS on purpose
        line = json.dumps(data, sort_keys=True, separators=(",", ":"))
        digest.update(line.encode("utf-8") + b"\n")
        count += 1
    return digest.hexdigest(), count


def _sample() -> dict[str, Any]:
    """The digests of the default run's sample of the same decisions."""
    admission_digest, admission_count = _digest(itertools.islice(admissions(), 0, None, ADMISSION_STRIDE))
    treatment_digest, treatment_count = _digest(in_treatment(IN_TREATMENT_QUICK))
    return {
        "rulebase_sha256": levelcare.Engine.default().rulebase.sha256,
        "admissions": {"count": admission_count, "stride": ADMISSION_STRIDE, "sha256": admission_digest},
        "in_treatment": {"count": treatment_count, "seed": SEED, "sha256": treatment_digest},
    }


@pytest.mark.slow
def test_every_shipped_decision_is_as_recorded() -> None:
    """All 69,120 admissions and 100,000 in-treatment decisions match the recorded digest."""
    admission_digest, admission_count = _digest(admissions())
    treatment_digest, treatment_count = _digest(in_treatment())
    found = {
        "rulebase_sha256": levelcare.Engine.default().rulebase.sha256,
        "admissions": {"count": admission_count, "sha256": admission_digest},
        "in_treatment": {"count": treatment_count, "seed": SEED, "sha256": treatment_digest},
    }
    if os.environ.get("LEVELCARE_REFRESH_GOLDEN"):
        GOLDEN.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
        QUICK_GOLDEN.write_text(json.dumps(_sample(), indent=2) + "\n", encoding="utf-8")
        pytest.skip("golden digests refreshed; commit tests/golden/ with the reason")
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert found == recorded


def test_a_sample_of_shipped_decisions_is_as_recorded() -> None:
    """Every 17th admission and the first 4,000 in-treatment decisions match the recorded sample digest."""
    if os.environ.get("LEVELCARE_REFRESH_GOLDEN"):
        pytest.skip("the sample is refreshed with the whole record (python -m pytest -m slow tests/test_golden.py)")
    recorded = json.loads(QUICK_GOLDEN.read_text(encoding="utf-8"))
    assert _sample() == recorded


def test_the_sample_is_drawn_from_the_whole_record() -> None:
    """The sample's streams are the whole record's: a stride of the admissions and a prefix of the same seed."""
    everything = list(itertools.islice(admissions(), 0, 100))
    assert list(itertools.islice(admissions(), 0, 100, ADMISSION_STRIDE)) == everything[::ADMISSION_STRIDE]
    sampled = list(itertools.islice(admissions(), 0, None, ADMISSION_STRIDE))
    for fact in _facts():
        if fact["group"] == "clinical":
            name = fact["name"]
            assert {json.dumps(a[name]) for a in sampled} == {json.dumps(v) for v in fact["values"]}, name
    assert list(in_treatment(50)) == list(itertools.islice(in_treatment(), 50))
    whole = json.loads(GOLDEN.read_text(encoding="utf-8"))
    sample = json.loads(QUICK_GOLDEN.read_text(encoding="utf-8"))
    assert sample["rulebase_sha256"] == whole["rulebase_sha256"]
    assert sample["in_treatment"]["seed"] == whole["in_treatment"]["seed"] == SEED
    assert sample["admissions"]["count"] == -(-whole["admissions"]["count"] // ADMISSION_STRIDE)
