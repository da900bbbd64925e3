import uuid

from common.security import TOKEN_DIGEST_SIZE, hash_token, new_access_token, token_matches


def test_tokens_are_distinct_uuid4_strings() -> None:
    tokens = {new_access_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert uuid.UUID(token).version == 4
        assert str(uuid.UUID(token)) == token


def test_digest_is_sha256_and_not_the_token() -> None:
    token = new_access_token()
    digest = hash_token(token)
    assert len(digest) == TOKEN_DIGEST_SIZE == 32
    assert token.encode() not in digest
    assert hash_token(token) == digest


def test_token_matches_only_its_own_digest() -> None:
    token = new_access_token()
    digest = hash_token(token)
    assert token_matches(token, digest)
    assert not token_matches(new_access_token(), digest)
    assert not token_matches(token.upper(), digest)
    assert not token_matches("", digest)
