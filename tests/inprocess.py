"""The ``levelcare`` command run in the test process, as ``python -m levelcare`` runs it.

Starting an interpreter for each command costs more than most commands take, so
the tests that check what a command prints and the status it exits with call the
command line's entry point here, with standard input, output and error replaced by
in-memory streams that encode as the interpreter's own do (UTF-8; standard error
with ``backslashreplace``). Tests whose subject is the process itself (signals, a
reader that goes away, a full device, the installed entry point) start a real one.
"""

from __future__ import annotations

import io
import subprocess
import sys

from levelcare._cli import main


def _text(raw: io.BytesIO, errors: str = "strict") -> io.TextIOWrapper:
    return io.TextIOWrapper(raw, encoding="utf-8", errors=errors, write_through=True)


def run_levelcare(
    *args: str, stdin: bytes | str | None = None, errors: str = "strict"
) -> subprocess.CompletedProcess[str]:
    """``levelcare ARGS`` in this process: its exit status and what it wrote, as text.

    Args:
        args: The command line after the program name.
        stdin: What standard input holds (nothing when None); text is encoded as UTF-8.
        errors: How bytes that are not UTF-8 in the output are decoded.

    Returns:
        The status and both outputs, as ``subprocess.run`` gives them.
    """
    data = stdin.encode("utf-8") if isinstance(stdin, str) else (stdin or b"")
    saved = sys.stdin, sys.stdout, sys.stderr
    out, err = io.BytesIO(), io.BytesIO()
    stdout, stderr = _text(out), _text(err, "backslashreplace")
    sys.stdin, sys.stdout, sys.stderr = _text(io.BytesIO(data)), stdout, stderr
    try:
        status = main(list(args))
    except SystemExit as stop:
        # argparse exits this way on a usage error, --help and --version.
        if stop.code is None or isinstance(stop.code, int):
            status = stop.code or 0
        else:
            print(stop.code, file=stderr)
            status = 1
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    stdout.flush()
    stderr.flush()
    return subprocess.CompletedProcess(
        ["levelcare", *args], status, out.getvalue().decode("utf-8", errors), err.getvalue().decode("utf-8", errors)
    )
