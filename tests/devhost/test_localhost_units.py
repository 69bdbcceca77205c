"""The local host's pieces without storage: binding discovery (the real app and a synthetic one with
timer, blob and anonymous HTTP functions), host.json settings, NCRONTAB schedules, routes and auth."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import azure.functions as func
import pytest

from devhost import HostError, LocalHost, QueueSettings, discover, load_app, parse_schedule
from devhost.bindings import compile_route
from devhost.settings import timespan
from shared.chain import names
from shared.ncrontab import ScheduleError
from tests.helpers.devhost import call


def synthetic_app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.function_name("tick")
    @app.timer_trigger(schedule="%KSPYDER_SCHEDULE%", arg_name="timer", run_on_startup=True)
    def tick(timer: func.TimerRequest) -> None:
        ticks.append(timer.past_due)

    @app.function_name("inbox")
    @app.blob_trigger(arg_name="blob", path=f"{names.INBOX}/{{name}}", connection=names.STORAGE_SETTING)
    def inbox(blob: func.InputStream) -> None:
        pass

    @app.function_name("ping")
    @app.route(route="ping", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def ping(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("pong", mimetype="text/plain")

    @app.function_name("echo")
    @app.route(route="items/{item_id:int}/{label?}", methods=["GET", "POST"])
    def echo(req: func.HttpRequest) -> func.HttpResponse:
        body = {"route": dict(req.route_params), "params": dict(req.params), "method": req.method,
                "body": req.get_body().decode()}
        return func.HttpResponse(json.dumps(body), status_code=201, mimetype="application/json",
                                 headers={"X-Echo": "1"})

    @app.function_name("boom")
    @app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
    def boom(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("secret detail")

    return app


ticks: list[bool] = []


def test_the_real_app_bindings_match_the_names_module():
    found = discover(load_app())
    assert {f.name: f.queue for f in found.queues} == {"paginate": names.PAGINATE, "fetch": names.FETCH,
                                                      "load": names.LOAD, "transform": names.TRANSFORM}
    assert {f.connection for f in found.queues} == {names.STORAGE_SETTING}
    assert {f.name: (f.route, f.methods, f.auth_level) for f in found.http} == {
        "health": ("health", ("GET",), "function"), "start_run": ("runs", ("POST",), "function"),
        "run_status": ("runs/{run_id}", ("GET",), "function"),
        "schema_plan": ("schema/plan", ("GET",), "function"), "schema_apply": ("schema/apply", ("POST",), "function"),
        "start_transform": ("transform", ("POST",), "function")}
    assert [t.name for t in found.timers] == ["scheduled_runs"]
    assert [(b.name, b.path) for b in found.blobs] == [("inbox", f"{names.INBOX}/{{source}}/{{model}}/{{name}}")]
    # a private copy each time: the shared `function_app.app` is left for others to index
    assert len(discover(load_app()).queues) == 4


def test_a_synthetic_app_with_timer_blob_and_anonymous_http():
    found = discover(synthetic_app())
    [timer] = found.timers
    assert (timer.name, timer.arg_name, timer.schedule, timer.run_on_startup) == ("tick", "timer",
                                                                                  "%KSPYDER_SCHEDULE%", True)
    assert timer.resolved_schedule({names.SCHEDULE_SETTING: "0 */5 * * * *"}) == "0 */5 * * * *"
    with pytest.raises(HostError, match="KSPYDER_SCHEDULE is not set"):
        timer.resolved_schedule({})
    [blob] = found.blobs
    assert (blob.container, blob.blob_pattern, blob.connection) == (names.INBOX, "{name}", names.STORAGE_SETTING)
    levels = {f.name: f.auth_level for f in found.http}
    assert levels == {"ping": "anonymous", "echo": "function", "boom": "anonymous"}


def test_unsupported_bindings_are_refused():
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="out", queue_name="out-q", connection="AzureWebJobsStorage")
    def relay(msg: func.QueueMessage, out: func.Out[str]) -> None:
        pass

    with pytest.raises(HostError, match="relay"):
        discover(app)


def test_host_json_settings():
    with open("host.json") as handle:
        settings = QueueSettings.from_host_json(json.load(handle))
    assert (settings.batch_size, settings.max_dequeue_count, settings.visibility_timeout) == (2, 5, 30.0)
    assert settings.message_encoding == "base64" and settings.route_prefix == "api"
    with pytest.raises(HostError, match="messageEncoding"):
        QueueSettings.from_host_json({"extensions": {"queues": {"messageEncoding": "none"}}})
    with pytest.raises(HostError, match="batchSize"):
        QueueSettings.from_host_json({"extensions": {"queues": {"batchSize": 64}}})
    assert QueueSettings.from_host_json({}).visibility_timeout == 0.0
    assert timespan("1.02:03:04.5", "x") == 93784.5
    with pytest.raises(HostError):
        timespan("30", "x")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_ncrontab_schedules():
    every5 = parse_schedule("0 */5 * * * *")
    assert every5.next_after(utc(2024, 1, 1, 10, 2, 7)) == utc(2024, 1, 1, 10, 5, 0)
    assert every5.next_after(utc(2024, 1, 1, 10, 5, 0)) == utc(2024, 1, 1, 10, 10, 0)
    assert parse_schedule("*/10 * * * * *").next_after(utc(2024, 1, 1, 0, 0, 59)) == utc(2024, 1, 1, 0, 1, 0)
    weekday9 = parse_schedule("0 30 9 * * 1-5")          # 09:30 Monday to Friday
    assert weekday9.next_after(utc(2024, 3, 8, 10, 0, 0)) == utc(2024, 3, 11, 9, 30, 0)   # Fri -> Mon
    assert parse_schedule("0 0 0 1 Jan,Jul *").next_after(utc(2024, 2, 1)) == utc(2024, 7, 1)
    assert parse_schedule("0 0 12 * * Sun").next_after(utc(2024, 3, 8)) == utc(2024, 3, 10, 12)
    assert parse_schedule("0 0 12 * * 7").weekdays == frozenset({0})
    leap = parse_schedule("0 0 0 29 Feb *")
    assert leap.next_after(utc(2024, 3, 1)) == utc(2028, 2, 29)
    assert parse_schedule("5,10-12 0 0 * * *").seconds == frozenset({5, 10, 11, 12})
    for bad in ("0 */5 * * *", "61 * * * * *", "0 0 0 30 Feb *", "0 */0 * * * *", "0 5-1 * * * *", "x * * * * *"):
        with pytest.raises(ScheduleError):
            parse_schedule(bad)


def test_route_templates():
    pattern = compile_route("runs/{run_id}")
    assert pattern.match("runs/abc").groupdict() == {"run_id": "abc"}
    assert pattern.match("runs") is None and pattern.match("runs/a/b") is None
    optional = compile_route("items/{item_id:int}/{label?}")
    assert optional.match("items/12").groupdict() == {"item_id": "12", "label": None}
    assert optional.match("items/12/x").groupdict() == {"item_id": "12", "label": "x"}
    assert optional.match("items/x") is None
    assert compile_route("files/{*path}").match("files/a/b.txt").group("path") == "a/b.txt"


def test_http_routes_methods_and_auth_on_a_synthetic_app(monkeypatch):
    monkeypatch.setenv(names.STORAGE_SETTING, "UseDevelopmentStorage=true")   # clients are lazy: no calls
    monkeypatch.setenv(names.SCHEDULE_SETTING, "0 0 0 1 1 *")
    host = LocalHost(synthetic_app(), key="k3y", workers=1)
    port = host.start_http(port=0)
    base = f"http://127.0.0.1:{port}/api"
    try:
        assert call(f"{base}/ping")[::2] == (200, b"pong")
        status, headers, body = call(f"{base}/items/7/red?x=1", "POST", b"hello", {"x-functions-key": "k3y"})
        assert status == 201 and headers["X-Echo"] == "1" and headers["Content-Type"].startswith("application/json")
        assert json.loads(body) == {"route": {"item_id": "7", "label": "red"}, "params": {"x": "1"},
                                    "method": "POST", "body": "hello"}
        assert call(f"{base}/items/7?code=k3y")[0] == 201
        assert call(f"{base}/items/7")[0] == 401
        assert call(f"{base}/items/7?code=wrong")[0] == 401
        assert call(f"{base}/items/7", "DELETE", headers={"x-functions-key": "k3y"})[0] == 405
        assert call(f"{base}/ping", "POST", b"")[0] == 405
        assert call(f"{base}/nowhere")[0] == 404
        assert call(f"http://127.0.0.1:{port}/ping")[0] == 404        # outside the route prefix
        status, _, body = call(f"{base}/boom")
        assert status == 500 and b"secret" not in body
    finally:
        host.stop()


def test_a_key_is_generated_when_unset(monkeypatch):
    monkeypatch.delenv("KSPYDER_HOST_KEY", raising=False)
    host = LocalHost(func.FunctionApp(), env={})
    assert host.key_generated and len(host.key) >= 24
    assert LocalHost(func.FunctionApp(), env={"KSPYDER_HOST_KEY": "abc"}).key == "abc"


def test_timers_fire_with_a_timer_request(monkeypatch):
    monkeypatch.setenv(names.STORAGE_SETTING, "UseDevelopmentStorage=true")
    monkeypatch.setenv(names.SCHEDULE_SETTING, "* * * * * *")        # every second
    ticks.clear()
    host = LocalHost(synthetic_app(), key="k")
    host.timers.start_up()                                            # runOnStartup
    assert ticks == [False]
    import threading
    stop = threading.Event()
    thread = threading.Thread(target=host.timers.run, args=(stop,))
    thread.start()
    try:
        stop.wait(2.5)
    finally:
        stop.set()
        thread.join(5)
    assert len(ticks) >= 2 and host.timers.fired["tick"] == len(ticks)
