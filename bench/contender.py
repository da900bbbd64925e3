"""The simplest implementation (bench/baseline.py) running beside the stack, and its data."""

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
from sqlalchemy import Engine, create_engine, text

from devstack.processes import free_port, wait_for_port
from devstack.topology import ROOT


@dataclass(frozen=True)
class Baseline:
    base_url: str
    engine: Engine
    environment: dict[str, str]
    user: tuple[int, str]

    def seed(self, data: bytes, count: int = 1) -> list[uuid.UUID]:
        """`count` records of `data`, written as the baseline writes them: one bytea each."""
        ids = [uuid.uuid4() for _ in range(count)]
        with self.engine.begin() as connection:
            for record_id in ids:
                connection.execute(
                    text("INSERT INTO baseline_records (id, user_id, name, mp3) VALUES (:id, :user, 'seeded', :mp3)"),
                    {"id": record_id, "user": self.user[0], "mp3": data},
                )
        return ids

    def seed_listed(self, user_id: int, count: int) -> None:
        """`count` small records for `user_id`, a second apart."""
        with self.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO baseline_records (id, user_id, name, mp3, created_at)"
                    " SELECT gen_random_uuid(), :user, 'listed.wav', '\\x00', now() - n * interval '1 second'"
                    " FROM generate_series(1, :count) AS n"
                ),
                {"user": user_id, "count": count},
            )
            connection.execute(text("ANALYZE baseline_records"))


def baseline_command(port: int) -> list[str]:
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    return [uvicorn, "bench.baseline:app", "--port", str(port), "--no-access-log", "--log-level", "warning"]


def register_user(base_url: str) -> tuple[int, str]:
    body = httpx2.post(f"{base_url}/register", json={"name": "bench"}, timeout=10).json()
    return body["user_id"], body["access_token"]


@contextmanager
def running_baseline(database_url: str) -> Iterator[Baseline]:
    port = free_port()
    database_url = database_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    environment = {"DATABASE_URL": database_url, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    process = subprocess.Popen(baseline_command(port), cwd=ROOT, env=environment)
    engine = create_engine(database_url)
    try:
        wait_for_port(port, process)
        base_url = f"http://127.0.0.1:{port}"
        yield Baseline(base_url, engine, environment, register_user(base_url))
    finally:
        process.terminate()
        process.wait(timeout=30)
        engine.dispose()
