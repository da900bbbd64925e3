"""A PostgreSQL server to use, databases on it, and the schema in them.

The server is DATABASE_URL's; else 127.0.0.1:5432; else, when nothing
answers there, a cluster of our own under .data/ (kept across runs).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import psycopg2.extensions
from psycopg2 import sql
from sqlalchemy import make_url

from common.config import Settings
from devstack.processes import answers
from devstack.topology import ROOT

#: The functions' own default (common/config.py), written once.
DEFAULT_DATABASE_URL = str(Settings.model_fields["database_url"].default)
LOCAL_CLUSTER_DIR = ROOT / ".data" / "postgres"


def postgres_binary(name: str) -> str:
    """Debian keeps initdb and pg_ctl off PATH, under /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise SystemExit(f"{name} not found: install PostgreSQL (apt-get install -y postgresql)")
    return str(candidates[-1])


class LocalCluster:
    """A PostgreSQL cluster in a folder of ours, for machines where nothing answers on 5432."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port

    def _run(self, *command: str) -> None:
        # PostgreSQL refuses to run as root; run its tools as the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True)

    def start(self) -> None:
        if os.geteuid() == 0:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            shutil.chown(self.data_dir.parent, user="postgres")
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(postgres_binary("initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir}"
        self._run(
            postgres_binary("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `immediate` is a crash as far as clients can tell."""
        self._run(postgres_binary("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")


@contextmanager
def database_server(env: Mapping[str, str]) -> Iterator[str]:
    """Yield the database URL, starting (and afterwards stopping) a local cluster when needed."""
    url = env.get("DATABASE_URL")
    if url:
        yield url
        return
    parsed = make_url(DEFAULT_DATABASE_URL)
    assert parsed.host is not None
    assert parsed.port is not None
    if answers(parsed.host, parsed.port):
        yield DEFAULT_DATABASE_URL
        return
    print(f"nothing answers on {parsed.host}:{parsed.port}; starting the cluster in {LOCAL_CLUSTER_DIR}", flush=True)
    cluster = LocalCluster(LOCAL_CLUSTER_DIR, parsed.port)
    cluster.start()
    try:
        yield DEFAULT_DATABASE_URL
    finally:
        cluster.stop()


@contextmanager
def server_cursor(url: str) -> Iterator[psycopg2.extensions.cursor]:
    """An autocommit cursor on the server's `postgres` database, for creating and dropping `url`'s."""
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    connection = psycopg2.connect(admin.render_as_string(hide_password=False), connect_timeout=5)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def ensure_database(url: str) -> None:
    """CREATE DATABASE when missing."""
    name = make_url(url).database
    with server_cursor(url) as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name or "")))


def migrate(env: Mapping[str, str]) -> None:
    """Apply migrations once, before any function starts (what compose's `migrate` service does)."""
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=dict(env), check=True)


@contextmanager
def throwaway_database(env: Mapping[str, str], prefix: str) -> Iterator[str]:
    """A new, migrated database named `<prefix>_<random>` on the stack's server; dropped afterwards."""
    with database_server(env) as server_url:
        name = f"{prefix}_{secrets.token_hex(4)}"
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        ensure_database(url)
        try:
            migrate({**env, "DATABASE_URL": url})
            yield url
        finally:
            with server_cursor(url) as cursor:
                cursor.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
