"""How long ``levelcare diff`` takes, against deciding the same space with the engine.

Run from the repository root, in an environment with levelcare installed::

    python benchmarks/bench_diff.py            # about a minute on 2 cores
    python benchmarks/bench_diff.py --quick    # a smoke run

For three proposals against the shipped rule base (an identical copy; TR-6's
minimum stay lowered from 12 to 8 weeks; criterion IN-3 deleted) it prints the
median and slowest seconds of the whole diff (both rule bases loaded, every
region covered with conditions), the assessments it compared, and the
yardstick: ``Engine.decide`` per complete assessment, timed on a sample in the
same run and scaled to the assessments the diff compares, twice (one decision
per rule base), which is what a brute-force comparison would cost.

Then the wide base: the continuum example with 25 more boolean clinical facts
(10**13 admissions, 9 x 10**15 in treatment) against the same with criterion
WDU-3 deleted. It prints the diff's median seconds and its ratio to
``levelcare check`` of the wide base, both measured in this run.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from levelcare import Engine, verify
from levelcare._rulebase import default_location
from levelcare._verify._diff import diff

CONTINUUM = Path(__file__).resolve().parent.parent / "examples" / "rulebases" / "continuum"
#: Boolean clinical facts added to the continuum example for the wide base.
EXTRA_FACTS = 25


def proposals(folder: Path) -> dict[str, Path]:
    shipped = Path(str(default_location()))
    found = {}
    for name in ("identical", "tr6-8-weeks", "without-in3"):
        target = folder / name
        shutil.copytree(shipped, target)
        found[name] = target
    path = found["tr6-8-weeks"] / "transitions.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("at_least = 12 }", "at_least = 8 }"), encoding="utf-8")
    path = found["without-in3"] / "inpatient.toml"
    blocks = path.read_text(encoding="utf-8").split("[[rule]]")
    path.write_text("[[rule]]".join(b for b in blocks if 'id = "IN-3"' not in b), encoding="utf-8")
    return found


def wide_pair(folder: Path) -> tuple[Path, Path]:
    """The continuum example with EXTRA_FACTS boolean facts for intensive outpatient, and the same without WDU-3."""
    old, new = folder / "wide-old", folder / "wide-new"
    facts = "".join(
        f'\n[[fact]]\nname = "added_need_{i:02d}"\ngroup = "clinical"\nkind = "boolean"\nvalues = [false, true]\n'
        f'meaning = "An added need."\nsources = ["iop-role"]\n'
        for i in range(EXTRA_FACTS)
    )
    items = ", ".join(f'{{ fact = "added_need_{i:02d}", is = true }}' for i in range(EXTRA_FACTS))
    rule = (
        '\n[[rule]]\nid = "INT-ADDED"\nlevel = "intensive-outpatient"\nstatement = "Any added need."\n'
        f'sources = ["iop-role"]\nwhen.any = [{items}]\n'
    )
    for target in (old, new):
        shutil.copytree(CONTINUUM, target)
        path = target / "vocabulary.toml"
        path.write_text(path.read_text(encoding="utf-8") + facts, encoding="utf-8")
        path = target / "criteria.toml"
        path.write_text(path.read_text(encoding="utf-8") + rule, encoding="utf-8")
    path = new / "criteria.toml"
    blocks = path.read_text(encoding="utf-8").split("[[rule]]")
    path.write_text("[[rule]]".join(b for b in blocks if 'id = "WDU-3"' not in b), encoding="utf-8")
    return old, new


def median_seconds(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def seconds_per_decide(engine: Engine, samples: int) -> float:
    rng = random.Random(1)
    vocabulary = engine.vocabulary
    batch = []
    for index in range(samples):
        facts = {}
        for fact in vocabulary.facts:
            if fact.group == "candidacy" or (fact.group == "progress" and index % 2 == 0):
                continue
            if fact.kind == "integer":
                facts[fact.name] = rng.randint(fact.minimum or 0, min(fact.maximum or 0, 30))
            else:
                facts[fact.name] = rng.choice(fact.values)
        batch.append(facts)
    start = time.perf_counter()
    for facts in batch:
        engine.decide(facts)
    return (time.perf_counter() - start) / samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round and a small sample")
    args = parser.parse_args()
    rounds, samples = (1, 200) if args.quick else (5, 4000)
    shipped = Path(str(default_location()))
    per_decide = seconds_per_decide(Engine.from_path(shipped), samples)
    print(f"Engine.decide: {per_decide * 1e6:.0f} us per complete assessment (sample of {samples})")
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder in proposals(Path(tmp)).items():
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                result = diff(shipped, folder)
                times.append(time.perf_counter() - start)
            compared = result.admissions.size + result.in_treatment.size
            brute = 2 * compared * per_decide
            median = statistics.median(times)
            print(
                f"{name}: diff median {median:.2f} s, slowest {max(times):.2f} s over {rounds} rounds; "
                f"{compared:,} assessments compared, {result.admissions.changed:,} admissions and "
                f"{result.in_treatment.changed:,} in treatment changed; brute force {brute / 3600:,.1f} h "
                f"({brute / median:,.0f} x the diff)"
            )
        old, new = wide_pair(Path(tmp))
        result = diff(old, new, budget=None)
        wide = median_seconds(lambda: diff(old, new, budget=None), rounds)
        check = median_seconds(lambda: verify(new, budget=None), rounds)
        print(
            f"wide continuum (+{EXTRA_FACTS} boolean facts, WDU-3 deleted): diff median {wide:.2f} s over {rounds} "
            f"rounds; {result.admissions.size + result.in_treatment.size:,} assessments compared, "
            f"{result.admissions.changed:,} admissions and {result.in_treatment.changed:,} in treatment changed; "
            f"levelcare check of the new side {check:.2f} s; diff / check = {wide / check:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
