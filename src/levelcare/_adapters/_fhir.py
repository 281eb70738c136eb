"""FHIR resources for a rule base and its decisions, as JSON-ready dicts.

Nothing here imports a FHIR library: the resources are plain dicts, so a caller
can send them as they are. :func:`to_model` builds the ``fhir.resources`` model
of one (``pip install "levelcare[fhir]"``) to check it against the specification.

Every identifier is derived from the rule base's name; levels, facts and rule ids
come from the rule base, never from this module.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from json.encoder import encode_basestring_ascii
from typing import Any

from .._model import Decision, Level, Reason, RulebaseInfo
from .._rulebase import RuleBase
from .._rulebase._vocabulary import Fact, FactValue
from .._text import MAX_SHOWN, Problems, closest, shorten, type_name
from ..exceptions import AssessmentProblem, InvalidAssessment, LevelCareError

#: The FHIR versions resources can be written for. R4 and R4B have the same
#: shape for every resource used here.
VERSIONS = ("R5", "R4", "R4B")

#: The root of every identifier levelcare mints: URNs, so nothing suggests a
#: server that would answer at that address.
BASE = "urn:levelcare"
#: The extension carrying the sha256 of the rule base behind a resource.
SHA256_EXTENSION = f"{BASE}:extension:rulebase-sha256"
_MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
_MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"


class FhirError(LevelCareError, ValueError):
    """A FHIR resource cannot be written or read as asked (an unknown FHIR version, say).

    .. versionadded:: 1.0
    """


def _rulebase(engine: Any) -> RuleBase:
    rulebase = getattr(engine, "_rb", None)
    if not isinstance(rulebase, RuleBase):
        msg = f"engine: expected a levelcare.Engine, got {type_name(engine)}"
        raise FhirError(msg)
    return rulebase


def _version(version: object) -> str:
    if version not in VERSIONS:
        msg = f"version: expected one of {', '.join(VERSIONS)}, got {shorten(version)}"
        raise FhirError(msg)
    return str(version)


# --- identifiers ----------------------------------------------------------------------


def questionnaire_url(info: RulebaseInfo) -> str:
    """The canonical URL of the assessment Questionnaire of a rule base."""
    return f"{BASE}:questionnaire:{info.name}"


def levels_system(info: RulebaseInfo) -> str:
    """The CodeSystem URL of a rule base's levels."""
    return f"{BASE}:levels:{info.name}"


def rules_system(info: RulebaseInfo) -> str:
    """The code system of a rule base's rule ids (EM-1, IN-2, ...)."""
    return f"{BASE}:rules:{info.name}"


def fact_system(info: RulebaseInfo, fact: str) -> str:
    """The code system of one ordinal fact's values."""
    return f"{BASE}:fact:{info.name}:{fact}"


def module_url(info: RulebaseInfo) -> str:
    """The canonical URL of the rule base as a knowledge module."""
    return f"{BASE}:rulebase:{info.name}"


def _sha256_extension(info: RulebaseInfo) -> list[dict[str, Any]]:
    return [{"url": SHA256_EXTENSION, "valueString": info.sha256}]


def _computable(name: str, suffix: str) -> str:
    # FHIR's computable names start with a capital and hold letters, digits and _.
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    text = "".join(w[:1].upper() + w[1:] for w in words) or "Levelcare"
    if not text[0].isalpha():
        text = "L" + text
    return text + suffix


def _resource_id(name: str, suffix: str) -> str:
    text = re.sub(r"[^A-Za-z0-9\-.]+", "-", f"{name}-{suffix}").strip("-")
    return text[:64] or suffix


def level_coding(level: Level, info: RulebaseInfo) -> dict[str, Any]:
    """A level as a Coding of the rule base's level CodeSystem."""
    return {"system": levels_system(info), "version": info.version, "code": level.id, "display": level.label}


# --- CodeSystem -----------------------------------------------------------------------


