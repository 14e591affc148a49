"""The pieces the API description is made of: references, responses, errors, request bodies,
and the schemas of the job options and of the handlers a server allows."""

import logging
from typing import Any

from ocrflow.handlers import registry
from ocrflow.jobs.records import Priority
from ocrflow.pipeline.options import OUTPUTS, PSMS, installed_languages

log = logging.getLogger(__name__)

JSON = "application/json"
REF = "#/components/schemas/{model}"


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def errors(*statuses: int) -> dict[str, Any]:
    described = {
        400: "malformed request",
        401: "no or unknown API key or token",
        403: "not allowed from here, or not for this caller (high priority)",
        408: "the body came too slowly",
        404: "no such job, output or upload (or not the caller's)",
        409: "not possible in the job's current state",
        413: "larger than the configured limit",
        415: "neither multipart/form-data nor JSON",
        422: "invalid options or fields; `details` lists each field",
        429: "rate or active-job limit; see Retry-After",
        503: "queue full or Redis/storage unavailable; see Retry-After",
    }
    return {
        str(status): {
            "description": described[status],
            "content": {JSON: {"schema": ref("Error")}},
        }
        for status in statuses
    }


def ok(status: int, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"description": description}
    if schema is not None:
        body["content"] = {JSON: {"schema": schema}}
    return {str(status): body}


CALLER_ERRORS = (401, 429, 503)


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}


LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "description": "the id of the last event received: the feed goes on after it",
    "schema": {"type": "string", "pattern": "^[0-9]{1,20}(-[0-9]{1,20})?$"},
}


def list_of(names: list[str]) -> str:
    """A pattern for a comma- or plus-separated list of `names`."""
    one = "(" + "|".join(names) + ")"
    return f"^{one}([,+]{one})*$"


def listed(names: list[str], json_body: bool) -> dict[str, Any]:
    text = {"type": "string", "pattern": list_of(names)}
    if not json_body:
        return text
    items = {"type": "array", "minItems": 1, "items": {"type": "string", "enum": names}}
    return {"anyOf": [text, items]}


def body(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """A request body: these fields and no others (an unknown field is a 422)."""
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    return schema | ({"required": required} if required else {})


def handler_schemas(allow_list: tuple[str, ...]) -> dict[str, Any]:
    """The schemas of the parameters of each handler jobs may name, by component name."""
    schemas: dict[str, Any] = {}
    for name in registry.allowed(allow_list):
        try:
            handler = registry.load(name)
        except Exception:  # a plug-in that cannot load is left out, and the log says why
            log.exception("handler %r cannot be loaded", name)
            continue
        template = f"#/components/schemas/{name}.{{model}}"
        schema = handler.params.model_json_schema(ref_template=template)
        for model, part in schema.pop("$defs", {}).items():
            schemas[f"{name}.{model}"] = part
        schemas[handler_schema(name)] = schema | {"description": handler.description}
    return schemas


def handlers_property(handlers: list[str], *, json_body: bool) -> dict[str, Any]:
    """The handlers a job may name, each with its parameters' schema."""
    available = f"available: {', '.join(handlers) or 'none'}"
    if not json_body:
        about = (
            "handlers to run after recognition, in order: a JSON object of names to their "
            f"parameters, or names separated by commas; {available}"
        )
        return {"type": "string", "description": about}
    about = f"handlers to run after recognition, in order, with their parameters; {available}"
    by_name = {
        "type": "object",
        "properties": {name: ref(handler_schema(name)) for name in handlers},
        "additionalProperties": False,
    }
    names = {"type": "array", "items": {"type": "string", "enum": list(handlers)}}
    return {"anyOf": [by_name, names], "description": about}


def handler_schema(name: str) -> str:
    return f"HandlerParams_{name}"


def option_properties(*, json_body: bool, handlers: list[str]) -> dict[str, Any]:
    """The job's fields as a form sends them (lists comma-separated, the rest as text), or as
    JSON (metadata as an object)."""
    installed = sorted(installed_languages())
    languages = f"Tesseract languages, comma- or plus-separated; installed: {', '.join(installed)}"
    metadata: dict[str, Any] = (
        {"type": "object"}
        if json_body
        else {"type": "string", "description": "a JSON object, returned with the job"}
    )
    properties = {
        "languages": listed(installed, json_body) | {"description": languages},
        "outputs": listed(list(OUTPUTS), json_body),
        "dpi": {"type": "integer", "minimum": 72, "maximum": 600},
        "psm": {"type": "integer", "enum": sorted(PSMS)},
        "force_ocr": {"type": "boolean"},
        "rotate": {"type": "boolean"},
        "deskew": {"type": "boolean"},
        "rescale": {"type": "boolean"},
        "priority": {"type": "string", "enum": [p.value for p in Priority]},
        "metadata": metadata,
        "handlers": handlers_property(handlers, json_body=json_body),
        "callback_url": {"type": "string", "format": "uri"},
        "notify_email": {"type": "string", "format": "email"},
        "notify": {"type": "boolean", "description": "e-mail the address in the caller's JWT"},
    }
    if not json_body:
        return properties
    # In JSON, null means "not given".
    return {name: {"anyOf": [schema, {"type": "null"}]} for name, schema in properties.items()}
