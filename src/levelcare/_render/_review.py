"""The review page: one self-contained HTML file a clinician reads in a browser.

The page holds everything inline (styles, the levels diagram as SVG, the movement
chart as SVG) and refers to nothing outside itself: no script, no font, no image
is fetched, so it can be mailed, archived with a change request, or opened on a
machine with no network. Its sections, in order: the rule base and whether it
passed ``levelcare check``; the levels diagram; the changes against another rule
base, when given (the items changed side by side, then how many assessments or
records move from each old level to each new one); the test vectors, each with
pass or fail; and each level's criteria with their conditions and sources.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence

import attrs

from .._rulebase import RuleBase
from .._rulebase._cases import Case
from ._reference import condition_text, levels_svg

_CODE = re.compile(r"`([^`]*)`")


@attrs.frozen(kw_only=True)
class CaseResult:
    """A test vector and how it fared: ``mismatches`` is empty when it passes.

    ``error`` says why no decision was made, when none was.
    """

    case: Case
    mismatches: tuple[str, ...] = ()
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.error


@attrs.frozen(kw_only=True)
class CheckSummary:
    """What ``levelcare check`` said, as the page shows it.

    Attributes:
        ok: Whether the check passed.
        findings: ``(severity, check, where, message)`` for each finding.
        checked: A sentence of what was checked exhaustively, or ``""``.
    """

    ok: bool
    findings: tuple[tuple[str, str, str, str], ...] = ()
    checked: str = ""


@attrs.frozen(kw_only=True)
class ChangedItem:
    """One item changed between the rule bases, in words: ``old`` or ``new`` is empty when added or removed."""

    label: str
    change: str
    old: tuple[str, ...]
    new: tuple[str, ...]
    old_file: str = ""
    new_file: str = ""


@attrs.frozen(kw_only=True)
class Movement:
    """How many assessments (or records) go from each old level to each new one.

    Attributes:
        title: What is counted ("admissions", "records of population.jsonl").
        unit: The noun for one counted thing.
        moves: ``(old, new, count)`` for each pair that moves, largest first.
        total: How many were compared in all.
    """

    title: str
    unit: str
    moves: tuple[tuple[str, str, int], ...]
    total: int


@attrs.frozen(kw_only=True)
class Comparison:
    """The page's section on changes from an older rule base."""

    old_name: str
    old_location: str
    items: tuple[ChangedItem, ...]
    movements: tuple[Movement, ...]
    notes: tuple[str, ...] = ()


_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; color: #1b1b1b; margin: 2rem auto; max-width: 72rem;
       padding: 0 1.5rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #ccd; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 0.3rem; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.9em; background: #f2f4f7;
       padding: 0 0.2em; border-radius: 3px; }
