"""The rule base: reading rule files into checked, immutable data.

``_loader`` reads and checks a folder of TOML files, in parts: ``_reading``
(which files, which tables, their limits), ``_declarations`` (header, wording,
levels, sources, vocabulary), ``_criteria`` (rules and emergencies),
``_transitions``, ``_outcomes`` (programmes, services, considerations),
``_structure`` (how the items fit together) and ``_cases`` (test vectors), into the
values of ``_items``. ``_vocabulary`` is the fact vocabulary and its validation;
``_conditions`` the condition language; ``_assessment`` the validated input of a
decision. Nothing here decides.
"""

from ._cases import Case
from ._items import (
    Bridge,
    Consideration,
    Emergency,
    Escalation,
    Readiness,
    Rule,
    RuleBase,
    Service,
    Sign,
    Source,
    TransitionNote,
    Wording,
)
from ._loader import default_location, load, shipped

__all__ = [
    "Bridge",
    "Case",
    "Consideration",
    "Emergency",
    "Escalation",
    "Readiness",
    "Rule",
    "RuleBase",
    "Service",
    "Sign",
    "Source",
    "TransitionNote",
    "Wording",
    "default_location",
    "load",
    "shipped",
]
