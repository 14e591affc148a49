"""Handlers: what a job does with its text after recognition, as plug-ins.

A handler is registered under the entry-point group `ocrflow.handlers` as a `Handler`; the
`OCRFLOW_HANDLERS` setting allow-lists which may run. A job names the handlers to run and their
parameters; each runs, after the OCR outputs are stored, in a process of its own (its memory
capped, killed at its timeout) so a handler that fails cannot take the job or the worker with it.
"""

from ocrflow.handlers.plugins.api import Context, Document, Handler, HandlerFailed

__all__ = ["Context", "Document", "Handler", "HandlerFailed"]
