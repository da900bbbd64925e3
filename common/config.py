"""Settings, read once from the environment; a bad value stops the process at start."""

import os
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, PostgresDsn, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Bitrates an MPEG-1 Layer III stream can have; lame lowers them for sample rates below 32 kHz.
MP3_BITRATES_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


class Settings(BaseSettings):
    """Every knob the functions read. Names map to upper-case environment variables."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    database_url: PostgresDsn = PostgresDsn("postgresql+psycopg2://postgres@127.0.0.1:5432/records")
    db_pool_size: int = Field(default=16, ge=1, le=100)
    db_pool_timeout_s: float = Field(default=5.0, gt=0, le=60)
    db_connect_timeout_s: int = Field(default=3, ge=1, le=60)
    db_startup_wait_s: float = Field(default=30, ge=0, le=600)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Links: PUBLIC_BASE_URL wins; otherwise the Host the client used, if it is one of ALLOWED_HOSTS.
    public_base_url: AnyHttpUrl | None = None
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ("localhost", "127.0.0.1")

    # Uploads and conversion (add_record).
    max_upload_mb: int = Field(default=256, ge=1, le=4096)
    max_duration_s: int = Field(default=3600, ge=1)
    mp3_bitrate: str = "192k"
    max_concurrent_conversions: int = Field(default=os.cpu_count() or 1, ge=1, le=256)
    conversion_queue_wait_s: float = Field(default=2.0, ge=0, le=60)
    conversion_timeout_s: float = Field(default=600.0, gt=0)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(host.strip() for host in value.split(",") if host.strip())
        return value

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; exits with a readable message when a value is invalid."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, error['loc'])).upper()}: {error['msg']}" for error in exc.errors())
        raise SystemExit(f"invalid configuration: {problems}") from None
