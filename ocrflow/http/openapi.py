"""`GET /openapi.json`: the HTTP API described for clients and for schema-driven testing.

The job document's schema comes from the models themselves, so the description cannot drift
from what the service sends; the operations are listed here, next to their error codes."""

import logging
from functools import cache
from typing import Any

from aiohttp import web

from ocrflow.handlers import registry
from ocrflow.http.auth import public
from ocrflow.http.jobs import LIST_LIMIT
from ocrflow.http.state import SERVICES
from ocrflow.jobs.records import Job, JobState, Priority
from ocrflow.pipeline.options import OUTPUTS, PSMS, OcrOptions, installed_languages
from ocrflow.pipeline.outputs import FILENAMES

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

JSON = "application/json"
REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _errors(*statuses: int) -> dict[str, Any]:
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
            "content": {JSON: {"schema": _ref("Error")}},
        }
        for status in statuses
    }


def _ok(status: int, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
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


def _list_of(names: list[str]) -> str:
    """A pattern for a comma- or plus-separated list of `names`."""
    one = "(" + "|".join(names) + ")"
    return f"^{one}([,+]{one})*$"


def _listed(names: list[str], json_body: bool) -> dict[str, Any]:
    text = {"type": "string", "pattern": _list_of(names)}
    if not json_body:
        return text
    items = {"type": "array", "minItems": 1, "items": {"type": "string", "enum": names}}
    return {"anyOf": [text, items]}


def _body(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """A request body: these fields and no others (an unknown field is a 422)."""
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    return schema | ({"required": required} if required else {})


def _handler_schemas(allow_list: tuple[str, ...]) -> dict[str, Any]:
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
        schemas[_handler_schema(name)] = schema | {"description": handler.description}
    return schemas


def _handlers_property(handlers: list[str], *, json_body: bool) -> dict[str, Any]:
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
        "properties": {name: _ref(_handler_schema(name)) for name in handlers},
        "additionalProperties": False,
    }
    names = {"type": "array", "items": {"type": "string", "enum": list(handlers)}}
    return {"anyOf": [by_name, names], "description": about}


def _handler_schema(name: str) -> str:
    return f"HandlerParams_{name}"


def _option_properties(*, json_body: bool, handlers: list[str]) -> dict[str, Any]:
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
        "languages": _listed(installed, json_body) | {"description": languages},
        "outputs": _listed(list(OUTPUTS), json_body),
        "dpi": {"type": "integer", "minimum": 72, "maximum": 600},
        "psm": {"type": "integer", "enum": sorted(PSMS)},
        "force_ocr": {"type": "boolean"},
        "rotate": {"type": "boolean"},
        "deskew": {"type": "boolean"},
        "rescale": {"type": "boolean"},
        "priority": {"type": "string", "enum": [p.value for p in Priority]},
        "metadata": metadata,
        "handlers": _handlers_property(handlers, json_body=json_body),
        "callback_url": {"type": "string", "format": "uri"},
        "notify_email": {"type": "string", "format": "email"},
        "notify": {"type": "boolean", "description": "e-mail the address in the caller's JWT"},
    }
    if not json_body:
        return properties
    # In JSON, null means "not given".
    return {name: {"anyOf": [schema, {"type": "null"}]} for name, schema in properties.items()}


