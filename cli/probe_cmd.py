"""`probe URL`: print a draft manifest entry for an API endpoint, or a whole `type: sql` source for a
database URL (YAML on stdout, report on stderr). The URL's scheme decides which: http(s) is an API,
anything SQLAlchemy reads (`postgresql+psycopg://`, `sqlite:///shop.db`...) a database."""
from __future__ import annotations

import click

from cli.context import CliState, user_errors

API_ONLY = ("headers", "bearer", "api_key", "params", "model")
DATABASE_ONLY = ("schema", "tables")


@click.command()
@click.argument("url")
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
@click.option("--schema", "schema", default=None, help="Database: the schema to draft (default: the connection's).")
@click.option("--table", "tables", multiple=True, metavar="NAME",
              help="Database: draft only this table or view (repeatable; default: all of the schema).")
@click.option("--sample", type=click.IntRange(min=0), default=200, show_default=True,
              help="Database: rows read per table for the PII hints (0: names only).")
@click.pass_obj
def probe(state: CliState | None, url: str, headers: tuple[str, ...], bearer: str | None, api_key: str | None,
          params: tuple[str, ...], pages: int, source: str | None, model: str | None, schema: str | None,
          tables: tuple[str, ...], sample: int) -> None:
    """Probe URL and print a ready-to-paste connector_models.yml entry: for an API endpoint its
    pagination, records path, typed columns, primary key and PII rules; for a database URL one model
    per table or view of a schema, typed from the catalogue, with keys and PII rules. Prints names
    and types only, never record values; passwords become ${VARS}."""
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
        render_sql_yaml,
        render_yaml,
    )
    state = state if isinstance(state, CliState) else CliState(None, 0)
    given = {"headers": headers, "bearer": bearer, "api_key": api_key, "params": params, "model": model,
             "schema": schema, "tables": tables}
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
    try:
        options = ProbeOptions(url, parse_pairs(headers, ":", "--header"), parse_pairs(params, "=", "--param"),
                               bearer or None, _api_key(api_key), pages, source, model)
    except TargetError as exc:
        raise click.UsageError(str(exc)) from None
    with user_errors(state):
        try:
            result = probe_url(options, report=lambda line: click.echo(line, err=True))
        except TargetError as exc:
            raise click.UsageError(str(exc)) from None
    click.echo(render_yaml(result), nl=False)


def _refuse(options: list[str], what: str) -> None:
    if options:
        flags = ", ".join("--" + o.rstrip("s").replace("_", "-") for o in options)
        raise click.UsageError(f"{flags} only {'apply' if len(options) > 1 else 'applies'} to {what} URL")


def _api_key(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    from shared.probe import parse_pairs
    pair = parse_pairs([value], "=", "--api-key")
    return next(iter(pair.items()))
