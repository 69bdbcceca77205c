"""`probe URL`: print a draft manifest entry for an API endpoint (YAML on stdout, report on stderr)."""
from __future__ import annotations

import click

from shared.probe import ProbeOptions, TargetError, parse_pairs, probe_url, render_yaml
from .context import CliState, user_errors


@click.command()
@click.argument("url")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="Extra request header (repeatable); secret-looking ones appear in the YAML as ${VARS}.")
@click.option("--bearer", envvar="KSPYDER_PROBE_BEARER", metavar="TOKEN",
              help="Bearer token (env KSPYDER_PROBE_BEARER); the YAML references ${<SOURCE>_TOKEN} instead.")
@click.option("--api-key", "api_key", envvar="KSPYDER_PROBE_API_KEY", metavar="NAME=VALUE",
              help="API key header (env KSPYDER_PROBE_API_KEY); the YAML references ${<SOURCE>_API_KEY} instead.")
@click.option("--param", "params", multiple=True, metavar="K=V", help="Extra query parameter (repeatable).")
@click.option("--pages", type=click.IntRange(min=1), default=3, show_default=True,
              help="Pages to walk when verifying the pagination.")
@click.option("--source", "source", default=None, help="Source name (default: from the host).")
@click.option("--model", "model", default=None, help="Model name (default: the URL's last path segment).")
@click.pass_obj
def probe(state: CliState | None, url: str, headers: tuple[str, ...], bearer: str | None, api_key: str | None,
          params: tuple[str, ...], pages: int, source: str | None, model: str | None) -> None:
    """Probe URL and print a ready-to-paste connector_models.yml entry: pagination, records path,
    typed columns, primary key and PII rules. Prints names and types only, never record values."""
    state = state if isinstance(state, CliState) else CliState(None, 0)
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


def _api_key(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    pair = parse_pairs([value], "=", "--api-key")
    return next(iter(pair.items()))
