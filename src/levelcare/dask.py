"""Decide assessments at scale on Dask: ``decide_bag`` (needs the ``dask`` extra).

Install with ``pip install "levelcare[dask]"``, then, for example on a
dask.distributed cluster::

    import dask.bag
    from dask.distributed import Client
    from levelcare.dask import decide_bag

    client = Client()  # or the address of a cluster
    lines = decide_bag(dask.bag.read_text("assessments-*.jsonl", blocksize="16MiB"))
    lines.to_textfiles("decisions-*.jsonl")

Every output line is exactly the line ``levelcare batch`` writes for the same
input line. Each worker process builds the engine once and keeps it.

.. versionadded:: 1.0
"""

from __future__ import annotations

try:
    import dask.bag  # noqa: F401 - only to say what is missing
except ImportError as error:  # pragma: no cover - the test environment has Dask
    msg = 'levelcare.dask needs Dask: pip install "levelcare[dask]"'
    raise ImportError(msg) from error

from ._batch._dask import decide_bag

__all__ = ["decide_bag"]
