"""A bounded soak: several clients mixing registrations, uploads and downloads for about 40 s.

Nothing answers 5xx but 503 (overload), and every record that got 201
afterwards downloads whole, its SHA-256 the one computed when it was stored.
"""

import hashlib
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx2

from tests.support.audio import Wav
from tests.support.stacks import Stack, client

CLIENTS = 4
DURATION_S = 40
WAVS = [Wav(duration_s=seconds, sample_rate=rate, channels=channels).to_bytes() for seconds, rate, channels in (
    (0.5, 44_100, 2), (1.5, 22_050, 1), (3, 48_000, 2), (1, 96_000, 6),
)]  # fmt: skip


@dataclass
class Outcome:
    statuses: Counter[int] = field(default_factory=Counter)
    records: list[tuple[str, int]] = field(default_factory=list)  # (url, size_bytes)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, response: httpx2.Response) -> httpx2.Response:
        with self.lock:
            self.statuses[response.status_code] += 1
        return response


def one_client(stack: Stack, outcome: Outcome, seed: int, deadline: float) -> None:
    rng = random.Random(seed)
    with client(stack) as gateway:
        user = outcome.saw(gateway.post("/register", json={"name": f"soak {seed}"})).json()
        mine: list[str] = []
        while time.monotonic() < deadline:
            action = rng.choices(["register", "upload", "download"], weights=[2, 3, 5])[0]
            if action == "register":
                outcome.saw(gateway.post("/register", json={"name": f"soak {seed}"}))
            elif action == "upload":
                wav = rng.choice(WAVS)
                if rng.random() < 0.5:
                    response = gateway.post(
                        "/record",
                        data={"user_id": str(user["user_id"]), "access_token": user["access_token"]},
                        files={"file": ("soak.wav", wav, "audio/wav")},
                    )
                else:
                    response = gateway.post(
                        f"/record?user_id={user['user_id']}",
                        content=wav,
                        headers={"authorization": f"Bearer {user['access_token']}", "content-type": "audio/wav"},
                    )
                if outcome.saw(response).status_code == 201:
                    body = response.json()
                    mine.append(body["url"])
                    with outcome.lock:
                        outcome.records.append((body["url"], body["size_bytes"]))
            elif mine:
                headers = {"range": f"bytes={rng.randrange(1000)}-"} if rng.random() < 0.3 else {}
                outcome.saw(gateway.get(rng.choice(mine), headers=headers))


def test_mixed_load_loses_nothing(stack: Stack) -> None:
    outcome = Outcome()
    deadline = time.monotonic() + DURATION_S
    clients = [threading.Thread(target=one_client, args=(stack, outcome, seed, deadline)) for seed in range(CLIENTS)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(timeout=DURATION_S + 120)
        assert not thread.is_alive()

    server_errors = {status: count for status, count in outcome.statuses.items() if status >= 500 and status != 503}
    assert server_errors == {}, outcome.statuses
    assert outcome.statuses[201] > 0
    assert len(outcome.records) >= CLIENTS
    with client(stack) as gateway:
        for url, size in outcome.records:
            response = gateway.get(url)
            assert response.status_code == 200
            assert len(response.content) == size
            assert response.headers["etag"] == f'"{hashlib.sha256(response.content).hexdigest()}"'
