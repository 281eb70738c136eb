"""Sphinx configuration for the levelcare documentation.

Build with warnings as errors::

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document the checkout being built, not whichever levelcare happens to be installed.
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(DOCS / "_ext"))

project = "levelcare"
author = "levelcare developers"
copyright = "levelcare developers"  # noqa: A001 - the name Sphinx reads

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "levelcare_docs",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

myst_enable_extensions = ["colon_fence", "deflist"]
# Links such as generated/rules.md#sources resolve to the heading's anchor.
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = "levelcare"

# The rule base the reference pages and the diagram are generated from.
levelcare_rules = str(ROOT / "rules")
# Pages other parts of the project write; until one exists, its toctree entry and
# the links to it are left out, so the build stays free of warnings.
levelcare_optional_docs = ["testing-your-rules", "performance"]
