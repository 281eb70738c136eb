"""How long ``levelcare.verify`` takes, and how its cost grows with facts and rules.

Run from the repository root, in an environment with levelcare installed::

    python benchmarks/bench_verify.py            # about a minute on 2 cores
    python benchmarks/bench_verify.py --quick    # a smoke run, the targets not judged

It prints:

* shipped: median and slowest seconds of ``levelcare.verify`` on the shipped
  rule base (loading, the engine check and every symbolic check), against the
  yardstick of deciding one complete assessment with ``Engine.decide`` scaled to
  every combination the check covers;
* generated: a rule base built in code with 40 admission facts of 3 to 5 values
  and 300 criteria (plus the shipped transition facts and rules), the symbolic
  checks and the engine check timed apart, against the yardstick of evaluating
  every criterion on one combination in plain Python, scaled to every
  combination;
* growth: the symbolic checks as facts and rules grow, each time as a ratio to
  the smallest size measured in the same run;

then PASS or FAIL for each target (exit status 1 on FAIL).
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable

import attrs

import levelcare
from levelcare._engine import Engine
from levelcare._rulebase import Emergency, Readiness, Rule, RuleBase, Sign, default_location
from levelcare._rulebase import _conditions as cond
from levelcare._rulebase._vocabulary import CURRENT_LEVEL, Fact, Vocabulary
from levelcare._semantics import Analysis, Placement
from levelcare._verify._checks import _Verifier
from levelcare._verify._compile import engine_findings
from levelcare._verify._space import BACKEND

# Targets (see docs/performance.md).
SHIPPED_SECONDS = 1.0
GENERATED_SECONDS = 60.0


def timed(run: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def generated(facts: int, rules: int, seed: int = 1) -> RuleBase:
    """A rule base of ``facts`` admission facts (3 to 5 values) and ``rules`` criteria.

    Each criterion needs one to three facts at or above a random value, sometimes
    one of two; the shipped transition rules and progress facts are kept, and the
    readiness rule that read admission facts reads generated ones instead.
    """
    rng = random.Random(seed)
    shipped = Engine.default().loaded_rulebase
    sources = (shipped.sources[0].id,)
    clinical = [
        Fact(
            name=f"g{i:02d}",
            group="clinical",
            kind="ordinal",
            meaning="generated",
            sources=sources,
            values=tuple(f"v{j}" for j in range(rng.randint(3, 5))),
        )
        for i in range(facts)
    ]
    vocabulary = Vocabulary((*clinical, *shipped.vocabulary.group("progress")))
    levels = shipped.levels

    def at_least(fact: Fact) -> cond.Condition:
        start = rng.randint(1, len(fact.values) - 1)
        return cond.ValueAtom(fact.name, frozenset(fact.values[start:]))

    criteria = []
    for number in range(rules):
        parts = [at_least(f) for f in rng.sample(clinical, rng.randint(1, 3))]
        if rng.random() < 0.2:
            parts.append(cond.Any_(tuple(at_least(f) for f in rng.sample(clinical, 2))))
        level = levels[rng.randint(1, len(levels) - 1)]
        criteria.append(Rule(f"G-{number}", level, "generated", sources, cond.All(tuple(parts)), "generated.toml"))
    top = [r for r in criteria if r.level == levels.highest][:2]
    emergencies = tuple(Emergency(f"GE-{i}", "generated", sources, r.when, "generated.toml") for i, r in enumerate(top))
    readiness = []
    for item in shipped.readiness:
        if all(f in {p.name for p in vocabulary.facts} for s in item.signs for f in cond.facts_read(s.when)):
            readiness.append(item)
            continue
        whens = [cond.ValueAtom(f.name, frozenset(f.values[:2])) for f in clinical[:3]]
        signs = tuple(Sign("generated", w, cond.negate(w, vocabulary)) for w in whens)
        readiness.append(Readiness(item.id, item.statement, item.sources, item.applies_to, signs, item.file))
    return attrs.evolve(
        shipped,
        vocabulary=vocabulary,
        rules=(shipped.fallback, *criteria),
        emergencies=emergencies,
        readiness=tuple(readiness),
        services=(),
        considerations=(),
    )


def symbolic(rulebase: RuleBase) -> None:
    report = _Verifier(rulebase, budget=None).report("generated", [])
    if report.unverified:  # pragma: no cover - no budget was set
        sys.exit("a check was left unverified")


def per_combination(rulebase: RuleBase, samples: int) -> float:
    """Seconds to evaluate every criterion on one combination of the clinical facts, in plain Python."""
    analysis = Analysis(Placement(rulebase))
    rng = random.Random(2)
    combos = [{n: rng.choice(analysis.cells[n]) for n in analysis.clinical} for _ in range(samples)]
    start = time.perf_counter()
    for facts in combos:
        max((r.level for r in rulebase.criteria if cond.holds(r.when, facts)), default=None)
    return (time.perf_counter() - start) / samples


def space_size(rulebase: RuleBase) -> tuple[int, int]:
    analysis = Analysis(Placement(rulebase))
    clinical = math.prod(len(analysis.cells[n]) for n in analysis.clinical)
    progress = math.prod(len(analysis.cells[n]) for n in analysis.progress)
    return clinical, clinical * progress * len(rulebase.levels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run; the targets are not judged")
    args = parser.parse_args()
    quick = args.quick
    rounds = 1 if quick else 5
    facts, rules = (10, 40) if quick else (40, 300)
    growth = [(5, 40), (10, 40), (10, 80)] if quick else [(10, 75), (20, 75), (40, 75), (40, 150), (40, 300)]

    version = importlib.metadata.version("levelcare")
    print(f"levelcare {version} on Python {platform.python_version()}, {os.cpu_count()} CPUs, diagrams: dd {BACKEND}")

    # The shipped rule base, end to end.
    location = default_location()
    shipped = timed(lambda: levelcare.verify(location), rounds)
    engine = Engine.default()
    _, composed = space_size(engine.loaded_rulebase)
    analysis = Analysis(Placement(engine.loaded_rulebase))
    rng = random.Random(1)
    sample = []
    for _ in range(100 if quick else 1_000):
        assessment = {n: rng.choice(analysis.cells[n]) for n in analysis.clinical + analysis.progress}
        assessment[CURRENT_LEVEL] = rng.choice(engine.levels.ids)
        sample.append(assessment)
    start = time.perf_counter()
    for assessment in sample:
        engine.decide(assessment)
    per_decide = (time.perf_counter() - start) / len(sample)
    median = statistics.median(shipped)
    print(
        f"shipped: verify median {median:.3f} s, slowest {max(shipped):.3f} s over {rounds} rounds; "
        f"decide() on all {composed:,} combinations would take {per_decide * composed / 3600:.1f} h "
        f"({per_decide * 1e6:.0f} us each); verify / that = {median / (per_decide * composed):.2e}"
    )

    # A large generated rule base.
    rulebase = generated(facts, rules)
    clinical, composed = space_size(rulebase)
    big_rounds = 1 if quick else 3
    checks = timed(lambda: symbolic(rulebase), big_rounds)
    compile_times = timed(lambda: engine_findings(rulebase), big_rounds)
    per_combo = per_combination(rulebase, 200 if quick else 2_000)
    enumerate_years = per_combo * clinical / (3600 * 24 * 365)
    big = statistics.median(checks)
    print(
        f"generated ({facts} admission facts, {rules} criteria; {clinical:.3e} admission combinations, "
        f"{composed:.3e} in treatment): symbolic checks median {big:.2f} s, slowest {max(checks):.2f} s over "
        f"{big_rounds} rounds; engine check median {statistics.median(compile_times):.2f} s; evaluating the criteria "
        f"on every admission combination in plain Python ({per_combo * 1e6:.0f} us each) would take "
        f"{enumerate_years:.2e} years"
    )

    # Cost growth.
    base = None
    for n_facts, n_rules in growth:
        size = generated(n_facts, n_rules)
        seconds = statistics.median(timed(functools.partial(symbolic, size), 1 if quick else 3))
        base = base or seconds
        print(
            f"growth: {n_facts:3d} facts, {n_rules:4d} criteria: {seconds:8.3f} s  ({seconds / base:6.2f}x the first)"
        )

    if quick:
        print("quick run: targets not judged")
        return 0
    ok = True
    for what, seconds, target in (
        ("slowest shipped verify", max(shipped), SHIPPED_SECONDS),
        ("slowest generated symbolic checks", max(checks), GENERATED_SECONDS),
    ):
        verdict = "PASS" if seconds < target else "FAIL"
        ok = ok and verdict == "PASS"
        print(f"{verdict}: {what} {seconds:.3f} s, target under {target:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
