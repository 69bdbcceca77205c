"""The functions an app registers, read through azure-functions (`app.get_functions()`) exactly as
the worker indexes them for the host: trigger type, queue name, route, auth level, schedule, path.

`get_functions()` may be called once per app object (azure-functions 1.26 raises on a second
call), so `discover` is called once and its result is passed around.
"""
from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import json
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devhost.settings import HostError

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
_SETTING_REF = re.compile(r"%([A-Za-z0-9_.:-]+)%")


@dataclass(frozen=True)
class _Function:
    name: str
    arg_name: str
    function: Callable[..., Any] = field(repr=False, compare=False)

    def invoke(self, value: Any) -> Any:
        """Call the user function as the worker does: the trigger value by its binding name."""
        result = self.function(**{self.arg_name: value})
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        return result


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


@dataclass(frozen=True)
class QueueFunction(_Function):
    queue: str = ""
    connection: str = ""


@dataclass(frozen=True)
class HttpFunction(_Function):
    route: str = ""
    methods: tuple[str, ...] = HTTP_METHODS
    auth_level: str = "function"     # anonymous | function | admin
    pattern: re.Pattern = field(default=re.compile(""), repr=False, compare=False)

    def match(self, path: str) -> dict[str, str] | None:
        """Route params when `path` (without the route prefix, no leading slash) matches."""
        m = self.pattern.match(path)
        if m is None:
            return None
        return {k: v for k, v in m.groupdict().items() if v is not None}


@dataclass(frozen=True)
class TimerFunction(_Function):
    schedule: str = ""               # as declared, `%SETTING%` unresolved
    run_on_startup: bool = False

    def resolved_schedule(self, env: Mapping[str, str] | None = None) -> str:
        return resolve_settings(self.schedule, os.environ if env is None else env, f"{self.name}: schedule")


@dataclass(frozen=True)
class BlobFunction(_Function):
    path: str = ""
    connection: str = ""

    @property
    def container(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def blob_pattern(self) -> str:
        return self.path.split("/", 1)[1] if "/" in self.path else "{name}"


@dataclass(frozen=True)
class Discovered:
    queues: tuple[QueueFunction, ...] = ()
    http: tuple[HttpFunction, ...] = ()
    timers: tuple[TimerFunction, ...] = ()
    blobs: tuple[BlobFunction, ...] = ()

    @property
    def all(self) -> tuple[_Function, ...]:
        return (*self.queues, *self.http, *self.timers, *self.blobs)


def resolve_settings(value: str, env: Mapping[str, str], what: str) -> str:
    """`%NAME%` references replaced by app settings, as the host resolves binding expressions."""
    def setting(match: re.Match) -> str:
        name = match.group(1)
        if name not in env or not str(env[name]).strip():
            raise HostError(f"{what} refers to %{name}%, and the app setting {name} is not set")
        return str(env[name]).strip()

    return _SETTING_REF.sub(setting, value)


_SEGMENT = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([^}?]*))?(\?)?\}")


def compile_route(route: str) -> re.Pattern:
    """ASP.NET-style route template to a regex: `{name}`, `{name:int}` (constraints int/alpha/guid/
    bool checked, others accepted), `{name?}` (optional, trailing), `{*rest}` (catch-all)."""
    route = route.strip("/")
    parts: list[str] = []
    for i, segment in enumerate(route.split("/") if route else []):
        piece, pos = "", 0
        for m in _SEGMENT.finditer(segment):
            piece += re.escape(segment[pos:m.start()])
            catch_all, name, constraint, optional = m.groups()
            body = ".+" if catch_all else _CONSTRAINTS.get((constraint or "").split("(")[0].lower(), "[^/]+")
            piece += f"(?P<{name}>{body})" + ("?" if optional else "")
            pos = m.end()
        piece += re.escape(segment[pos:])
        optional_segment = segment.startswith("{") and segment.endswith("?}")
        sep = "/" if i else ""
        parts.append(f"(?:{sep}{piece})?" if optional_segment else sep + piece)
    return re.compile("^" + "".join(parts) + "/?$", re.IGNORECASE)


_CONSTRAINTS = {"int": r"-?\d+", "long": r"-?\d+", "alpha": r"[A-Za-z]+", "bool": r"(?:true|false)",
                "guid": r"[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}"}


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


def discover(app: Any) -> Discovered:
    """Every function of `app` (a FunctionApp), by trigger. Functions with bindings the local host
    cannot serve (output bindings other than an HTTP `$return`, other trigger types) are refused
    with a HostError naming them, rather than run differently from Azure."""
    queues, http, timers, blobs, unsupported = [], [], [], [], []
    for fn in app.get_functions():
        name = fn.get_function_name()
        bindings = [json.loads(raw) for raw in fn.get_raw_bindings()]
        trigger = next((b for b in bindings if str(b.get("type", "")).endswith("Trigger")), None)
        others = [b for b in bindings
                  if b is not trigger and not (b.get("type") == "http" and b.get("name") == "$return")]
        user = fn.get_user_function()
        if trigger is None or others:
            unsupported.append(f"{name} ({', '.join(str(b.get('type')) for b in others) or 'no trigger'})")
            continue
        kind, arg = trigger["type"], trigger["name"]
        if kind == "queueTrigger":
            queues.append(QueueFunction(name, arg, user, queue=trigger["queueName"],
                                        connection=trigger.get("connection") or "AzureWebJobsStorage"))
        elif kind == "httpTrigger":
            route = (trigger.get("route") or name).strip("/")
            methods = tuple(m.upper() for m in trigger.get("methods") or HTTP_METHODS)
            http.append(HttpFunction(name, arg, user, route=route, methods=methods,
                                     auth_level=str(trigger.get("authLevel") or "FUNCTION").lower(),
                                     pattern=compile_route(route)))
        elif kind == "timerTrigger":
            timers.append(TimerFunction(name, arg, user, schedule=trigger["schedule"],
                                        run_on_startup=bool(trigger.get("runOnStartup", False))))
        elif kind == "blobTrigger":
            blobs.append(BlobFunction(name, arg, user, path=trigger["path"],
                                      connection=trigger.get("connection") or "AzureWebJobsStorage"))
        else:
            unsupported.append(f"{name} ({kind})")
    if unsupported:
        raise HostError("the local host cannot run these functions' bindings: " + "; ".join(unsupported))
    return Discovered(tuple(queues), tuple(http), tuple(timers), tuple(blobs))


def load_app(module: str = "function_app", attribute: str = "app") -> Any:
    """A FunctionApp object of `module`, from a private execution of the module (not the one in
    sys.modules): `get_functions()` works once per app object, so the host indexes its own copy and
    never spends the app that `import function_app` gives everyone else (tests included). The
    blueprints and user functions it registers are the ordinary imported ones."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise HostError(f"cannot import {module}: {exc}") from exc
    if spec is None or spec.loader is None:
        raise HostError(f"cannot import {module}: not found on sys.path (run the host from the app's folder)")
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:
        raise HostError(f"importing {module} failed: {type(exc).__name__}: {exc}") from exc
    app = getattr(mod, attribute, None)
    if app is None or not hasattr(app, "get_functions"):
        raise HostError(f"{module}.{attribute} is not an azure.functions FunctionApp")
    return app
