"""A rule base as documentation: Markdown references and a diagram of the levels.

Everything here is derived from a loaded :class:`~levelcare._rulebase.RuleBase`, so an
organisation's own rule base documents itself the same way as the shipped one. The
``levelcare rules`` command and the documentation site both call these functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from xml.sax.saxutils import escape as _xml_escape

from .._model import Level, Transition
from .._rulebase import Rule, RuleBase
from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import Vocabulary
from .._semantics import Placement
from ._wording import alternatives, code, condition_text

__all__ = [
    "condition_text",
    "level_moves",
    "levels_svg",
    "rules_markdown",
    "vocabulary_markdown",
]

_GROUP_TITLES = {
    "clinical": ("Clinical need", "These facts decide the indicated level."),
    "progress": (
        "Progress in treatment",
        "These facts decide transitions; they are read only when `current_level` is known.",
    ),
    "candidacy": (
        "Candidacy and practical facts",
        "These facts shape services and considerations; they never change the level.",
    ),
}
# CommonMark lets a backslash escape any ASCII punctuation; these are the ones that
# could start markup inside a statement or a table cell.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: str) -> str:
    """Text from a rule file, made safe to place in Markdown."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


# --- Markdown references --------------------------------------------------------


def _sources(ids: Iterable[str]) -> str:
    return ", ".join(code(s) for s in ids)


def _when_line(condition: cond.Condition, vocabulary: Vocabulary, levels: Sequence[str] = ()) -> str:
    return f"- **When:** {condition_text(condition, vocabulary, levels)}"


def _header(rulebase: RuleBase, title: str) -> list[str]:
    info = rulebase.info
    lines = [f"# {title}", ""]
    lines.append(f"Rule base **{_md(info.name)}**, version {_md(info.version)}, sha256 `{info.sha256}`.")
    if rulebase.description:
        lines += ["", _md(rulebase.description)]
    return lines


def vocabulary_markdown(rulebase: RuleBase, *, title: str = "Fact vocabulary") -> str:
    """The facts an assessment may give, grouped, with their values and meaning.

    Args:
        rulebase: A loaded rule base.
        title: The page's top heading.

    Returns:
        A Markdown document.
    """
    vocabulary = rulebase.vocabulary
    lines = _header(rulebase, title)
    lines += [
        "",
        "Every fact is optional: a missing key or `null` means unknown, and an unknown fact",
        "is never replaced by a default. Values are listed from lowest to highest need.",
    ]
    for group, (heading, note) in _GROUP_TITLES.items():
        facts = vocabulary.group(group)
        if not facts:
            continue
        lines += ["", f"## {heading}", "", note, "", "| fact | values | meaning | sources |", "|---|---|---|---|"]
        for fact in facts:
            if fact.kind == "integer":
                values = f"whole number {fact.minimum} to {fact.maximum}"
                if fact.need is not None:
                    values += f" (need {fact.need} with the number)"
            else:
                values = " ".join(code(v) for v in fact.values)
            lines.append(f"| {code(fact.name)} | {values} | {_md(fact.meaning)} | {_sources(fact.sources)} |")
    return "\n".join(lines) + "\n"


def _rule_block(rule: Rule, vocabulary: Vocabulary) -> list[str]:
    lines = [f"### {rule.id}", "", _md(rule.statement), ""]
    if rule.otherwise:
        lines.append("- **When:** no criterion for a more intensive level holds")
    else:
        lines.append(_when_line(rule.when, vocabulary))
    lines.append(f"- **Sources:** {_sources(rule.sources)}")
    return lines


def _levels_text(levels: Iterable[Level]) -> str:
    return alternatives([lvl.label for lvl in sorted(levels)], "and")


def rules_markdown(rulebase: RuleBase, *, title: str = "Rules reference") -> str:
    """The whole rule base as a Markdown reference.

    Sections, in order: emergency, the criteria of each level from the most
    intensive down, transitions, programmes, services, considerations, sources.
    Conditions are rendered with :func:`condition_text`.

    Args:
        rulebase: A loaded rule base.
        title: The document's top heading.

    Returns:
        A Markdown document.
    """
    vocabulary = rulebase.vocabulary
    lines = _header(rulebase, title)
    lines += [
        "",
        "Facts and values appear as in the vocabulary; *at least* and *at most* follow",
        "each fact's need order, from lowest to highest need.",
    ]
    if rulebase.emergencies:
        lines += [
            "",
            "## Emergency",
            "",
            "An emergency rule marks the decision for an immediate crisis response, ahead of",
            "any placement. The level itself still comes from the criteria below.",
        ]
        for emergency in rulebase.emergencies:
            lines += ["", f"### {emergency.id}", "", _md(emergency.statement), ""]
            lines += [_when_line(emergency.when, vocabulary), f"- **Sources:** {_sources(emergency.sources)}"]
    for level in reversed(rulebase.levels):
        rules = [r for r in rulebase.rules if r.level == level]
        program = rulebase.programs.get(level.id)
        lines += ["", f"## {level.label[0].upper()}{level.label[1:]} (`{level.id}`)", ""]
        lines += [_md(level.description), ""]
        if program is not None:
            lines.append(_program_sentence(program.hours_per_week, program.days_per_week))
            lines.append("")
        if any(r.otherwise for r in rules):
            lines.append("The level when no criterion for a more intensive level holds.")
        elif rules:
            lines.append("Any one of these criteria requires this level, unless a higher level is required.")
        else:
            lines.append("No criterion requires this level.")
        for rule in rules:
            lines += ["", *_rule_block(rule, vocabulary)]
    lines += _transitions_section(rulebase)
    lines += _programmes_section(rulebase)
    lines += _services_section(rulebase)
    lines += _considerations_section(rulebase)
    lines += _sources_section(rulebase)
    return "\n".join(lines) + "\n"


