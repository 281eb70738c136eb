"""Benchmark of refusing bad input: the cost of each unknown key, against a valid decide().

Run from the repository root, in an environment with levelcare installed::

    python benchmarks/bench_validation.py           # about half a minute
    python benchmarks/bench_validation.py --quick   # a smoke run, targets not judged

One process times, interleaved in rounds, a valid ``decide()`` of a complete
assessment (the baseline) and the refusal of the same assessment with 10, 1,000 and
10,000 unknown keys added, on each of three paths:

* ``decide()`` of the facts (a dict);
* one ``levelcare batch`` line of the same facts (JSON, read and validated);
* a QuestionnaireResponse holding the facts as answers and the unknown keys as
  linkIds, read by ``levelcare.fhir.assessment_from_response``.

It prints, per path and count, the cost of the whole refusal and the cost per
unknown key, each as a ratio to the valid ``decide()``, and the marginal cost of a
key: what the 9,000 keys from 1,000 to 10,000 cost, each. Validation must cost a
small constant per key: the targets are that the cost per key does not grow (at
10,000 keys at most 1.5x that at 1,000) and that a marginal key costs at most 0.1x
a valid decide. PASS or FAIL for each target; exit status 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from levelcare import Engine, InvalidAssessment
from levelcare._batch import InputError, read_assessment
from levelcare.fhir import assessment_from_response, response_for

COUNTS = (10, 1_000, 10_000)
#: The cost per unknown key at 10,000 keys, at most this times the cost at 1,000.
FLAT = 1.5
#: One more unknown key (from 1,000 to 10,000) at most this fraction of a valid decide().
PER_KEY = 0.1


def complete_facts(engine: Engine) -> dict[str, Any]:
    """A complete, valid assessment: every fact at its lowest value."""
    facts: dict[str, Any] = {}
    for fact in engine.vocabulary.facts:
        if fact.kind == "integer":
            facts[fact.name] = fact.minimum or 0
        elif fact.name != "current_level":
            facts[fact.name] = fact.values[0]
    return facts


def unknown_keys(count: int) -> list[str]:
    """Names like fact names, close enough to invite a suggestion, none of them declared."""
    return [f"harm_rysk_{i}" for i in range(count)]


def refusing(step: Callable[[], object], expected: type[Exception]) -> Callable[[], None]:
    """``step``, checked to raise ``expected`` (a refusal that did not happen is a defect)."""

    def run() -> None:
        try:
            step()
        except expected:
            return
        msg = f"{step} accepted input it must refuse"
        raise SystemExit(msg)

    return run


def timed(step: Callable[[], object], repeat: int) -> float:
    start = time.process_time()
    for _ in range(repeat):
        step()
    return (time.process_time() - start) / repeat


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run; targets not judged")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else max(1, args.rounds)
    counts = COUNTS[:2] if args.quick else COUNTS

    engine = Engine.default()
    facts = complete_facts(engine)
    engine.decide(facts)  # a valid assessment, decided once before timing
    response = response_for(facts, engine)

    steps: dict[tuple[str, int], Callable[[], None]] = {}
    for count in counts:
        keys = unknown_keys(count)
        bad = {**facts, **dict.fromkeys(keys, "none")}
        line = json.dumps(bad).encode()
        items = [*response["item"], *({"linkId": key, "answer": [{"valueBoolean": True}]} for key in keys)]
        form = {**response, "item": items}
        steps["decide()", count] = refusing(functools.partial(engine.decide, bad), InvalidAssessment)
        steps["batch line", count] = refusing(functools.partial(read_assessment, line, engine.vocabulary), InputError)
        steps["QuestionnaireResponse", count] = refusing(
            functools.partial(assessment_from_response, form, engine), InvalidAssessment
        )

    def valid() -> None:
        engine.decide(facts)

    baseline_samples: list[float] = []
    samples: dict[tuple[str, int], list[float]] = {key: [] for key in steps}
    for _ in range(rounds):
        baseline_samples.append(timed(valid, 200))
        for key, step in steps.items():
            samples[key].append(timed(step, max(1, 2_000 // key[1])))
    baseline = statistics.median(baseline_samples)

    print(f"valid decide(): {baseline * 1e6:.1f} us (median of {rounds} rounds)")
    print(f"{'path':<22} {'unknown keys':>12} {'refusal':>12} {'x decide':>10} {'per key x decide':>17}")
    per_key: dict[tuple[str, int], float] = {}
    costs: dict[tuple[str, int], float] = {}
    for (path, count), values in samples.items():
        cost = costs[path, count] = statistics.median(values)
        per_key[path, count] = cost / count / baseline
        print(f"{path:<22} {count:>12,} {cost * 1e3:>10.3f}ms {cost / baseline:>10.2f} {per_key[path, count]:>17.4f}")

    if args.quick:
        print("quick run: targets not judged")
        return 0
    failed = False
    for path in ("decide()", "batch line", "QuestionnaireResponse"):
        growth = per_key[path, COUNTS[2]] / per_key[path, COUNTS[1]]
        marginal = (costs[path, COUNTS[2]] - costs[path, COUNTS[1]]) / (COUNTS[2] - COUNTS[1]) / baseline
        flat = growth <= FLAT
        cheap = marginal <= PER_KEY
        failed = failed or not (flat and cheap)
        print(
            f"{'PASS' if flat else 'FAIL'} {path}: per key at 10,000 / per key at 1,000 = {growth:.2f} (at most {FLAT})"
        )
        print(
            f"{'PASS' if cheap else 'FAIL'} {path}: one more unknown key (1,000 to 10,000) = {marginal:.4f}x "
            f"a valid decide (at most {PER_KEY})"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
