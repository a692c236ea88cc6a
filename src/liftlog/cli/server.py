"""Running liftlog: the server, the loader, what is stored, and the first-start demo."""

from __future__ import annotations

import errno
import json
import multiprocessing
import multiprocessing.process
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click

from liftlog.cli.base import (
    DATABASE_HELP,
    catalog_options,
    data_option,
    existing_data_option,
    main,
    when,
)
from liftlog.settings import Settings


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@data_option
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes.")
@click.option("--no-loader", is_flag=True, help="Don't run the lake loader in the background.")
@click.option("--database-url", envvar="LIFTLOG_DATABASE_URL", help=DATABASE_HELP)
@click.option(
    "--results-reuse-factor",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    envvar="LIFTLOG_RESULTS_REUSE_FACTOR",
    help="Results whose counting took a second or more are reused, after newer events were "
    "loaded, for up to this many times as long (at most 5 minutes), then for 5 minutes more "
    "while they are counted again in the background; 0 recounts every time.",
)
@click.option(
    "--demo",
    is_flag=True,
    help="On first start (no project, no user yet), make a demo project fed with simulated "
    "traffic and a first user, and print how to sign in. `make run` passes it.",
)
def serve(
    host: str,
    port: int,
    data_dir: Path,
    workers: int,
    no_loader: bool,
    database_url: str | None,
    results_reuse_factor: float,
    demo: bool,
) -> None:
    """Serve the Event API, the management API and datafiles (and load accepted events into the
    lake in the background)."""
    import uvicorn

    from liftlog import demo as demo_module
    from liftlog.catalog.store import Catalog, default_url

    _check_free(host, port)
    settings = Settings(
        data_dir=data_dir.resolve(),
        database_url=database_url or None,
        results_reuse_factor=results_reuse_factor,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(settings.to_env())
    # Migrate once here, before the workers start and each waits its turn on the migration lock.
    catalog_url = settings.database_url or default_url(settings.data_dir)
    with Catalog.open(catalog_url) as catalog:
        first_start = demo and demo_module.is_first_start(catalog)
    loader = None
    if not no_loader:
        loader = LoaderKeeper(settings)
        loader.start()
    base = f"http://{host}:{port}"
    click.echo(f"liftlog serving on {base}  (data: {settings.data_dir})")
    click.echo(f"  Event API:        POST {base}/v1/events")
    click.echo(f"  Legacy event API: GET  {base}/event?a=<project>&n=<event>&u=<visitor>")
    click.echo(f"  Management API:   {base}/v2/projects  (docs: {base}/docs)")
    click.echo(f"  Datafiles:        GET  {base}/datafiles/<sdk_key>.json")
    signin = "sign in below" if first_start else "users: liftlog user create"
    click.echo(f"  Results pages:    {base}/ui/  ({signin})")
    click.echo(f"  Health:           GET  {base}/healthz")
    if first_start:
        _start_demo(settings, catalog_url, f"http://{_loopback(host)}:{port}", base)
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
            loader.stop()


#: Allocator settings for the loader's process, set before Arrow and Delta load (their own
#: settings win): give freed memory back to the system at once instead of keeping it for reuse.
#: Delta's writer (jemalloc) and Arrow (mimalloc) otherwise hold on to what each batch and
#: compaction freed: ``bench/loader_memory.py`` (700k events, drain then compaction) measured a
#: peak RSS of 333-338 MiB with these against 411-412 MiB without, draining as fast.
LOADER_ALLOCATOR = {
    "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0",
    "MIMALLOC_PURGE_DELAY": "0",
}


def _loader_allocators() -> None:
    for name, value in LOADER_ALLOCATOR.items():
        os.environ.setdefault(name, value)


def _run_loader(settings: Settings, parent_pid: int) -> None:
    """The loader process's entry. The loader's modules (Arrow, Delta) are imported in that
    process alone: the server's never needs them."""
    _loader_allocators()
    from liftlog.lake.loader import run_loader_process

    run_loader_process(settings, parent_pid)


class LoaderKeeper:
    """The loader process beside the server, started again whenever it dies.

    The loader stops only when the server does; if it exits before (a bug in loading some
    record, the OOM killer), events would pile up in the raw log unloaded. So a thread of the
    server's process waits on it. A loader that exits while the server goes on running (for
    `GRACE`: a signal to the whole process group, such as Ctrl-C, stops both, the loader first)
    is reported on stderr and started again after 1 s, then twice as long each time it dies
    again within a minute (at most a minute apart). A new loader resumes from the raw log's
    checkpoints: nothing is loaded twice.
    """

    #: A loader that ran this long before dying is restarted after the shortest delay again.
    STEADY = 60.0

    #: How long the server has to stop too, after its loader exited, before the loader counts
    #: as dead rather than stopped with it.
    GRACE = 5.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # a loader is started only while not stopping
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._thread = threading.Thread(
            target=self._watch, name="liftlog-loader-keeper", daemon=True
        )

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            ctx = multiprocessing.get_context("spawn")
            proc = ctx.Process(
                target=_run_loader, args=(self.settings, os.getpid()), name="liftlog-loader"
            )
            proc.start()
            self._proc = proc

    def _watch(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            started = time.monotonic()
            proc.join()
            if self._stopping.is_set():
                return
            # A signal to the whole process group (Ctrl-C, `timeout`, systemd's stop) reaches
            # the loader too, and it may stop before the server begins to: no death to report.
            if self._stopping.wait(self.GRACE):
                return
            if time.monotonic() - started >= self.STEADY:
                delay = 1.0
            click.echo(
                f"liftlog: the loader exited (code {proc.exitcode}); starting it again in "
                f"{delay:g} s",
                err=True,
            )
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, 60.0)
            self._spawn()

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.terminate()  # SIGTERM: the loader finishes its batch and exits
            proc.join(30)


def _check_free(host: str, port: int) -> None:
    """Fail before anything is made when the address is taken. Otherwise the first start would
    make the demo project and send its traffic to whatever listens there, and only then find
    that it can't listen itself. Bound as uvicorn binds (IPv6 when the host has a colon,
    ``SO_REUSEADDR``), and let go again."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = " Is another server running there? Choose another port with --port."
        reason = exc.strerror or str(exc)
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}.{hint}") from None


def _loopback(host: str) -> str:
    """Where this machine reaches a server listening on ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)


