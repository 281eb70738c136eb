"""100,000 decisions in one process: resident memory stays flat, also through failures.

Run from the repository root, in an environment with levelcare installed::

    python benchmarks/soak_memory.py             # 100,000 decisions, about 15 s
    python benchmarks/soak_memory.py --count 20000

Every 50th decision has a failure injected inside durable (durable's own error
or the MemoryError it raises when out of sessions, in turn in each C function
the evaluation calls), and every 50th is an invalid assessment. Every other
decision is checked against the answer of an untouched engine. Resident memory
(VmRSS in /proc/self/status) is read after a warm-up and at the end.
``tests/test_reliability.py`` runs the same loop for 20,000 decisions.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import levelcare

# durable-rules' C core as levelcare compiled it: the module the engine calls.
from levelcare._engine import Engine
from levelcare._engine import durable_rules_engine as durable_c
from levelcare._rulebase import default_location

FAULTY = ("assert_fact", "start_action_for_state", "complete_and_start_action")
GROWTH_LIMIT_KB = 10 * 1024
INVALID: list[Any] = [
    {"harm_risk": "extreme"},
    {"harm_rsk": "low", "weeks_at_current_level": -3},
    ["harm_risk", "low"],
    {"medical_instability": "yes", "current_level": "residential"},
]


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    msg = "no VmRSS line in /proc/self/status"
    raise SystemExit(msg)


def mixed_assessments(engine: Engine, count: int, seed: int) -> list[dict[str, Any]]:
    """Complete and partial assessments, admissions and people in treatment."""
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    for index in range(count):
        unknown = (0.0, 0.0, 0.1, 0.4)[index % 4]
        item: dict[str, Any] = {}
        for fact in engine.vocabulary.facts:
            if rng.random() < unknown or (fact.name == "current_level" and index % 3 == 0):
                continue
            if fact.kind == "integer":
                item[fact.name] = rng.randint(fact.minimum or 0, fact.maximum or 0)
            else:
                item[fact.name] = rng.choice(fact.values)
        items.append(item)
    return items


class Faults:
    """Makes one of durable's C functions fail on its next call, once armed."""

    def __init__(self) -> None:
        self.armed: tuple[str, BaseException] | None = None
        self.originals = {name: getattr(durable_c, name) for name in FAULTY}
        # The session of the fact asserted last, and the one the last failure happened in.
        self.last: tuple[int, str] | None = None
        self.failed: tuple[int, str] | None = None

    def install(self) -> None:
        for name, original in self.originals.items():
            setattr(durable_c, name, self._wrap(name, original))

    def remove(self) -> None:
        for name, original in self.originals.items():
            setattr(durable_c, name, original)

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            if name == "assert_fact":
                self.last = (args[0], args[1].rsplit('"sid":"', 1)[1].split('"', 1)[0])
            if self.armed is not None and self.armed[0] == name:
                error = self.armed[1]
                self.armed = None
                self.failed = self.last
                raise error
            return original(*args)

        return call


def session_exists(handle: int, sid: str) -> bool:
    try:
        durable_c.get_state(handle, sid)
    except durable_c.error:
        return False
    return True


def leftover_facts(engine: Engine) -> int:
    """Facts still held by the sessions the engine keeps between evaluations."""
    total = 0
    for ruleset in (engine._levels, engine._outcome):
        for chunk in ruleset._chunks:
            if chunk.session.sid is not None:
                total += len(json.loads(durable_c.get_facts(chunk.handle, chunk.session.sid)))
    return total


def soak(
    engine: Engine,
    faults: Faults,
    items: Sequence[dict[str, Any]],
    expected: Sequence[dict[str, Any]],
    count: int,
    start: int,
) -> dict[str, int]:
    tally = {"right": 0, "wrong": 0, "engine_errors": 0, "not_reached": 0, "invalid": 0, "stale_sessions": 0}
    for step in range(start, start + count):
        index = step % len(items)
        slot = step % 50
        if slot == 7:
            name = FAULTY[(step // 50) % len(FAULTY)]
            error = durable_c.error(f"injected failure in {name}") if step % 100 == 7 else MemoryError()
            faults.armed = (name, error)
            faults.failed = None
            try:
                decision = engine.decide(items[index])
            except levelcare.EngineError:
                tally["engine_errors"] += 1
                # The session the failure happened in is gone.
                if faults.failed is not None and session_exists(*faults.failed):
                    tally["stale_sessions"] += 1
            else:
                faults.armed = None
                tally["not_reached"] += 1
                tally["right" if decision.to_dict() == expected[index] else "wrong"] += 1
        elif slot == 13:
            try:
                engine.decide(INVALID[(step // 50) % len(INVALID)])
            except levelcare.InvalidAssessment:
                tally["invalid"] += 1
        else:
            tally["right" if engine.decide(items[index]).to_dict() == expected[index] else "wrong"] += 1
        if slot in (7, 8):
            # No session holds a fact after its evaluation, whether it failed or not.
            tally["stale_sessions"] += leftover_facts(engine)
    return tally


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="decisions after the warm-up (default 100000)")
    parser.add_argument("--warmup", type=int, default=5_000, help="decisions before the first reading (default 5000)")
    args = parser.parse_args(argv)

    engine = Engine.from_path(default_location())
    items = mixed_assessments(engine, 1000, seed=3)
    expected = [Engine.from_path(default_location()).decide(item).to_dict() for item in items]
    faults = Faults()
    faults.install()
    try:
        soak(engine, faults, items, expected, args.warmup, 0)
        gc.collect()
        before = rss_kb()
        start = time.perf_counter()
        tally = soak(engine, faults, items, expected, args.count, args.warmup)
        elapsed = time.perf_counter() - start
        gc.collect()
        after = rss_kb()
    finally:
        faults.remove()

    grown = after - before
    print(f"soak: {args.count} decisions after {args.warmup} to warm up, {elapsed:.1f} s")
    print(f"  right {tally['right']}, wrong {tally['wrong']}, invalid inputs rejected {tally['invalid']}")
    print(
        f"  failures injected inside durable: {tally['engine_errors']} raised EngineError, {tally['not_reached']} not reached"
    )
    print(f"  failed sessions still alive, or facts left in a session: {tally['stale_sessions']}")
    print(f"  resident memory: {before} kB after warm-up, {after} kB at the end, grew {grown} kB")
    checks = [
        (f"resident memory grew < {GROWTH_LIMIT_KB} kB", grown < GROWTH_LIMIT_KB),
        ("every decision right", tally["wrong"] == 0),
        ("no failed session left behind", tally["stale_sessions"] == 0),
        ("failures really injected", tally["engine_errors"] > 0),
    ]
    for label, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
