"""How long ``levelcare.verify`` takes, against yardsticks measured in the same run.

Run from the repository root, in an environment with levelcare installed::

    python benchmarks/bench_verify.py            # a few seconds on 2 cores
    python benchmarks/bench_verify.py --quick    # a smoke run, the target not judged

It prints:

* verify: median and slowest seconds of ``levelcare.verify`` on the shipped rule
  base, every exhaustive pass included;
* yardstick: the plain-Python way to check only the first pass, the indicated
  level for every combination of the clinical facts with ``_conditions.holds``
  per criterion, one combination at a time;
* brute force: ``Engine.decide`` per complete assessment, timed on a sample and
  scaled to every combination the verifier covers (clinical facts × current
  level × progress cells), which is what checking the composed level through
  the engine would cost;

then PASS or FAIL for the target (exit status 1 on FAIL).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import math
import os
import platform
import random
import statistics
import sys
import time

import levelcare
from levelcare._engine import Engine
from levelcare._rulebase import _conditions as cond
from levelcare._rulebase import default_location
from levelcare._rulebase._vocabulary import CURRENT_LEVEL

# Target (see docs/testing-your-rules.md): the whole check within a minute on 2 cores.
VERIFY_SECONDS = 60.0


def time_verify(rounds: int) -> list[float]:
    location = default_location()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        report = levelcare.verify(location)
        times.append(time.perf_counter() - start)
        if not report.ok:
            sys.exit("the shipped rule base has errors:\n" + report.render())
    return times


def time_yardstick(engine: Engine, limit: int | None) -> tuple[float, int]:
    """Seconds for the indicated level of every clinical combination, in plain Python."""
    rulebase = engine._rb
    analysis = engine._analysis
    names = analysis.clinical
    combinations = itertools.product(*(analysis.cells[n] for n in names))
    if limit is not None:
        combinations = itertools.islice(combinations, limit)
    count = 0
    start = time.perf_counter()
    for values in combinations:
        facts = dict(zip(names, values))
        max((r.level for r in rulebase.criteria if cond.holds(r.when, facts)), default=rulebase.levels.lowest)
        count += 1
    return time.perf_counter() - start, count


def time_decide(engine: Engine, samples: int) -> float:
    """Seconds per ``decide`` on complete assessments, half of them in treatment."""
    analysis = engine._analysis
    rng = random.Random(1)
    assessments = []
    for i in range(samples):
        facts = {n: rng.choice(analysis.cells[n]) for n in analysis.clinical}
        if i % 2:
            facts[CURRENT_LEVEL] = rng.choice(engine.levels).id
            facts.update({n: rng.choice(analysis.cells[n]) for n in analysis.progress})
        assessments.append(facts)
    start = time.perf_counter()
    for facts in assessments:
        engine.decide(facts)
    return (time.perf_counter() - start) / samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run; the target is not judged")
    args = parser.parse_args()
    rounds, samples, limit = (1, 200, 5_000) if args.quick else (5, 2_000, None)

    engine = Engine.default()
    analysis = engine._analysis
    clinical = math.prod(len(analysis.cells[n]) for n in analysis.clinical)
    progress = math.prod(len(analysis.cells[n]) for n in analysis.progress)
    composed = clinical * len(engine.levels) * progress

    version = importlib.metadata.version("levelcare")
    print(f"levelcare {version} on Python {platform.python_version()}, {os.cpu_count()} CPUs")
    verify = time_verify(rounds)
    median = statistics.median(verify)
    print(f"verify: median {median:.3f} s, slowest {max(verify):.3f} s over {rounds} rounds")

    seconds, count = time_yardstick(engine, limit)
    full = seconds * clinical / count
    print(
        f"yardstick: indicated level of {count:,} clinical combinations in plain Python took {seconds:.2f} s"
        f" ({full:.2f} s for all {clinical:,}); verify / yardstick = {median / full:.2f}"
    )

    per_call = time_decide(engine, samples)
    brute = per_call * composed
    print(
        f"brute force: decide() takes {per_call * 1e6:.0f} us per complete assessment; all {composed:,} "
        f"combinations would take {brute / 3600:.1f} h; verify / brute force = {median / brute:.6f}"
    )

    if args.quick:
        print("quick run: target not judged")
        return 0
    verdict = "PASS" if max(verify) < VERIFY_SECONDS else "FAIL"
    print(f"{verdict}: slowest verify {max(verify):.3f} s, target under {VERIFY_SECONDS:.0f} s")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
