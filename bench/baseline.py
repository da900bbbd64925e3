"""The simplest implementation of the task, for `make bench` to measure the service beside.

Deliberately plain, as a first version would be: one process, the whole WAV
received, ffmpeg file to file, the MP3 stored as one bytea and served by one
query, no cache, the list a LIMIT/OFFSET query on an index. Its routes and
fields are the service's, so the benchmark sends both the same requests.
Run by the benchmark alone: `uvicorn bench.baseline:app`, DATABASE_URL set.
"""

import os
import subprocess
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

SCHEMA = """
CREATE TABLE IF NOT EXISTS baseline_users (id serial PRIMARY KEY, name text NOT NULL, token uuid NOT NULL);
CREATE TABLE IF NOT EXISTS baseline_records (
    id uuid PRIMARY KEY, user_id int NOT NULL REFERENCES baseline_users, name text NOT NULL,
    mp3 bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS baseline_records_by_user ON baseline_records (user_id, created_at);
"""

engine = create_engine(os.environ["DATABASE_URL"])
with engine.begin() as setup:
    setup.execute(text(SCHEMA))


def user_of(request: Request) -> int | None:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    with engine.connect() as connection:
        query = text("SELECT id FROM baseline_users WHERE token::text = :token")
        user_id: int | None = connection.execute(query, {"token": token}).scalar()
        return user_id


async def register(request: Request) -> Response:
    name, token = (await request.json())["name"], str(uuid.uuid4())
    with engine.begin() as connection:
        query = text("INSERT INTO baseline_users (name, token) VALUES (:name, :token) RETURNING id")
        user_id = connection.execute(query, {"name": name, "token": token}).scalar_one()
    return JSONResponse({"user_id": user_id, "access_token": token}, status_code=201)


def convert_and_store(wav: bytes, user_id: int) -> uuid.UUID:
    record_id = uuid.uuid4()
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "in.wav"), Path(folder, "out.mp3")
        source.write_bytes(wav)
        subprocess.run(["ffmpeg", "-v", "error", "-i", source, "-b:a", "192k", target], check=True)
        with engine.begin() as connection:
            query = text("INSERT INTO baseline_records (id, user_id, name, mp3) VALUES (:id, :user, 'upload', :mp3)")
            connection.execute(query, {"id": record_id, "user": user_id, "mp3": target.read_bytes()})
    return record_id


async def add_record(request: Request) -> Response:
    user_id = int(request.query_params["user_id"])
    if await run_in_threadpool(user_of, request) != user_id:
        return PlainTextResponse("unauthorized", status_code=401)
    record_id = await run_in_threadpool(convert_and_store, await request.body(), user_id)
    url = f"{request.base_url}record?id={record_id}&user={user_id}"
    return JSONResponse({"record_id": str(record_id), "url": url}, status_code=201)


def read_record(record_id: str, user_id: str) -> bytes | None:
    with engine.connect() as connection:
        query = text("SELECT mp3 FROM baseline_records WHERE id = :id AND user_id = :user")
        mp3 = connection.execute(query, {"id": record_id, "user": int(user_id)}).scalar()
        return None if mp3 is None else bytes(mp3)


async def get_record(request: Request) -> Response:
    mp3 = await run_in_threadpool(read_record, request.query_params["id"], request.query_params["user"])
    if mp3 is None:
        return PlainTextResponse("not found", status_code=404)
    return Response(mp3, media_type="audio/mpeg")


def page(user_id: int, limit: int, offset: int) -> list[dict[str, str]]:
    query = text(
        "SELECT id, name, created_at FROM baseline_records WHERE user_id = :user"
        " ORDER BY created_at DESC LIMIT :limit OFFSET :offset"
    )
    with engine.connect() as connection:
        rows = connection.execute(query, {"user": user_id, "limit": limit, "offset": offset})
        return [{"id": str(id_), "name": name, "created_at": created.isoformat()} for id_, name, created in rows]


async def list_records(request: Request) -> Response:
    user_id = await run_in_threadpool(user_of, request)
    if user_id is None:
        return PlainTextResponse("unauthorized", status_code=401)
    limit, offset = int(request.query_params.get("limit", 20)), int(request.query_params.get("offset", 0))
    return JSONResponse({"records": await run_in_threadpool(page, user_id, limit, offset)})


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        Route("/register", register, methods=["POST"]),
        Route("/record", add_record, methods=["POST"]),
        Route("/record", get_record, methods=["GET"]),
        Route("/records", list_records, methods=["GET"]),
        Route("/healthz", healthz),
    ]
)
