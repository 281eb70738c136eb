"""levelcare in a FHIR clinical record: the assessment as a Questionnaire, its
answers as facts, and a decision as a GuidanceResponse.

Resources are JSON-ready dicts; :func:`to_model` checks one against the FHIR
specification with ``fhir.resources`` (``pip install "levelcare[fhir]"``)::

    from levelcare import Engine, fhir

    engine = Engine.default()
    form = fhir.questionnaire(engine)
    facts = fhir.assessment_from_response(questionnaire_response, engine)
    answer = fhir.guidance_response(engine.decide(facts), engine)

Levels, facts and rule ids all come from the engine's rule base.

.. versionadded:: 1.0
"""

from ._adapters._fhir import (
    BASE,
    SHA256_EXTENSION,
    VERSIONS,
    FhirError,
    assessment_from_response,
    code_system,
    fact_system,
    guidance_response,
    level_coding,
    levels_system,
    module_url,
    questionnaire,
    questionnaire_url,
    response_for,
    rules_system,
    to_model,
)

__all__ = [
    "BASE",
    "SHA256_EXTENSION",
    "VERSIONS",
    "FhirError",
    "assessment_from_response",
    "code_system",
    "fact_system",
    "guidance_response",
    "level_coding",
    "levels_system",
    "module_url",
    "questionnaire",
    "questionnaire_url",
    "response_for",
    "rules_system",
    "to_model",
]
