"""The validated input of a decision: the known facts about one person."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

import attrs

from .._model import FactValue
from ._loader import shipped
from ._vocabulary import Vocabulary


class _HasVocabulary(Protocol):
    @property
    def vocabulary(self) -> Vocabulary: ...


@attrs.frozen(init=False)
class Assessment:
    """A validated assessment: the known facts about one person.

    Build one from a mapping or keyword arguments; every problem is reported at
    once. Facts that are absent or ``None`` are unknown and are never guessed::

        Assessment({"harm_risk": "none"}, addiction_severity="moderate")

    Validation uses the shipped vocabulary; use :meth:`Engine.assessment` for an
    organisation's own rule base.

    Attributes:
        facts: The known facts, in vocabulary order (read-only).

    Raises:
        InvalidAssessment: listing every problem, by fact name.

    .. versionadded:: 1.0
    """

    facts: Mapping[str, FactValue] = attrs.field(hash=False)
    _vocabulary: Vocabulary = attrs.field(eq=False, repr=False, hash=False)

    def __init__(self, facts: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        data: Any = {} if facts is None else facts
        if more:
            data = {**data, **more} if isinstance(data, Mapping) else data
        # The shipped vocabulary is read (once) from the rule files; no engine is built.
        vocabulary = shipped().vocabulary
        self.__attrs_init__(MappingProxyType(vocabulary.validate(data)), vocabulary)

    @classmethod
    def _validated(cls, data: object, vocabulary: Vocabulary) -> Assessment:
        self = cls.__new__(cls)
        self.__attrs_init__(MappingProxyType(vocabulary.validate(data)), vocabulary)
        return self

    @classmethod
    def from_mapping(cls, data: object, *, engine: _HasVocabulary | None = None) -> Assessment:
        """Validate ``data`` against ``engine``'s vocabulary (the shipped one by default)."""
        return cls._validated(data, (engine or shipped()).vocabulary)

    @property
    def vocabulary(self) -> Vocabulary:
        """The vocabulary the facts were validated against: an engine given it does not validate them again."""
        return self._vocabulary

    def __getitem__(self, name: str) -> FactValue:
        return self.facts[name]

    def get(self, name: str) -> FactValue | None:
        """The fact's value, or None when it is unknown."""
        return self.facts.get(name)

    def to_dict(self) -> dict[str, FactValue]:
        """The known facts as a plain dict, in vocabulary order."""
        return dict(self.facts)
