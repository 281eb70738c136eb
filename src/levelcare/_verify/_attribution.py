"""Which changed items cause each change of decision, and where, in few exact conditions.

**Attribution.** Each item that takes part in deciding (a criterion, an
emergency, an escalation, a readiness rule, a bridge) says something about every
assessment; an item added or removed between the two rule bases says nothing on
the side it is missing from. The *footprint* of a changed item is the set of
assessments where its old and its new version say different things:

* a criterion: its condition holds on exactly one side, or on both while the
  level it requires differs (``otherwise``: where no criterion holds, when its
  level changed);
* an emergency: its condition holds on exactly one side;
* an escalation (in treatment): its condition holds on exactly one side, or on
  both while the number of levels it lifts differs;
* a readiness rule (in treatment): it holds a step down back (it applies to the
  current level and one of its signs is not met) on exactly one side;
* a bridge (in treatment): at the current levels where whether it applies, or
  its floor, differs.

The final level is the highest ``k`` whose threshold "at least ``k``" holds,
and the thresholds are nested, so between an old level ``a`` and a new level
``b`` only the thresholds above ``min(a, b)`` up to ``max(a, b)`` differ. What an
item says can *reach* only some thresholds: a criterion those up to the level it
requires, an escalation those up to the level it lifts to, a readiness rule
those up to the current level, a bridge those up to its floor; an emergency
reaches only the emergency flag.

A changed item is *responsible* for the assessments of a change (old decision
-> new decision) that lie in its footprint, where it reaches a threshold that
differs between the two decisions (or, for an emergency, where the flag
differs). This covers both ways a rule moves a decision: where the old decision
came from rule X and the new one from rule Y (each holds on one side only), and
where a rule's condition is unchanged but the level it requires moved (it
decided, on both sides, differently); it leaves out a changed item whose
versions differ somewhere in a change but cannot move it there (a readiness rule
where both decisions step up). Items whose change is only in words (statement,
sources, file) have an empty footprint and are responsible for nothing. Each
change is split by the set of items responsible; assessments no changed item
reaches (levels or facts that differ between the rule bases) form a part with no
item.

**Conditions.** Each part is described by conditions, each a *cube* (one set of
cells per fact) and, optionally, *contexts* shared by all of the part's
conditions: statements about the mechanism such as "no criterion for inpatient
or above holds in the old rules, besides IN-2", or "every sign of TR-4 is met".
A context must hold everywhere in the part; inside it, a cube may grow over
assessments outside the context, so the facts the context already settles are
not repeated. The contexts are chosen greedily, one at a time, as long as each
makes the conditions fewer (or, as many, shorter). The union of the conditions,
each intersected with the contexts, is exactly the part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._rulebase import RuleBase
from .._rulebase._vocabulary import CURRENT_LEVEL
from ._changes import ItemChange
from ._space import Node, Space

if TYPE_CHECKING:
    from ._cells import DiffSpace

__all__ = ["Cause", "Condition", "Context", "Footprint", "cover", "footprints", "split"]

#: The kinds of item that take part in deciding, and so can be responsible for a change.
DECIDING_KINDS = ("rule", "emergency", "escalation", "readiness", "bridge")
#: How many contexts one part's conditions may share.
MAX_CONTEXTS = 3


@attrs.frozen
class Context:
    """A statement about the mechanism that holds everywhere in a part.

    Attributes:
        text: The statement in words.
        data: The statement for a program: ``kind`` (``no-criterion``,
            ``some-criterion``, ``readiness-met``, ``no-escalation``,
            ``no-emergency``), ``rulebase`` (``old``, ``new`` or ``both``) and
            what the kind needs (``level``, with ``besides`` for
            ``no-criterion``; ``readiness``).
        node: Where it holds.
    """

    text: str
    data: Mapping[str, Any] = attrs.field(eq=False)
    node: Node = attrs.field(repr=False, eq=False)


@attrs.frozen
class Condition:
    """A readable condition: each named fact takes one of its listed cells, and the part's contexts hold.

    Attributes:
        facts: Each named fact and its cells (a fact not named takes any value).
        count: The assessments it describes (with the contexts).
        node: Those assessments, as a diagram.
    """

    facts: tuple[tuple[str, tuple[Any, ...]], ...]
    count: int
    node: Node = attrs.field(repr=False, eq=False)

    def text(self, space: DiffSpace) -> str:
        if not self.facts:
            return "(every assessment)"
        return ", ".join(space.describe(name, values) for name, values in self.facts)

    def to_dict(self, space: DiffSpace) -> dict[str, Any]:
        when: dict[str, Any] = {}
        for name, values in self.facts:
            if space.kind[name] == "integer":
                when[name] = [list(interval) for interval in space.intervals(name, values)]
            else:
                when[name] = list(values)
        return {"when": when, "count": self.count, "text": self.text(space)}


@attrs.frozen
class Cause:
    """One part of a change: the changed items responsible for it, and where it happens.

    Attributes:
        items: The responsible items, as ``kind id`` labels (``rule IN-2``);
            empty when no changed item reaches the part.
        count: The assessments in the part.
        contexts: Statements that hold in every one of the part's conditions.
        conditions: Together, exactly the part.
        node: The part, as a diagram.
    """

    items: tuple[str, ...]
    count: int
    contexts: tuple[Context, ...]
    conditions: tuple[Condition, ...]
    node: Node = attrs.field(repr=False, eq=False)

    def because(self) -> str:
        if not self.items:
            return "no changed rule reaches it (levels or facts differ)"
        return "because of " + _listed(self.items)

    def to_dict(self, space: DiffSpace) -> dict[str, Any]:
        return {
            "items": list(self.items),
            "count": self.count,
            "contexts": [{"text": c.text, **c.data} for c in self.contexts],
            "conditions": [c.to_dict(space) for c in self.conditions],
        }


def _listed(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


# --- footprints -------------------------------------------------------------------------


@attrs.frozen
class Footprint:
    """Where one changed item's old and new versions say different things, and what they can move.

    Attributes:
        reach: For an admission (one entry) or each current level, the rank of
            the highest threshold either version reaches; ``None`` when any
            threshold may be reached (the levels of the two rule bases differ).
            Empty for an emergency, which reaches only the emergency flag.
    """

    label: str
    kind: str
    id: str
    node: Node = attrs.field(repr=False, eq=False)
    reach: tuple[int | None, ...] = ()

    def moving(self, bdd: Space, low: int | None, flag_differs: bool, currents: Sequence[str] | None) -> Node:
        """Where this item can move a decision whose lower side has rank ``low`` (``None``: unknown)."""
        if self.kind == "emergency":
            return bdd.true if flag_differs else bdd.false
        if low is None:
            return bdd.true
        if currents is None:
            top = self.reach[0]
            return bdd.true if top is None or low < top else bdd.false
        return _any(bdd, (bdd.cell(CURRENT_LEVEL, i) for i, top in enumerate(self.reach) if top is None or low < top))


def _find(items: Iterable[Any], ident: str) -> Any:
    return next((item for item in items if item.id == ident), None)


def _any(bdd: Space, nodes: Iterable[Node]) -> Node:
    result = bdd.false
    for node in nodes:
        result |= node
    return result


def _all(bdd: Space, nodes: Iterable[Node]) -> Node:
    result = bdd.true
    for node in nodes:
        result &= node
    return result


def _xor(a: Node, b: Node) -> Node:
    return (a & ~b) | (~a & b)


def footprints(
    space: DiffSpace, old: RuleBase, new: RuleBase, changes: Sequence[ItemChange], currents: Sequence[str] | None
) -> tuple[Footprint, ...]:
    """The footprint of each changed deciding item, for admissions (``currents`` None) or in treatment.

    Items with an empty footprint (changed only in words) are left out.
    """
    bdd = space.bdd
    found: list[Footprint] = []
    same_levels = old.levels.ids == new.levels.ids
    for change in changes:
        if change.kind not in DECIDING_KINDS:
            continue
        if currents is None and change.kind in ("escalation", "readiness", "bridge"):
            continue
        bdd.clock.tick()
        node = _FOOTPRINTS[change.kind](bdd, old, new, change.id, currents or ())
        if node == bdd.false:
            continue
        reach: tuple[int | None, ...] = ()
        if change.kind != "emergency":
            at = [None] if currents is None else list(currents)
            reach = tuple(_reach(change.kind, change.id, old, new, c) if same_levels else None for c in at)
        found.append(Footprint(change.label, change.kind, change.id, node, reach))
    return tuple(found)


def _reach(kind: str, ident: str, old: RuleBase, new: RuleBase, current: str | None) -> int:
    """The rank of the highest threshold either version of an item reaches, at ``current`` (None: admission)."""
    ranks = [0]
    for rulebase in (old, new):
        levels = rulebase.levels
        if kind == "rule":
            rule = _find(rulebase.rules, ident)
            ranks += [] if rule is None else [rule.level.rank]
        elif kind == "escalation":
            item = _find(rulebase.escalations, ident)
            if item is not None and current is not None:
                ranks.append(min(levels[current].rank + item.levels_above_current, len(levels) - 1))
        elif kind == "readiness" and current is not None:
            ranks.append(levels[current].rank)
        elif kind == "bridge":
            item = _find(rulebase.bridges, ident)
            ranks += [] if item is None else [item.floor.rank]
    return max(ranks)


def _rule_footprint(bdd: Space, old: RuleBase, new: RuleBase, ident: str, currents: Sequence[str]) -> Node:
    def says(rulebase: RuleBase) -> tuple[Node, str | None]:
        rule = _find(rulebase.rules, ident)
        if rule is None:
            return bdd.false, None
        if rule.otherwise:
            return ~_any(bdd, (bdd.encode(r.when) for r in rulebase.criteria)), rule.level.id
        return bdd.encode(rule.when), rule.level.id

    (a, level_a), (b, level_b) = says(old), says(new)
    moved = a & b if level_a != level_b else bdd.false
    return _xor(a, b) | moved


def _emergency_footprint(bdd: Space, old: RuleBase, new: RuleBase, ident: str, currents: Sequence[str]) -> Node:
    a, b = (_find(rb.emergencies, ident) for rb in (old, new))
    return _xor(bdd.false if a is None else bdd.encode(a.when), bdd.false if b is None else bdd.encode(b.when))


def _escalation_footprint(bdd: Space, old: RuleBase, new: RuleBase, ident: str, currents: Sequence[str]) -> Node:
    a, b = (_find(rb.escalations, ident) for rb in (old, new))
    node_a = bdd.false if a is None else bdd.encode(a.when)
    node_b = bdd.false if b is None else bdd.encode(b.when)
    lifted = a is not None and b is not None and a.levels_above_current != b.levels_above_current
    return _xor(node_a, node_b) | (node_a & node_b if lifted else bdd.false)


def _readiness_footprint(bdd: Space, old: RuleBase, new: RuleBase, ident: str, currents: Sequence[str]) -> Node:
    def holds_back(rulebase: RuleBase, current: str) -> Node:
        item = _find(rulebase.readiness, ident)
        if item is None or current not in {level.id for level in item.applies_to}:
            return bdd.false
        return ~_all(bdd, (bdd.encode(sign.when) for sign in item.signs))

    return _any(
        bdd,
        (bdd.cell(CURRENT_LEVEL, i) & _xor(holds_back(old, c), holds_back(new, c)) for i, c in enumerate(currents)),
    )


def _bridge_footprint(bdd: Space, old: RuleBase, new: RuleBase, ident: str, currents: Sequence[str]) -> Node:
    def floor(rulebase: RuleBase, current: str) -> str | None:
        item = _find(rulebase.bridges, ident)
        if item is None or current not in {level.id for level in item.applies_to}:
            return None
        return str(item.floor.id)

    return _any(bdd, (bdd.cell(CURRENT_LEVEL, i) for i, c in enumerate(currents) if floor(old, c) != floor(new, c)))


_FOOTPRINTS: Mapping[str, Callable[[Space, RuleBase, RuleBase, str, Sequence[str]], Node]] = {
    "rule": _rule_footprint,
    "emergency": _emergency_footprint,
    "escalation": _escalation_footprint,
    "readiness": _readiness_footprint,
    "bridge": _bridge_footprint,
}


def split(
    bdd: Space, region: Node, prints: Sequence[Footprint], moving: Callable[[Footprint], Node]
) -> list[tuple[tuple[Footprint, ...], Node]]:
    """The region split by the set of items responsible (``moving``: where an item can move this change)."""
    parts: list[tuple[tuple[Footprint, ...], Node]] = [((), region)]
    for footprint in prints:
        bdd.clock.tick()
        inside = footprint.node & moving(footprint)
        if region & inside == bdd.false:
            continue
        parts = [
            (items, node)
            for whose, part in parts
            for items, node in (((*whose, footprint), part & inside), (whose, part & ~inside))
            if node != bdd.false
        ]
    return parts


# --- contexts ---------------------------------------------------------------------------------


def contexts(
    space: DiffSpace, old: RuleBase, new: RuleBase, responsible: Sequence[Footprint], *, in_treatment: bool
) -> list[Context]:
    """The statements about the mechanism a part's conditions may lean on."""
    bdd = space.bdd
    besides = tuple(f.id for f in responsible if f.kind == "rule")
    sides = (("old", old), ("new", new))
    found: dict[str, list[tuple[str, RuleBase, Node, dict[str, Any]]]] = {}

    def add(key: str, side: str, rulebase: RuleBase, node: Node, data: dict[str, Any]) -> None:
        found.setdefault(key, []).append((side, rulebase, node, data))

    for side, rulebase in sides:
        for level in list(rulebase.levels)[1:]:
            above = [r for r in rulebase.criteria if r.level >= level]
            node = ~_any(bdd, (bdd.encode(r.when) for r in above if r.id not in besides))
            shown = [r.id for r in above if r.id in besides]
            add(f"no-criterion {level.id}", side, rulebase, node, {"level": level.id, "besides": shown})
            node = _any(bdd, (bdd.encode(r.when) for r in above))
            add(f"some-criterion {level.id}", side, rulebase, node, {"level": level.id})
        if in_treatment:
            for item in rulebase.readiness:
                node = _all(bdd, (bdd.encode(sign.when) for sign in item.signs))
                add(f"readiness-met {item.id}", side, rulebase, node, {"readiness": item.id})
            if rulebase.escalations:
                node = ~_any(bdd, (bdd.encode(e.when) for e in rulebase.escalations))
                add("no-escalation", side, rulebase, node, {})
        if rulebase.emergencies:
            node = ~_any(bdd, (bdd.encode(e.when) for e in rulebase.emergencies))
            add("no-emergency", side, rulebase, node, {})
    result: list[Context] = []
    for key, versions in found.items():
        kind = key.split(" ")[0]
        same = len(versions) == 2 and versions[0][2] == versions[1][2]
        for side, rulebase, node, data in versions[:1] if same else versions:
            named = "both" if same else side
            text = _context_text(kind, data, rulebase, named)
            result.append(Context(text, {"kind": kind, "rulebase": named, **data}, node))
    return result


