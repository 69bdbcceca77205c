"""What the user pointed the probe at: the URL split the way a manifest needs it, and credentials
kept apart from what is printed.

Secrets must never reach stdout (the YAML is pasted into a repository), so every credential is
held twice: its real value for the probe's own requests, and a `${VAR}` reference for the manifest.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

from shared.config.models import ApiKeyAuth, BearerAuth
from shared.probe.detect_pagination import CURSOR_PARAMS, LIMIT_PARAMS, OFFSET_PARAMS, PAGE_PARAM, SIZE_PARAMS
from shared.probe.detect_signals import AFTER_PARAMS
from shared.probe.naming import identifier

SECRET_NAME = re.compile(r"(^|[_-])(api[_-]?key|apikey|key|token|access[_-]?token|secret|password|signature|sig|"
                         r"auth|authorization|cookie|session)([_-]|$)", re.IGNORECASE)


# Names that say a request's paging values are given there: a query parameter or a body field.
PAGING_NAMES = frozenset({PAGE_PARAM, *SIZE_PARAMS, *OFFSET_PARAMS, *LIMIT_PARAMS, *CURSOR_PARAMS, *AFTER_PARAMS,
                          "from", "$top", "first"})


class TargetError(ValueError):
    """The command line does not describe a request the probe can send."""


@dataclass(frozen=True)
class Target:
    base_url: str                                   # scheme://host[:port]
    path: str                                       # the model's path, "/" at least
    params: dict[str, Any]                          # real values, sent by the probe
    shown_params: dict[str, Any]                    # as printed: secrets replaced by ${VAR}
    headers: dict[str, str] = field(default_factory=dict)
    shown_headers: dict[str, str] = field(default_factory=dict)
    auth: BearerAuth | ApiKeyAuth | None = None
    shown_auth: dict[str, str] | None = None
    env_vars: tuple[str, ...] = ()                  # what the user must set for the manifest to load
    method: str = "GET"
    json_body: dict[str, Any] | None = None         # real values, sent by the probe
    shown_json: dict[str, Any] | None = None        # as printed: secret-looking fields as ${VAR}

    @property
    def location(self) -> str:
        """Where paging values go: in the JSON body when it holds one (`page_size`, `start_cursor`)
        or the query holds none; else in the query."""
        if self.json_body is None:
            return "query"
        if any(k in PAGING_NAMES for k in self.json_body) or not any(k in PAGING_NAMES for k in self.params):
            return "body"
        return "query"

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def redact(self, text: str) -> str:
        """Secret query values travel in URLs, and URLs appear in error messages and the report."""
        for name, value in self.params.items():
            if self.shown_params.get(name) != value and str(value):
                for form in {str(value), quote_plus(str(value)), quote(str(value), safe="")}:
                    text = text.replace(form, "***")
        return text


def build_target(url: str, source: str, params: dict[str, str], headers: dict[str, str],
                 bearer: str | None, api_key: tuple[str, str] | None, method: str = "GET",
                 json_body: dict[str, Any] | None = None) -> Target:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        shown = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}" if parts.scheme else parts.path
        raise TargetError(f"not an http(s) URL: {shown}")
    if bearer and api_key:
        raise TargetError("give --bearer or --api-key, not both")
    if json_body is not None and method == "GET":
        raise TargetError("--json: a GET request has no body: add --method POST (or PUT)")
    real = {**dict(parse_qsl(parts.query, keep_blank_values=True)), **params}
    env: list[str] = []
    shown_params = {k: _shown(source, k, v, env) for k, v in real.items()}
    shown_headers = {k: _shown(source, k, v, env) for k, v in headers.items()}
    auth, shown_auth = _auth(source, bearer, api_key, env)
    shown_json = _shown_json(source, json_body, env) if json_body is not None else None
    netloc = parts.netloc.rsplit("@", 1)[-1]   # user:password@ never goes into base_url
    return Target(f"{parts.scheme.lower()}://{netloc}", parts.path or "/", {k: _typed(v) for k, v in real.items()},
                  {k: _typed(v) for k, v in shown_params.items()}, dict(headers), shown_headers, auth, shown_auth,
                  tuple(dict.fromkeys(env)), method, json_body, shown_json)


def _auth(source: str, bearer: str | None, api_key: tuple[str, str] | None,
          env: list[str]) -> tuple[BearerAuth | ApiKeyAuth | None, dict[str, str] | None]:
    if bearer:
        var = env_var(source, "token")
        env.append(var)
        return BearerAuth(type="bearer", token=bearer), {"type": "bearer", "token": f"${{{var}}}"}
    if api_key:
        name, value = api_key
        var = env_var(source, "api_key")
        env.append(var)
        return (ApiKeyAuth(type="api_key", name=name, value=value, location="header"),
                {"type": "api_key", "name": name, "value": f"${{{var}}}", "in": "header"})
    return None, None


def _shown(source: str, name: str, value: str, env: list[str]) -> str:
    """A parameter or header as the manifest shows it: a secret-looking one by reference only."""
    if not SECRET_NAME.search(name):
        return value
    var = env_var(source, name)
    env.append(var)
    return f"${{{var}}}"


def _shown_json(source: str, body: dict[str, Any], env: list[str]) -> dict[str, Any]:
    """A JSON body as the manifest shows it: a secret-looking text field, at any depth, by reference."""
    return {k: _shown_json(source, v, env) if isinstance(v, dict)
            else _shown(source, k, v, env) if isinstance(v, str) else v for k, v in body.items()}


def env_var(source: str, name: str) -> str:
    return f"{identifier(source, 'api')}_{identifier(name, 'secret')}".upper()


def _typed(value: str) -> Any:
    """`25` becomes 25 so the YAML reads naturally; `007` stays text, its zeros may matter."""
    return int(value) if isinstance(value, str) and value.isdigit() and str(int(value)) == value else value


def parse_pairs(pairs: tuple[str, ...] | list[str], separator: str, what: str) -> dict[str, str]:
    """`k=v` / `Name: value` options into a dict; malformed ones are refused, not guessed at."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition(separator)
        if not sep or not name.strip():
            raise TargetError(f"{what} must look like NAME{separator}VALUE")
        out[name.strip()] = value.strip()
    return out
