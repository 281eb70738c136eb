"""Numbered lines of a byte stream and the facts in one JSON text, as the batch reads them.

Defined in :mod:`levelcare._batch`; the names the verifier's population reading
uses are here as well.
"""

from __future__ import annotations

from .._batch._reading import InputError, LineReader, parse_facts

__all__ = ["InputError", "LineReader", "parse_facts"]
