"""Adapters between levelcare and other systems, each behind an optional extra.

FHIR resources, placement overrides and a CDS Hooks service for clinical record
systems (public faces :mod:`levelcare.fhir`, :mod:`levelcare.overrides` and
``levelcare serve``). Dask, for deciding populations beyond one machine, is part
of the batch (:mod:`levelcare.dask`).
"""
