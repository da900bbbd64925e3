"""Placeholder until its issue lands: answers /healthz only, so the gateway topology is complete."""

from common.web import create_app

app = create_app("get_record", routes=[])
