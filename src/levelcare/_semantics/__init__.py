"""Semantics: what a loaded rule base means, in one place.

``_placement`` is the placement mechanism (admission, escalation, continue and
step-down readiness, bridge floors and minimum stay); ``_unknowns`` reasons about
unknown facts with the same mechanism. The engine, the verifier and the
reference renderer all read the mechanism from here.
"""

from ._placement import Decider, Owner, Placement, Settled
from ._unknowns import Analysis

__all__ = ["Analysis", "Decider", "Owner", "Placement", "Settled"]
