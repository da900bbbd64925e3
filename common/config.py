"""Settings, read once from the environment; a bad value stops the process at start."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, PostgresDsn, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Bitrates an MPEG-1 Layer III stream can have; lame lowers them for sample rates below 32 kHz.
MP3_BITRATES_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


#: add_record's own memory beside its uploads: the process idles at about 75 MB,
#: keeps about 10 MB more after heavy use (the allocator's high-water mark), and
#: the rest is headroom (docs/performance.md, "Issue 31: real links").
ADD_RECORD_BASE_MB = 160
#: What one converting upload costs, measured by `make bench` ("real links"):
#: ffmpeg's private memory (about 10 MB: its libraries' relocated pages, lame's
#: buffers) and the function's share (the request's buffers, a batch of MP3 on its
#: way to the spool, its pipe and socket buffers, bounded in common.serving and
#: convert.py). The issue's ceiling is 16 MB; this is the measured cost with a margin.
UPLOAD_MEMORY_MB = 14
#: Where no memory limit is set (`make run`): the limit compose and Kubernetes give add_record.
DEFAULT_ADD_RECORD_MEMORY_MB = 2048
#: A cgroup v1 "limit" this large means none.
_UNLIMITED_BYTES = 2**60


def memory_limit_mb() -> int:
    """The memory this process may use: its cgroup's limit (v2, else v1), or DEFAULT_ADD_RECORD_MEMORY_MB."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = Path(path).read_text().strip()
        except OSError:
            continue
        if limit.isdigit() and int(limit) < _UNLIMITED_BYTES:
            return int(limit) // 2**20
        break
    return DEFAULT_ADD_RECORD_MEMORY_MB


def conversions_fitting(memory_mb: int) -> int:
    """How many uploads add_record converts at once within `memory_mb`: what is left after its own, per upload."""
    return max(1, (memory_mb - ADD_RECORD_BASE_MB) // UPLOAD_MEMORY_MB)


class Settings(BaseSettings):
    """Every knob the functions read. Names map to upper-case environment variables.

    A variable that is unset or empty means the default written here, its only
    home: compose passes every setting as `${NAME:-}` and leaves defaults to this.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_ignore_empty=True)

    database_url: PostgresDsn = PostgresDsn("postgresql://postgres@127.0.0.1:5432/records")
    #: Kept out of the URL, where `/ # ? @ : %` and spaces would need escaping; it wins over one there.
    database_password: SecretStr | None = None
    #: Per process, and as many again in a burst: 6 functions at 4 + 4 use 48 of PostgreSQL's 100 (docs/scaling.md).
    db_pool_size: int = Field(default=4, ge=1, le=100)
    db_pool_timeout_s: float = Field(default=5.0, gt=0, le=60)
    db_connect_timeout_s: int = Field(default=3, ge=1, le=60)
    db_startup_wait_s: float = Field(default=30, ge=0, le=600)
    #: A request's line and headers must arrive within this on a function's own port (uvicorn has no limit).
    request_head_timeout_s: float = Field(default=10.0, gt=0, le=300)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: One line of text, or one JSON object, per log record (compose sets json).
    log_format: Literal["text", "json"] = "text"

    # Links: PUBLIC_BASE_URL wins; otherwise the Host the client used, if it is one of ALLOWED_HOSTS.
    public_base_url: AnyHttpUrl | None = None
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ("localhost", "127.0.0.1")

    # Uploads and conversion (add_record).
    max_upload_mb: int = Field(default=256, ge=1, le=4096)
    max_duration_s: int = Field(default=3600, ge=1)
    mp3_bitrate: str = "192k"
    #: Uploads converting at once, per process: bounded by memory, not cores, since a converting
    #: upload uses CPU only while its bytes arrive. Past it, 503 at once.
    max_concurrent_conversions: int = Field(
        default_factory=lambda: conversions_fitting(memory_limit_mb()), ge=1, le=10_000
    )
    #: One user's uploads beyond MAX_CONVERSIONS_PER_USER wait behind their own, this many at most, this long.
    conversion_queue_wait_s: float = Field(default=30.0, ge=0, le=55)  # under nginx's proxy_send_timeout (60 s)
    conversion_queue_length: int = Field(default=32, ge=0, le=10_000)
    max_conversions_per_user: int = Field(default=2, ge=1, le=256)
    upload_idle_timeout_s: float = Field(default=10.0, gt=0, le=600)
    #: The sender's pace, over the time spent waiting for its bytes (not the time its bytes waited for ffmpeg).
    min_upload_kib_s: float = Field(default=16.0, ge=0)
    #: How long ffmpeg may go without taking the upload's bytes, or take to finish after the last one.
    #: Under nginx's proxy_read_timeout (60 s): the answer must come before the gateway gives up.
    conversion_timeout_s: float = Field(default=50.0, gt=0, le=55)
    user_quota_mb: int = Field(default=1024, ge=1)
    #: Every user's records together; past it, uploads get 507 (registrations are free, quotas alone bound nothing).
    max_total_storage_gb: float = Field(default=100.0, gt=0)
    #: All forms whose file comes before their credentials hold at most this much of it together.
    unauthenticated_hold_mb: int = Field(default=16, ge=1, le=1024)

    # Where records' bytes live: in PostgreSQL with their rows (the default), or in an
    # S3-compatible object store (common/storage/objects.py); rows stay in PostgreSQL either way.
    record_storage: Literal["postgres", "s3"] = "postgres"
    #: The store's endpoint (scheme, host, port; no credentials, no path); unset for AWS itself.
    s3_endpoint_url: AnyHttpUrl | None = None
    s3_bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    s3_region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]{1,32}$")
    #: From a secret, like DATABASE_PASSWORD: never in a URL, never logged.
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(host.strip() for host in value.split(",") if host.strip())
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def bare_endpoint(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        if value is not None and (value.username or value.password or value.path not in (None, "", "/") or value.query):
            raise ValueError(
                "must be scheme://host[:port] alone: credentials go in S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY"
            )
        return value

    @model_validator(mode="after")
    def object_store_complete(self) -> "Settings":
        if self.record_storage == "s3":
            missing = [
                name.upper()
                for name in ("s3_bucket", "s3_access_key_id", "s3_secret_access_key")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"RECORD_STORAGE=s3 needs {', '.join(missing)}")
        return self

    @field_validator("mp3_bitrate")
    @classmethod
    def known_bitrate(cls, value: str) -> str:
        kbps = value.removesuffix("k")
        if not kbps.isdigit() or int(kbps) not in MP3_BITRATES_KBPS:
            raise ValueError(f"must be one of {', '.join(f'{rate}k' for rate in MP3_BITRATES_KBPS)}")
        return f"{int(kbps)}k"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def user_quota_bytes(self) -> int:
        return self.user_quota_mb * 1024 * 1024

    @property
    def max_total_storage_bytes(self) -> int:
        return int(self.max_total_storage_gb * 1024**3)

    @property
    def max_mp3_bytes(self) -> int:
        """The largest MP3 MAX_DURATION_S of audio can make: its frames at the bitrate, and one more frame's slack."""
        bytes_per_s = int(self.mp3_bitrate.removesuffix("k")) * 1000 // 8
        return (self.max_duration_s + 1) * bytes_per_s + 4096


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; exits with a readable message when a value is invalid."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, error['loc'])).upper()}: {error['msg']}" for error in exc.errors())
        raise SystemExit(f"invalid configuration: {problems}") from None