def _context_text(kind: str, data: Mapping[str, Any], rulebase: RuleBase, side: str) -> str:
    where = "" if side == "both" else f" in the {side} rules"
    if kind == "some-criterion":
        return f"a criterion for {data['level']} or above holds{where}"
    if kind == "no-criterion":
        besides = f" besides {_listed(data['besides'])}" if data["besides"] else ""
        return f"no criterion for {data['level']} or above holds{where}{besides}"
    if kind == "readiness-met":
        return f"every sign of {data['readiness']} is met{where}"
    if kind == "no-escalation":
        return f"no escalation holds{where}"
    return f"no emergency applies{where}"


# --- covering a part ----------------------------------------------------------------------------


def _cost(conditions: Sequence[Condition], chosen: Sequence[Context]) -> tuple[int, int]:
    return len(conditions), sum(len(c.facts) for c in conditions) + len(chosen)


def described(
    space: DiffSpace, names: Sequence[str], part: Node, candidates: Sequence[Context]
) -> tuple[tuple[Context, ...], list[Condition]]:
    """The contexts and conditions that describe ``part`` with the fewest conditions (then facts).

    Greedy: each round tries every context left that holds throughout ``part``
    and still narrows the assessments outside it, and keeps the best one if it
    makes the description cheaper.
    """
    bdd = space.bdd
    domain = bdd.domain(names)
    outside = domain & ~part
    usable = [c for c in candidates if part & ~c.node == bdd.false and outside & ~c.node != bdd.false]
    chosen: list[Context] = []
    within = bdd.true
    best = cover(space, names, part, within)
    while len(chosen) < MAX_CONTEXTS:
        trials = []
        tried: list[Node] = []
        for candidate in usable:
            narrowed = within & candidate.node
            # One that leaves the same assessments outside the part cannot help; neither can a repeat.
            if outside & within & ~candidate.node == bdd.false or any(narrowed == t for t in tried):
                continue
            tried.append(narrowed)
            bdd.clock.tick()
            conditions = cover(space, names, part, narrowed)
            trials.append((_cost(conditions, [*chosen, candidate]), candidate, narrowed, conditions))
        helping = [t for t in trials if t[0] < _cost(best, chosen)]
        if not helping:
            break
        _, candidate, narrowed, conditions = min(helping, key=lambda t: t[0])
        chosen.append(candidate)
        within, best = narrowed, conditions
        usable = [c for c in usable if c is not candidate]
    return tuple(chosen), best