def code_system(engine: Any) -> dict[str, Any]:
    """The rule base's levels as a FHIR CodeSystem (the same in R4 and R5).

    Concepts are the levels, least intensive first, each with its rank as the
    ``rank`` property.
    """
    rulebase = _rulebase(engine)
    info = rulebase.info
    return {
        "resourceType": "CodeSystem",
        "id": _resource_id(info.name, "levels"),
        "extension": _sha256_extension(info),
        "url": levels_system(info),
        "version": info.version,
        "name": _computable(info.name, "Levels"),
        "title": f"Levels of care of {info.name}",
        "status": "active",
        "description": "The levels of care of this rule base, from least to most intensive.",
        "caseSensitive": True,
        "content": "complete",
        "count": len(rulebase.levels),
        "property": [{"code": "rank", "type": "integer", "description": "0 for the least intensive level, upwards."}],
        "concept": [
            {
                "code": level.id,
                "display": level.label,
                **({"definition": level.description} if level.description else {}),
                "property": [{"code": "rank", "valueInteger": level.rank}],
            }
            for level in rulebase.levels
        ],
    }


# --- Questionnaire --------------------------------------------------------------------


def _item(fact: Fact, rulebase: RuleBase, version: str) -> dict[str, Any]:
    info = rulebase.info
    item: dict[str, Any] = {"linkId": fact.name, "text": fact.meaning, "required": False, "repeats": False}
    if fact.kind == "boolean":
        item["type"] = "boolean"
    elif fact.kind == "integer":
        item["type"] = "integer"
        item["extension"] = [
            {"url": _MIN_VALUE, "valueInteger": fact.minimum},
            {"url": _MAX_VALUE, "valueInteger": fact.maximum},
        ]
    else:
        item["type"] = "coding" if version == "R5" else "choice"
        if version == "R5":
            item["answerConstraint"] = "optionsOnly"
        if fact.kind == "level":
            options = [level_coding(rulebase.levels[str(v)], info) for v in fact.values]
        else:
            options = [{"system": fact_system(info, fact.name), "code": str(v), "display": str(v)} for v in fact.values]
        item["answerOption"] = [{"valueCoding": coding} for coding in options]
    return item


def questionnaire(engine: Any, version: str = "R5") -> dict[str, Any]:
    """The assessment as a FHIR Questionnaire generated from the rule base's vocabulary.

    One item per fact, ``linkId`` the fact's name, in vocabulary order. Every item
    is optional: an unanswered item is an unknown fact, which levelcare never
    guesses. The rule base's name is in ``url``, its version in ``version`` and
    its sha256 in an extension.

    Args:
        engine: The engine whose rule base the questionnaire asks about.
        version: ``"R5"`` (the default) or ``"R4"``: R5 choice items are of type
            ``coding``, R4 ones of type ``choice``.

    Returns:
        The Questionnaire as a JSON-ready dict.
    """
    version = _version(version)
    rulebase = _rulebase(engine)
    info = rulebase.info
    return {
        "resourceType": "Questionnaire",
        "id": _resource_id(info.name, "assessment"),
        "extension": _sha256_extension(info),
        "url": questionnaire_url(info),
        "version": info.version,
        "name": _computable(info.name, "Assessment"),
        "title": f"Level-of-care assessment ({info.name} {info.version})",
        "status": "active",
        "subjectType": ["Patient"],
        "description": rulebase.description
        + " Leave an item unanswered when it is not known; unknown facts are never guessed.",
        "item": [_item(fact, rulebase, version) for fact in rulebase.vocabulary.facts],
    }


# --- QuestionnaireResponse -> facts ---------------------------------------------------


def _as_json(resource: object) -> object:
    """A fhir.resources model as JSON data; anything else as it is."""
    dump = getattr(resource, "model_dump_json", None)
    if callable(dump):
        return json.loads(dump(by_alias=True, exclude_none=True))
    return resource


