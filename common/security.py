"""Access tokens: generated as UUID4 strings, stored only as SHA-256 digests."""

import hashlib
import hmac
import uuid

TOKEN_DIGEST_SIZE = hashlib.sha256().digest_size


def new_access_token() -> str:
    """A fresh token with 122 random bits; that entropy is why an unsalted fast hash suffices."""
    return str(uuid.uuid4())


def hash_token(token: str) -> bytes:
    """The digest kept in the database in place of the token."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def token_matches(presented: str, stored_digest: bytes) -> bool:
    """Compare in constant time so response timing says nothing about the stored digest."""
    return hmac.compare_digest(hash_token(presented), stored_digest)
