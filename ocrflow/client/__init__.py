"""A client for ocrflow's HTTP API, and bulk submission on top of it; nothing of the server."""

from ocrflow.client.api import ApiFailure, OcrflowClient

__all__ = ["ApiFailure", "OcrflowClient"]
