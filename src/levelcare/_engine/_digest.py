"""The input digest of a decision, written from fragments prepared per vocabulary.

:func:`levelcare._model.facts_sha256` defines the digest: canonical JSON of the
validated facts (keys sorted, no spaces, UTF-8). Serialising a fresh dict with
``json.dumps`` on every decision costs more than the rest of the digest, so the
engine writes the same text from the JSON of each fact name and each finite value,
prepared once. A property test holds the two equal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .._model import facts_sha256
from .._rulebase._vocabulary import FactValue, Vocabulary


class FactsDigest:
    """``facts_sha256`` for facts validated against one vocabulary."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        # json.dumps(sort_keys=True) sorts the names as Python sorts str.
        names = sorted(fact.name for fact in vocabulary.facts)
        self._position = {name: index for index, name in enumerate(names)}
        self._keys = {name: _dumps(name) + ":" for name in names}
        # '"name":value' for every finite value (str or bool), by name and value.
        self._written: dict[str, dict[FactValue, str]] = {
            fact.name: {value: self._keys[fact.name] + _dumps(value) for value in fact.values}
            for fact in vocabulary.facts
            if fact.finite
        }

    def __call__(self, facts: Mapping[str, Any]) -> str:
        written, position, keys = self._written, self._position, self._keys
        slots: list[str] = [""] * len(position)
        for name, value in facts.items():
            kind = type(value)
            # Only str and bool values are looked up: True == 1, yet 1 is written as 1.
            table = written.get(name) if kind is str or kind is bool else None
            text = table.get(value) if table is not None else None
            if text is None:
                if kind is not int or name not in keys:
                    # An unknown (None) value, a name outside the vocabulary, a
                    # value of another type: not validated facts, so the
                    # definition decides.
                    return facts_sha256(facts)
                text = keys[name] + int.__repr__(value)
            slots[position[name]] = text
        return hashlib.sha256(("{" + ",".join(filter(None, slots)) + "}").encode("utf-8")).hexdigest()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
