"""compose's `migrate`: it refuses .env.example's placeholder passwords before touching anything."""

import os
import re
import subprocess
import sys

import pytest

from common.provision import EXAMPLE_PASSWORDS
from devstack.topology import ROOT


def test_the_refused_placeholders_are_the_example_s() -> None:
    example = (ROOT / ".env.example").read_text()
    assert set(re.findall(r"^\w+_PASSWORD=(\S+)$", example, re.MULTILINE)) == EXAMPLE_PASSWORDS


@pytest.mark.parametrize(
    ("owner", "functions", "named"),
    [
        ("change-me", "a real one", "POSTGRES_PASSWORD"),
        ("a real one", "change-me-too", "FUNCTIONS_DB_PASSWORD"),
        ("change-me", "change-me-too", "POSTGRES_PASSWORD and FUNCTIONS_DB_PASSWORD"),
    ],
)
def test_provision_refuses_the_example_passwords(owner: str, functions: str, named: str) -> None:
    # The database is a closed port: the refusal must come before any connection.
    env = os.environ | {
        "DATABASE_URL": "postgresql://records@127.0.0.1:9/records",
        "DATABASE_PASSWORD": owner,
        "FUNCTIONS_DB_PASSWORD": functions,
    }
    result = subprocess.run(
        [sys.executable, "-m", "common.provision"], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 1
    assert f"refusing to start: {named} in .env" in result.stderr
