"""The rule base: reading rule files into checked, immutable data.

``_loader`` reads and checks a folder of TOML files; ``_vocabulary`` is the fact
vocabulary and its validation; ``_conditions`` the condition language;
``_assessment`` the validated input of a decision. Nothing here decides.
"""

from ._cases import Case
from ._loader import (
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
    default_location,
    load,
    shipped,
)

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
