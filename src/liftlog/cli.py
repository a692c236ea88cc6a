"""The ``liftlog`` command: a thin layer over the same code the server uses."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from liftlog.catalog.tokens import SCOPES
from liftlog.errors import LiftlogError
from liftlog.report import METHODS
from liftlog.settings import Settings

if TYPE_CHECKING:
    from liftlog.catalog.models import Experiment
    from liftlog.catalog.store import Catalog

DATA_HELP = "Data directory (raw log, lake, catalog). Default: ./data"
DATABASE_HELP = (
    "Catalog database URL (sqlite:///... or postgresql+psycopg://...). "
    "Default: $LIFTLOG_DATABASE_URL, else SQLite in the data directory."
)


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
@click.option("--database-url", envvar="LIFTLOG_DATABASE_URL", help=DATABASE_HELP)
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
    demo: bool,
) -> None:
    """Serve the Event API, the management API and datafiles (and load accepted events into the
    lake in the background)."""
    import uvicorn

    from liftlog import demo as demo_module
    from liftlog.catalog.store import Catalog, default_url
    from liftlog.lake.loader import run_loader_process

    settings = Settings(data_dir=data_dir.resolve(), database_url=database_url or None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(settings.to_env())
    # Migrate once here: workers that each migrated a fresh PostgreSQL at once could race.
    catalog_url = settings.database_url or default_url(settings.data_dir)
    with Catalog.open(catalog_url) as catalog:
        first_start = demo and demo_module.is_first_start(catalog)
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
    click.echo(f"  Management API:   {base}/v2/projects  (docs: {base}/docs)")
    click.echo(f"  Datafiles:        GET  {base}/datafiles/<sdk_key>.json")
    click.echo(f"  Results pages:    {base}/ui/  (sign in: liftlog user create)")
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
            loader.terminate()  # SIGTERM: the loader finishes its batch and exits
            loader.join(30)


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
    click.echo("                    (shown this once; more users: liftlog user create)")
    click.echo(f"  Demo results:     {experiment}")
    click.echo(
        f"  Why not counted?  {base}/ui/debugger?experiment={made.experiment_id}"
        f"&q={traffic.explain_visitor}"
    )
    click.echo(f"  Remove the demo:  liftlog demo remove --data {settings.data_dir}")


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


# Catalog commands: each opens the catalog (migrating it) and calls the repository the API uses.


def catalog_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option("--database-url", envvar="LIFTLOG_DATABASE_URL", help=DATABASE_HELP)(fn)
    fn = click.option(
        "--data", "data_dir", default="data", type=click.Path(path_type=Path), help=DATA_HELP
    )(fn)
    return fn


def json_option(fn: Callable[..., None]) -> Callable[..., None]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


@contextlib.contextmanager
def open_catalog(data_dir: Path, database_url: str | None) -> Iterator[Catalog]:
    """The catalog, with its errors printed as ``error: <message>`` (and exit status 1)."""
    from liftlog.catalog.store import Catalog, default_url

    url = database_url or default_url(data_dir.resolve())
    try:
        with Catalog.open(url) as catalog:
            yield catalog
    except LiftlogError as exc:
        problems = "".join(f"\n  {d.path}: {d.problem}" for d in exc.details)
        raise click.ClickException(f"{exc.message}{problems}") from None


def show(obj: Any, as_json: bool, line: str) -> None:
    click.echo(json.dumps(obj.to_dict(), indent=2) if as_json else line)


def parse_variations(spec: str) -> list[dict[str, Any]]:
    """``control:5000,treatment:5000`` -> variations with keys and weights (basis points)."""
    out: list[dict[str, Any]] = []
    for part in spec.split(","):
        key, sep, weight = part.strip().partition(":")
        if not sep or not weight.strip().isdigit():
            raise click.BadParameter(f"{part!r} is not KEY:WEIGHT", param_hint="--variations")
        out.append({"key": key.strip(), "weight": int(weight)})
    return out


def event_id(catalog: Catalog, project_id: int, key: str) -> int:
    page = 1
    while True:
        events = catalog.events.list(project_id, page, 100)
        for event in events.items:
            if event.key == key:
                return event.id
        if page >= events.last_page:
            raise click.BadParameter(
                f"no event {key!r} in project {project_id}", param_hint="--metric"
            )
        page += 1


@main.group()
def project() -> None:
    """Projects (each has the SDK key of its datafile)."""


@project.command("create")
@click.option("--name", required=True)
@catalog_options
@json_option
def project_create(name: str, data_dir: Path, database_url: str | None, as_json: bool) -> None:
    with open_catalog(data_dir, database_url) as catalog:
        p = catalog.projects.create({"name": name})
    show(p, as_json, f"project {p.id}  {p.name}  sdk_key {p.sdk_key}")


@main.group()
def experiment() -> None:
    """Experiments: create, list, start, pause."""


@experiment.command("create")
@click.option("--project", "project_id", required=True, type=int)
@click.option("--key", required=True)
@click.option("--variations", required=True, help="KEY:WEIGHT,... in basis points.")
@click.option("--metric", "metrics", multiple=True, help="Event key; repeat, first is primary.")
@catalog_options
@json_option
def experiment_create(
    project_id: int,
    key: str,
    variations: str,
    metrics: tuple[str, ...],
    data_dir: Path,
    database_url: str | None,
    as_json: bool,
) -> None:
    body: dict[str, Any] = {"key": key, "variations": parse_variations(variations)}
    with open_catalog(data_dir, database_url) as catalog:
        if metrics:
            body["metrics"] = [{"event_id": event_id(catalog, project_id, m)} for m in metrics]
        e = catalog.experiments.create(project_id, body)
    show(e, as_json, f"experiment {e.id}  {e.key}  {e.status}")


def _set_status(experiment_id: int, status: str, data_dir: Path, database_url: str | None,
                as_json: bool) -> None:  # fmt: skip
    with open_catalog(data_dir, database_url) as catalog:
        e = catalog.experiments.set_status(experiment_id, status)
    show(e, as_json, f"experiment {e.id}  {e.key}  {e.status}")


@experiment.command("start")
@click.argument("experiment_id", type=int)
@catalog_options
@json_option
def experiment_start(experiment_id: int, data_dir: Path, database_url: str | None,
                     as_json: bool) -> None:  # fmt: skip
    """Start (or resume) an experiment: status running."""
    _set_status(experiment_id, "running", data_dir, database_url, as_json)


@experiment.command("pause")
@click.argument("experiment_id", type=int)
@catalog_options
@json_option
def experiment_pause(experiment_id: int, data_dir: Path, database_url: str | None,
                     as_json: bool) -> None:  # fmt: skip
    """Pause an experiment: status paused (it gets no traffic until started again)."""
    _set_status(experiment_id, "paused", data_dir, database_url, as_json)


@experiment.command("list")
@click.option("--project", "project_id", required=True, type=int)
@catalog_options
@json_option
def experiment_list(project_id: int, data_dir: Path, database_url: str | None,
                    as_json: bool) -> None:  # fmt: skip
    found: list[Experiment] = []
    with open_catalog(data_dir, database_url) as catalog:
        page = 1
        while True:
            result = catalog.experiments.list(project_id, page, 100)
            found.extend(result.items)
            if page >= result.last_page:
                break
            page += 1
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in found], indent=2))
        return
    for e in found:
        weights = ",".join(f"{v.key}:{v.weight}" for v in e.variations)
        click.echo(f"{e.id}  {e.key:<30} {e.status:<12} {weights}")


@main.group()
def event() -> None:
    """Custom events (conversion goals)."""


@event.command("create")
@click.option("--project", "project_id", required=True, type=int)
@click.option("--key", required=True)
@catalog_options
@json_option
def event_create(project_id: int, key: str, data_dir: Path, database_url: str | None,
                 as_json: bool) -> None:  # fmt: skip
    with open_catalog(data_dir, database_url) as catalog:
        e = catalog.events.create(project_id, {"key": key})
    show(e, as_json, f"event {e.id}  {e.key}")


@main.group()
def token() -> None:
    """Personal access tokens (read, write) and datafile access tokens (datafile)."""


@token.command("create")
@click.option("--name", required=True)
@click.option("--scope", required=True, type=click.Choice(SCOPES))
@catalog_options
@json_option
def token_create(name: str, scope: str, data_dir: Path, database_url: str | None,
                 as_json: bool) -> None:  # fmt: skip
    """Issue a token; its secret is printed this once and never stored."""
    with open_catalog(data_dir, database_url) as catalog:
        issued = catalog.tokens.create(name, scope)
    if as_json:
        click.echo(json.dumps({**issued.token.to_dict(), "secret": issued.secret}, indent=2))
        return
    click.echo(f"token {issued.token.id}  {name}  scope {scope}")
    click.echo(issued.secret)


@token.command("revoke")
@click.argument("token_id", type=int)
@catalog_options
@json_option
def token_revoke(token_id: int, data_dir: Path, database_url: str | None, as_json: bool) -> None:
    with open_catalog(data_dir, database_url) as catalog:
        t = catalog.tokens.revoke(token_id)
    show(t, as_json, f"token {t.id}  {t.name}  revoked")


# Results and the event debugger: the same code as GET /v2/experiments/{id}/results.


@main.command()
@click.argument("experiment_id", type=int)
@click.option("--method", type=click.Choice(METHODS), default="sequential", show_default=True)
@click.option("--segment", help="Break down by this attribute (key or id).")
@catalog_options
@json_option
def results(experiment_id: int, method: str, segment: str | None, data_dir: Path,
            database_url: str | None, as_json: bool) -> None:  # fmt: skip
    """An experiment's results: visitors, conversions, improvement and significance."""
    from liftlog.analysis.counting import count_segments, empty_counts
    from liftlog.analysis.sources import connect
    from liftlog.analysis.spec import counting_spec
    from liftlog.report import Arm, build_results, results_text

    with open_catalog(data_dir, database_url) as catalog:
        e = catalog.experiments.get(experiment_id)
        level = catalog.projects.get(e.project_id).confidence_threshold
        arms = [Arm(str(v.variation_id), v.name or v.key, v.weight) for v in e.variations]
        spec = counting_spec(catalog, experiment_id)
    lake = Settings(data_dir=data_dir.resolve()).lake_dir
    by_segment = count_segments(connect(lake), spec, segment)
    if segment is None:
        by_segment = {None: by_segment.get(None) or empty_counts(spec)}
    for value, counts in sorted(by_segment.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
        doc = build_results(spec, arms, counts, method=method, level=level)
        if as_json:
            click.echo(json.dumps({"segment": value, **doc} if segment else doc, indent=2))
            continue
        if segment:
            click.echo(f"== {segment} = {value if value is not None else '(not set)'}")
        click.echo(results_text(doc))


@main.command()
@click.option("--visitor", "visitor_id", required=True, help="The visitor id.")
@click.option("--experiment", "experiment_id", required=True, type=int)
@catalog_options
@json_option
def explain(visitor_id: str, experiment_id: int, data_dir: Path, database_url: str | None,
            as_json: bool) -> None:  # fmt: skip
    """Every stored event of a visitor, and why it did or did not count in an experiment."""
    from liftlog.analysis.explain import timeline
    from liftlog.analysis.sources import connect
    from liftlog.analysis.spec import counting_spec
    from liftlog.api.results import event_json

    with open_catalog(data_dir, database_url) as catalog:
        spec = counting_spec(catalog, experiment_id)
    events = timeline(connect(Settings(data_dir=data_dir.resolve()).lake_dir), visitor_id, spec)
    if as_json:
        click.echo(json.dumps([event_json(d) for d in events], indent=2))
        return
    if not events:
        click.echo(f"no stored events for visitor {visitor_id!r}")
    for d in events:
        e = event_json(d)
        click.echo(f"{e['time'] or e['timestamp']}  {e['kind']:<10} {e['key'] or '':<18} "
                   f"{e['uuid']:<38} {e['disposition']}")  # fmt: skip
        click.echo(f"    {e['reason']}")


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
def user() -> None:
    """People who sign in to the web pages (/ui)."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from stdin.")
@catalog_options
def user_create(email: str, password_stdin: bool, data_dir: Path, database_url: str | None) -> None:
    """Create a user of the default account; the password is read from stdin, never argv."""
    from liftlog.catalog.users import Users

    password = sys.stdin.readline().rstrip("\r\n")
    with open_catalog(data_dir, database_url) as catalog:
        u = Users.of(catalog).create(email, password)
    click.echo(f"user {u.id}  {u.email}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
