"""The command line: the only part of levelcare that prints and sets exit statuses.

* ``_main``: the parser of every command and ``main``, which turns every error into
  a message and an exit status;
* ``_common``: the exit statuses and what every command shares;
* ``_rules``: decide, schema, rules, check, report, override, overrides and diff;
* ``_batch``: ``levelcare batch``;
* ``_serve``: ``levelcare serve``.

Exit statuses, for every command (all defined in ``_common``): 0 done (for
``decide``: the level is decided), 3 the level needs more data (``decide``), 2
invalid input (every problem is on standard error, by fact name; for ``batch``: one
or more lines were invalid), 4 a check or comparison not decided within its time
budget (``check``, ``diff``), 1 anything else, such as a rule base that does not
load or, for ``diff``, rule bases that decide differently.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


# The console script imports this package, and so does every batch worker process
# (a spawned process runs its parent's main script first): the commands are imported
# when one runs.
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``levelcare ARGV`` (the process's arguments by default); the exit status."""
    from ._main import main as run

    return run(argv)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``levelcare`` command."""
    from ._main import build_parser as build

    return build()
