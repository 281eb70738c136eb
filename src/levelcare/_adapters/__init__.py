"""Adapters between levelcare and clinical record systems: FHIR resources, placement
overrides and a CDS Hooks service.

The public faces are :mod:`levelcare.fhir` and :mod:`levelcare.overrides`; the
CDS Hooks service runs with ``levelcare serve``.
"""
