"""Every operation of the HTTP API, by path, next to its error codes."""

from typing import Any

from ocrflow.http.jobs import LIST_LIMIT
from ocrflow.http.openapi.parts import (
    CALLER_ERRORS,
    JOB_ID,
    JSON,
    LAST_EVENT_ID,
    body,
    errors,
    ok,
    option_properties,
    ref,
)
from ocrflow.jobs.records import JobState
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.outputs import FILENAMES

UPLOAD_TYPES = tuple(media.value for media in MediaType)


def operations(handlers: list[str]) -> dict[str, Any]:
    job = ok(200, "the job", ref("Job"))
    accepted = {
        "202": {
            "description": "accepted; `Location` is the job, `Ocrflow-Reused` says when an "
            "earlier job answers (idempotent, shared, cached)",
            "content": {JSON: {"schema": ref("Job")}},
        }
    }
    idempotency = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
    form = body(
        {
            "file": {
                "type": "string",
                "format": "binary",
                "description": "a PDF, PNG, JPEG or TIFF (told from its bytes)",
            },
            **option_properties(json_body=False, handlers=handlers),
        },
        required=["file"],
    )
    by_url = body(
        {
            "url": {"type": "string", "format": "uri"},
            **option_properties(json_body=True, handlers=handlers),
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
                        "multipart/form-data": {
                            "schema": form,
                            # The type is told from the file's bytes, never from its name.
                            "encoding": {"file": {"contentType": ", ".join(UPLOAD_TYPES)}},
                        },
                        JSON: {"schema": by_url},
                    },
                },
                "responses": {**accepted, **errors(400, 403, 408, 413, 415, 422, *CALLER_ERRORS)},
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
                    **ok(200, "a page of jobs", ref("JobList")),
                    **errors(400, 422, *CALLER_ERRORS),
                },
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "A job",
                "parameters": [JOB_ID],
                "responses": {**job, **errors(404, *CALLER_ERRORS)},
            }
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel a queued or running job",
                "parameters": [JOB_ID],
                "responses": {**job, **errors(404, 409, *CALLER_ERRORS)},
            }
        },
        "/v1/jobs/{job_id}/retry": {
            "post": {
                "summary": "Run a failed or cancelled job again",
                "parameters": [JOB_ID],
                "responses": {**accepted, **errors(404, 409, *CALLER_ERRORS)},
            }
        },
        "/v1/jobs/{job_id}/result": {
            "get": {
                "summary": "The JSON result (pages, lines, words with boxes and confidence)",
                "parameters": [JOB_ID],
                "responses": {
                    **ok(200, "the result", {"type": "object"}),
                    **errors(404, 409, *CALLER_ERRORS),
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
                    **errors(404, *CALLER_ERRORS),
                },
            }
        },
        "/v1/jobs/{job_id}/events": {
            "get": {
                "summary": "The job's events: replayed after Last-Event-ID, then live",
                "parameters": [JOB_ID, LAST_EVENT_ID],
                "responses": {"200": stream, **errors(400, 404, *CALLER_ERRORS)},
            }
        },
        "/v1/events": {
            "get": {
                "summary": "Events of all the caller's jobs",
                "parameters": [LAST_EVENT_ID],
                "responses": {"200": stream, **errors(400, *CALLER_ERRORS)},
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
                    "200": {
                        "description": "the page: the picture kept when it was read (JPEG), or "
                        "one drawn (PNG; wider than 900 px, or a page read from its text layer)",
                        "content": {"image/jpeg": {}, "image/png": {}},
                    },
                    **errors(400, 404, 422, *CALLER_ERRORS),
                },
            }
        },
        "/v1/admin/overview": {
            "get": {
                "summary": "For operators: workers, queue, counts, the last hour a minute at a "
                "time, the oldest wait",
                "responses": {
                    **ok(200, "the overview", {"type": "object"}),
                    **errors(403, *CALLER_ERRORS),
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
                        "name": "verdict",
                        "in": "query",
                        "description": "the jobs whose validate handler concluded so",
                        "schema": {"type": "string", "enum": ["passed", "failed"]},
                    },
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
                    **ok(200, "jobs", ref("JobList")),
                    **errors(400, 403, 422, *CALLER_ERRORS),
                },
            }
        },
        "/v1/admin/events": {
            "get": {
                "summary": "For operators: every caller's job events live, and an `overview` "
                "event every 2 s",
                "responses": {"200": stream, **errors(403, *CALLER_ERRORS)},
            }
        },
        "/v1/uploads": {
            "post": {
                "summary": "A presigned POST form to upload straight to S3",
                "requestBody": {
                    "content": {JSON: {"schema": body({"filename": {"type": "string"}})}}
                },
                "responses": {
                    **ok(201, "the form", ref("UploadForm")),
                    **errors(400, 409, *CALLER_ERRORS),
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
                        JSON: {"schema": body(option_properties(json_body=True, handlers=handlers))}
                    }
                },
                "responses": {
                    **accepted,
                    **errors(400, 403, 404, 408, 409, 413, 415, 422, *CALLER_ERRORS),
                },
            }
        },
        "/v1/webhooks/s3": {
            "post": {
                "summary": "S3 event notifications: each new object becomes a job",
                "security": [{"webhookSecret": []}],
                "requestBody": {"content": {JSON: {"schema": {"type": "object"}}}},
                "responses": {
                    **ok(202, "one outcome per record", {"type": "object"}),
                    **errors(400, 401, 404, 409, 429, 503),
                },
            }
        },
        "/v1/status": {
            "get": {
                "summary": "Workers, queue depth by priority, running jobs, counts",
                "security": [{"monitoringToken": []}, {}],
                "responses": {**ok(200, "status", {"type": "object"}), **errors(403, 503)},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": [{"monitoringToken": []}, {}],
                "responses": {
                    "200": {"description": "metrics", "content": {"text/plain": {}}},
                    **errors(403, 503),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This description",
                "security": [],
                "responses": ok(200, "OpenAPI 3.1", {"type": "object"}),
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
        "/healthz": {"get": {"summary": "Alive", "security": [], "responses": ok(200, "ok")}},
        "/readyz": {
            "get": {
                "summary": "Redis and storage reachable",
                "security": [],
                "responses": {**ok(200, "ready"), **errors(503)},
            }
        },
    }
