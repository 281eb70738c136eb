"""100,000 assessments on a two-worker Dask cluster, compared line for line with ``levelcare batch``.

Run from the repository root, in an environment with ``levelcare[dask]``::

    python benchmarks/bench_dask.py                 # 100,000 assessments
    python benchmarks/bench_dask.py --count 5000    # a smaller run

Writes the assessments (complete and partial, admissions and people in treatment,
one invalid line in a thousand) as a JSON Lines file, then:

* ``levelcare batch`` with 1 and with 2 worker processes: the reference output
  and the throughput of the batch path;
* ``levelcare.dask.decide_bag`` on a ``dask.distributed.LocalCluster`` of two
  worker processes (one thread each), reading the file with
  ``dask.bag.read_text`` and writing one file per partition with
  ``to_textfiles``; timed from the call to the last file written, the count of
  each partition's lines included, the cluster's start-up reported apart.

Every output line of the Dask run is compared with the batch's line of the same
number; the run fails (exit status 1) on any difference.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dask.bag
from dask.distributed import Client, LocalCluster

import levelcare
from levelcare._batch import _dask as adapter
from levelcare.dask import decide_bag


def assessments(count: int, seed: int) -> Iterator[str]:
    """JSON lines: complete and partial assessments, admissions and in treatment, 1 in 1,000 invalid."""
    engine = levelcare.Engine.default()
    rng = random.Random(seed)
    for index in range(count):
        if index % 1000 == 999:
            yield '{"harm_risk": "extreme"}'
            continue
        unknown = (0.0, 0.0, 0.1, 0.4)[index % 4]
        item: dict[str, Any] = {}
        for fact in engine.vocabulary.facts:
            if rng.random() < unknown or (fact.name == "current_level" and index % 3 == 0):
                continue
            if fact.kind == "integer":
                item[fact.name] = rng.randint(fact.minimum or 0, fact.maximum or 0)
            else:
                item[fact.name] = rng.choice(fact.values)
        yield json.dumps(item)


def run_batch(source: Path, output: Path, workers: int) -> float:
    """Seconds ``levelcare batch`` takes, start-up included."""
    command = [sys.executable, "-m", "levelcare", "batch", str(source), "-o", str(output), "--no-progress"]
    command += ["--workers", str(workers)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 2):
        msg = f"levelcare batch failed: {done.stderr[-2000:]}"
        raise SystemExit(msg)
    return elapsed


def lines_of(paths: Sequence[Path]) -> Iterator[str]:
    for path in paths:
        with path.open(encoding="utf-8") as stream:
            for line in stream:
                yield line.rstrip("\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="assessments (default 100000)")
    parser.add_argument("--partitions", type=int, default=40, help="partitions of the input (default 40)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    print("levelcare.dask benchmark")
    print("command:", " ".join([os.path.basename(sys.executable), *sys.argv]))
    print(f"  cpus: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}")
    if hasattr(os, "getloadavg"):
        print(f"  load average (1 min) at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        source = root / "assessments.jsonl"
        with source.open("w", encoding="utf-8") as stream:
            for line in assessments(args.count, args.seed):
                stream.write(line + "\n")
        size = source.stat().st_size
        print(f"  {args.count} assessments, {size / 1e6:.1f} MB")

        reference = root / "batch.jsonl"
        batch_two = run_batch(source, reference, workers=2)
        batch_one = run_batch(source, root / "batch-1.jsonl", workers=1)

        start = time.perf_counter()
        with (
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
            Client(cluster) as client,
        ):
            started = time.perf_counter() - start
            bag = dask.bag.read_text(str(source), blocksize=size // args.partitions + 1)
            out = root / "dask"
            start = time.perf_counter()
            decide_bag(bag).to_textfiles(str(out / "*.jsonl"), name_function=lambda i: f"{i:06d}")
            elapsed = time.perf_counter() - start
            built = client.run(adapter.built)
        parts = sorted(out.glob("*.jsonl"))

        compared = differ = 0
        first: int | None = None
        for number, (mine, theirs) in enumerate(itertools.zip_longest(lines_of(parts), lines_of([reference])), start=1):
            compared += 1
            if mine != theirs:
                differ += 1
                first = first or number
        invalid = sum('"error":"invalid-input"' in line for line in lines_of([reference]))

    print()
    print(f"{'':34}{'seconds':>10}{'decisions/s':>14}")
    print(f"{'levelcare batch, 1 worker':34}{batch_one:10.1f}{args.count / batch_one:14.0f}")
    print(f"{'levelcare batch, 2 workers':34}{batch_two:10.1f}{args.count / batch_two:14.0f}")
    print(f"{'dask, 2 workers (cluster up)':34}{elapsed:10.1f}{args.count / elapsed:14.0f}")
    print(f"  cluster start-up {started:.1f} s; {len(parts)} partitions; engines built per worker: {built}")
    print(f"  lines compared {compared}, different {differ}, invalid lines in both {invalid}")
    if differ:
        print(f"FAIL  the Dask output differs from the batch's, first at line {first}")
        return 1
    print("PASS  every line of the Dask output equals the batch's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
