"""`GET /openapi.json`: the HTTP API described for clients and for schema-driven testing.

The job document's schema comes from the models themselves, so the description cannot drift
from what the service sends; the operations are listed in `paths`, next to their error codes."""

from functools import cache
from typing import Any

from aiohttp import web

from ocrflow.handlers import registry
from ocrflow.http.auth import public
from ocrflow.http.openapi.parts import REF, handler_schema, handler_schemas, ref
from ocrflow.http.openapi.paths import operations
from ocrflow.http.state import SERVICES
from ocrflow.jobs.records import Job
from ocrflow.pipeline.options import OcrOptions

routes = web.RouteTableDef()


@cache
def document(allow_list: tuple[str, ...] = ()) -> dict[str, Any]:
    """The API as this service runs it: the handlers its settings allow, with their parameters."""
    schemas: dict[str, Any] = handler_schemas(allow_list)
    handlers = [name for name in registry.allowed(allow_list) if handler_schema(name) in schemas]
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
            "jobs": {"type": "array", "items": ref("Job")},
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
        "paths": operations(handlers),
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
