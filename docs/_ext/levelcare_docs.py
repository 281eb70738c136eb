"""Sphinx extension: pages and a diagram generated from the rule base at build time.

On ``builder-inited`` it writes, under ``generated/`` in the source folder:

* ``rules.md``, the rules reference;
* ``vocabulary.md``, the fact vocabulary;
* ``levels.svg``, the diagram of the levels and the transitions between them.

Files are rewritten only when their content changes, so incremental builds stay
incremental. The rule base is read from the ``levelcare_rules`` setting.

On ``source-read`` it drops the toctree entries of, and turns links to, the pages
named in ``levelcare_optional_docs`` into plain text while those pages do not
exist; the documentation then builds without warnings either way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

from levelcare._render._reference import levels_svg, rules_markdown, vocabulary_markdown
from levelcare._rulebase import default_location, load


def _write(path: Path, content: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == content:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def _generate(app: Sphinx) -> None:
    rules = app.config.levelcare_rules
    rulebase = load(rules if rules else default_location())
    folder = Path(app.srcdir) / "generated"
    _write(folder / "rules.md", rules_markdown(rulebase))
    _write(folder / "vocabulary.md", vocabulary_markdown(rulebase))
    _write(folder / "levels.svg", levels_svg(rulebase))


def _drop_missing_pages(app: Sphinx, docname: str, source: list[str]) -> None:
    text = source[0]
    for name in app.config.levelcare_optional_docs:
        if (Path(app.srcdir) / f"{name}.md").exists():
            continue
        text = re.sub(rf"(?m)^{re.escape(name)}\n", "", text)
        text = re.sub(rf"\[([^\]]+)\]\({re.escape(name)}\.md(#[^)]*)?\)", r"\1", text)
    source[0] = text


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("levelcare_rules", None, "env")
    app.add_config_value("levelcare_optional_docs", [], "env")
    app.connect("builder-inited", _generate)
    app.connect("source-read", _drop_missing_pages)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