.meta { color: #555; font-size: 0.9rem; }
.status { display: inline-block; padding: 0.25rem 0.7rem; border-radius: 4px; font-weight: bold; }
.pass { background: #e3f4e6; color: #145c23; }
.fail { background: #fbe4e1; color: #8a1c0f; }
.warn { background: #fff4d6; color: #6b4b00; }
table { border-collapse: collapse; width: 100%; margin: 0.6rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #d5d9e0; padding: 0.35rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f6fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.rule { border-left: 3px solid #1f5fa8; padding: 0.1rem 0 0.1rem 0.8rem; margin: 0.8rem 0; }
.rule p { margin: 0.2rem 0; }
.sides td { width: 50%; }
.sides ul { margin: 0; padding-left: 1.1rem; }
.differs { background: #fff4d6; }
.diagram svg, .chart svg { max-width: 100%; height: auto; }
"""


def _inline(text: str) -> str:
    """Plain text with Markdown code spans, as HTML."""
    return _CODE.sub(lambda m: f"<code>{m[1]}</code>", html.escape(text, quote=False))


def _e(text: object) -> str:
    return html.escape(str(text))


def _header(rulebase: RuleBase, check: CheckSummary, version: str) -> list[str]:
    info = rulebase.info
    if check.ok:
        status = '<span class="status pass">levelcare check: passed</span>'
    else:
        status = '<span class="status fail">levelcare check: failed; this rule base is unverified</span>'
    return [
        f"<h1>Review of {_e(info.name)} {_e(info.version)}</h1>",
        (
            f'<p class="meta">Rule base at <code>{_e(rulebase.location)}</code>, '
            f"sha256 <code>{_e(info.sha256)}</code>. Written by levelcare {_e(version)}.</p>"
        ),
        f"<p>{status}</p>",
    ]


def _check_section(check: CheckSummary) -> list[str]:
    out = ['<h2 id="check">Check</h2>']
    if check.checked:
        out.append(f"<p>{_e(check.checked)}</p>")
    if not check.findings:
        out.append("<p>No findings.</p>")
        return out
    out.append("<table><tr><th>severity</th><th>check</th><th>where</th><th>finding</th></tr>")
    for severity, kind, where, message in check.findings:
        css = "fail" if severity == "error" else "warn"
        out.append(
            f'<tr><td class="{css}">{_e(severity)}</td><td>{_e(kind)}</td>'
            f"<td>{_e(where)}</td><td>{_inline(message)}</td></tr>"
        )
    out.append("</table>")
    return out


def _cases_section(results: Sequence[CaseResult]) -> list[str]:
    passed = sum(r.passed for r in results)
    out = ['<h2 id="cases">Test vectors</h2>']
    if not results:
        out.append("<p>The rule base carries no test vectors ([[case]] tables).</p>")
        return out
    css = "pass" if passed == len(results) else "fail"
    out.append(f'<p><span class="status {css}">{passed} of {len(results)} cases pass</span></p>')
    out.append("<table><tr><th>case</th><th>story</th><th>expects</th><th>result</th></tr>")
    for result in results:
        case = result.case
        expects = "; ".join(f"{key} {_json(value)}" for key, value in case.expect.items())
        if result.passed:
            verdict = '<td class="pass">pass</td>'
        else:
            why = [result.error] if result.error else list(result.mismatches)
            verdict = '<td class="fail">fail: ' + "<br>".join(_e(w) for w in why) + "</td>"
        out.append(
            f"<tr><td><code>{_e(case.name)}</code><br><span class='meta'>{_e(case.file)}</span></td>"
            f"<td>{_e(case.story)}</td><td>{_e(expects)}</td>{verdict}</tr>"
        )
    out.append("</table>")
    return out


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def _source_titles(rulebase: RuleBase) -> Mapping[str, str]:
    return {source.id: source.title for source in rulebase.sources}


def _cited(ids: Iterable[str], titles: Mapping[str, str]) -> str:
    return "; ".join(f"<code>{_e(i)}</code> {_e(titles.get(i, ''))}".rstrip() for i in ids)


def _criteria_section(rulebase: RuleBase) -> list[str]:
    vocabulary, level_ids, titles = rulebase.vocabulary, rulebase.levels.ids, _source_titles(rulebase)
    out = ['<h2 id="criteria">Criteria by level</h2>']
    if rulebase.emergencies:
        out.append("<h3>Emergency</h3>")
        for item in rulebase.emergencies:
            out += _rule_html(item.id, item.statement, condition_text(item.when, vocabulary, level_ids), item.sources)
    for level in reversed(rulebase.levels):
        out.append(f"<h3>{_e(level.label)} (<code>{_e(level.id)}</code>)</h3>")
        out.append(f"<p>{_e(level.description)}</p>")
        rules = [rule for rule in rulebase.rules if rule.level == level]
        if not rules:
            out.append("<p>No criterion requires this level.</p>")
        for rule in rules:
            when = (
                "when no criterion for a more intensive level holds"
                if rule.otherwise
                else condition_text(rule.when, vocabulary, level_ids)
            )
            out += _rule_html(rule.id, rule.statement, when, rule.sources, titles)
    return out


def _rule_html(
    rule_id: str, statement: str, when: str, sources: Iterable[str], titles: Mapping[str, str] | None = None
) -> list[str]:
    return [
        '<div class="rule">',
        f"<p><strong>{_e(rule_id)}:</strong> {_e(statement)}</p>",
        f"<p>When: {_inline(when)}</p>",
        f"<p class='meta'>Sources: {_cited(sources, titles or {})}</p>",
        "</div>",
    ]


def _side(lines: Sequence[str], other: Sequence[str], file: str) -> str:
    if not lines:
        return "<td><em>none</em></td>"
    shown = "".join(
        f"<li class='differs'>{_inline(line)}</li>" if line not in other else f"<li>{_inline(line)}</li>"
        for line in lines
    )
    where = f"<span class='meta'>{_e(file)}</span>" if file else ""
    return f"<td>{where}<ul>{shown}</ul></td>"


def _comparison_section(comparison: Comparison, new_name: str) -> list[str]:
    out = ['<h2 id="changes">Changes</h2>']
    out.append(
        f"<p>From <code>{_e(comparison.old_location)}</code> ({_e(comparison.old_name)}) to this rule base"
        f" ({_e(new_name)}).</p>"
    )
    out += [f'<p><span class="status warn">{_e(note)}</span></p>' for note in comparison.notes]
    if not comparison.items:
        out.append("<p>No rule, level, fact, programme, service, consideration, source or case changed.</p>")
    else:
        out.append('<table class="sides"><tr><th>before</th><th>after</th></tr>')
        for item in comparison.items:
            out.append(f"<tr><th colspan='2'>{_e(item.label)}: {_e(item.change)}</th></tr>")
            out.append(
                "<tr>" + _side(item.old, item.new, item.old_file) + _side(item.new, item.old, item.new_file) + "</tr>"
            )
        out.append("</table>")
    for movement in comparison.movements:
        out += _movement_html(movement)
    return out


def _movement_html(movement: Movement) -> list[str]:
    moved = sum(count for _, _, count in movement.moves)
    out = [f"<h3>Moves: {_e(movement.title)}</h3>"]
    out.append(f"<p>{moved:,} of {movement.total:,} {_e(movement.unit)} move to another level.</p>")
    if not movement.moves:
        return out
    out.append(f'<div class="chart">{_movement_svg(movement)}</div>')
    out.append(f"<table><tr><th>from</th><th>to</th><th>{_e(movement.unit)}</th></tr>")
    for old, new, count in movement.moves:
        out.append(f"<tr><td>{_e(old)}</td><td>{_e(new)}</td><td class='num'>{count:,}</td></tr>")
    out.append("</table>")
    return out


def _movement_svg(movement: Movement) -> str:
    """Horizontal bars, one per move, their length proportional to the count."""
    label_w, bar_w, row_h = 260, 420, 26
    width, height = label_w + bar_w + 120, 16 + row_h * len(movement.moves)
    top = max(count for _, _, count in movement.moves)
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(movement.title)}: moves between levels" '
            'font-family="Helvetica, Arial, sans-serif">'
        )
    ]
    for row, (old, new, count) in enumerate(movement.moves):
        y = 8 + row * row_h
        length = max(2, round(bar_w * count / top))
        out.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="13">{_e(old)} &#8594; {_e(new)}</text>'
        )
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{length}" height="{row_h - 8}" fill="#1f5fa8"/>')
        out.append(f'<text x="{label_w + length + 6}" y="{y + 16}" font-size="13">{count:,}</text>')
    out.append("</svg>")
    return "".join(out)


def review_html(
    rulebase: RuleBase,
    *,
    check: CheckSummary,
    cases: Sequence[CaseResult],
    version: str,
    comparison: Comparison | None = None,
) -> str:
    """The review page of ``rulebase`` as one HTML document.

    Args:
        rulebase: The rule base under review.
        check: What ``levelcare check`` found.
        cases: Each test vector with its result.
        version: The version of levelcare writing the page.
        comparison: The changes from an older rule base, if there is one.

    Returns:
        A complete HTML document that refers to nothing outside itself.
    """
    info = rulebase.info
    body = _header(rulebase, check, version)
    body.append('<h2 id="levels">Levels and moves</h2>')
    body.append(f'<div class="diagram">{levels_svg(rulebase)}</div>')
    if comparison is not None:
        body += _comparison_section(comparison, f"{info.name} {info.version}")
    body += _check_section(check)
    body += _cases_section(cases)
    body += _criteria_section(rulebase)
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        # Nothing may be fetched: the policy forbids every source but the page itself.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Review of {_e(info.name)} {_e(info.version)}</title>\n<style>{_STYLE}</style>\n</head>\n"
    )
    return head + "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