def cover(space: DiffSpace, names: Sequence[str], region: Node, within: Node) -> list[Condition]:
    """Conditions whose union, intersected with ``within``, is exactly ``region`` (which ``within`` holds in).

    Greedy: from the lowest combination of ``region`` not yet covered, each fact's
    set is widened, one value at a time, for as long as the cube takes in no
    assessment of ``within`` outside ``region``. Every cube is maximal; cubes
    that the others cover are dropped, last first.
    """
    bdd = space.bdd
    names = tuple(names)
    domain = bdd.domain(names)
    outside = ~region & within & domain
    situation = [n for n in names if n not in space.clinical]
    # Seeds are the lowest combinations left, the situation facts counting most,
    # then the clinical facts from the last to the first.
    seed_order = (*situation, *reversed([n for n in names if n in space.clinical]))
    uncovered = region & domain
    grown: list[tuple[tuple[tuple[str, tuple[Any, ...]], ...], Node]] = []
    while uncovered != bdd.false:
        bdd.clock.tick()
        seed = bdd.lowest(uncovered, seed_order)
        facts, node = _grow(space, names, seed, outside)
        grown.append((facts, node))
        uncovered &= ~node
    kept = list(range(len(grown)))
    for index in reversed(range(len(grown))):
        bdd.clock.tick()
        others = _any(bdd, (grown[i][1] for i in kept if i != index))
        if grown[index][1] & region & ~others == bdd.false:
            kept.remove(index)
    found = []
    for i in kept:
        facts, node = grown[i]
        exact = node & within & domain
        found.append(Condition(facts, bdd.count(exact, names), exact))
    return found


