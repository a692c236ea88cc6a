"""The baseline for `bench/ingest.py`: a bare ASGI app that reads the body and answers 204.

It is served by the same uvicorn configuration as ``liftlog serve`` (httptools, uvloop, one
worker, no access log), so the ratio liftlog/bare isolates what liftlog adds to a request:
decoding, framing, the group commit with its ``fdatasync``, and the loader beside it.

    python bench/bare_app.py --port 8001
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

RESPONSE_START = {"type": "http.response.start", "status": 204, "headers": []}
RESPONSE_BODY = {"type": "http.response.body", "body": b""}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the whole body, as the collector does, and drop it
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await send(RESPONSE_START)
    await send(RESPONSE_BODY)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # The same arguments `liftlog serve` passes to uvicorn.run (see liftlog.cli.serve); several
    # workers need the app by its import name.
    uvicorn.run(
        "bare_app:app" if args.workers > 1 else app,
        app_dir=str(Path(__file__).parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