def _start_demo(settings: Settings, catalog_url: str, reach: str, base: str) -> None:
    """Make the demo project and first user, print how to sign in, and send the traffic from a
    background thread once the server answers."""
    import threading
    import time

    from liftlog import demo as demo_module

    now = int(time.time() * 1000)
    made = demo_module.create(catalog_url, now)
    traffic = demo_module.simulate(catalog_url, made, now)
    demo_module.write_marker(settings, made, now, traffic.explain_visitor)

    def run() -> None:
        try:
            demo_module.send(reach, traffic)
        except Exception as exc:  # a thread's exception would only reach stderr as a trace
            click.echo(f"demo: sending its traffic failed: {exc}", err=True)

    threading.Thread(target=run, name="liftlog-demo", daemon=True).start()
    experiment = f"{base}/ui/experiments/{made.experiment_id}"
    click.echo("")
    click.echo("First start: made a demo project with a week of simulated traffic.")
    click.echo(f"  Sign in:          {base}/ui/  as {made.email}  password {made.password}")
    click.echo("                    (shown this once; a new one: liftlog user password)")
    click.echo(f"  Demo results:     {experiment}")
    click.echo(
        f"  Why not counted?  {base}/ui/debugger?experiment={made.experiment_id}"
        f"&q={traffic.explain_visitor}"
    )
    click.echo(f"  Remove the demo:  liftlog demo remove --data {settings.data_dir}")


