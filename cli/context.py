"""What every command needs: the loaded project, logging on stderr with secrets masked, and a
single way to turn kspyder's errors into a short message and exit code 1."""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import click

from shared.config.errors import ConfigError
from shared.config.project import Project, load_project
from shared.config.secrets import SecretMasker
from shared.errors import ExtractError


class MaskingFilter(logging.Filter):
    """Every log record passes through the project's secret masker before it is printed."""

    def __init__(self, masker: SecretMasker):
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.masker.mask(record.getMessage())
        record.args = None
        return True


@dataclass
class CliState:
    manifests: str | None
    verbose: int
    _project: Project | None = None

    def project(self) -> Project:
        if self._project is None:
            self._project = load_project(self.manifests)
            configure_logging(self._project.settings.log_level, self.verbose, self._project.masker)
        return self._project


def configure_logging(level: str, verbose: int, masker: SecretMasker) -> None:
    root = logging.getLogger("kspyder")
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter(masker))
    root.addHandler(handler)
    root.setLevel("DEBUG" if verbose > 1 else "INFO" if verbose == 1 else level)


@contextmanager
def user_errors(state: CliState) -> Iterator[None]:
    """Known errors end the command with their message on stderr and exit code 1, no traceback."""
    try:
        yield
    except ConfigError as exc:
        count = len(exc.issues)
        click.echo(f"{count} problem{'s' if count != 1 else ''} in the manifests:", err=True)
        click.echo(_mask(state, str(exc)), err=True)
        sys.exit(1)
    except ExtractError as exc:
        click.echo(f"error: {_mask(state, str(exc))}", err=True)
        sys.exit(1)


def _mask(state: CliState, text: str) -> str:
    return state._project.masker.mask(text) if state._project else SecretMasker().mask(text)
