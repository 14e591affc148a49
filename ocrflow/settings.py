"""Every setting ocrflow reads, from OCRFLOW_* variables, a .env file, or the platform's names."""

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ocrflow.pipeline.options import Engine, OcrOptions, Runtime

__all__ = ["MIB", "Settings"]

MIB = 1024 * 1024


def _both(name: str, platform_name: str) -> AliasChoices:
    """Accept the OCRFLOW_ name, the platform's name (Render: REDIS_URL, PORT) and the field."""
    return AliasChoices(f"OCRFLOW_{name.upper()}", platform_name, name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OCRFLOW_", env_file=".env", extra="ignore", validate_by_name=True
    )

    redis_url: str | None = Field(default=None, validation_alias=_both("redis_url", "REDIS_URL"))
    host: str = "127.0.0.1"
    web_processes: int = Field(default=1, ge=1, le=64)  # ingress processes sharing the port
    # Seconds a connection may go without a whole request (slow headers included) before the
    # ingress closes it; also how long an idle keep-alive connection stays open.
    idle_timeout: float = Field(default=30.0, gt=0)
    port: int = Field(default=8080, ge=0, le=65535, validation_alias=_both("port", "PORT"))
    data_dir: Path = Path("data")
    min_free_bytes: int = Field(default=256 * MIB, ge=0)  # less free under data_dir: not ready
    storage_backend: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_region: str | None = Field(default=None, validation_alias=_both("s3_region", "AWS_REGION"))
    s3_endpoint_url: str | None = None  # MinIO, R2 or any S3-compatible store
    s3_access_key_id: str | None = Field(
        default=None, validation_alias=_both("s3_access_key_id", "AWS_ACCESS_KEY_ID")
    )
    s3_secret_access_key: str | None = Field(
        default=None, validation_alias=_both("s3_secret_access_key", "AWS_SECRET_ACCESS_KEY")
    )
    s3_multipart_threshold: int = Field(default=16 * MIB, ge=5 * MIB)
    download_url_expiry: int = Field(default=3600, gt=0, le=7 * 24 * 3600)
    public_url: str | None = None

    max_upload_bytes: int = Field(default=100 * MIB, gt=0)
    max_pages: int = Field(default=500, gt=0)
    max_page_pixels: int = Field(default=80_000_000, gt=0)
    max_page_words: int = Field(default=10_000, gt=0)  # past it, a text layer is a glyph bomb
    max_document_words: int = Field(default=500_000, gt=0)  # bounds a worker's memory
    ocr_languages: Annotated[tuple[str, ...], NoDecode] = ("eng",)
    ocr_dpi: int = Field(default=300, ge=72, le=600)
    ocr_engine: Engine = "auto"

    pool_processes: int = Field(default_factory=lambda: os.cpu_count() or 1, gt=0)
    # Address space of each pool process and the poppler/tesseract it runs (0: no limit).
    pool_memory_limit: int = Field(default=4096 * MIB, ge=0)
    worker_max_jobs: int | None = Field(default=None, gt=0)  # None: see max_jobs
    # A document with more pages to recognise than this is read in ranges of this many pages,
    # spread over every worker; 0: never split.
    fanout_pages: int = Field(default=8, ge=0)
    job_timeout: float = Field(default=1800.0, gt=0)
    page_timeout: float = Field(default=180.0, gt=0)
    job_max_tries: int = Field(default=3, gt=0)
    # Handler plug-ins (entry-point group `ocrflow.handlers`) jobs may name; "*": every installed.
    handlers: Annotated[tuple[str, ...], NoDecode] = ("fields", "validate")
    handler_timeout: float = Field(default=300.0, gt=0)  # seconds, for all of a job's handlers
    handler_memory_limit: int = Field(default=2048 * MIB, ge=0)  # address space; 0: no cap
    shutdown_grace: int = Field(default=20, ge=0)  # under Render's 30 s shutdown delay
    result_cache_ttl: int = Field(default=24 * 3600, ge=0)  # 0 turns the result cache off
    job_retention: int = Field(default=7 * 24 * 3600, gt=0)
    queue_name: str = "ocrflow:queue"

    webhook_secret: str | None = None  # signs callbacks: every receiver holds it
    # What S3 event notifications must bring (POST /v1/webhooks/s3): never the callback
    # secret, which every callback receiver knows.
    s3_events_secret: str | None = None
    # Buckets whose S3 event notifications create jobs (default: the storage bucket).
    webhook_buckets: Annotated[tuple[str, ...], NoDecode] = ()
    callback_max_tries: int = Field(default=6, gt=0)
    callback_backoff: float = Field(default=2.0, gt=0)  # seconds; doubles on each try
    allow_private_urls: bool = False  # let callbacks and URL ingestion reach private networks
    fetch_timeout: float = Field(default=120.0, gt=0)  # seconds to download a URL

    smtp_host: str | None = None  # e-mail notifications are off without it
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "ocrflow@localhost"
    smtp_starttls: bool | None = None  # None: STARTTLS when the server offers it
    smtp_tls: bool = False  # implicit TLS (port 465)
    smtp_timeout: float = 30.0
    mail_max_tries: int = Field(default=3, gt=0)  # sending attempts per e-mail
    mail_backoff: float = Field(default=2.0, gt=0)  # seconds; doubles on each try

    # Authentication: with neither keys nor JWT settings, every request is `anonymous` and
    # `ocrflow up`/`ocrflow web` listen on loopback only (unless allow_unauthenticated).
    api_keys: Annotated[tuple[str, ...], NoDecode] = ()  # "name:sha256", see `ocrflow keys new`
    jwt_secret: str | None = None  # HS256
    jwt_public_key: str | None = None  # RS256: PEM text, or the path of a PEM file
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_email_claim: str = "email"
    allow_unauthenticated: bool = False  # serve a non-loopback address without authentication
    monitoring_token: str | None = None  # bearer token for /v1/status and /metrics
    monitoring_networks: Annotated[tuple[str, ...], NoDecode] = ("127.0.0.0/8", "::1/128")
    webhook_caller: str = "anonymous"  # the caller that owns jobs made from S3 events
    # Who may ask for priority=high ("key:ops", "jwt:<sub>", or "*"): with authentication on,
    # only these; without it, everyone (the one caller is `anonymous`).
    high_priority_callers: Annotated[tuple[str, ...], NoDecode] = ()
    # Callers (`key:NAME`, `jwt:SUBJECT`) who see every caller's jobs on /dashboard; with no
    # authentication configured, every caller (one, on a trusted machine) is an operator.
    admin_callers: Annotated[tuple[str, ...], NoDecode] = ()

    rate_limit: float = Field(default=50.0, ge=0)  # requests a second per caller; 0: no limit
    rate_burst: int = Field(default=200, gt=0)
    # Requests refused for want of a valid key, a second per client address (bursts of twice
    # that); 0: no limit.
    refused_rate_limit: float = Field(default=5.0, ge=0)
    max_active_jobs_per_caller: int = Field(default=1000, ge=0)  # queued + running; 0: no limit
    max_backlog: int = Field(default=20_000, ge=0)  # queued jobs in all; 0: no limit
    max_streams_per_caller: int = Field(default=100, ge=0)  # open event streams, per ingress

    log_level: str = "INFO"
    api_key: str | None = None  # the key `ocrflow submit` sends (--api-key overrides it)

    @field_validator(
        "redis_url",
        "s3_bucket",
        "s3_region",
        "s3_endpoint_url",
        "s3_access_key_id",
        "s3_secret_access_key",
        "public_url",
        "webhook_secret",
        "s3_events_secret",
        "smtp_host",
        "smtp_username",
        "smtp_password",
        "jwt_secret",
        "jwt_public_key",
        "jwt_audience",
        "jwt_issuer",
        "monitoring_token",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (as a platform leaves one the user skipped) means unset."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "webhook_buckets",
        "api_keys",
        "monitoring_networks",
        "high_priority_callers",
        "admin_callers",
        "handlers",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("ocr_languages", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part for part in value.replace("+", ",").split(",") if part.strip())
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            name, _, digest = entry.partition(":")
            if not name or not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError(
                    "each API key entry is name:sha256-hex (made by `ocrflow keys new NAME`)"
                )
        return value

    @field_validator("monitoring_networks")
    @classmethod
    def _check_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        return value

    def may_use_high_priority(self, caller: str) -> bool:
        allowed = self.high_priority_callers
        return not self.authenticated or "*" in allowed or caller in allowed

    @property
    def authenticated(self) -> bool:
        return bool(self.api_keys or self.jwt_secret or self.jwt_public_key)

    @model_validator(mode="after")
    def _secrets_apart(self) -> "Settings":
        if self.s3_events_secret and self.s3_events_secret == self.webhook_secret:
            raise ValueError(
                "OCRFLOW_S3_EVENTS_SECRET must differ from OCRFLOW_WEBHOOK_SECRET: every "
                "callback receiver holds the latter"
            )
        return self

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> "Settings":
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("OCRFLOW_STORAGE_BACKEND=s3 needs OCRFLOW_S3_BUCKET")
        return self

    @property
    def max_jobs(self) -> int:
        """Documents one worker runs side by side. By default one more than its pool has
        processes: the next document's download overlaps the last page's recognition, and a
        worker never holds queued jobs that a worker beside it could start now."""
        return self.worker_max_jobs or self.pool_processes + 1

    @property
    def runtime(self) -> Runtime:
        return Runtime(
            max_pages=self.max_pages,
            max_page_pixels=self.max_page_pixels,
            max_page_words=self.max_page_words,
            max_document_words=self.max_document_words,
            page_timeout=self.page_timeout,
            engine=self.ocr_engine,
            previews=True,
        )

    @property
    def default_options(self) -> OcrOptions:
        return OcrOptions(languages=self.ocr_languages, dpi=self.ocr_dpi)

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"