def _grow(
    space: DiffSpace, names: Sequence[str], seed: Mapping[str, int], outside: Node
) -> tuple[tuple[tuple[str, tuple[Any, ...]], ...], Node]:
    """The cube grown from one combination: each fact in turn widened, nearest values first."""
    bdd = space.bdd
    sets = {name: {seed[name]} for name in names}
    # The facts after the one being widened still hold their seed's cell.
    after: list[Node] = [bdd.true] * (len(names) + 1)
    for index in reversed(range(len(names))):
        after[index] = after[index + 1] & bdd.cell(names[index], seed[names[index]])
    before = bdd.true
    for index, name in enumerate(names):
        others = before & after[index + 1] & outside
        if others != bdd.false:
            for value in _widening(seed[name], len(bdd.cells[name])):
                bdd.clock.tick()
                if others & bdd.cell(name, value) == bdd.false:
                    sets[name].add(value)
        else:
            sets[name] = set(range(len(bdd.cells[name])))
        before &= bdd.cube({name: sets[name]})
    facts = tuple(
        (name, tuple(space.value(name, p) for p in sorted(sets[name])))
        for name in names
        if len(sets[name]) != len(bdd.cells[name])
    )
    return facts, before


def _widening(start: int, size: int) -> list[int]:
    """The other positions of a domain, nearest to ``start`` first (lower before higher)."""
    return sorted((p for p in range(size) if p != start), key=lambda p: (abs(p - start), p))


