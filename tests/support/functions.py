"""Each function's app in the test process, on the test database or on none."""

import importlib
from types import ModuleType

from sqlalchemy import Engine, func
from sqlmodel import Session, select
from starlette.applications import Starlette

from common.config import Settings
from common.models import Record


def record_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Record)).one()


def load_function(name: str) -> ModuleType:
    """The module `functions/<name>/app.py`."""
    return importlib.import_module(f"functions.{name}.app")


def build_function(name: str, settings: Settings, **overrides: object) -> Starlette:
    """Function `name`'s app on the test database, with any settings overridden."""
    app: Starlette = load_function(name).build(settings.model_copy(update=overrides))
    return app


def build_without_database(name: str) -> Starlette:
    """Function `name`'s app whose database is a closed port: every query fails as if PostgreSQL were down."""
    dead = Settings(
        database_url="postgresql://postgres@127.0.0.1:9/records",
        db_connect_timeout_s=1,
        db_startup_wait_s=0,
        allowed_hosts=("testserver",),
    )
    app: Starlette = load_function(name).build(dead)
    return app
