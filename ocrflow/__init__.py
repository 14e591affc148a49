"""ocrflow: documents in, text and structured OCR results out, as an event-driven service.

The public surface is what `__all__` names; everything else is ocrflow's own. Names load on
first use, so `import ocrflow` (and every `ocrflow` command) starts without the server stack.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["ApiFailure", "OcrflowClient", "Settings", "__version__"]

_PUBLIC = {
    "ApiFailure": "ocrflow.client",
    "OcrflowClient": "ocrflow.client",
    "Settings": "ocrflow.settings",
}

if TYPE_CHECKING:
    from ocrflow.client import ApiFailure, OcrflowClient
    from ocrflow.settings import Settings


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'ocrflow' has no attribute {name!r}")
