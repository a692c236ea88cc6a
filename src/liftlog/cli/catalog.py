"""Catalog commands: projects, experiments, events, tokens and users, as the REST API makes them."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from liftlog.catalog.scopes import TOKEN_SCOPES
from liftlog.cli.base import catalog_options, json_option, main, open_catalog, show, when

if TYPE_CHECKING:
    from liftlog.catalog.models import Page
    from liftlog.catalog.store import Catalog
    from liftlog.catalog.users import User


def parse_variations(spec: str) -> list[dict[str, Any]]:
    """``control:5000,treatment:5000`` -> variations with keys and weights (basis points)."""
    out: list[dict[str, Any]] = []
    for part in spec.split(","):
        key, sep, weight = part.strip().partition(":")
        if not sep or not weight.strip().isdigit():
            raise click.BadParameter(f"{part!r} is not KEY:WEIGHT", param_hint="--variations")
        out.append({"key": key.strip(), "weight": int(weight)})
    return out


T = TypeVar("T")


def all_pages(list_page: Callable[[int, int], Page[T]]) -> Iterator[T]:
    """Every item of a paged listing: ``list_page(page, per_page)`` for pages 1, 2, … to the
    last, as many items per page as the catalog allows."""
    from liftlog.catalog.repo import MAX_PER_PAGE  # the database layer, only when used

    page = 1
    while True:
        got = list_page(page, MAX_PER_PAGE)
        yield from got.items
        if page >= got.last_page:
            return
        page += 1


def event_id(catalog: Catalog, project_id: int, key: str) -> int:
    events = all_pages(lambda page, n: catalog.events.list(project_id, page, n))
    for event in events:
        if event.key == key:
            return event.id
    raise click.BadParameter(f"no event {key!r} in project {project_id}", param_hint="--metric")


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
    with open_catalog(data_dir, database_url) as catalog:
        found = list(all_pages(lambda page, n: catalog.experiments.list(project_id, page, n)))
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
@click.option("--scope", required=True, type=click.Choice(TOKEN_SCOPES))
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
    """Revoke a token for good (its id is in `liftlog token list`)."""
    with open_catalog(data_dir, database_url) as catalog:
        t = catalog.tokens.revoke(token_id)
    show(t, as_json, f"token {t.id}  {t.name}  revoked")


@token.command("list")
@catalog_options
@json_option
def token_list(data_dir: Path, database_url: str | None, as_json: bool) -> None:
    """Every token, oldest first: its scope, the start of its secret, when it was last used and
    whether it is revoked (never the secret)."""
    with open_catalog(data_dir, database_url) as catalog:
        tokens = list(all_pages(lambda page, n: catalog.tokens.list(page, n)))
    if as_json:
        click.echo(json.dumps([t.to_dict() for t in tokens], indent=2))
        return
    for t in tokens:
        state = f"revoked {when(t.revoked)}" if t.revoked is not None else "active"
        last = when(t.last_used) or "never used"
        click.echo(f"token {t.id}  {t.name}  scope {t.scope}  {t.prefix}…  {state}  "
                   f"last used: {last}")  # fmt: skip


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


@user.command("password")
@click.option("--email", required=True)
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from stdin.")
@catalog_options
def user_password(
    email: str, password_stdin: bool, data_dir: Path, database_url: str | None
) -> None:
    """Give a user a new password (read from stdin); their signed-in sessions end."""
    from liftlog.catalog.users import Users

    password = sys.stdin.readline().rstrip("\r\n")
    with open_catalog(data_dir, database_url) as catalog:
        u = Users.of(catalog).set_password(email, password)
    click.echo(f"user {u.id}  {u.email}  new password set; their sessions have ended")


@user.command("list")
@catalog_options
@json_option
def user_list(data_dir: Path, database_url: str | None, as_json: bool) -> None:
    """Every user, oldest first, with when they last signed in."""
    from liftlog.catalog.users import Users

    with open_catalog(data_dir, database_url) as catalog:
        users = Users.of(catalog).list()
    if as_json:
        click.echo(json.dumps([_user_json(u) for u in users], indent=2))
        return
    for u in users:
        last = when(u.last_sign_in) or "never signed in"
        click.echo(f"user {u.id}  {u.email}  account {u.account_id}  last sign-in: {last}")


def _user_json(u: User) -> dict[str, Any]:
    return {"id": u.id, "email": u.email, "account_id": u.account_id, "created": when(u.created),
            "last_sign_in": when(u.last_sign_in)}  # fmt: skip
