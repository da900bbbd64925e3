"""Settings, read once from the environment; a bad value stops the process at start."""

from functools import lru_cache
from typing import Literal

from pydantic import Field, PostgresDsn, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob the functions read. Names map to upper-case environment variables."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    database_url: PostgresDsn = PostgresDsn("postgresql+psycopg2://postgres@127.0.0.1:5432/records")
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_pool_timeout_s: float = Field(default=5.0, gt=0, le=60)
    db_connect_timeout_s: int = Field(default=3, ge=1, le=60)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; exits with a readable message when a value is invalid."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, error['loc'])).upper()}: {error['msg']}" for error in exc.errors())
        raise SystemExit(f"invalid configuration: {problems}") from None
