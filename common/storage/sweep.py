"""`python -m common.storage.sweep`: remove the objects no record names (RECORD_STORAGE=s3).

An object is written whole before its row commits, and a row is deleted before
its object; so an object no row names is an upload whose row never came (a
crash between the two), a deletion whose object could not be removed at the
time, or a record moved back to PostgreSQL (common.storage.move) whose object
could not be. Either way nobody can reach it. Objects younger than the grace period
are left alone: their row may still be on its way.
"""

import argparse
import logging
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, bindparam, select
from sqlmodel import col

from common.config import get_settings
from common.db import create_db_engine
from common.logs import configure_logging
from common.models import Record
from common.storage.objects import PREFIX, object_store

if TYPE_CHECKING:
    from obstore.store import S3Store

logger = logging.getLogger("records.sweep")

#: Longer than any upload may take (CONVERSION_TIMEOUT_S) and its commit after it.
DEFAULT_GRACE = timedelta(hours=1)
#: Objects listed, and ids looked up, at a time.
BATCH = 1000

# A record moved back to PostgreSQL names no object any more: its old one is swept too.
_EXISTING = select(col(Record.id)).where(
    col(Record.id).in_(bindparam("ids", expanding=True)), col(Record.storage) == "s3"
)


@dataclass
class Swept:
    seen: int = 0
    removed: int = 0


def record_id_of(path: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(path.removeprefix(PREFIX))
    except ValueError:
        return None


def rowless(engine: Engine, paths: Sequence[str]) -> list[str]:
    """Those of `paths` no row names as its bytes (objects of other names are not the service's: left alone)."""
    ids = {path: record_id for path in paths if (record_id := record_id_of(path)) is not None}
    with engine.connect() as connection:
        existing = set(connection.execute(_EXISTING, {"ids": list(ids.values())}).scalars()) if ids else set()
    return [path for path, record_id in ids.items() if record_id not in existing]


def sweep(store: "S3Store", engine: Engine, grace: timedelta = DEFAULT_GRACE) -> Swept:
    import obstore

    cutoff = datetime.now(UTC) - grace
    swept = Swept()
    for batch in obstore.list(store, prefix=PREFIX, chunk_size=BATCH):
        swept.seen += len(batch)
        old = [meta["path"] for meta in batch if meta["last_modified"] < cutoff]
        if orphans := rowless(engine, old):
            obstore.delete(store, orphans)
            swept.removed += len(orphans)
    return swept


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grace-minutes", type=float, default=DEFAULT_GRACE.total_seconds() / 60)
    parser.add_argument(
        "--every-minutes", type=float, help="sweep again after this long, until stopped (compose's periodic job)"
    )
    arguments = parser.parse_args(argv)
    settings = get_settings()
    configure_logging("sweep", settings.log_level, settings.log_format)
    if settings.record_storage != "s3":
        logger.info("RECORD_STORAGE is %s: no objects to sweep", settings.record_storage)
        return 0
    engine = create_db_engine(settings, application_name="sweep")
    store, grace = object_store(settings), timedelta(minutes=arguments.grace_minutes)
    try:
        while True:
            try:
                swept = sweep(store, engine, grace)
                logger.info("%d objects seen, %d without a record removed", swept.seen, swept.removed)
            except Exception:
                if arguments.every_minutes is None:
                    raise
                logger.warning("this sweep failed; the next one tries again", exc_info=True)
            if arguments.every_minutes is None:
                return 0
            time.sleep(arguments.every_minutes * 60)
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
