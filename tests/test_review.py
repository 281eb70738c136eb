"""``levelcare report``: the review page a clinician reads, checked as HTML and in a real browser.

The browser tests run Debian's headless Chromium. They read the text the browser
renders, measure every label of the levels diagram against its box, and look at a
screenshot; without Chromium they are skipped on a developer's machine and fail in
continuous integration (CI=true), which installs it.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import EXAMPLES_DIR, RULES_DIR
from levelcare._cli import main
from levelcare._rulebase import load
from levelcare._verify._changes import item_changes, same_label_other_content
from levelcare._verify._diff import diff

CONTINUUM = EXAMPLES_DIR / "rulebases" / "continuum"


def _proposal(tmp_path: Path) -> tuple[Path, Path]:
    """The shipped rules and a proposal: IN-2 requires PHP instead of inpatient, TR-6 needs 8 weeks instead of 12."""
    old, new = tmp_path / "current", tmp_path / "proposed"
    shutil.copytree(RULES_DIR, old)
    shutil.copytree(RULES_DIR, new)
    path = new / "inpatient.toml"
    text = path.read_text(encoding="utf-8")
    assert text.count('id = "IN-2"\nlevel = "inpatient"') == 1
    path.write_text(text.replace('id = "IN-2"\nlevel = "inpatient"', 'id = "IN-2"\nlevel = "php"'), encoding="utf-8")
    path = new / "transitions.toml"
    text = path.read_text(encoding="utf-8")
    assert text.count("at_least = 12 }") == 1
    path.write_text(text.replace("at_least = 12 }", "at_least = 8 }"), encoding="utf-8")
    return old, new


# --- what changed, item by item ---------------------------------------------------------


def test_item_changes_name_each_changed_rule_with_both_versions_in_words(tmp_path: Path) -> None:
    old, new = _proposal(tmp_path)
    changes = item_changes(load(old), load(new))
    assert [(c.label, c.change) for c in changes] == [("rule IN-2", "changed"), ("readiness TR-6", "changed")]
    in2 = changes[0]
    assert in2.old is not None and in2.new is not None
    assert in2.old.lines[0].startswith("requires inpatient: Expected severe withdrawal")
    assert in2.new.lines[0].startswith("requires PHP: Expected severe withdrawal")
    assert in2.old.lines[1:] == in2.new.lines[1:] == ("when withdrawal_risk is severe", "sources: tip47, jc-iop")
    tr6 = changes[1]
    assert tr6.old is not None and tr6.new is not None
    expected = (
        "sign: At least 12 weeks in IOP, or the treatment plan's goals for IOP are met. "
        "(when weeks_at_current_level is at least 12 or goals_met is true)"
    )
    assert [line for line in tr6.old.lines if line not in tr6.new.lines] == [expected]
    assert same_label_other_content(load(old), load(new))
    assert not same_label_other_content(load(old), load(old))


def test_items_added_removed_or_moved_between_files(tmp_path: Path) -> None:
    old = tmp_path / "current"
    shutil.copytree(RULES_DIR, old)
    new = tmp_path / "proposed"
    shutil.copytree(RULES_DIR, new)
    # CF-1 moves to a file of its own (no change); CF-2 is removed; a service is added.
    considerations = (new / "considerations.toml").read_text(encoding="utf-8")
    blocks = considerations.split("[[consideration]]")
    moved = next(b for b in blocks if 'id = "CF-1"' in b)
    kept = [b for b in blocks if 'id = "CF-1"' not in b and 'id = "CF-2"' not in b]
    (new / "considerations.toml").write_text("[[consideration]]".join(kept), encoding="utf-8")
    (new / "moved.toml").write_text("[[consideration]]" + moved, encoding="utf-8")
    with (new / "services.toml").open("a", encoding="utf-8") as stream:
        stream.write('\n[[service]]\nname = "peer_support"\nsources = ["iop-role"]\n')
    changes = {(c.label, c.change) for c in item_changes(load(old), load(new))}
    assert changes == {("consideration CF-2", "removed"), ("service peer_support", "added")}


def test_adding_a_level_changes_no_criterion_of_the_levels_whose_rank_moved(tmp_path: Path) -> None:
    """A level's rank is its position: adding one below inpatient moves inpatient's rank, and that alone is no change."""
    old = load(CONTINUUM)
    assert [c.kind for c in item_changes(old, old)] == []
    changes = item_changes(load(RULES_DIR), old)
    assert {c.kind for c in changes} >= {"level", "rule"}
    assert all(c.change in ("added", "removed", "changed") for c in changes)


# --- the page as HTML ---------------------------------------------------------------------


class _Page(HTMLParser):
    """Every tag and attribute of a page, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _write_report(tmp_path: Path, *args: str) -> Path:
    output = tmp_path / "review.html"
    assert main(["report", *args, "-o", str(output)]) == 0
    return output