def _operations(handlers: list[str]) -> dict[str, Any]:
    job = _ok(200, "the job", _ref("Job"))
    accepted = {
        "202": {
            "description": "accepted; `Location` is the job, `Ocrflow-Reused` says when an "
            "earlier job answers (idempotent, shared, cached)",
            "content": {JSON: {"schema": _ref("Job")}},
        }
    }
    idempotency = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
    form = _body(
        {
            "file": {"type": "string", "format": "binary"},
            **_option_properties(json_body=False, handlers=handlers),
        },
        required=["file"],
    )
    by_url = _body(
        {
            "url": {"type": "string", "format": "uri"},
            **_option_properties(json_body=True, handlers=handlers),
        },
        required=["url"],
    )
    stream = {"description": "server-sent events", "content": {"text/event-stream": {}}}
    return {
        "/v1/jobs": {
            "post": {
                "summary": "Submit a document by upload (multipart) or by URL (JSON)",
                "parameters": [idempotency],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {"schema": form},
                        JSON: {"schema": by_url},
                    },
                },
                "responses": {**accepted, **_errors(400, 403, 408, 413, 415, 422, *CALLER_ERRORS)},
            },
            "get": {
                "summary": "The caller's jobs, newest first",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": LIST_LIMIT},
                    },
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {"type": "string", "enum": [s.value for s in JobState]},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "description": "`next_cursor` of the page before",
                        "schema": {"type": "string", "pattern": "^(j_[0-9a-hjkmnp-tv-z]{22})?$"},
                    },
                ],
                "responses": {
                    **_ok(200, "a page of jobs", _ref("JobList")),
                    **_errors(400, 422, *CALLER_ERRORS),
                },
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "A job",
                "parameters": [JOB_ID],
                "responses": {**job, **_errors(404, *CALLER_ERRORS)},
            }
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel a queued or running job",
                "parameters": [JOB_ID],
                "responses": {**job, **_errors(404, 409, *CALLER_ERRORS)},
            }
        },
        "/v1/jobs/{job_id}/retry": {
            "post": {
                "summary": "Run a failed or cancelled job again",
                "parameters": [JOB_ID],
                "responses": {**accepted, **_errors(404, 409, *CALLER_ERRORS)},
            }
        },
        "/v1/jobs/{job_id}/result": {
            "get": {
                "summary": "The JSON result (pages, lines, words with boxes and confidence)",
                "parameters": [JOB_ID],
                "responses": {
                    **_ok(200, "the result", {"type": "object"}),
                    **_errors(404, 409, *CALLER_ERRORS),
                },
            }
        },
        "/v1/jobs/{job_id}/outputs/{name}": {
            "get": {
                "summary": "An output file (a redirect to a short-lived link on S3)",
                "parameters": [
                    JOB_ID,
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "an OCR output's name ("
                        + ", ".join(sorted(FILENAMES))
                        + ") or the file name of a handler's output (fields.json)",
                    },
                ],
                "responses": {
                    "200": {"description": "the file"},
                    "302": {"description": "to a presigned download link"},
                    **_errors(404, *CALLER_ERRORS),
                },
            }
        },
        "/v1/jobs/{job_id}/events": {
            "get": {
                "summary": "The job's events: replayed after Last-Event-ID, then live",
                "parameters": [JOB_ID, LAST_EVENT_ID],
                "responses": {"200": stream, **_errors(400, 404, *CALLER_ERRORS)},
            }
        },
        "/v1/events": {
            "get": {
                "summary": "Events of all the caller's jobs",
                "parameters": [LAST_EVENT_ID],
                "responses": {"200": stream, **_errors(400, *CALLER_ERRORS)},
            }
        },
        "/v1/jobs/{job_id}/pages/{number}/image": {
            "get": {
                "summary": "A page of the job's document as a PNG, to look at beside its text",
                "parameters": [
                    JOB_ID,
                    {
                        "name": "number",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                    {
                        "name": "width",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 100, "maximum": 2000},
                    },
                ],
                "responses": {
                    "200": {"description": "the page", "content": {"image/png": {}}},
                    **_errors(400, 404, *CALLER_ERRORS),
                },
            }
        },
        "/v1/admin/overview": {
            "get": {
                "summary": "For operators: workers, queue, counts, the last hour a minute at a "
                "time, the oldest wait",
                "responses": {
                    **_ok(200, "the overview", {"type": "object"}),
                    **_errors(403, *CALLER_ERRORS),
                },
            }
        },
        "/v1/admin/jobs": {
            "get": {
                "summary": "For operators: every caller's recent jobs, newest first",
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {"type": "string", "enum": [s.value for s in JobState]},
                    },
                    {"name": "caller", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    },
                    {
                        "name": "before",
                        "in": "query",
                        "description": "a `next_cursor`",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    **_ok(200, "jobs", _ref("JobList")),
                    **_errors(400, 403, *CALLER_ERRORS),
                },
            }
        },
        "/v1/admin/events": {
            "get": {
                "summary": "For operators: every caller's job events live, and an `overview` "
                "event every 2 s",
                "responses": {"200": stream, **_errors(403, *CALLER_ERRORS)},
            }
        },
        "/v1/uploads": {
            "post": {
                "summary": "A presigned POST form to upload straight to S3",
                "requestBody": {
                    "content": {JSON: {"schema": _body({"filename": {"type": "string"}})}}
                },
                "responses": {
                    **_ok(201, "the form", _ref("UploadForm")),
                    **_errors(400, 409, *CALLER_ERRORS),
                },
            }
        },
        "/v1/uploads/{upload_id}/complete": {
            "post": {
                "summary": "The upload is in the bucket: check it and make it a job",
                "parameters": [
                    {
                        "name": "upload_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    idempotency,
                ],
                "requestBody": {
                    "content": {
                        JSON: {
                            "schema": _body(_option_properties(json_body=True, handlers=handlers))
                        }
                    }
                },
                "responses": {
                    **accepted,
                    **_errors(400, 403, 404, 408, 409, 413, 415, 422, *CALLER_ERRORS),
                },
            }
        },
        "/v1/webhooks/s3": {
            "post": {
                "summary": "S3 event notifications: each new object becomes a job",
                "security": [{"webhookSecret": []}],
                "requestBody": {"content": {JSON: {"schema": {"type": "object"}}}},
                "responses": {
                    **_ok(202, "one outcome per record", {"type": "object"}),
                    **_errors(400, 401, 404, 409, 429, 503),
                },
            }
        },
        "/v1/status": {
            "get": {
                "summary": "Workers, queue depth by priority, running jobs, counts",
                "security": [{"monitoringToken": []}, {}],
                "responses": {**_ok(200, "status", {"type": "object"}), **_errors(403, 503)},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": [{"monitoringToken": []}, {}],
                "responses": {
                    "200": {"description": "metrics", "content": {"text/plain": {}}},
                    **_errors(403, 503),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This description",
                "security": [],
                "responses": _ok(200, "OpenAPI 3.1", {"type": "object"}),
            }
        },
        "/": {
            "get": {
                "summary": "A page to drop files on and follow them",
                "security": [],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
            }
        },
        "/ocrflow.js": {
            "get": {
                "summary": "The script both pages share",
                "security": [],
                "responses": {
                    "200": {"description": "JavaScript", "content": {"text/javascript": {}}}
                },
            }
        },
        "/dashboard": {
            "get": {
                "summary": "The operators' page (its data needs an operator's key)",
                "security": [],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
            }
        },
        "/healthz": {"get": {"summary": "Alive", "security": [], "responses": _ok(200, "ok")}},
        "/readyz": {
            "get": {
                "summary": "Redis and storage reachable",
                "security": [],
                "responses": {**_ok(200, "ready"), **_errors(503)},
            }
        },
    }


@cache
def document(allow_list: tuple[str, ...] = ()) -> dict[str, Any]:
    """The API as this service runs it: the handlers its settings allow, with their parameters."""
    schemas: dict[str, Any] = _handler_schemas(allow_list)
    handlers = [name for name in registry.allowed(allow_list) if _handler_schema(name) in schemas]
    job = Job.model_json_schema(ref_template=REF, mode="serialization")
    schemas.update(job.pop("$defs", {}))
    schemas["Job"] = job
    options = OcrOptions.model_json_schema(ref_template=REF, mode="serialization")
    schemas.update(options.pop("$defs", {}))
    schemas["OcrOptions"] = options
    schemas["JobList"] = {
        "type": "object",
        "required": ["jobs", "next_cursor"],
        "properties": {
            "jobs": {"type": "array", "items": _ref("Job")},
            "next_cursor": {"type": ["string", "null"]},
        },
    }
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "stable; see the README"},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object"}},
                },
            }
        },
    }
    schemas["UploadForm"] = {
        "type": "object",
        "required": ["upload_id", "url", "fields", "complete_url"],
        "properties": {
            "upload_id": {"type": "string"},
            "method": {"type": "string"},
            "url": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            "expires_in": {"type": "integer"},
            "max_bytes": {"type": "integer"},
            "complete_url": {"type": "string"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ocrflow",
            "version": "1",
            "description": "Documents in; text, JSON, hOCR, CSV and searchable PDF out.",
        },
        "security": [{"bearer": []}, {"apiKey": []}, {}],
        "paths": _operations(handlers),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API key or JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "monitoringToken": {"type": "http", "scheme": "bearer"},
                "webhookSecret": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Ocrflow-Webhook-Secret",
                },
            },
        },
    }


@routes.get("/openapi.json")
@public
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[SERVICES].settings.handlers))
