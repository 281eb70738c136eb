"""Evidence from practice for a change: would the new rule base have agreed with the clinicians?

Each override or feedback record is matched to the assessment it was decided on
(a line of a population file, by the digest of its validated facts, computed as a
decision's ``input_sha256`` is) and decided with the new rule base. A past override
turns into agreement when the new rule base indicates the level the clinician
chose; an accepted decision turns into disagreement when the new rule base
indicates another level.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable
from typing import Any

import attrs

from .._adapters._practice import Unreadable, files_text, read_assessments, read_practice
from .._engine import Engine
from .._rulebase import load
from ..exceptions import InvalidAssessment

#: The most unmatched records listed; the rest are counted.
MAX_LISTED = 1000


@attrs.frozen(kw_only=True)
class Move:
    """Records whose level moves from ``old`` (the level indicated) to ``new`` (the new rule base's)."""

    old: str
    new: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.old, "to": self.new, "count": self.count}


@attrs.frozen(kw_only=True)
class OverrideEvidence:
    """What a change of rule base does to past overrides and agreements.

    Attributes:
        sources: The files of override and feedback records.
        population: The population file the assessments came from.
        records: Readable records.
        matched: Records whose assessment was found.
        unmatched: The first records with no assessment of their facts' digest, as
            (file, line).
        unmatched_count: How many had none.
        overridden: Matched overrides that say the level received.
        into_agreement: Of those, the ones the new rule base agrees with.
        agreement_moves: Those per level indicated -> new level (the level received).
        not_recorded: Matched overrides that do not say the level received.
        accepted: Matched records that kept the level indicated.
        into_disagreement: Of those, the ones the new rule base indicates another level for.
        disagreement_moves: Those per level indicated -> new level (or
            ``data-required``).
        no_level: Matched records of decisions that indicated no level (not compared).
        invalid_for_new: Matched records whose facts the new rule base rejects.
        other_rulebase: Records that name another sha256 than the old rule base's.
        unreadable: The first records that could not be read.
        unreadable_count: How many could not be read.
        population_invalid: The first population lines that are not valid assessments.
        population_invalid_count: How many are not.
    """

    sources: tuple[str, ...]
    population: str
    records: int
    matched: int
    unmatched: tuple[tuple[str, int], ...]
    unmatched_count: int
    overridden: int
    into_agreement: int
    agreement_moves: tuple[Move, ...]
    not_recorded: int
    accepted: int
    into_disagreement: int
    disagreement_moves: tuple[Move, ...]
    no_level: int
    invalid_for_new: int
    other_rulebase: int
    unreadable: tuple[Unreadable, ...]
    unreadable_count: int
    population_invalid: tuple[Unreadable, ...]
    population_invalid_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "population": self.population,
            "records": self.records,
            "matched": self.matched,
            "unmatched": [{"source": source, "line": line} for source, line in self.unmatched],
            "unmatched_count": self.unmatched_count,
            "overridden": self.overridden,
            "into_agreement": self.into_agreement,
            "agreement_moves": [m.to_dict() for m in self.agreement_moves],
            "not_recorded": self.not_recorded,
            "accepted": self.accepted,
            "into_disagreement": self.into_disagreement,
            "disagreement_moves": [m.to_dict() for m in self.disagreement_moves],
            "no_level": self.no_level,
            "invalid_for_new": self.invalid_for_new,
            "other_rulebase": self.other_rulebase,
            "unreadable_count": self.unreadable_count,
            "population_invalid_count": self.population_invalid_count,
        }

    def render(self) -> str:
        """The evidence as text, as ``levelcare diff --overrides`` prints it."""
        head = f"{_n(self.records, 'record')}, {self.matched:,} matched, {self.unmatched_count:,} unmatched"
        lines = [
            f"Past overrides and agreements ({files_text(self.sources)}; assessments from {self.population}): {head}"
        ]
        lines.append(
            f"  {_n(self.overridden, 'override')}: the new rule base agrees with {self.into_agreement:,}"
            + _moves(self.agreement_moves)
            + f", not with {self.overridden - self.into_agreement:,}"
        )
        if self.not_recorded:
            lines.append(f"  {_n(self.not_recorded, 'override')} not saying the level received (not compared)")
        lines.append(
            f"  {self.accepted:,} accepted: the new rule base disagrees with {self.into_disagreement:,}"
            + _moves(self.disagreement_moves)
        )
        if self.no_level:
            lines.append(f"  {_n(self.no_level, 'record')} of decisions that indicated no level (not compared)")
        if self.invalid_for_new:
            lines.append(f"  {_n(self.invalid_for_new, 'record')} whose facts the new rule base rejects")
        if self.other_rulebase:
            lines.append(f"  {_n(self.other_rulebase, 'record')} name another rule base than OLD")
        if self.unmatched_count:
            where = ", ".join(f"{source} line {line}" for source, line in self.unmatched[:10])
            more = self.unmatched_count - min(10, len(self.unmatched))
            lines.append(
                f"  unmatched (no assessment in the population has the record's facts_sha256): {where}"
                + (f" and {more:,} more" if more else "")
            )
        if self.unreadable_count:
            lines.append(f"  {_n(self.unreadable_count, 'record')} could not be read (listed on standard error)")
        return "\n".join(lines)


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _moves(moves: tuple[Move, ...]) -> str:
    return f" ({', '.join(f'{m.old} -> {m.new} {m.count:,}' for m in moves)})" if moves else ""


