"""Pipeline failures, each with a stable machine-readable code."""

from enum import StrEnum


class PipelineCode(StrEnum):
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNSUPPORTED_LANGUAGE = "unsupported_language"
    INVALID_PDF = "invalid_pdf"
    ENCRYPTED_PDF = "encrypted_pdf"
    INVALID_IMAGE = "invalid_image"
    TOO_MANY_PAGES = "too_many_pages"
    PAGE_TOO_LARGE = "page_too_large"
    PAGE_OUT_OF_MEMORY = "page_out_of_memory"
    PAGE_CRASHED = "page_crashed"
    PAGE_TIMEOUT = "page_timeout"
    OCR_ENGINE_ERROR = "ocr_engine_error"
    ALL_PAGES_FAILED = "all_pages_failed"
    TEXT_LAYER_TOO_LARGE = "text_layer_too_large"
    RESULT_TOO_LARGE = "result_too_large"


class PipelineError(Exception):
    """Base of every pipeline failure; `code` is stable, `retryable` says whether to try again."""

    code: PipelineCode
    retryable = False

    def __init__(self, message: str, *, code: PipelineCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __reduce__(self) -> tuple[type["PipelineError"], tuple[str], dict[str, object]]:
        # Keep the message and any per-instance code when crossing into or out of a pool process.
        return (type(self), (self.message,), self.__dict__)


class UnsupportedMediaType(PipelineError):
    code = PipelineCode.UNSUPPORTED_MEDIA_TYPE


class UnsupportedLanguage(PipelineError):
    code = PipelineCode.UNSUPPORTED_LANGUAGE


class InvalidPdf(PipelineError):
    code = PipelineCode.INVALID_PDF


class EncryptedPdf(PipelineError):
    code = PipelineCode.ENCRYPTED_PDF


class InvalidImage(PipelineError):
    code = PipelineCode.INVALID_IMAGE


class TooManyPages(PipelineError):
    code = PipelineCode.TOO_MANY_PAGES


class PageTooLarge(PipelineError):
    code = PipelineCode.PAGE_TOO_LARGE


class PageOutOfMemory(PipelineError):
    code = PipelineCode.PAGE_OUT_OF_MEMORY


class PageCrashed(PipelineError):
    """The page took the process reading it down, on every try."""

    code = PipelineCode.PAGE_CRASHED


class PageTimeout(PipelineError):
    code = PipelineCode.PAGE_TIMEOUT


class EngineFailure(PipelineError):
    code = PipelineCode.OCR_ENGINE_ERROR
    retryable = True


class AllPagesFailed(PipelineError):
    code = PipelineCode.ALL_PAGES_FAILED


class TextLayerTooLarge(PipelineError):
    """A page's text layer holds more text than any real page does (a glyph bomb)."""

    code = PipelineCode.TEXT_LAYER_TOO_LARGE


class ResultTooLarge(PipelineError):
    """The document holds more words than one job may yield."""

    code = PipelineCode.RESULT_TOO_LARGE
