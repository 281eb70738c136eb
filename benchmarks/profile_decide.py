"""Where ``decide()`` spends its time: a cProfile summary over complete assessments.

Run from the repository root, in an environment with levelcare installed::

    python benchmarks/profile_decide.py              # 4000 decisions
    python benchmarks/profile_decide.py --top 25

Prints the median time per decision without the profiler, the functions with
the most time of their own, and the cumulative time of the steps of a decision.
cProfile slows Python code more than C code, so read the shares, not the totals.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from levelcare._engine import Engine

STEPS = (
    ("decide", "_engine/__init__.py", "decide"),
    ("  validate the facts", "_rulebase/_vocabulary.py", "validate"),
    ("  stage one + transitions (_evaluate)", "_engine/__init__.py", "_evaluate"),
    ("  reasons (_reasons)", "_engine/__init__.py", "_reasons"),
    ("  ruled out (_ruled_out)", "_engine/__init__.py", "_ruled_out"),
    ("  services, considerations (_extras)", "_engine/__init__.py", "_extras"),
    ("  durable evaluations (holding)", "_engine/_durable.py", "holding"),
    ("    writing the fact (encode)", "_engine/_durable.py", "encode"),
)


def complete_assessments(engine: Engine, count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for index in range(count):
        item: dict[str, Any] = {}
        for fact in engine.vocabulary.facts:
            if fact.name == "current_level" and index % 2 == 0:
                continue
            if fact.kind == "integer":
                item[fact.name] = rng.randint(fact.minimum or 0, fact.maximum or 0)
            else:
                item[fact.name] = rng.choice(fact.values)
        out.append(item)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)

    engine = Engine.default()
    items = complete_assessments(engine, args.count, seed=7)
    for item in items[:500]:
        engine.decide(item)
    samples = []
    for item in items:
        start = time.perf_counter()
        engine.decide(item)
        samples.append(time.perf_counter() - start)
    print(
        f"{args.count} complete assessments, median {statistics.median(samples) * 1e6:.1f} us per decide() (no profiler)"
    )

    profile = cProfile.Profile()
    profile.enable()
    for item in items:
        engine.decide(item)
    profile.disable()
    stats = pstats.Stats(profile)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = stats.stats  # type: ignore[attr-defined]

    print(f"\nown time, top {args.top} (profiled total {total:.3f} s)")
    ranked = sorted(rows.items(), key=lambda kv: kv[1][2], reverse=True)[: args.top]
    for (file, line, name), (_, calls, own, _cumulative, _) in ranked:
        where = name if file == "~" else f"{file.rsplit('/', 1)[-1]}:{line}({name})"
        print(f"  {own / total:6.1%}  {calls:8d} calls  {where}")

    print("\ncumulative time of the steps of a decision")
    for label, file, function in STEPS:
        cumulative = sum(v[3] for (f, _, n), v in rows.items() if f.endswith(file) and n == function)
        print(f"  {cumulative / total:6.1%}  {label}")
    durable_c = sum(v[2] for (f, _, n), v in rows.items() if f == "~" and "durable_rules_engine" in n)
    print(f"  {durable_c / total:6.1%}  inside durable's C functions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
