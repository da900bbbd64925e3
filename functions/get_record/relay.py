"""RECORD_STORAGE=s3: the X-Accel-Redirect that hands a download's bytes to the gateway's object relay.

get_record decides everything about a download (the link, 304, 416, HEAD);
only the bytes come from the store, the range the gateway's cache asked for, fetched by nginx with a
presigned URL that never leaves it. The redirect carries what nginx needs,
as path segments its relay location takes apart (nginx/templates/gateway.conf.template):

    /.objects/<sha256 hex>/<Last-Modified, percent-encoded>/<scheme>/<host[:port]><path>?<signature>

An X-Accel-Redirect keeps only some of get_record's headers (Content-Type,
Content-Disposition, Cache-Control among them); the relay sets the validators
from these segments and the constant ones itself.
"""

from urllib.parse import quote, urlsplit

#: The internal location's prefix: only get_record's answers reach it, never a client.
PREFIX = "/.objects"


def object_redirect(signed_url: str, sha256: bytes, last_modified: str) -> str:
    """Where the relay fetches the bytes, and the validators it answers them with."""
    url = urlsplit(signed_url)
    validators = f"{sha256.hex()}/{quote(last_modified, safe='')}"
    return f"{PREFIX}/{validators}/{url.scheme}/{url.netloc}{url.path}?{url.query}"
