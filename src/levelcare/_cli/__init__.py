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

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
