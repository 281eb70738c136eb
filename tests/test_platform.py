"""levelcare installs and loads its rules engine on every supported Python.

The rules engine is durable-rules' C core, compiled into levelcare by setup.py as
``levelcare._engine.durable_rules_engine``. durable-rules 2.0.28 calls
``PyEval_CallObject``, which Python 3.13 removed; setup.py includes
``src/levelcare/_durable_call.h`` ahead of durable's source, which maps it to
``PyObject_CallObject``. Built without it, the engine refers to an undeclared
function whose returned pointer the compiler cuts to an int. These tests run on
whichever Python runs the suite; continuous integration runs it on 3.11, 3.13,
3.14 and 3.15.
"""

from __future__ import annotations

import ast
import importlib.util
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata, resources
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import levelcare
from conftest import ROOT, RULES_DIR
from levelcare._engine import _durable, _durable_source

# The durable-rules functions levelcare may call. durable calls PyEval_CallObject
# only from the callbacks the set_*_callback functions register, so none of those
# are called (see _durable.py).
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
# durable-rules' way of calling back into Python, as its C source writes it.
DURABLE_CALL = (
    "PyObject *call(PyObject *callback, PyObject *arglist) { return PyEval_CallObject(callback, arglist); }\n"
)
STRICT = ["-Werror=implicit-function-declaration", "-Werror=int-conversion"]


def _engine_file() -> Path:
    spec = importlib.util.find_spec("levelcare._engine.durable_rules_engine")
    assert spec is not None and spec.origin is not None, "levelcare was installed without its rules engine"
    return Path(spec.origin)


def _undefined_symbols(library: Path) -> set[str]:
    """The dynamic symbols ``library`` takes from elsewhere (nm, of binutils, which C builds need)."""
    nm = shutil.which("nm")
    assert nm is not None, "nm (GNU binutils) is needed to read the rules engine's symbol table"
    listing = subprocess.run([nm, "-D", "--undefined-only", str(library)], capture_output=True, text=True, check=True)
    return {line.split()[-1].split("@")[0] for line in listing.stdout.splitlines() if line.strip()}


def _compile(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Compile DURABLE_CALL against this Python's headers, as setup.py compiles durable's source."""
    source = tmp_path / "call.c"
    source.write_text("#include <Python.h>\n" + DURABLE_CALL, encoding="utf-8")
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler is not None, "a C compiler is needed to build levelcare, and to run this test"
    command = [compiler, "-std=c99", "-fsyntax-only", f"-I{sysconfig.get_path('include')}", *flags, str(source)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


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


def test_the_engine_is_levelcares_own_build_and_no_durable_rules_package_is_needed() -> None:
    """No dependency makes pip build PyPI's durable-rules, whose build leaves the call undeclared."""
    engine = _engine_file()
    assert engine.parent == Path(_durable.__file__).parent
    durable = [Requirement(r) for r in metadata.requires("levelcare") or [] if re.match(r"durable[-_.]?rules", r, re.I)]

    # Only the benchmarks' extra names the package, and only where its own build is sound.
    def installed_on(requirement: Requirement, python: str, extra: str) -> bool:
        return requirement.marker is not None and requirement.marker.evaluate(
            {"python_version": python, "extra": extra}
        )

    assert [installed_on(r, "3.11", "bench") for r in durable] == [True]
    assert not any(installed_on(r, f"3.{minor}", "bench") for r in durable for minor in range(13, 20))
    assert not any(installed_on(r, "3.11", "") for r in durable)
    licence = engine.with_name("durable_rules_engine.LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in licence and "Jesus Ruiz" in licence


def test_the_engine_refers_to_pyobject_callobject_and_not_to_the_removed_pyeval_callobject() -> None:
    """A reference to PyEval_CallObject would be the undeclared call, its pointer truncated to an int."""
    undefined = _undefined_symbols(_engine_file())
    assert "PyEval_CallObject" not in undefined
    assert "PyEval_CallObjectWithKeywords" not in undefined
    assert "PyObject_CallObject" in undefined


def test_the_build_header_declares_durables_call_on_this_python(tmp_path: Path) -> None:
    """durable's call compiles, with undeclared functions and pointer-to-int as errors, once the header is in."""
    header = ROOT / "src" / "levelcare" / "_durable_call.h"
    result = _compile(tmp_path, "-include", str(header), *STRICT)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(sys.version_info < (3, 13), reason="Python 3.12 and earlier still declare PyEval_CallObject")
def test_without_the_header_durables_call_is_undeclared_on_313_and_later(tmp_path: Path) -> None:
    """The flags setup.py adds turn the defect into a build error rather than a warning."""
    result = _compile(tmp_path, *STRICT)
    assert result.returncode != 0
    assert "PyEval_CallObject" in result.stderr


def test_version_names_levelcare_python_and_the_engine() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "levelcare", "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"levelcare {metadata.version('levelcare')}"
    assert lines[1] == f"Python: {platform.python_implementation()} {platform.python_version()}"
    assert lines[2] == f"Rules engine: durable-rules {_durable_source.VERSION} (its C core, compiled into levelcare)"


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
