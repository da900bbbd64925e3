"""The Authorization header a user's access token makes."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
