"""One log format for every function, as text or JSON; every line names its function and request.

Secrets are never passed to a logger in the first place; uvicorn's access log
is off (the gateway keeps the one access log), so no query string is logged.
A record's id and its user's together are its download link, so a record is
logged by `record_ref` alone, which nobody can turn back into its id.
"""

import hashlib
import logging
import uuid
from typing import Literal

from asgi_correlation_id import CorrelationIdFilter
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(function)s %(name)s [%(correlation_id)s] %(message)s"
JSON_FIELDS = ["asctime", "levelname", "function", "correlation_id", "name", "message"]
# What the JSON calls them: time, level, function, request_id, logger, message, and any extra fields.
JSON_NAMES = {"asctime": "time", "levelname": "level", "correlation_id": "request_id", "name": "logger"}
#: The service's own loggers, uvicorn's (start, stop, errors) and the request id middleware's.
LOGGERS = ("records", "uvicorn.error", "asgi_correlation_id")


def record_ref(record_id: uuid.UUID | str) -> str:
    """A record's name in the logs: 16 hex digits of its id's SHA-256, found again from the id, never the reverse."""
    return hashlib.sha256(str(record_id).encode()).hexdigest()[:16]


class FunctionName(logging.Filter):
    def __init__(self, function: str) -> None:
        super().__init__()
        self.function = function

    def filter(self, record: logging.LogRecord) -> bool:
        record.function = self.function
        return True


def configure_logging(function: str, level: str, log_format: Literal["text", "json"]) -> None:
    """Send LOGGERS to stderr in `log_format`, each line with `function` and the request's id ('-' outside one)."""
    handler = logging.StreamHandler()
    handler.addFilter(FunctionName(function))
    handler.addFilter(CorrelationIdFilter(default_value="-"))
    if log_format == "json":
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields=JSON_NAMES, timestamp=False))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
    logging.getLogger("records").setLevel(level)