def _ranked(counter: collections.Counter[tuple[str, str]]) -> tuple[Move, ...]:
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return tuple(Move(old=old, new=new, count=count) for (old, new), count in ranked)


def override_evidence(
    old: str | os.PathLike[str],
    new: str | os.PathLike[str],
    records: Iterable[str | os.PathLike[str]],
    population: str | os.PathLike[str],
) -> OverrideEvidence:
    """How many past overrides a change turns into agreement, and agreements into disagreement.

    Args:
        old: The rule base folder the records were decided with.
        new: The proposed rule base folder.
        records: Files of override records and/or CDS Hooks feedback records.
        population: JSON Lines of the assessments behind the records (as
            ``levelcare batch`` reads them); each record is matched to one by the
            digest of its facts under the old rule base's vocabulary.

    Returns:
        The counts; unreadable records, invalid population lines and records with
        no assessment are reported in it, never raised.

    Raises:
        RuleBaseError: a rule base does not load.
        OSError: a file cannot be read.
    """
    old_rules, new_rules = load(str(old)), load(str(new))
    practice = read_practice(records, old_rules.levels)
    wanted = (r.facts_sha256 for r in practice.records if r.facts_sha256 is not None)
    assessments = read_assessments(population, old_rules.vocabulary, wanted)
    engine = Engine(new_rules)
    decided: dict[str, str | None] = {}
    agreement: collections.Counter[tuple[str, str]] = collections.Counter()
    disagreement: collections.Counter[tuple[str, str]] = collections.Counter()
    unmatched: list[tuple[str, int]] = []
    counts: collections.Counter[str] = collections.Counter()
    for record in practice.records:
        counts["other"] += record.rulebase_sha256 not in (None, old_rules.info.sha256)
        facts = None if record.facts_sha256 is None else assessments.facts.get(record.facts_sha256)
        if facts is None:
            counts["unmatched"] += 1
            if len(unmatched) < MAX_LISTED:
                unmatched.append((record.source, record.line))
            continue
        counts["matched"] += 1
        if record.indicated is None:
            # A decision without a level placed no one: nothing to agree with.
            counts["no_level"] += 1
            continue
        digest = str(record.facts_sha256)
        if digest not in decided:
            try:
                level = engine.decide(facts).level
                decided[digest] = "data-required" if level is None else level.id
            except InvalidAssessment:
                decided[digest] = None
        now = decided[digest]
        if now is None:
            counts["invalid"] += 1
        elif record.outcome == "accepted":
            counts["accepted"] += 1
            if now != record.indicated.id:
                disagreement[(record.indicated.id, now)] += 1
        elif record.received is None:
            counts["not_recorded"] += 1
        else:
            counts["overridden"] += 1
            if now == record.received.id:
                agreement[(record.indicated.id, now)] += 1
    return OverrideEvidence(
        sources=practice.sources,
        population=assessments.source,
        records=len(practice.records),
        matched=counts["matched"],
        unmatched=tuple(unmatched),
        unmatched_count=counts["unmatched"],
        overridden=counts["overridden"],
        into_agreement=sum(agreement.values()),
        agreement_moves=_ranked(agreement),
        not_recorded=counts["not_recorded"],
        accepted=counts["accepted"],
        into_disagreement=sum(disagreement.values()),
        disagreement_moves=_ranked(disagreement),
        no_level=counts["no_level"],
        invalid_for_new=counts["invalid"],
        other_rulebase=counts["other"],
        unreadable=practice.unreadable,
        unreadable_count=practice.unreadable_count,
        population_invalid=assessments.invalid,
        population_invalid_count=assessments.invalid_count,
    )
