"""Build steps that pyproject.toml cannot declare.

* ``levelcare._pyeval_compat``, a small C extension that puts back the one C API
  function durable-rules needs and Python 3.13 removed (see the C file). It is
  built for every Python, so every wheel is tied to the Python it was built for;
  on 3.11 and 3.12 it is an empty module.
* The rule base in ``rules/`` is copied into the package as ``levelcare/rules``.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithRules(build_py):
    """build_py that also copies ``rules/*.toml`` into the package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "levelcare" / "rules"
        self.mkpath(str(target))
        for source in sorted((ROOT / "rules").glob("*.toml")):
            self.copy_file(str(source), str(target / source.name))


setup(
    ext_modules=[Extension("levelcare._pyeval_compat", sources=["src/levelcare/_pyeval_compat.c"])],
    cmdclass={"build_py": BuildWithRules},
)