def _items(items: object, where: str, problems: Problems[AssessmentProblem]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        problems.append(AssessmentProblem(where, f"expected a list of items, got {type_name(items)}"))
        return
    for index, item in enumerate(items):
        here = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            problems.append(AssessmentProblem(here, f"expected an item object, got {type_name(item)}"))
            continue
        if "item" in item:
            # A group (or an item with sub-items): the facts are in its children.
            yield from _items(item["item"], f"{here}.item", problems)
        if "answer" in item or "item" not in item:
            yield here, item


_VALUE_KEYS = {"boolean": "valueBoolean", "integer": "valueInteger"}


def _answer_value(
    fact: Fact, answer: Mapping[str, Any], info: RulebaseInfo, *, suggest: bool = True
) -> tuple[FactValue | None, str | None]:
    """The fact value of one answer, or the problem with it (``suggest``: as in :meth:`Fact.check`)."""
    keys = [k for k in answer if k.startswith("value")]
    expected = _VALUE_KEYS.get(fact.kind, "valueCoding")
    if len(keys) != 1:
        return None, f"expected one {expected}, got {len(keys)} values"
    key = keys[0]
    value = answer[key]
    shown = key if len(key) <= MAX_SHOWN else shorten(key)
    if fact.kind in _VALUE_KEYS:
        if key != expected:
            return None, f"expected {expected} ({fact.allowed_text()}), got {shown}"
        return value, fact.check(value, suggest=suggest)
    if key == "valueString":
        code = value
    elif key == "valueCoding" and isinstance(value, Mapping):
        code = value.get("code")
        system = value.get("system")
        wanted = levels_system(info) if fact.kind == "level" else fact_system(info, fact.name)
        if system is not None and system != wanted:
            return None, f"coding system {shorten(system)} is not {wanted!r}"
    else:
        return None, f"expected valueCoding ({fact.allowed_text()}), got {shown}"
    return code, fact.check(code, suggest=suggest)


def assessment_from_response(response: object, engine: Any) -> dict[str, FactValue]:
    """The facts a QuestionnaireResponse to :func:`questionnaire` gives.

    Unanswered items (no ``answer``) are unknown facts. Items may sit inside
    groups. Both R4 and R5 responses are read.

    Args:
        response: The QuestionnaireResponse as parsed JSON, or a
            ``fhir.resources`` model.
        engine: The engine whose vocabulary the answers are checked against.

    Returns:
        The known facts, in vocabulary order, ready for ``engine.decide``.

    Raises:
        InvalidAssessment: listing every problem (an unknown linkId, an answer of
            the wrong type, a value the fact does not allow, ...), each naming its
            linkId or item position.
    """
    rulebase = _rulebase(engine)
    info = rulebase.info
    vocabulary = rulebase.vocabulary
    data = _as_json(response)
    if not isinstance(data, Mapping) or data.get("resourceType") != "QuestionnaireResponse":
        kind = data.get("resourceType") if isinstance(data, Mapping) else None
        shown = type_name(data) if kind is None else f"a {shorten(kind)} resource"
        problem = AssessmentProblem("resourceType", f"expected a QuestionnaireResponse, got {shown}")
        raise InvalidAssessment([problem])
    problems = Problems(lambda text: AssessmentProblem("", text))
    if data.get("status") == "entered-in-error":
        problems.append(AssessmentProblem("status", "the response was entered in error; use a valid one"))
    form = data.get("questionnaire")
    if form is not None and (not isinstance(form, str) or form.split("|")[0] != questionnaire_url(info)):
        problems.append(
            AssessmentProblem(
                "questionnaire",
                f"answers {shorten(form)}, not this rule base's questionnaire {questionnaire_url(info)!r}",
            )
        )
    known: dict[str, FactValue] = {}
    seen: set[str] = set()
    for where, item in _items(data.get("item", []), "item", problems):
        link = item.get("linkId")
        if not isinstance(link, str):
            problems.append(AssessmentProblem(where, f"linkId: expected a string, got {type_name(link)}"))
            continue
        name = link if len(link) <= 40 else shorten(link)
        fact = vocabulary.by_name.get(link)
        if fact is None:
            hint = vocabulary.suggest(link, problems)
            problems.append(AssessmentProblem(name, "unknown linkId" + (f"; did you mean {hint!r}?" if hint else "")))
            continue
        if link in seen:
            problems.append(AssessmentProblem(name, "answered twice; give each fact once"))
            continue
        seen.add(link)
        answers = item.get("answer", [])
        if not isinstance(answers, Sequence) or isinstance(answers, (str, bytes)):
            problems.append(AssessmentProblem(name, f"answer: expected a list, got {type_name(answers)}"))
            continue
        if not answers:
            continue  # unanswered: an unknown fact
        if len(answers) > 1:
            problems.append(AssessmentProblem(name, f"{len(answers)} answers; a fact has one value"))
            continue
        answer = answers[0]
        if not isinstance(answer, Mapping):
            problems.append(AssessmentProblem(name, f"answer: expected an object, got {type_name(answer)}"))
            continue
        value, message = _answer_value(fact, answer, info, suggest=not problems.full)
        if message is not None:
            problems.append(AssessmentProblem(name, message))
        elif value is not None:
            known[link] = value
    if problems:
        raise InvalidAssessment(problems.reported())
    return {f.name: known[f.name] for f in vocabulary.facts if f.name in known}


def response_for(facts: Mapping[str, FactValue], engine: Any, version: str = "R5") -> dict[str, Any]:
    """A completed QuestionnaireResponse to :func:`questionnaire` holding ``facts``.

    Every fact of the vocabulary gets an item; unknown facts are unanswered.

    Raises:
        InvalidAssessment: the facts are not valid for the engine's vocabulary.
    """
    _version(version)
    rulebase = _rulebase(engine)
    info = rulebase.info
    known = rulebase.vocabulary.validate(facts)
    items: list[dict[str, Any]] = []
    for fact in rulebase.vocabulary.facts:
        item: dict[str, Any] = {"linkId": fact.name}
        if fact.name in known:
            value = known[fact.name]
            if fact.kind in _VALUE_KEYS:
                item["answer"] = [{_VALUE_KEYS[fact.kind]: value}]
            elif fact.kind == "level":
                item["answer"] = [{"valueCoding": level_coding(rulebase.levels[str(value)], info)}]
            else:
                coding = {"system": fact_system(info, fact.name), "code": value, "display": value}
                item["answer"] = [{"valueCoding": coding}]
        items.append(item)
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{questionnaire_url(info)}|{info.version}",
        "status": "completed",
        "item": items,
    }


