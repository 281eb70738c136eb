"""levelcare.dask: a Dask bag decided on a two-worker dask.distributed cluster gives the batch's lines."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import dask.bag
import pytest
from dask.distributed import Client, LocalCluster

import levelcare
from cases import mixed_assessments
from conftest import RULES_DIR
from inprocess import run_levelcare
from levelcare import _batch
from levelcare._batch import _dask as adapter
from levelcare.dask import decide_bag

INVALID_LINES = [
    "",
    "not json",
    '["harm_risk", "low"]',
    '{"harm_risk": "extreme"}',
    '{"harm_rsk": "low", "weeks_at_current_level": -3}',
    '{"facts": {"harm_risk": "imminent"}, "name": "a worked example"}',
]


def batch_lines(source: Path, rules: Path | None = None) -> list[str]:
    """What ``levelcare batch`` writes for ``source``, line by line."""
    output = source.with_suffix(".out.jsonl")
    command = ["batch", str(source), "-o", str(output), "--no-progress"]
    if rules is not None:
        command += ["--rules", str(rules)]
    done = run_levelcare(*command)
    assert done.returncode in (0, 2), done.stderr
    *records, trailer = output.read_text(encoding="utf-8").splitlines()
    # The batch closes with a summary record; the Dask bag holds the records alone.
    assert json.loads(trailer)["batch"] == "complete"
    return records


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as connected,
    ):
        yield connected


def test_1000_lines_on_two_workers_match_the_batch_line_for_line(client: Client, tmp_path: Path) -> None:
    """1,000 lines, some invalid, read by dask.bag.read_text in about 16 partitions: the batch's output, in order.

    Each worker builds the engine once and keeps it for every later partition.
    """
    lines = [json.dumps(item) for item in mixed_assessments(levelcare.Engine.default(), 1000, seed=1)]
    for offset, bad in enumerate(INVALID_LINES):
        lines[137 * offset + 11] = bad
    source = tmp_path / "assessments.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = batch_lines(source)
    assert len(expected) == 999  # the blank line gives no record

    bag = dask.bag.read_text(str(source), blocksize=source.stat().st_size // 16)
    assert bag.npartitions >= 12
    got = decide_bag(bag).compute()
    assert got == expected
    errors = [json.loads(line) for line in got if '"error"' in line]
    # Not the blank line (offset 0) nor the worked example (offset 5), which is valid.
    assert [e["line"] for e in errors] == [
        137 * offset + 12 for offset in range(len(INVALID_LINES)) if offset not in (0, 5)
    ]

    built = client.run(adapter.built)
    assert sorted(map(str, built.values())) == ["{None: 1}", "{None: 1}"], built


def test_mappings_and_a_rule_base_folder(client: Client, tmp_path: Path) -> None:
    """A bag of fact mappings, decided with a rule base folder, gives the batch's lines for those objects."""
    items = mixed_assessments(levelcare.Engine.default(), 300, seed=2)
    source = tmp_path / "mappings.jsonl"
    source.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    expected = batch_lines(source, rules=RULES_DIR)
    got = decide_bag(dask.bag.from_sequence(items, npartitions=5), rules=RULES_DIR).compute()
    assert got == expected
    built = client.run(adapter.built)
    folder = str(RULES_DIR.resolve())
    assert all(counts.get(folder, 0) <= 1 for counts in built.values())
    assert sum(counts.get(folder, 0) for counts in built.values()) >= 1


# --- one partition, in this process ----------------------------------------------------------


def test_items_that_are_not_assessments_give_the_batch_error_object() -> None:
    """Items of other types, and mappings of values no fact takes, give the batch's error line naming their position and fact."""
    engine = levelcare.Engine.default()
    lines = adapter.decide_partition([42, {"harm_risk": dt.date(2026, 1, 1), "_id": "p-8"}, None], 7, None)
    errors = [json.loads(line) for line in lines]
    assert [e["line"] for e in errors] == [7, 8, 9]
    assert {e["error"] for e in errors} == {"invalid-input"}
    assert errors[0]["problems"] == [
        {"fact": "", "message": "expected a line of JSON text or a mapping of facts, got int"}
    ]
    # A mapping is validated as it is, not turned into JSON first: the problem names the fact.
    assert errors[1]["_id"] == "p-8"
    assert [p["fact"] for p in errors[1]["problems"]] == ["harm_risk"]
    assert "got date" in errors[1]["problems"][0]["message"]
    assert adapter.engine_for(None) is engine


def test_text_bytes_and_mappings_give_the_same_lines_as_the_batch() -> None:
    """One assessment as str, bytes and mapping; an over-long line; each as the batch decides its line."""
    engine = levelcare.Engine.default()
    item = mixed_assessments(levelcare.Engine.default(), 1, seed=3)[0]
    text = json.dumps(item) + "\n"
    expected = [_batch.decide_line(engine, number, text.encode())[0] for number in (1, 2, 3)]
    assert not any('"error"' in line for line in expected)
    assert adapter.decide_partition([text, text.encode(), item], 1, None) == expected
    # A worked example as a mapping, with its id: the record the batch writes for its JSON line.
    example = {"name": "n", "facts": {**item, "_id": 9}}
    assert adapter.decide_partition([example], 4, None) == [
        _batch.decide_line(engine, 4, json.dumps(example).encode())[0]
    ]
    assert example["facts"]["_id"] == 9  # the caller's mapping is not changed
    huge = "x" * (_batch.MAX_ASSESSMENT_BYTES + 10)
    (line,) = adapter.decide_partition([huge], 5, None)
    assert line == _batch.decide_line(engine, 5, len(huge))[0]
    assert "the limit for one assessment" in line