def causes(
    space: DiffSpace,
    old: RuleBase,
    new: RuleBase,
    names: Sequence[str],
    region: Node,
    prints: Sequence[Footprint],
    sides: tuple[tuple[str | None, bool], tuple[str | None, bool]],
    currents: Sequence[str] | None,
) -> tuple[Cause, ...]:
    """One change's region, split by the items responsible, each part described in few conditions.

    Args:
        sides: The old and the new decision's level id and emergency flag.
        currents: The current levels of the in-treatment space; ``None`` for admissions.
    """
    (level_a, flag_a), (level_b, flag_b) = sides
    low: int | None = None
    if old.levels.ids == new.levels.ids and level_a is not None and level_b is not None:
        low = min(new.levels[level_a].rank, new.levels[level_b].rank)
    found = []
    # Codes that stand for no cell are no assessment: leave them out before reasoning about the region.
    region &= space.bdd.domain(names)
    in_treatment = currents is not None

    def moving(footprint: Footprint) -> Node:
        return footprint.moving(space.bdd, low, flag_a != flag_b, currents)

    for items, node in split(space.bdd, region, prints, moving):
        candidates = contexts(space, old, new, items, in_treatment=in_treatment)
        chosen, conditions = described(space, names, node, candidates)
        labels = tuple(f.label for f in items)
        found.append(Cause(labels, space.bdd.count(node, names), chosen, tuple(conditions), node))
    found.sort(key=lambda c: (not c.items, -c.count, c.items))
    return tuple(found)
