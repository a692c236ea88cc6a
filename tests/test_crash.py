"""SIGKILL under load: every event whose request got a 2xx is in the lake exactly once."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter

import httpx

from tests.lake import rows
from tests.server import Server


def _sender(url: str, name: str, acked: list[str], stop: threading.Event) -> None:
    with httpx.Client(timeout=5) as client:
        n = 0
        while not stop.is_set():
            uuids = [f"{name}-{n}-{k}" for k in range(10)]
            body = {
                "account_id": "1",
                "visitors": [
                    {
                        "visitor_id": f"{name}-{n}",
                        "snapshots": [
                            {
                                "events": [
                                    {"key": "buy", "entity_id": "7", "uuid": u,
                                     "timestamp": 1_700_000_000_000 + k}
                                    for k, u in enumerate(uuids)
                                ]
                            }
                        ],
                    }
                ],
            }  # fmt: skip
            try:
                response = client.post(url, content=json.dumps(body))
            except httpx.TransportError:
                return  # the server is gone
            if response.status_code == 204:
                acked.extend(uuids)
            n += 1


def test_crash_sigkill_under_load_loses_and_duplicates_nothing(server: Server) -> None:
    acked: list[str] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=_sender, args=(f"{server.url}/v1/events", f"t{i}", acked, stop))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    time.sleep(3)  # long enough for the loader to have committed some batches
    server.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) > 1000

    server.start()  # recovery: torn tail cut, loader resumes from its checkpoint
    server.wait_loaded()
    stored = Counter(r["uuid"] for r in rows(server.data_dir, "conversions"))
    missing = [u for u in acked if u not in stored]
    assert missing == []
    assert [u for u, n in stored.items() if n > 1] == []
    assert rows(server.data_dir, "rejects") == []
