"""`GET /hello`: where a new function starts. Copy this folder to functions/<name>/, give it a line in
functions/roster.toml, run scripts/roster (docs/development.md, "A new function")."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.config import Settings
from common.web import create_app

#: The folder's name: the function's name in its logs and metrics.
NAME = __name__.rsplit(".", 2)[-2]


async def hello(request: Request) -> Response:
    return JSONResponse({"hello": NAME})


routes = [Route("/hello", hello, methods=["GET"])]


def build(settings: Settings | None = None) -> Starlette:
    return create_app(NAME, routes, settings)


app = build()
