"""The ``liftlog`` command: a thin layer over the same code the server uses."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from pathlib import Path

import click

from liftlog.settings import Settings

DATA_HELP = "Data directory (raw log, lake, catalog). Default: ./data"


@click.group()
@click.version_option(package_name="liftlog")
def main() -> None:
    """liftlog: a self-hosted experimentation backend that speaks Optimizely's Event API."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--data", "data_dir", default="data", type=click.Path(path_type=Path), help=DATA_HELP)
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes.")
@click.option("--no-loader", is_flag=True, help="Don't run the lake loader in the background.")
def serve(host: str, port: int, data_dir: Path, workers: int, no_loader: bool) -> None:
    """Serve the Event API (and load accepted events into the lake in the background)."""
    import uvicorn

    from liftlog.lake.loader import run_loader_process

    settings = Settings(data_dir=data_dir.resolve())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(settings.to_env())
    loader = None
    if not no_loader:
        ctx = multiprocessing.get_context("spawn")
        loader = ctx.Process(
            target=run_loader_process, args=(settings, os.getpid()), name="liftlog-loader"
        )
        loader.start()
    base = f"http://{host}:{port}"
    click.echo(f"liftlog serving on {base}  (data: {settings.data_dir})")
    click.echo(f"  Event API:        POST {base}/v1/events")
    click.echo(f"  Legacy event API: GET  {base}/event?a=<project>&n=<event>&u=<visitor>")
    click.echo(f"  Health:           GET  {base}/healthz")
    try:
        uvicorn.run(
            "liftlog.api.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
        )
    finally:
        if loader is not None:
            loader.terminate()  # SIGTERM: the loader finishes its batch and exits
            loader.join(30)


@main.command()
@click.option("--data", "data_dir", default="data", type=click.Path(path_type=Path), help=DATA_HELP)
@click.option("--once", is_flag=True, help="Load what is in the raw log now, then exit.")
def load(data_dir: Path, once: bool) -> None:
    """Move raw-log records into the lake's Delta tables (the server does this by itself)."""
    from liftlog.lake.loader import Loader

    loader = Loader(Settings(data_dir=data_dir.resolve()))
    if once:
        n = loader.drain()
        click.echo(f"loaded {n} records")
    else:
        loader.run_forever()


@main.command()
@click.option("--data", "data_dir", default="data", type=click.Path(path_type=Path), help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(data_dir: Path, as_json: bool) -> None:
    """How many decisions, conversions and rejects are stored, and what still waits to load."""
    from liftlog.lake.status import lake_status

    info = lake_status(Settings(data_dir=data_dir.resolve()))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"data directory: {info['data_dir']}")
    for table in ("decisions", "conversions", "rejects"):
        t = info["tables"][table]
        click.echo(
            f"  {table:<12} {t['rows']:>12,} rows  {t['files']:>5} files  version {t['version']}"
        )
    r = info["rawlog"]
    click.echo(
        f"  raw log      {r['bytes']:>12,} bytes in {r['segments']} segments, "
        f"{r['pending_bytes']:,} bytes waiting to load"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