# --- GuidanceResponse -----------------------------------------------------------------


def _json_text(value: object) -> str:
    """``value`` as JSON writes it: the common scalars directly, anything else through ``json``."""
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    return json.dumps(value)


def _fact_text(reason: Reason) -> str:
    return ", ".join(f"{k}={'unknown' if v is None else _json_text(v)}" for k, v in reason.facts.items())


def _source_titles(rulebase: RuleBase) -> dict[str, str]:
    return {s.id: s.title for s in rulebase.sources}


def _rule_codings(reason: Reason, info: RulebaseInfo) -> list[dict[str, Any]]:
    return [{"system": rules_system(info), "code": rule} for rule in reason.rule_id.split(", ") if rule]


def _reason_parameter(name: str, reason: Reason, rulebase: RuleBase, titles: Mapping[str, str]) -> dict[str, Any]:
    info = rulebase.info
    parts: list[dict[str, Any]] = [{"name": "rule", "valueCoding": coding} for coding in _rule_codings(reason, info)]
    parts.append({"name": "statement", "valueString": reason.statement})
    if reason.level is not None:
        parts.append({"name": "level", "valueCoding": level_coding(reason.level, info)})
    if reason.facts:
        parts.append({"name": "facts", "valueString": _fact_text(reason)})
    for source in reason.sources:
        artifact = {"type": "citation", "label": source, "display": titles.get(source, source)}
        parts.append({"name": "source", "valueRelatedArtifact": artifact})
    return {"name": name, "part": parts}


