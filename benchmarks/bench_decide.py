"""How fast ``decide()`` is, against yardsticks measured in the same run.

Run from the repository root, in an environment with levelcare installed::

    python benchmarks/bench_decide.py            # about 20 s on 2 cores
    python benchmarks/bench_decide.py --quick    # a smoke run, targets not judged

It prints, for the same complete assessments (half admissions, half people in
treatment):

* ``decide()``: median and p90 microseconds per call, full rationale included;
* baseline: durable-rules' stock ``durable.engine.Host`` with a 40-rule
  ruleset over one 12-field fact, firings recorded by a Python action, each
  fact asserted in its own session id and the session deleted after it;
* floor: the same criteria and transition mechanism in plain Python
  (``_conditions.holds`` over the compiled conditions), no durable, no reasons;
* batch throughput with 1 and 2 worker processes, each with its own engine,
  next to a control (a plain-Python loop in the same workers) that shows how
  well the machine itself runs two processes at once;

then PASS or FAIL for each target (exit status 1 on any FAIL). Timings are
interleaved in rounds, so a change in machine load hits every contender alike.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.metadata
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import levelcare

# isort: off
# After levelcare, which supplies what durable-rules needs to load on Python 3.13.
import durable.engine

# isort: on
from levelcare import _conditions as cond
from levelcare._engine import Engine, _condition
from levelcare._rulebase import default_location

# Targets (see docs/performance.md).
DECIDE_VS_BASELINE = 0.5
TWO_WORKERS_VS_ONE = 1.7

Assessment = dict[str, Any]


# --- inputs -------------------------------------------------------------------------------


def complete_assessments(engine: Engine, count: int, seed: int) -> list[Assessment]:
    """``count`` complete assessments drawn from the vocabulary; every other one in treatment."""
    rng = random.Random(seed)
    facts = engine.vocabulary.facts
    out: list[Assessment] = []
    for index in range(count):
        assessment: Assessment = {}
        for fact in facts:
            if fact.name == "current_level" and index % 2 == 0:
                continue
            if fact.kind == "integer":
                assessment[fact.name] = rng.randint(fact.minimum or 0, fact.maximum or 0)
            else:
                assessment[fact.name] = rng.choice(fact.values)
        out.append(assessment)
    return out


# --- contenders ---------------------------------------------------------------------------


def time_calls(call: Callable[[Any], object], items: Sequence[Any]) -> list[float]:
    """Seconds taken by ``call(item)`` for each item."""
    clock = time.perf_counter
    samples = []
    for item in items:
        start = clock()
        call(item)
        samples.append(clock() - start)
    return samples


FIELDS = 12
RULES = 40
BASELINE_RULESET = "baseline"


def baseline_definition(seed: int) -> dict[str, Any]:
    """40 threshold rules over 12 integer fields (0 to 9), each recording its firing in Python."""
    rng = random.Random(seed)
    definition: dict[str, Any] = {}
    for number in range(RULES):
        first, second = rng.sample(range(FIELDS), 2)
        test: dict[str, Any] = {"$gte": {f"f{first}": rng.randint(3, 8)}}
        if number % 2:
            # Every other rule is a conjunction of two thresholds.
            test = {"$and": [test, {"$lte": {f"f{second}": rng.randint(2, 7)}}]}
        definition[f"r{number}"] = {"all": [{"m": test}]}
    return definition


class QuietHost(durable.engine.Host):  # type: ignore[misc]
    """The stock host without its background dispatch timers (nothing here needs them)."""

    def _run(self) -> None:
        return None


class Baseline:
    """The naive use of durable-rules: its own Host API and Python actions."""

    def __init__(self, seed: int) -> None:
        self.definition = baseline_definition(seed)
        self.fired: list[str] = []
        actions = copy.deepcopy(self.definition)
        for name, rule in actions.items():
            rule["run"] = self._recorder(name)
        self.host = QuietHost()
        # Host.register_rulesets removes 'run' from what it is given: hand it a copy.
        self.host.register_rulesets({BASELINE_RULESET: actions})
        self.sessions = 0

    def _recorder(self, name: str) -> Callable[[Any], None]:
        def record(closure: Any) -> None:
            self.fired.append(name)

        return record

    def facts(self, count: int, seed: int) -> list[dict[str, int]]:
        rng = random.Random(seed)
        return [{f"f{i}": rng.randint(0, 9) for i in range(FIELDS)} for _ in range(count)]

    def assert_one(self, fact: Mapping[str, int]) -> None:
        self.sessions += 1
        sid = str(self.sessions)
        # MessageNotHandledException: no rule matched this fact.
        with contextlib.suppress(durable.engine.MessageNotHandledException):
            self.host.assert_fact(BASELINE_RULESET, {**fact, "sid": sid, "id": "fact"})
        self.host.delete_state(BASELINE_RULESET, sid)

    def expected(self, fact: Mapping[str, int]) -> set[str]:
        """The rules that hold for ``fact``, worked out in Python, to check the firings."""
        found = set()
        for name, rule in self.definition.items():
            test = rule["all"][0]["m"]
            parts = test.get("$and", [test])
            if all(_threshold(part, fact) for part in parts):
                found.add(name)
        return found


def _threshold(part: Mapping[str, Mapping[str, int]], fact: Mapping[str, int]) -> bool:
    ((operator, field_limit),) = part.items()
    ((field, limit),) = field_limit.items()
    return fact[field] >= limit if operator == "$gte" else fact[field] <= limit


class PythonRuleset:
    """The compiled canonical conditions, evaluated with ``_conditions.holds``."""

    def __init__(self, conditions: Sequence[cond.Condition]) -> None:
        self.conditions = list(conditions)

    def holding(self, facts: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> frozenset[int]:
        return frozenset(i for i, c in enumerate(self.conditions) if cond.holds(c, facts, context))


def floor_engine() -> Engine:
    """An engine whose stage one runs in plain Python: the floor for evaluating the criteria."""
    engine = Engine.from_path(default_location())
    engine._levels = PythonRuleset([_condition(k, o) for k, o in engine._stage_one])  # type: ignore[assignment]
    engine._outcome = PythonRuleset([o.when for _, o in engine._stage_two])  # type: ignore[assignment]
    return engine


# --- batch --------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _worker_start(count: int, seed: int, ready: Any) -> None:
    # Each worker builds its own engine and its own copy of the inputs.
    engine = Engine.from_path(default_location())
    _WORKER["decide"] = engine.decide
    _WORKER["items"] = complete_assessments(engine, count, seed)
    for item in _WORKER["items"][:200]:
        engine.decide(item)
    # No worker takes a task before every worker is ready.
    ready.wait(timeout=120)


def _worker_decide(span: tuple[int, int]) -> int:
    decide = _WORKER["decide"]
    levels = 0
    for item in _WORKER["items"][span[0] : span[1]]:
        levels += decide(item).level is not None
    return levels


def _spin(iterations: int) -> int:
    """Plain Python arithmetic: the control for how well the machine runs two processes at once."""
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


SPIN = 150_000


def throughput(workers: int, count: int, seed: int, rounds: int) -> tuple[float, float]:
    """Best decisions per second, and best control tasks per second, with ``workers`` processes.

    Each round decides ``count`` assessments, then runs as many control tasks as
    there were chunks of decisions.
    """
    context = multiprocessing.get_context("spawn")
    chunk = 250
    spans = [(start, min(start + chunk, count)) for start in range(0, count, chunk)]
    best = control = 0.0
    ready = context.Barrier(workers)
    with context.Pool(workers, initializer=_worker_start, initargs=(count, seed, ready)) as pool:
        pool.map(_worker_decide, [(0, 1)] * workers, chunksize=1)
        for _ in range(rounds):
            start = time.perf_counter()
            decided = sum(pool.map(_worker_decide, spans, chunksize=1))
            elapsed = time.perf_counter() - start
            if decided != count:
                msg = f"expected {count} complete decisions, got {decided}"
                raise SystemExit(msg)
            best = max(best, count / elapsed)
            start = time.perf_counter()
            pool.map(_spin, [SPIN] * len(spans), chunksize=1)
            control = max(control, len(spans) / (time.perf_counter() - start))
    return best, control


# --- report -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpus (nproc)": str(usable),
        "cpu model": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "unknown",
        "levelcare": importlib.metadata.version("levelcare"),
        "durable-rules": importlib.metadata.version("durable_rules"),
    }


def stats(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.9)] * 1e6


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4000, help="assessments per round (default 4000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default 5)")
    parser.add_argument("--batch", type=int, default=20000, help="decisions per throughput batch (default 20000)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small counts, one round")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.rounds, args.batch = 400, 1, 2000

    print("levelcare decide() benchmark")
    print("command:", " ".join([os.path.basename(sys.executable), *sys.argv]))
    for key, value in machine().items():
        print(f"  {key}: {value}")

    engine = Engine.default()
    items = complete_assessments(engine, args.count, args.seed)
    known = [engine.vocabulary.validate(item) for item in items]
    floor = floor_engine()
    baseline = Baseline(args.seed)
    facts = baseline.facts(args.count, args.seed + 1)

    # Warm up, and check every contender computes what it should.
    for item in items[:200]:
        decision = engine.decide(item)
        if not decision.complete or not decision.reasons or floor.decide(item).to_dict() != decision.to_dict():
            msg = f"decide() and the plain-Python floor disagree on {item}"
            raise SystemExit(msg)
    # durable frees an uninitialised pointer when deleting a session in which no
    # action ever ran in a fresh slot; the first fact fires, so the slot is primed.
    baseline.assert_one({f"f{i}": 9 for i in range(FIELDS)})
    baseline.fired.clear()
    for fact in facts[:200]:
        baseline.assert_one(fact)
        if set(baseline.fired) != baseline.expected(fact):
            msg = f"the baseline's firings {sorted(baseline.fired)} are wrong for {fact}"
            raise SystemExit(msg)
        baseline.fired.clear()

    def floor_one(facts_: dict[str, Any]) -> object:
        current = facts_.get("current_level")
        return floor._evaluate(facts_, None if current is None else levelcare.Level(current))

    decide_s: list[float] = []
    baseline_s: list[float] = []
    floor_s: list[float] = []
    firings = 0
    for _ in range(args.rounds):
        decide_s += time_calls(engine.decide, items)
        baseline.fired.clear()
        baseline_s += time_calls(baseline.assert_one, facts)
        firings += len(baseline.fired)
        floor_s += time_calls(floor_one, known)

    decide_median, decide_p90 = stats(decide_s)
    base_median, base_p90 = stats(baseline_s)
    floor_median, floor_p90 = stats(floor_s)
    ratio = decide_median / base_median
    print()
    print(f"per assessment, {args.count} complete assessments x {args.rounds} rounds (median / p90 microseconds)")
    print(f"  decide(), full rationale          {decide_median:8.1f} / {decide_p90:8.1f}")
    print(
        f"  baseline, stock durable Host      {base_median:8.1f} / {base_p90:8.1f}"
        f"   ({RULES} rules, {FIELDS} fields, {firings / (args.count * args.rounds):.1f} firings a fact)"
    )
    print(f"  floor, plain-Python criteria      {floor_median:8.1f} / {floor_p90:8.1f}")
    print(f"  decide() / baseline = {ratio:.2f}   decide() / floor = {decide_median / floor_median:.1f}")

    # Scaling needs two otherwise idle cores; other processes show up here.
    one, control_one = throughput(1, args.batch, args.seed, rounds=3)
    two, control_two = throughput(2, args.batch, args.seed, rounds=3)
    scaling = two / one
    print()
    print(f"batch throughput, {args.batch} decisions a batch, best of 3 (spawned workers, own engine each)")
    print(f"  1 worker   {one:9.0f} decisions/s")
    print(f"  2 workers  {two:9.0f} decisions/s   (x{scaling:.2f})")
    print(f"  control, plain-Python loop in the same workers: x{control_two / control_one:.2f} with 2 workers")

    print()
    targets = [
        (
            f"decide() median <= {DECIDE_VS_BASELINE}x the stock-durable baseline",
            ratio <= DECIDE_VS_BASELINE,
            f"{ratio:.2f}x",
        ),
        (
            f"2 workers >= {TWO_WORKERS_VS_ONE}x one worker",
            scaling >= TWO_WORKERS_VS_ONE,
            f"{scaling:.2f}x (the control loop: {control_two / control_one:.2f}x)",
        ),
    ]
    if args.quick:
        # Counts this small say whether everything runs, not how fast it is.
        for label, _, measured in targets:
            print(f"SKIP  {label}: {measured} (a smoke run is not judged)")
        return 0
    for label, ok, measured in targets:
        print(f"{verdict(ok)}  {label}: {measured}")
    return 0 if all(ok for _, ok, _ in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
