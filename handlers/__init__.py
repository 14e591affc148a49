"""Handlers: what a job does with its text after recognition, as plug-ins.

A handler is registered under the entry-point group `ocrflow.handlers` as a `Handler`; the
`OCRFLOW_HANDLERS` setting allow-lists which may run. A job names the handlers to run and their
parameters; each runs, after the OCR outputs are stored, in a process of its own (its memory
capped, killed at its timeout) so a handler that fails cannot take the job or the worker with it.

This package is the plug-in API (`api`), the registry of installed handlers (`registry`), the
child process a handler runs in (`child`), and the built-in handlers (`fields`, `validate`).
"""

from ocrflow.handlers.api import Context, Document, Handler, HandlerFailed

__all__ = ["Context", "Document", "Handler", "HandlerFailed"]
