"""Deprecated: the plug-in API moved to `ocrflow.handlers`."""

import warnings

from ocrflow.handlers.api import Context, Document, Handler, HandlerFailed

__all__ = ["Context", "Document", "Handler", "HandlerFailed"]

warnings.warn(
    "ocrflow.handlers.plugins is deprecated: import Context, Document, Handler and "
    "HandlerFailed from ocrflow.handlers",
    DeprecationWarning,
    stacklevel=2,
)