def _program_sentence(hours: tuple[int, int], days: tuple[int, int]) -> str:
    return f"Programme: {_span(hours)} hours a week on {_span(days)} days a week."


def _span(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]} to {pair[1]}"


def _transitions_section(rulebase: RuleBase) -> list[str]:
    vocabulary = rulebase.vocabulary
    if not (rulebase.escalations or rulebase.transitions or rulebase.readiness or rulebase.bridges):
        return []
    lines = [
        "",
        "## Transitions",
        "",
        "Read only when `current_level` is known. The indicated level is compared with the",
        "current one: above it the person steps up, at it care continues, below it the",
        "person steps down only when every readiness sign that applies holds, and never",
        "below a bridge's floor.",
    ]
    for escalation in rulebase.escalations:
        steps = escalation.levels_above_current
        lines += ["", f"### {escalation.id}: escalation", "", _md(escalation.statement), ""]
        lines.append(f"- **Raises to:** at least {steps} level{'s' if steps != 1 else ''} above the current one")
        lines += [_when_line(escalation.when, vocabulary), f"- **Sources:** {_sources(escalation.sources)}"]
    for note in rulebase.transitions:
        lines += ["", f"### {note.id}: {note.kind.value}", "", _md(note.statement), ""]
        lines.append(f"- **Sources:** {_sources(note.sources)}")
    for readiness in rulebase.readiness:
        lines += ["", f"### {readiness.id}: readiness to step down", "", _md(readiness.statement), ""]
        lines.append(f"- **Applies when stepping down from:** {_levels_text(readiness.applies_to)}")
        lines.append("- **Signs, all needed:**")
        for sign in readiness.signs:
            lines.append(f"  - {_md(sign.statement)} ({condition_text(sign.when, vocabulary)})")
        lines.append(f"- **Sources:** {_sources(readiness.sources)}")
    for bridge in rulebase.bridges:
        lines += ["", f"### {bridge.id}: bridge", "", _md(bridge.statement), ""]
        lines.append(f"- **From:** {_levels_text(bridge.applies_to)}; **no lower than:** {bridge.floor.label}")
        lines.append(f"- **Sources:** {_sources(bridge.sources)}")
    return lines


def _programmes_section(rulebase: RuleBase) -> list[str]:
    lines = [
        "",
        "## Programmes",
        "",
        "What each level looks like in practice; every decision carries the programme of its level.",
        "",
        "| level | hours a week | days a week | typical length | recommended minimum | sources |",
        "|---|---|---|---|---|---|",
    ]
    for program in rulebase.programs.values():
        minimum = "" if program.recommended_minimum_days is None else f"{program.recommended_minimum_days} days"
        lines.append(
            f"| {program.level.label} | {_span(program.hours_per_week)} | {_span(program.days_per_week)} "
            f"| {_md(program.typical_length)} | {minimum} | {_sources(program.sources)} |"
        )
    return lines


def _services_section(rulebase: RuleBase) -> list[str]:
    if not rulebase.services:
        return []
    lines = [
        "",
        "## Services",
        "",
        "Service components recommended with the decision; they never change the level.",
        "",
        "| service | recommended when | sources |",
        "|---|---|---|",
    ]
    for service in rulebase.services:
        when = condition_text(service.when, rulebase.vocabulary, rulebase.levels.ids)
        lines.append(f"| {code(service.name)} | {when} | {_sources(service.sources)} |")
    return lines


