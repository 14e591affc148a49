"""Pipeline failures, each with a stable machine-readable code."""


class PipelineError(Exception):
    """Base of every pipeline failure; `code` is stable, `retryable` says whether to try again."""

    code = "pipeline_error"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __reduce__(self) -> tuple[type["PipelineError"], tuple[str], dict[str, object]]:
        # Keep the message and any per-instance code when crossing into or out of a pool process.
        return (type(self), (self.message,), self.__dict__)


class UnsupportedMediaType(PipelineError):
    code = "unsupported_media_type"


class UnsupportedLanguage(PipelineError):
    code = "unsupported_language"


class InvalidPdf(PipelineError):
    code = "invalid_pdf"


class EncryptedPdf(PipelineError):
    code = "encrypted_pdf"


class InvalidImage(PipelineError):
    code = "invalid_image"


class TooManyPages(PipelineError):
    code = "too_many_pages"


class PageTooLarge(PipelineError):
    code = "page_too_large"


class PageOutOfMemory(PipelineError):
    code = "page_out_of_memory"


class PageCrashed(PipelineError):
    """The page took the process reading it down, on every try."""

    code = "page_crashed"


class PageTimeout(PipelineError):
    code = "page_timeout"


class EngineFailure(PipelineError):
    code = "ocr_engine_error"
    retryable = True


class AllPagesFailed(PipelineError):
    code = "all_pages_failed"
