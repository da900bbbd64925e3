"""The migrations and the models describe the same schema, and migrations run both ways."""

import subprocess
import sys

import pytest
from sqlalchemy import Engine, inspect

from devstack.topology import ROOT


def alembic(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *arguments], cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.mark.usefixtures("database_url")
def test_models_match_the_migrations() -> None:
    result = alembic("check")
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    assert alembic("downgrade", "base").returncode == 0
    assert "users" not in inspect(engine).get_table_names()
    result = alembic("upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert "users" in inspect(engine).get_table_names()