def test_the_page_is_self_contained(tmp_path: Path) -> None:
    """No script, stylesheet, image, font or frame is loaded from anywhere: nothing is fetched."""
    old, new = _proposal(tmp_path)
    page = _parse(_write_report(tmp_path, str(new), "--against", str(old)))
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "base"}
    for tag, attributes in page.tags:
        for name in ("src", "href", "action", "xlink:href"):
            assert name not in attributes, (tag, attributes)
    policy = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert policy and (policy[0] or "").startswith("default-src 'none'")


def test_the_page_shows_check_cases_criteria_and_changes(tmp_path: Path) -> None:
    old, new = _proposal(tmp_path)
    text = " ".join(" ".join(_parse(_write_report(tmp_path, str(new), "--against", str(old))).text).split())
    assert "levelcare check: failed; this rule base is unverified" in text
    assert "12 of 14 cases pass" in text
    assert "severe-withdrawal" in text and 'expected level "inpatient", got "php"' in text
    assert "rule IN-2: changed" in text and "readiness TR-6: changed" in text
    assert (
        "requires inpatient: Expected severe withdrawal" in text and "requires PHP: Expected severe withdrawal" in text
    )
    assert "Both rule bases are called levelcare-core 1.0.0, but their content differs" in text
    # The moves are the diff's own counts, level by level.
    found = diff(old, new)
    admissions = sum(c.count for c in found.admissions.changes if c.old.level != c.new.level)
    assert f"{admissions:,} of {found.admissions.size:,} kinds of admission move to another level" in text
    assert "inpatient php " + f"{admissions:,}" in text
    # Each level's criteria, with the titles of their sources.
    assert "IN-1: " in text and "IO-1: " in text
    assert "tip47 SAMHSA Treatment Improvement Protocol 47" in text


def test_the_shipped_rules_pass_on_their_page(tmp_path: Path) -> None:
    text = " ".join(" ".join(_parse(_write_report(tmp_path)).text).split())
    assert "levelcare check: passed" in text
    assert "14 of 14 cases pass" in text
    assert "Changes" not in text


def test_population_moves_need_an_older_rule_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "review.html"
    assert main(["report", "--population", str(tmp_path / "p.jsonl"), "-o", str(output)]) == 2
    assert "--population needs --against OLD" in capsys.readouterr().err
    assert not output.exists()


def test_the_page_counts_the_records_of_a_population_that_move(tmp_path: Path) -> None:
    old, new = _proposal(tmp_path)
    severe = {"withdrawal_risk": "severe", "harm_risk": "none"}
    lines = [json.dumps({"_id": f"r{i}", **severe}) for i in range(3)]
    lines.append(json.dumps({"addiction_severity": "moderate", "harm_risk": "none", "withdrawal_risk": "none"}))
    population = tmp_path / "population.jsonl"
    population.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = _write_report(tmp_path, str(new), "--against", str(old), "--population", str(population))
    text = " ".join(" ".join(_parse(output).text).split())
    assert f"Moves: records of {population}" in text
    assert "3 of 4 records move to another level" in text


