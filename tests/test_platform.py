"""levelcare installs and loads its rules engine on every supported Python.

durable-rules 2.0.28 calls ``PyEval_CallObject``, which Python 3.13 removed from
its C API; levelcare ships a small C extension that defines it again (see
``src/levelcare/_pyeval_compat.c`` and the notes in ``_durable.py``). These tests
run on whichever Python runs the suite; continuous integration runs it on 3.11
and 3.13.
"""

from __future__ import annotations

import ast
import ctypes
import importlib.util
import platform
import re
import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest

import levelcare
from conftest import ROOT, RULES_DIR
from levelcare import _pyeval_compat
from levelcare._engine import _durable

NEEDS_SHIM = sys.version_info >= (3, 13)
# The durable-rules functions levelcare may call. durable calls PyEval_CallObject
# only from the callbacks the set_*_callback functions register, so none of those
# may ever be called (see _durable.py).
DURABLE_FUNCTIONS = {
    "create_ruleset",
    "delete_ruleset",
    "assert_fact",
    "retract_fact",  # the kept session's facts are taken back after each evaluation
    "start_action_for_state",
    "complete_and_start_action",
    "delete_state",
    "error",
}


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)


def test_levelcare_calls_only_durable_functions_that_never_call_back_into_python() -> None:
    tree = ast.parse(Path(_durable.__file__).read_text(encoding="utf-8"))
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "_engine"
    }
    assert used, "the durable module is no longer read as _engine"
    assert used <= DURABLE_FUNCTIONS, sorted(used - DURABLE_FUNCTIONS)
    assert not any(name.startswith("set_") for name in used)


def test_the_shim_defines_pyeval_callobject_exactly_on_313_and_later() -> None:
    assert int(NEEDS_SHIM) == _pyeval_compat.PROVIDES_PYEVAL_CALLOBJECT


@pytest.mark.skipif(not NEEDS_SHIM, reason="Python 3.12 and earlier define PyEval_CallObject themselves")
def test_the_shim_calls_like_the_function_python_removed() -> None:
    """Called as C code would call it: positional arguments as a tuple, or NULL for none."""
    origin = importlib.util.find_spec("levelcare._pyeval_compat").origin  # type: ignore[union-attr]
    call = ctypes.PyDLL(origin).PyEval_CallObject
    call.restype = ctypes.py_object
    call.argtypes = [ctypes.py_object, ctypes.c_void_p]
    arguments = ("abc",)
    assert call(len, id(arguments)) == 3
    assert call(dict, None) == {}
    with pytest.raises(ValueError, match="invalid literal"):
        call(int, id(("not a number",)))


@pytest.mark.skipif(not NEEDS_SHIM, reason="durable-rules loads by itself on Python 3.12 and earlier")
def test_durable_loads_on_313_only_because_of_the_shim() -> None:
    alone = _python("import durable_rules_engine")
    assert alone.returncode != 0
    assert "undefined symbol: PyEval_CallObject" in alone.stderr
    with_levelcare = _python("import levelcare; print(levelcare.decide({'withdrawal_risk': 'severe'}).level.value)")
    assert with_levelcare.returncode == 0, with_levelcare.stderr
    assert with_levelcare.stdout == "inpatient\n"


@pytest.mark.skipif(not NEEDS_SHIM, reason="the shim is loaded only on Python 3.13 and later")
def test_a_missing_shim_is_a_clear_import_error() -> None:
    code = (
        "import sys; sys.modules['levelcare._pyeval_compat'] = None\n"
        "try:\n    import levelcare\nexcept ImportError as error:\n    print(error)\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert "reinstall levelcare with a C compiler present" in result.stdout
    assert "Traceback" not in result.stderr


def test_version_names_levelcare_python_and_the_engine() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "levelcare", "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"levelcare {metadata.version('levelcare')}"
    assert lines[1] == f"Python: {platform.python_implementation()} {platform.python_version()}"
    assert lines[2].startswith(f"Rules engine: durable-rules {metadata.version('durable_rules')}")
    assert ("PyEval_CallObject supplied by levelcare" in lines[2]) == NEEDS_SHIM


def _supported_minors() -> list[int]:
    classifiers = metadata.metadata("levelcare").get_all("Classifier") or []
    return sorted(
        int(m.group(1)) for c in classifiers if (m := re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", c))
    )


def test_metadata_lists_this_python_and_admits_exactly_the_listed_versions() -> None:
    minors = _supported_minors()
    assert sys.version_info.minor in minors
    assert minors == list(range(minors[0], minors[-1] + 1))
    requires = metadata.metadata("levelcare")["Requires-Python"]
    assert set(requires.replace(" ", "").split(",")) == {f">=3.{minors[0]}", f"<3.{minors[-1] + 1}"}


def test_readme_and_quickstart_state_the_supported_versions() -> None:
    minors = _supported_minors()
    names = [f"3.{m}" for m in minors]
    stated = "CPython " + ", ".join(names[:-1]) + f" or {names[-1]}"
    for page in (ROOT / "README.md", ROOT / "docs" / "quickstart.md"):
        text = " ".join(page.read_text(encoding="utf-8").split())
        assert stated in text, page.name


def test_the_installed_package_ships_the_rule_base() -> None:
    """Installed from a wheel, the rule files are inside the package, byte for byte."""
    if "site-packages" not in levelcare.__file__:
        pytest.skip("levelcare is imported from the source tree (an editable install)")
    packaged = resources.files("levelcare").joinpath("rules")
    shipped = {p.name: p.read_bytes() for p in RULES_DIR.glob("*.toml")}
    assert {f.name: f.read_bytes() for f in packaged.iterdir() if f.name.endswith(".toml")} == shipped