class Progress:
    """How far a long load has come, on stderr, at most every ``every`` seconds: the records
    loaded and the raw-log bytes still to read."""

    def __init__(
        self, settings: Settings, every: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.every = every
        self.clock = clock
        self.started = self.last = clock()

    def __call__(self, records: int) -> None:
        now = self.clock()
        if now - self.last < self.every:
            return
        self.last = now
        from liftlog.lake.status import rawlog_status

        waiting = rawlog_status(self.settings)["pending_bytes"]
        click.echo(
            f"  {records:,} records loaded in {now - self.started:,.0f} s, "
            f"{waiting:,} raw-log bytes still to load",
            err=True,
        )


@main.command()
@data_option
@click.option("--once", is_flag=True, help="Load what is in the raw log now, then exit.")
def load(data_dir: Path, once: bool) -> None:
    """Move raw-log records into the lake's Delta tables (the server does this by itself)."""
    _loader_allocators()
    from liftlog.lake.loader import Loader

    settings = Settings(data_dir=data_dir.resolve())
    loader = Loader(settings)
    if once:
        n = loader.drain(Progress(settings))
        click.echo(f"loaded {n} records")
    else:
        loader.run_forever()


@main.command()
@existing_data_option
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
    since = r["oldest_waiting_received_ms"]
    oldest = ""
    if since is not None:
        ago = max(0, time.time() - since / 1000)
        oldest = f", the oldest received {when(since)} ({ago:,.0f} s ago)"
    click.echo(
        f"  raw log      {r['bytes']:>12,} bytes in {r['segments']} segments, "
        f"{r['pending_bytes']:,} bytes waiting to load{oldest}"
    )
    if info["unfinished_rebuild"]:
        click.echo(
            f"note: a lake rebuild did not finish; the old lake is in {info['unfinished_rebuild']}"
            " (run `liftlog lake rebuild` to be told how to put it back)"
        )


@main.group()
def demo() -> None:
    """The demo project that `liftlog serve --demo` makes on first start."""


@demo.command("remove")
@catalog_options
def demo_remove(data_dir: Path, database_url: str | None) -> None:
    """Delete the demo project from the catalog and its events from the lake."""
    from liftlog import demo as demo_module
    from liftlog.catalog.store import default_url

    settings = Settings(data_dir=data_dir.resolve(), database_url=database_url or None)
    url = database_url or default_url(settings.data_dir)
    try:
        removed = demo_module.remove(settings, url)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"removed demo project {removed.project_id} and {removed.rows_deleted:,} rows of its "
        "events from the lake"
    )
    if removed.pending_bytes:
        click.echo(
            f"note: {removed.pending_bytes:,} bytes of the raw log are not loaded yet; demo events "
            "among them will be loaded as rows of a project that no longer exists"
        )


@main.group()
def lake() -> None:
    """The lake: Delta tables made from the raw log."""


@lake.command("rebuild")
@click.option(
    "--allow-pruned",
    is_flag=True,
    help="Rebuild even though pruned raw-log segments' events will be missing from the new lake.",
)
@existing_data_option
def lake_rebuild(allow_pruned: bool, data_dir: Path) -> None:
    """Make the lake again from every record of the raw log (stop the server first).

    The old lake is kept aside in lake.before-rebuild/ until the new one is loaded. Events that
    `liftlog demo remove` took out of the lake come back (the raw log still holds them).
    """
    _loader_allocators()
    from liftlog.lake.rebuild import RebuildFailed, RebuildRefused, rebuild_lake
    from liftlog.lake.schema import TABLES
    from liftlog.lake.status import table_status

    settings = Settings(data_dir=data_dir.resolve())
    try:
        rebuilt = rebuild_lake(settings, allow_pruned=allow_pruned, progress=Progress(settings))
    except (RebuildRefused, RebuildFailed) as exc:
        raise click.ClickException(str(exc)) from None
    rows = ", ".join(f"{table_status(settings, t)['rows']:,} {t}" for t in TABLES)
    click.echo(f"rebuilt the lake from {rebuilt.records:,} raw-log records: {rows}")


@main.group()
def rawlog() -> None:
    """The raw log: every accepted request, byte for byte, before and after loading."""


@rawlog.command("prune")
@click.option("--older-than-days", type=float, required=True, help="Keep what is newer.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@existing_data_option
def rawlog_prune(older_than_days: float, dry_run: bool, data_dir: Path) -> None:
    """Delete raw-log segments already loaded into the lake and older than N days.

    Their events stay in the lake; what goes is the exact bytes received, from which the lake
    could be rebuilt. Segments still waiting for the loader are never deleted.
    """
    from liftlog.lake.retention import prune_rawlog

    pruned = prune_rawlog(
        Settings(data_dir=data_dir.resolve()), older_than_days * 86_400, dry_run=dry_run
    )
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {pruned.segments} segments, {pruned.bytes:,} bytes")