def _considerations_section(rulebase: RuleBase) -> list[str]:
    if not rulebase.considerations:
        return []
    lines = [
        "",
        "## Considerations",
        "",
        "Candidacy factors and barriers that inform the plan; they never change the level,",
        "the transition or the status.",
    ]
    for item in rulebase.considerations:
        lines += ["", f"### {item.id}", "", _md(item.statement), ""]
        lines += [
            _when_line(item.when, rulebase.vocabulary, rulebase.levels.ids),
            f"- **Sources:** {_sources(item.sources)}",
        ]
    return lines


def _citations(rulebase: RuleBase) -> dict[str, list[str]]:
    """For each source id, what in the rule base cites it, in rule-base order."""
    cited: dict[str, list[str]] = {s.id: [] for s in rulebase.sources}
    items: list[tuple[str, tuple[str, ...]]] = [(f.name, f.sources) for f in rulebase.vocabulary.facts]
    items += [(r.id, r.sources) for r in rulebase.rules]
    items += [(e.id, e.sources) for e in rulebase.emergencies]
    items += [(e.id, e.sources) for e in rulebase.escalations]
    items += [(t.id, t.sources) for t in rulebase.transitions]
    items += [(r.id, r.sources) for r in rulebase.readiness]
    items += [(b.id, b.sources) for b in rulebase.bridges]
    items += [(f"{p.level.value} programme", p.sources) for p in rulebase.programs.values()]
    items += [(s.name, s.sources) for s in rulebase.services]
    items += [(c.id, c.sources) for c in rulebase.considerations]
    for name, sources in items:
        for source in sources:
            cited.setdefault(source, []).append(name)
    return cited


def _sources_section(rulebase: RuleBase) -> list[str]:
    cited = _citations(rulebase)
    lines = [
        "",
        "## Sources",
        "",
        "Rules paraphrase these documents and cite them by id.",
        "",
        "| id | title | covers | cited by |",
        "|---|---|---|---|",
    ]
    for source in rulebase.sources:
        by = ", ".join(code(name) for name in cited.get(source.id, []))
        lines.append(f"| {code(source.id)} | {_md(source.title)} | {_md(source.covers)} | {by} |")
    return lines


# --- the diagram ----------------------------------------------------------------


def level_moves(rulebase: RuleBase) -> tuple[list[tuple[Level, Level]], list[tuple[Level, Level]]]:
    """Which step-ups and step-downs the rule base can produce (the placement mechanism's moves).

    Returns:
        ``(step_ups, step_downs)``, each a list of ``(current, target)`` pairs.
    """
    return Placement(rulebase).moves()


def levels_svg(rulebase: RuleBase) -> str:
    """An SVG diagram of the levels and the moves between them, from the rule base.

    Boxes are the levels from least to most intensive with their programme hours;
    arcs above are step-ups, arcs below are step-downs, and the legend names the
    transition rules that govern each.

    Returns:
        A standalone SVG document.
    """
    levels = rulebase.levels
    box_w, gap = 150, 60
    # Each label is wrapped, and if need be set smaller, to fit inside its box.
    labels = {level: _fit(level.label, box_w - 2 * _BOX_PADDING, 17, bold=True) for level in levels}
    label_lines = max(len(lines) for lines, _ in labels.values())
    box_h = 26 + 20 * label_lines + 32
    width = max(880, len(levels) * (box_w + gap) - gap + 40)
    left = (width - (len(levels) * box_w + (len(levels) - 1) * gap)) // 2
    ups, downs = level_moves(rulebase)
    highest = max((t.rank - c.rank for c, t in ups), default=0)
    box_top = max(190, 70 + 30 + 42 * highest)
    centre = {lvl: left + i * (box_w + gap) + box_w // 2 for i, lvl in enumerate(levels)}
    legend = [
        (colour, line)
        for colour, text in _legend(rulebase)
        for line in _fit(text, width - 48, 13, bold=False, shrink=False)[0]
    ]
    deepest = max((c.rank - t.rank for c, t in downs), default=0)
    legend_top = box_top + box_h + 30 + 42 * deepest + 40
    height = legend_top + 20 * len(legend)
    up_colour, down_colour = "#1f5fa8", "#b35900"
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="title desc" '
            'font-family="Helvetica, Arial, sans-serif">'
        ),
        f'<title id="title">Levels of care and transitions in {_xml(rulebase.info.name)} {_xml(rulebase.info.version)}</title>',
        '<desc id="desc">'
        + _xml(
            "; ".join(
                [f"step-up from {a.value} to {b.value}" for a, b in ups]
                + [f"step-down from {a.value} to {b.value}" for a, b in downs]
            )
        )
        + "</desc>",
        "<defs>",
        *(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
            for name, colour in (("up", up_colour), ("down", down_colour))
        ),
        "</defs>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        (
            f'<text x="{width // 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">'
            "Levels of care and the moves between them</text>"
        ),
        (
            f'<text x="{width // 2}" y="48" text-anchor="middle" font-size="12" fill="#555">'
            "less intensive, left, to more intensive, right</text>"
        ),
    ]
    for current, target in ups:
        out.append(_arc(centre[current], centre[target], box_top, target.rank - current.rank, -1, up_colour, "up"))
    for current, target in downs:
        bottom = box_top + box_h
        out.append(_arc(centre[current], centre[target], bottom, current.rank - target.rank, 1, down_colour, "down"))
    for level in levels:
        x = centre[level] - box_w // 2
        out.append(f'<g class="level" data-level="{_xml(level.id)}">')
        out.append(
            f'<rect x="{x}" y="{box_top}" width="{box_w}" height="{box_h}" rx="10" '
            'fill="#f3f6fa" stroke="#333" stroke-width="1.5"/>'
        )
        lines, size = labels[level]
        for number, line in enumerate(lines):
            out.append(
                f'<text x="{centre[level]}" y="{box_top + 26 + 20 * number}" text-anchor="middle" '
                f'font-size="{size}" font-weight="bold">{_xml(line)}</text>'
            )
        program = rulebase.programs.get(level.id)
        if program is not None:
            first = box_top + 26 + 20 * label_lines
            out.append(
                f'<text x="{centre[level]}" y="{first}" text-anchor="middle" font-size="12">'
                f"{_xml(_span(program.hours_per_week))} h/week</text>"
            )
            days = "day" if program.days_per_week[1] == 1 else "days"
            out.append(
                f'<text x="{centre[level]}" y="{first + 16}" text-anchor="middle" font-size="12">'
                f"{_xml(_span(program.days_per_week))} {days}/week</text>"
            )
        out.append("</g>")
    y = legend_top
    for colour, text in legend:
        out.append(f'<text class="legend" x="24" y="{y}" font-size="13" fill="{colour}">{_xml(text)}</text>')
        y += 20
    out.append("</svg>")
    return "\n".join(out) + "\n"