def _note(kind: str, reason: Reason, titles: Mapping[str, str]) -> dict[str, Any]:
    level = "" if reason.level is None else f" [{reason.level.label}]"
    lines = [f"{kind} {reason.rule_id}{level}: {reason.statement}"]
    if reason.facts:
        lines.append(f"Facts: {_fact_text(reason)}.")
    if reason.sources:
        lines.append("Sources: " + "; ".join(f"{s} ({titles.get(s, s)})" for s in reason.sources) + ".")
    return {"text": "\n".join(lines)}


def _data_requirement(fact: str, info: RulebaseInfo) -> dict[str, Any]:
    # The missing fact is an item of the assessment questionnaire: say which one.
    return {
        "type": "QuestionnaireResponse",
        "mustSupport": [f"item.where(linkId='{fact}').answer"],
        "extension": [{"url": f"{BASE}:extension:questionnaire", "valueCanonical": questionnaire_url(info)}],
    }


def guidance_response(
    decision: Decision,
    engine: Any,
    version: str = "R5",
    *,
    subject: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """A decision as a FHIR GuidanceResponse.

    ``status`` is ``success`` for a complete decision and ``data-required`` when
    unknown facts could change the level, with one ``dataRequirement`` per
    missing fact (the questionnaire item to answer). The decisive rules are the
    reason codes (``reason`` in R5, ``reasonCode`` in R4), the rule base the
    module (``moduleCanonical``, ``name|version``, with its sha256 in an
    extension). A contained Parameters resource, the ``outputParameters``, holds
    the level as a Coding of :func:`code_system`, the transition, the level range
    and every reason, ruled-out level and consideration with its rule ids,
    statement, facts and sources (as RelatedArtifact citations); ``note`` repeats
    them as text for readers without the Parameters.

    Args:
        decision: The decision, made by ``engine``.
        engine: The engine that decided.
        version: ``"R5"`` (the default) or ``"R4"``.
        subject: A reference such as ``"Patient/123"``, if known.
        request_id: The identifier of the request this answers, if any.

    Raises:
        FhirError: an unknown FHIR version, or a decision of another rule base.
    """
    version = _version(version)
    rulebase = _rulebase(engine)
    info = rulebase.info
    if not isinstance(decision, Decision):
        msg = f"decision: expected a levelcare.Decision, got {type_name(decision)}"
        raise FhirError(msg)
    if decision.rulebase != info:
        msg = (
            f"decision: made by rule base {decision.rulebase.name} {decision.rulebase.version}, "
            f"not by this engine's {info.name} {info.version}"
        )
        raise FhirError(msg)
    parameters: list[dict[str, Any]] = [{"name": "status", "valueCode": decision.status}]
    if decision.level is not None:
        parameters.append({"name": "level", "valueCoding": level_coding(decision.level, info)})
    if decision.transition is not None:
        parameters.append({"name": "transition", "valueCode": decision.transition.value})
    parameters.append({"name": "emergency", "valueBoolean": decision.emergency})
    parameters.append({"name": "lowest-level", "valueCoding": level_coding(decision.level_range[0], info)})
    parameters.append({"name": "highest-level", "valueCoding": level_coding(decision.level_range[1], info)})
    parameters += [{"name": "missing", "valueString": fact} for fact in decision.missing]
    titles = _source_titles(rulebase)
    parameters += [_reason_parameter("reason", r, rulebase, titles) for r in decision.reasons]
    parameters += [_reason_parameter("ruled-out", r, rulebase, titles) for r in decision.ruled_out]
    parameters += [_reason_parameter("consideration", r, rulebase, titles) for r in decision.considerations]
    parameters += [{"name": "service", "valueString": s} for s in decision.services]
    reasons = [
        {"coding": _rule_codings(r, info), "text": r.statement} for r in decision.reasons if _rule_codings(r, info)
    ]
    notes = [_note("Reason", r, titles) for r in decision.reasons]
    notes += [_note("Ruled out", r, titles) for r in decision.ruled_out]
    notes += [_note("Consideration", r, titles) for r in decision.considerations]
    resource: dict[str, Any] = {
        "resourceType": "GuidanceResponse",
        "contained": [{"resourceType": "Parameters", "id": "result", "parameter": parameters}],
        "extension": _sha256_extension(info),
    }
    if request_id is not None:
        resource["requestIdentifier"] = {"value": request_id}
    resource["moduleCanonical"] = f"{module_url(info)}|{info.version}"
    resource["status"] = "success" if decision.complete else "data-required"
    if subject is not None:
        resource["subject"] = {"reference": subject}
    if decision.as_of is not None:
        resource["occurrenceDateTime"] = decision.as_of.isoformat()
    if reasons:
        if version == "R5":
            resource["reason"] = [{"concept": concept} for concept in reasons]
        else:
            resource["reasonCode"] = reasons
    if notes:
        resource["note"] = notes
    resource["outputParameters"] = {"reference": "#result"}
    if decision.missing:
        resource["dataRequirement"] = [_data_requirement(fact, info) for fact in decision.missing]
    return resource


# --- ServiceRequest -------------------------------------------------------------------


def service_request(level: Level, engine: Any, version: str = "R5", *, subject: str) -> dict[str, Any]:
    """A referral of the patient to a level of care, as a FHIR ServiceRequest proposal.

    The requested service is the level as a Coding of :func:`code_system` (``code``
    is a CodeableReference in R5, a CodeableConcept in R4); the status is
    ``draft`` and the intent ``proposal``, for a clinician to confirm or change.

    Args:
        level: A level of ``engine``'s rule base.
        engine: The engine whose rule base names the level.
        version: ``"R5"`` (the default) or ``"R4"``.
        subject: A reference such as ``"Patient/123"``.

    Raises:
        FhirError: an unknown FHIR version, or a level of another rule base.
    """
    version = _version(version)
    rulebase = _rulebase(engine)
    info = rulebase.info
    if not isinstance(level, Level) or level.id not in rulebase.levels.ids or rulebase.levels[level.id] != level:
        msg = f"level: expected a level of rule base {info.name} {info.version}, got {shorten(level)}"
        raise FhirError(msg)
    concept = {"coding": [level_coding(level, info)], "text": f"Referral to {level.label}"}
    return {
        "resourceType": "ServiceRequest",
        "extension": _sha256_extension(info),
        "status": "draft",
        "intent": "proposal",
        "code": {"concept": concept} if version == "R5" else concept,
        "subject": {"reference": subject},
    }


# --- validation with fhir.resources ---------------------------------------------------


def to_model(resource: Mapping[str, Any], version: str = "R5") -> Any:
    """The ``fhir.resources`` model of a resource, which checks it against the specification.

    Needs the ``fhir`` extra: ``pip install "levelcare[fhir]"``.

    Raises:
        FhirError: fhir.resources is not installed, the resource type is unknown,
            or the resource does not conform (pydantic's message says where).
    """
    version = _version(version)
    package = "fhir.resources" if version == "R5" else "fhir.resources.R4B"
    try:
        module = importlib.import_module(package)
    except ImportError:
        msg = 'FHIR models need fhir.resources: pip install "levelcare[fhir]"'
        raise FhirError(msg) from None
    kind = resource.get("resourceType") if isinstance(resource, Mapping) else None
    try:
        model_class = module.get_fhir_model_class(kind)
    except (KeyError, ValueError, TypeError):
        msg = f"resourceType: {shorten(kind)} is not a FHIR {version} resource type"
        known = closest(str(kind), ["Questionnaire", "QuestionnaireResponse", "GuidanceResponse", "CodeSystem"])
        raise FhirError(msg + (f"; did you mean {known!r}?" if known else "")) from None
    try:
        return model_class.model_validate(dict(resource))
    except ValueError as error:
        # Each problem by its path, without pydantic's echo of the (possibly long) value.
        errors = getattr(error, "errors", None)
        found = (
            [f"{'.'.join(str(p) for p in e.get('loc', ())) or kind}: {e.get('msg', '')}" for e in errors()]
            if callable(errors)
            else [str(error)]
        )
        msg = f"{kind} does not conform to FHIR {version}: " + "; ".join(found)
        raise FhirError(msg) from None
