"""The four levels of care and the transitions between them.

These names are mechanism, not clinical content: which criteria require which
level lives in the rule base.
"""

from __future__ import annotations

import enum


class Level(enum.Enum):
    """A level of care, ordered by intensity (``Level.IOP < Level.PHP``).

    .. versionadded:: 1.0
    """

    OUTPATIENT = "outpatient"
    IOP = "iop"
    PHP = "php"
    INPATIENT = "inpatient"

    @property
    def rank(self) -> int:
        """0 for outpatient up to 3 for inpatient."""
        return _RANK[self]

    @property
    def label(self) -> str:
        """The level's name as a clinician writes it."""
        return _LABEL[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return _RANK[self] < _RANK[other]

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return _RANK[self] <= _RANK[other]

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return _RANK[self] > _RANK[other]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return _RANK[self] >= _RANK[other]


LEVELS: tuple[Level, ...] = tuple(Level)
_RANK = {level: rank for rank, level in enumerate(LEVELS)}
_LABEL = {
    Level.OUTPATIENT: "outpatient",
    Level.IOP: "IOP",
    Level.PHP: "PHP",
    Level.INPATIENT: "inpatient",
}


class Transition(enum.Enum):
    """How the recommended level relates to the level the person is in now.

    .. versionadded:: 1.0
    """

    ADMIT = "admit"
    CONTINUE = "continue"
    STEP_DOWN = "step-down"
    STEP_UP = "step-up"