_BOX_PADDING = 8
# Widths of text in Helvetica, in ems, generous enough for Arial and the usual
# sans-serif fallbacks: bold and regular. A label that would be wider than its box
# is wrapped at spaces and, if one word is still too wide, set smaller.
_EM = {True: 0.64, False: 0.56}


def _fit(text: str, room: int, size: int, *, bold: bool, shrink: bool = True) -> tuple[list[str], int]:
    """``text`` wrapped into lines that fit ``room`` pixels at ``size`` (smaller if need be), and the size."""
    words = text.split() or [""]
    if shrink:
        widest = max(len(word) for word in words)
        while size > 9 and widest * size * _EM[bold] > room:
            size -= 1
    per_line = max(1, int(room / (size * _EM[bold])))
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= per_line:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines, size


def _arc(start: int, end: int, y: int, distance: int, direction: int, colour: str, marker: str) -> str:
    # Arcs leave and enter off-centre, shifted by their span, so that arcs sharing
    # a box do not overlap at its edge.
    shift = 12 * distance
    sign = 1 if end > start else -1
    x1, x2 = start + sign * shift, end - sign * shift
    bend = y + direction * (30 + 42 * distance)
    return (
        f'<path d="M{x1},{y} C{x1},{bend} {x2},{bend} {x2},{y}" fill="none" stroke="{colour}" '
        f'stroke-width="2" marker-end="url(#arrow-{marker})"/>'
    )


def _legend(rulebase: RuleBase) -> list[tuple[str, str]]:
    up_ids = [t.id for t in rulebase.transitions if t.kind is Transition.STEP_UP]
    continue_ids = [t.id for t in rulebase.transitions if t.kind is Transition.CONTINUE]
    up = "Above, step-up: the indicated level is higher than the current one"
    if up_ids:
        up += f" ({', '.join(up_ids)})"
    escalations = [
        f"{e.id} raises at least {e.levels_above_current} above the current level" for e in rulebase.escalations
    ]
    down = "Below, step-down: every readiness sign that applies holds"
    readiness = [f"{r.id} from {_levels_text(r.applies_to)}" for r in rulebase.readiness]
    if readiness:
        down += f" ({'; '.join(readiness)})"
    lines = [("#1f5fa8", up + ("; " + "; ".join(escalations) if escalations else "") + ".")]
    lines.append(("#b35900", down + "."))
    for bridge in rulebase.bridges:
        lines.append(
            ("#b35900", f"{bridge.id}: from {_levels_text(bridge.applies_to)}, no lower than {bridge.floor.label}.")
        )
    stay = "Otherwise care continues at the current level"
    lines.append(("#333333", stay + (f" ({', '.join(continue_ids)})." if continue_ids else ".")))
    lines.append(("#333333", "A new admission goes straight to the indicated level."))
    return lines


def _xml(text: str) -> str:
    return _xml_escape(text, {'"': "&quot;"})
