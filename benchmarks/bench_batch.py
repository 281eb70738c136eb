"""How fast ``levelcare batch`` decides, against a plain loop over ``decide()``.

Run from the repository root, in an environment with levelcare installed::

    python benchmarks/bench_batch.py            # 100,000 lines, about a minute and a half on 2 cores
    python benchmarks/bench_batch.py --quick    # a smoke run, targets not judged

In the same run, in interleaved rounds, it measures:

* the yardstick: a plain loop calling ``Engine.decide()`` on already-parsed facts in
  this process, nothing else;
* ``levelcare batch IN -o OUT`` with 1 and with 2 worker processes, run as a user
  runs it, from JSON Lines in to JSON Lines out (parsing, validation, the decision,
  its record with the input's digest, the closing record, the atomic rename).

For each it reports the wall time and the CPU time it got (user + system, of every
process it used), then the ratios the targets are about:

* per-CPU rate: lines per CPU second of the batch, over that of the plain loop;
  also without the fixed start-up cost (Python, imports, the engine), measured
  with a one-line input;
* scaling: lines per wall second with 2 workers over 1 worker, next to how much CPU
  the 2-worker run actually got (two idle cores give it about 2.0 CPU seconds a
  second).

Last, the parts of a batch line timed one by one in this process (reading and
validating the JSON line, the decision on validated facts, writing its record),
and the per-CPU ratio those parts alone allow before any input or output.

Medians over the rounds; exit status 1 when a target is missed (not with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from levelcare._batch import RecordWriter, read_assessment
from levelcare._engine import Engine

PER_CPU_VS_LOOP = 0.9
TWO_WORKERS_VS_ONE = 1.8


def assessments(engine: Engine, count: int, seed: int) -> list[dict[str, Any]]:
    """Complete and partly known assessments drawn from the vocabulary, people in treatment among them."""
    rng = random.Random(seed)
    items = []
    for _ in range(count):
        facts: dict[str, Any] = {}
        for fact in engine.vocabulary.facts:
            if rng.random() < 0.1:
                continue
            if fact.kind == "integer":
                facts[fact.name] = rng.randint(fact.minimum or 0, min(fact.maximum or 0, 30))
            elif fact.name == "current_level" and rng.random() < 0.5:
                continue
            else:
                facts[fact.name] = rng.choice(fact.values)
        items.append(facts)
    return items


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_batch(source: Path, out: Path, workers: int) -> tuple[float, float]:
    """Wall and CPU seconds of one ``levelcare batch`` run (its workers included)."""
    command = [sys.executable, "-m", "levelcare", "batch", str(source), "-o", str(out), "--workers", str(workers)]
    cpu, start = children_cpu(), time.perf_counter()
    done = subprocess.run([*command, "--no-progress"], capture_output=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        msg = f"levelcare batch failed ({done.returncode}): {done.stderr.decode()[-2000:]}"
        raise SystemExit(msg)
    return wall, children_cpu() - cpu


def run_loop(engine: Engine, items: list[dict[str, Any]]) -> tuple[float, float]:
    """Wall and CPU seconds of a plain loop over ``decide()`` in this process."""
    cpu, start = time.process_time(), time.perf_counter()
    for facts in items:
        engine.decide(facts)
    return time.perf_counter() - start, time.process_time() - cpu


def line_parts(engine: Engine, items: list[dict[str, Any]], rounds: int) -> dict[str, float]:
    """Microseconds per line of each part of a batch line, median over interleaved rounds."""
    raws = [json.dumps(facts).encode() for facts in items]
    validated = [read_assessment(raw, engine.vocabulary)[0] for raw in raws]
    decisions = [engine.decide(facts) for facts in items]
    writer = RecordWriter()
    steps = {
        "decide() (the plain loop)": (engine.decide, items),
        "read and validate the JSON line": (lambda raw: read_assessment(raw, engine.vocabulary), raws),
        "decide validated facts": (engine.decide_validated, validated),
        "write the record": (lambda decision: writer.record(decision, 1), decisions),
    }
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(max(rounds, 3)):
        for name, (step, inputs) in steps.items():
            start = time.process_time()
            for value in inputs:
                step(value)
            samples[name].append((time.process_time() - start) / len(inputs) * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000, help="lines per batch (default 100000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a small batch, one round")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    if args.quick:
        args.lines, args.rounds = 1000, 1

    print("levelcare batch benchmark")
    print(f"  python: {platform.python_implementation()} {platform.python_version()}")
    print(f"  cpus: {os.cpu_count()}  load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  levelcare: {_version()}")

    engine = Engine.default()
    items = assessments(engine, args.lines, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.jsonl"
        source.write_text("".join(json.dumps(facts) + "\n" for facts in items))
        single = Path(folder) / "one.jsonl"
        single.write_text(json.dumps(items[0]) + "\n")
        out = Path(folder) / "out.jsonl"

        # Warm up the loop, and check the batch decides what decide() decides.
        run_loop(engine, items[:500])
        run_batch(source, out, 1)
        with out.open(encoding="utf-8") as stream:
            for facts, line in zip(items[:500], stream, strict=False):
                record = json.loads(line)
                expected = engine.decide(facts).to_dict()
                if any(record[key] != value for key, value in expected.items() if key != "input_sha256"):
                    msg = f"levelcare batch and decide() disagree on {facts}"
                    raise SystemExit(msg)

        rows: dict[str, list[tuple[float, float]]] = {"loop": [], "start-up": [], "1 worker": [], "2 workers": []}
        for _ in range(args.rounds):
            rows["loop"].append(run_loop(engine, items))
            rows["start-up"].append(run_batch(single, out, 1))
            rows["1 worker"].append(run_batch(source, out, 1))
            rows["2 workers"].append(run_batch(source, out, 2))

    wall = {name: statistics.median(w for w, _ in runs) for name, runs in rows.items()}
    cpu = {name: statistics.median(c for _, c in runs) for name, runs in rows.items()}
    print()
    print(f"{args.lines} lines, median of {args.rounds} rounds")
    print(f"  {'':14} {'wall s':>8} {'CPU s':>8} {'CPU/wall':>9} {'lines per CPU s':>16}")
    for name in rows:
        lines = 1 if name == "start-up" else args.lines
        print(f"  {name:14} {wall[name]:8.2f} {cpu[name]:8.2f} {cpu[name] / wall[name]:9.2f} {lines / cpu[name]:16.0f}")

    loop_rate = args.lines / cpu["loop"]
    batch_rate = args.lines / cpu["1 worker"]
    steady_rate = args.lines / max(cpu["1 worker"] - cpu["start-up"], 1e-9)
    per_cpu = batch_rate / loop_rate
    per_cpu_steady = steady_rate / loop_rate
    scaling = wall["1 worker"] / wall["2 workers"]
    print()
    print(f"  per-CPU rate, batch (1 worker) / plain loop: {per_cpu:.2f}  (without start-up: {per_cpu_steady:.2f})")
    parts = line_parts(engine, items[:5000], args.rounds)
    print("  the parts of a line, in this process (median us per line):")
    for name, value in parts.items():
        print(f"    {name:40} {value:7.1f}")
    allowed = parts["decide() (the plain loop)"] / (
        parts["read and validate the JSON line"] + parts["decide validated facts"] + parts["write the record"]
    )
    print(f"  per-CPU ratio these parts allow, before input and output: {allowed:.2f}")
    print(
        f"  2 workers / 1 worker, lines per wall second: x{scaling:.2f}  "
        f"(CPU the 2-worker run got: {cpu['2 workers'] / wall['2 workers']:.2f} CPU s a second)"
    )

    targets = [
        (f"per-CPU rate >= {PER_CPU_VS_LOOP} of the plain loop", per_cpu >= PER_CPU_VS_LOOP, f"{per_cpu:.2f}"),
        (f"2 workers >= {TWO_WORKERS_VS_ONE}x one worker", scaling >= TWO_WORKERS_VS_ONE, f"x{scaling:.2f}"),
    ]
    print()
    if args.quick:
        for label, _, measured in targets:
            print(f"SKIP  {label}: {measured} (a smoke run is not judged)")
        return 0
    for label, ok, measured in targets:
        print(f"{'PASS' if ok else 'FAIL'}  {label}: {measured}")
    return 0 if all(ok for _, ok, _ in targets) else 1


def _version() -> str:
    from importlib import metadata

    return metadata.version("levelcare")


if __name__ == "__main__":
    sys.exit(main())