def test_the_page_is_written_whole_and_never_through_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    output = tmp_path / "review.html"
    output.symlink_to(victim)
    assert main(["report", "-o", str(output)]) == 0
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert not output.is_symlink() and output.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["review.html", "victim.txt"]


# --- the page in a browser ------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI runs the review page in Chromium: install Debian's chromium package")
        pytest.skip("Debian's chromium is not installed")
    return CHROMIUM


def _browser(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    command = [chromium, *_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


# A page beside the review page that loads it in a frame once the browser has laid it
# out, and writes down what the browser shows: the rendered text, and the box of every
# text of the levels diagram against its level's box and the diagram's own size.
_PROBE = """<!DOCTYPE html><html><body><pre id="out">pending</pre>
<iframe id="page" src="review.html" style="width:1280px;height:3000px"></iframe>
<script>
document.getElementById("page").addEventListener("load", function () {
  var doc = this.contentDocument, out = {text: doc.body.innerText, labels: [], diagram: []};
  var svg = doc.querySelector(".diagram svg"), size = svg.viewBox.baseVal;
  doc.querySelectorAll(".diagram g.level").forEach(function (g) {
    var r = g.querySelector("rect").getBBox();
    g.querySelectorAll("text").forEach(function (t) {
      var b = t.getBBox();
      out.labels.push({level: g.dataset.level, text: t.textContent,
        inside: b.x >= r.x && b.y >= r.y && b.x + b.width <= r.x + r.width && b.y + b.height <= r.y + r.height});
    });
  });
  svg.querySelectorAll("text").forEach(function (t) {
    var b = t.getBBox();
    out.diagram.push({text: t.textContent,
      inside: b.x >= 0 && b.y >= 0 && b.x + b.width <= size.width && b.y + b.height <= size.height});
  });
  document.getElementById("out").textContent = JSON.stringify(out);
});
</script></body></html>
"""


def _rendered(chromium: str, tmp_path: Path, page: Path) -> dict[str, object]:
    (page.parent / "probe.html").write_text(_PROBE, encoding="utf-8")
    result = _browser(
        chromium,
        tmp_path,
        "--allow-file-access-from-files",
        "--virtual-time-budget=10000",
        "--dump-dom",
        (page.parent / "probe.html").as_uri(),
    )
    start = result.stdout.index('<pre id="out">') + len('<pre id="out">')
    end = result.stdout.index("</pre>", start)
    import html

    data: dict[str, object] = json.loads(html.unescape(result.stdout[start:end]))
    return data


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) pixels of an 8-bit, non-interlaced PNG, as Chromium writes them."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, b"", b""
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind, body = png[position + 4 : position + 8], png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks += body
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6) and header[12] == 0
    step = 3 if colour == 2 else 4
    raw, stride, rows, previous = zlib.decompress(chunks), width * step, [], bytes(width * step)
    # Each byte's low seven bits and its top bit, for adding whole rows bytewise below.
    low, high = int.from_bytes(b"\x7f" * stride, "big"), int.from_bytes(b"\x80" * stride, "big")
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:
            # Sub: each byte plus the one a pixel to its left, a running sum per channel.
            for channel in range(step):
                line[channel::step] = bytes(map((0xFF).__and__, itertools.accumulate(line[channel::step])))
        elif kind == 2:
            # Up: each byte plus the one above, modulo 256, a whole row at once as one
            # integer: the low seven bits add without reaching the next byte, and the
            # top bit is the exclusive or of both top bits and that sum's carry.
            a, b = int.from_bytes(line, "big"), int.from_bytes(previous, "big")
            line = bytearray((((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(stride, "big"))
        elif kind in (3, 4):
            for x in range(stride):
                left = line[x - step] if x >= step else 0
                up, corner = previous[x], previous[x - step] if x >= step else 0
                if kind == 3:
                    line[x] = (line[x] + (left + up) // 2) & 0xFF
                else:
                    guess = left + up - corner
                    to_left, to_up, to_corner = abs(guess - left), abs(guess - up), abs(guess - corner)
                    near = left if to_left <= to_up and to_left <= to_corner else up if to_up <= to_corner else corner
                    line[x] = (line[x] + near) & 0xFF
        rows.append(bytes(line) if step == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
        previous = bytes(line)
    return width, height, rows


@pytest.mark.parametrize("rules", ["shipped", "continuum"])
def test_every_label_of_the_levels_diagram_stays_inside_its_box_in_a_browser(
    chromium: str, tmp_path: Path, rules: str
) -> None:
    """The continuum example's long level names ("outpatient counselling", ...) are wrapped to fit."""
    args = [] if rules == "shipped" else [str(CONTINUUM)]
    page = _write_report(tmp_path, *args)
    shown = _rendered(chromium, tmp_path, page)
    labels = shown["labels"]
    assert isinstance(labels, list) and labels
    levels = load(RULES_DIR if rules == "shipped" else CONTINUUM).levels
    assert {label["level"] for label in labels} == set(levels.ids)
    assert [label for label in labels if not label["inside"]] == []
    diagram = shown["diagram"]
    assert isinstance(diagram, list) and [t for t in diagram if not t["inside"]] == []


def test_a_browser_renders_the_review_of_a_change(chromium: str, tmp_path: Path) -> None:
    old, new = _proposal(tmp_path)
    page = _write_report(tmp_path, str(new), "--against", str(old))
    text = _rendered(chromium, tmp_path, page)["text"]
    assert isinstance(text, str)
    for expected in (
        "levelcare check: failed; this rule base is unverified",
        "rule IN-2: changed",
        "requires PHP: Expected severe withdrawal",
        "Moves: admissions",
        "12 of 14 cases pass",
        "Criteria by level",
    ):
        assert expected in text
    screenshot = tmp_path / "review.png"
    result = _browser(chromium, tmp_path, f"--screenshot={screenshot}", "--window-size=1280,1600", page.as_uri())
    assert screenshot.exists(), result.stderr[-400:]
    width, height, rows = _pixels(screenshot.read_bytes())
    assert (width, height) == (1280, 1600)
    pixels = [row[i : i + 3] for row in rows for i in range(0, len(row), 3)]
    white = sum(p == b"\xff\xff\xff" for p in pixels)
    # A blank page is all white; this one has text, tables, boxes and coloured arcs.
    assert white < 0.97 * len(pixels)
    assert len(set(pixels)) > 50
    assert any(abs(p[0] - 0x1F) < 24 and abs(p[1] - 0x5F) < 24 and abs(p[2] - 0xA8) < 24 for p in pixels)


def test_a_one_day_programme_reads_in_the_singular_in_the_report_and_the_diagram(tmp_path: Path) -> None:
    from levelcare import Engine
    from levelcare._render._reference import levels_svg
    from levelcare._render._report import render

    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder)
    path = folder / "programs.toml"
    text = path.read_text(encoding="utf-8")
    old = 'level = "outpatient"\nhours_per_week = [1, 8]\ndays_per_week = [1, 2]'
    assert text.count(old) == 1
    path.write_text(text.replace(old, 'level = "outpatient"\nhours_per_week = [1, 1]\ndays_per_week = [1, 1]'))
    rulebase = load(folder)
    facts = json.loads((EXAMPLES_DIR / "moderate-working-parent.json").read_text(encoding="utf-8"))["facts"]
    decision = Engine(rulebase).decide({**facts, "addiction_severity": "mild"})
    assert decision.program.level == "outpatient"
    report = render(decision, rulebase)
    assert "Programme (outpatient): 1 hour/week, 1 day/week" in report
    svg = levels_svg(rulebase)
    assert ">1 day/week</text>" in svg and "1 days/week" not in svg
    assert ">1 to 2 days/week</text>" in levels_svg(load(RULES_DIR))
