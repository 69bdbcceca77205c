"""`probe URL [URL...]`: print a draft manifest entry for an API endpoint (several endpoints of one API
make one source), or a whole `type: sql` source for a database URL (YAML on stdout, report on
stderr). The URL's scheme decides which: http(s) is an API, anything SQLAlchemy reads
(`postgresql+psycopg://`, `sqlite:///shop.db`...) a database."""
from __future__ import annotations

import json
from typing import Any

import click

from cli.context import CliState, user_errors

API_ONLY = ("headers", "bearer", "api_key", "params", "model", "method", "json_text", "parents")
DATABASE_ONLY = ("schema", "tables")
ONE_URL_ONLY = ("model", "method", "json_text")


@click.command()
@click.argument("urls", nargs=-1, required=True, metavar="URL [URL...]")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="API: extra request header (repeatable); secret-looking ones appear in the YAML as ${VARS}.")
@click.option("--bearer", envvar="KSPYDER_PROBE_BEARER", metavar="TOKEN",
              help="API: bearer token (env KSPYDER_PROBE_BEARER); the YAML references ${<SOURCE>_TOKEN} instead.")
@click.option("--api-key", "api_key", envvar="KSPYDER_PROBE_API_KEY", metavar="NAME=VALUE",
              help="API: API key header (env KSPYDER_PROBE_API_KEY); the YAML references ${<SOURCE>_API_KEY} instead.")
@click.option("--param", "params", multiple=True, metavar="K=V", help="API: extra query parameter (repeatable).")
@click.option("--pages", type=click.IntRange(min=1), default=3, show_default=True,
              help="API: pages to walk when verifying the pagination.")
@click.option("--source", "source", default=None,
              help="Source name (default: from the host, or the database's name).")
@click.option("--model", "model", default=None, help="API: model name (default: the URL's last path segment).")
@click.option("--method", "method", type=click.Choice(["GET", "POST", "PUT"], case_sensitive=False), default=None,
              help="API: the request method (default GET); paging goes into a --json body when it holds paging "
                   "fields.")
@click.option("--json", "json_text", default=None, metavar="'{...}'",
              help="API: a JSON object sent as the request body (needs --method POST or PUT).")
@click.option("--parents", is_flag=True, default=False,
              help="API, several URLs: propose a parent: model where a URL's path takes values from another URL's "
                   "records, checked with one more request each.")
@click.option("--schema", "schema", default=None, help="Database: the schema to draft (default: the connection's).")
@click.option("--table", "tables", multiple=True, metavar="NAME",
              help="Database: draft only this table or view (repeatable; default: all of the schema).")
@click.option("--sample", type=click.IntRange(min=0), default=200, show_default=True,
              help="Database: rows read per table for the PII hints (0: names only).")
@click.pass_obj
def probe(state: CliState | None, urls: tuple[str, ...], headers: tuple[str, ...], bearer: str | None,
          api_key: str | None, params: tuple[str, ...], pages: int, source: str | None, model: str | None,
          method: str | None, json_text: str | None, parents: bool, schema: str | None, tables: tuple[str, ...],
          sample: int) -> None:
    """Probe URL and print a ready-to-paste connector_models.yml entry: for an API endpoint its
    pagination, records path, typed columns, primary key and PII rules; for a database URL one model
    per table or view of a schema, typed from the catalogue, with keys and PII rules. Several API
    URLs make one source, and with --parents a child model reads its path from a parent's records.
    Prints names and types only, never record values; passwords become ${VARS}."""
    # imported here: the probe (HTTP client, detectors, the SQL catalogue reader) is not needed by
    # every other command, and `main.py` loads every command module
    from shared.probe import (
        ProbeOptions,
        SqlProbeOptions,
        TargetError,
        is_database_url,
        parse_pairs,
        probe_database,
        probe_url,
        probe_urls,
        render_source_yaml,
        render_sql_yaml,
        render_yaml,
    )
    state = state if isinstance(state, CliState) else CliState(None, 0)
    given = {"headers": headers, "bearer": bearer, "api_key": api_key, "params": params, "model": model,
             "method": method, "json_text": json_text, "parents": parents, "schema": schema, "tables": tables}
    url = urls[0]
    if any(is_database_url(u) for u in urls) and len(urls) > 1:
        raise click.UsageError("a database URL is probed on its own: give one URL")
    if is_database_url(url):
        _refuse([k for k in API_ONLY if given[k]], "an API")
        with user_errors(state):
            try:
                drafted = probe_database(SqlProbeOptions(url, schema, tables, source, sample),
                                         report=lambda line: click.echo(line, err=True))
            except TargetError as exc:
                raise click.UsageError(str(exc)) from None
        click.echo(render_sql_yaml(drafted), nl=False)
        return
    _refuse([k for k in DATABASE_ONLY if given[k]], "a database")
    if len(urls) > 1:
        _refuse([k for k in ONE_URL_ONLY if given[k]], "one")
    elif parents:
        raise click.UsageError("--parents looks for a parent among several URLs: give two or more")
    try:
        options = [ProbeOptions(u, parse_pairs(headers, ":", "--header"), parse_pairs(params, "=", "--param"),
                                bearer or None, _api_key(api_key), pages, source, model,
                                method=(method or "GET").upper(), json_body=_json_body(json_text)) for u in urls]
    except TargetError as exc:
        raise click.UsageError(str(exc)) from None
    with user_errors(state):
        try:
            if len(options) == 1:
                text = render_yaml(probe_url(options[0], report=lambda line: click.echo(line, err=True)))
            else:
                text = render_source_yaml(probe_urls(options, parents, report=lambda line: click.echo(line, err=True)))
        except TargetError as exc:
            raise click.UsageError(str(exc)) from None
    click.echo(text, nl=False)


def _refuse(options: list[str], what: str) -> None:
    if options:
        flags = ", ".join("--" + _flag(o) for o in options)
        raise click.UsageError(f"{flags} only {'apply' if len(options) > 1 else 'applies'} to {what} URL")


def _flag(option: str) -> str:
    return {"json_text": "json", "parents": "parents"}.get(option, option.rstrip("s").replace("_", "-"))


def _json_body(text: str | None) -> dict[str, Any] | None:
    """`--json` as an object; anything else is a usage error (the text is not quoted: it may hold secrets)."""
    if text is None:
        return None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"--json is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(body, dict):
        raise click.UsageError(f"--json must be a JSON object, not a {type(body).__name__}")
    return body


def _api_key(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    from shared.probe import parse_pairs
    pair = parse_pairs([value], "=", "--api-key")
    return next(iter(pair.items()))
