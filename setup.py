"""Build steps that pyproject.toml cannot declare.

* ``levelcare._engine.durable_rules_engine``, the rules engine: the C core of
  durable-rules, compiled here from that release's source distribution rather
  than installed as the durable-rules package. durable-rules 2.0.28 is
  unmaintained and calls ``PyEval_CallObject``, which Python 3.13 removed; its own
  setup.py replaces CFLAGS and offers no way to add a declaration, and pip passes a
  dependency no build options of levelcare's. So the build here includes
  ``src/levelcare/_durable_call.h`` ahead of durable's source, which maps the call to
  ``PyObject_CallObject``, and makes an implicit declaration or a pointer converted
  to an integer a compile error, so that no Python can get a build that truncates a
  returned pointer.

  The source distribution is fetched with ``pip download`` (the index pip is
  configured with: PIP_INDEX_URL, pip.conf) and must match the sha256 in
  ``src/levelcare/_engine/_durable_source.py``. To build without a package index,
  set ``LEVELCARE_DURABLE_SDIST`` to the path of that file.
* The rule base in ``rules/`` is copied into the package as ``levelcare/rules``.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
ENGINE = "levelcare._engine.durable_rules_engine"
# durable's setup.py compiles these into its extension (a static library of five
# files, then the Python module).
DURABLE_SOURCES = [f"src/rules/{name}.c" for name in ("json", "rete", "state", "events", "regex")] + [
    "src/rulespy/rules.c"
]


def _durable_release() -> tuple[str, str]:
    """The pinned durable-rules version and sdist sha256, read without importing levelcare."""
    tree = ast.parse((ROOT / "src" / "levelcare" / "_engine" / "_durable_source.py").read_text(encoding="utf-8"))
    values = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    return str(values["VERSION"]), str(values["SDIST_SHA256"])


def _fetch_sdist(version: str, sha256: str, directory: Path) -> Path:
    """durable-rules' source distribution, from LEVELCARE_DURABLE_SDIST or pip download."""
    given = os.environ.get("LEVELCARE_DURABLE_SDIST")
    if given:
        archive = Path(given)
        if not archive.is_file():
            sys.exit(f"levelcare: LEVELCARE_DURABLE_SDIST={given[:40]!r} is not a file")
    else:
        requirement = directory / "durable-requirement.txt"
        requirement.write_text(f"durable-rules=={version} --hash=sha256:{sha256}\n", encoding="utf-8")
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        command += ["--require-hashes", "-r", str(requirement), "-d", str(directory)]
        if subprocess.run(command, check=False).returncode != 0:
            sys.exit(
                f"levelcare: could not fetch durable-rules {version}'s source distribution with pip, "
                "which the rules engine is compiled from; check the package index pip uses "
                f"(PIP_INDEX_URL), or set LEVELCARE_DURABLE_SDIST to a downloaded durable_rules-{version}.tar.gz"
            )
        archive = next(directory.glob("durable_rules-*.tar.gz"))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != sha256:
        sys.exit(f"levelcare: {archive.name} has sha256 {digest}, not durable-rules {version}'s {sha256}")
    return archive


def _unpack(archive: Path, version: str, directory: Path) -> Path:
    """Extract the C sources, headers and licence of the release into ``directory``."""
    top = f"durable_rules-{version}"
    with tarfile.open(archive) as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.isfile()
            and (m.name == f"{top}/LICENSE" or m.name.startswith((f"{top}/src/rules/", f"{top}/src/rulespy/")))
        ]
        if any(m.name.startswith("/") or ".." in m.name.split("/") for m in members):
            sys.exit(f"levelcare: {archive.name} names files outside its own directory")
        tar.extractall(directory, members=members)
    return directory / top


class BuildEngine(build_ext):
    """build_ext that compiles durable-rules' C core from its pinned release."""

    def run(self) -> None:
        version, sha256 = _durable_release()
        engine = next(ext for ext in self.extensions if ext.name == ENGINE)
        with tempfile.TemporaryDirectory(prefix="levelcare-durable-") as scratch:
            source = _unpack(_fetch_sdist(version, sha256, Path(scratch)), version, Path(scratch))
            engine.sources = [str(source / name) for name in DURABLE_SOURCES]
            engine.include_dirs = [str(source / "src" / "rules")]
            super().run()
            # durable-rules' licence (MIT) goes with the code compiled from it.
            target = Path(self.get_ext_fullpath(ENGINE)).parent / "durable_rules_engine.LICENSE"
            shutil.copyfile(source / "LICENSE", target)


class BuildWithRules(build_py):
    """build_py that also copies ``rules/*.toml`` into the package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "levelcare" / "rules"
        self.mkpath(str(target))
        for source in sorted((ROOT / "rules").glob("*.toml")):
            self.copy_file(str(source), str(target / source.name))


setup(
    ext_modules=[
        Extension(
            ENGINE,
            sources=[],  # durable's files, filled in by BuildEngine once fetched
            # durable's own flags (its setup.py sets CFLAGS to these), the header that
            # declares the call, and errors instead of warnings for undeclared functions
            # and pointers used as integers (GCC and Clang both know these flags).
            extra_compile_args=[
                "-std=c99",
                "-D_GNU_SOURCE",
                "-include",
                str(ROOT / "src" / "levelcare" / "_durable_call.h"),
                "-Werror=implicit-function-declaration",
                "-Werror=int-conversion",
            ],
        )
    ],
    cmdclass={"build_ext": BuildEngine, "build_py": BuildWithRules},
)
