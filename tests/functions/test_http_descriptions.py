"""docs/http/openapi.yaml and docs/http/kspyder.postman_collection.json against the routes the app
registers (`app.get_functions()`): every route described, nothing extra, methods match, path
parameters declared; the documented request bodies are the fields the functions accept, and the
examples pass the functions' own parsers."""
from __future__ import annotations

import copy
import json
import re

import azure.functions as func
import pytest
import yaml

from functions.runs import FIELDS as RUN_FIELDS
from functions.runs import parse_start
from functions.schema_routes import parse_apply
from functions.transform_route import FIELDS as TRANSFORM_FIELDS
from functions.transform_route import parse_transform
from tests.helpers.infra import ROOT, function_bindings

OPENAPI = ROOT / "docs" / "http" / "openapi.yaml"
POSTMAN = ROOT / "docs" / "http" / "kspyder.postman_collection.json"
PARSERS = {"start_run": (parse_start, set(RUN_FIELDS)), "start_transform": (parse_transform, set(TRANSFORM_FIELDS)),
           "schema_apply": (parse_apply, {"plan_hash"})}
METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}
A_PLAN_HASH = "ab" * 32


def app_routes() -> dict[tuple[str, str], str]:
    """(METHOD, /prefix/route) -> function name, for every HTTP trigger of the app."""
    host = json.loads((ROOT / "host.json").read_text())
    prefix = host.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    routes = {}
    for function, bindings in function_bindings().items():
        for binding in bindings:
            if binding["type"] == "httpTrigger":
                for method in binding["methods"]:
                    routes[(str(method).upper(), f"/{prefix}/{binding['route']}".replace("//", "/"))] = function
    return routes


def openapi_problems(spec: dict, routes: dict[tuple[str, str], str]) -> list[str]:
    described = {(method.upper(), path): op for path, ops in spec.get("paths", {}).items()
                 for method, op in ops.items() if method in METHODS}
    problems = [f"openapi: {m} {p} ({routes[(m, p)]}) is not described"
                for m, p in sorted(set(routes) - set(described))]
    problems += [f"openapi: {m} {p} is not a route of the app" for m, p in sorted(set(described) - set(routes))]
    for key in sorted(set(routes) & set(described)):
        op, function = described[key], routes[key]
        if op.get("operationId") != function:
            problems.append(f"openapi: {key[0]} {key[1]} operationId should be {function}")
        declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path" and p.get("required")}
        if declared != set(re.findall(r"\{(\w+)\}", key[1])):
            problems.append(f"openapi: {key[0]} {key[1]} path parameters {sorted(declared)} do not match the route")
        if function in PARSERS:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            if set(schema["properties"]) != PARSERS[function][1] or schema.get("additionalProperties") is not False:
                problems.append(f"openapi: {function} body fields {sorted(schema['properties'])} are not what it "
                                "accepts")
    if not spec.get("security"):
        problems.append("openapi: no security requirement (the routes need a function key)")
    return problems


def postman_requests(collection: dict) -> dict[tuple[str, str], dict]:
    found = {}
    for item in collection["item"]:
        request = item["request"]
        path = "/" + "/".join("{" + s[1:] + "}" if s.startswith(":") else s for s in request["url"]["path"])
        found[(request["method"].upper(), path)] = item
    return found


def postman_problems(collection: dict, routes: dict[tuple[str, str], str]) -> list[str]:
    requests = postman_requests(collection)
    problems = [f"postman: {m} {p} ({routes[(m, p)]}) has no request" for m, p in sorted(set(routes) - set(requests))]
    problems += [f"postman: {m} {p} is not a route of the app" for m, p in sorted(set(requests) - set(routes))]
    declared = {v["key"] for v in collection.get("variable", [])}
    for _route, item in sorted(requests.items()):
        request = item["request"]
        if request["url"]["raw"] != "{{baseUrl}}/" + "/".join(request["url"]["path"]):
            problems.append(f"postman: {item['name']}: url.raw and url.path disagree")
        if {"key": "x-functions-key", "value": "{{functionKey}}", "type": "text"} not in request["header"]:
            problems.append(f"postman: {item['name']}: no x-functions-key header")
        for variable in re.findall(r"\{\{(\w+)\}\}", json.dumps(item)):
            if variable not in declared:
                problems.append(f"postman: {item['name']}: variable {variable} is not a collection variable")
    return problems


def request(body: object) -> func.HttpRequest:
    return func.HttpRequest(method="POST", url="http://localhost/api/x", body=json.dumps(body).encode())


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(OPENAPI.read_text())


@pytest.fixture(scope="module")
def collection() -> dict:
    return json.loads(POSTMAN.read_text())


def test_the_app_has_the_documented_routes():
    assert set(app_routes().values()) == {"health", "start_run", "run_status", "start_transform", "schema_plan",
                                          "schema_apply"}


def test_openapi_describes_every_route_and_nothing_else(spec):
    assert spec["openapi"].startswith("3.")
    assert openapi_problems(spec, app_routes()) == []


def test_postman_has_every_route_and_nothing_else(collection):
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")
    assert postman_problems(collection, app_routes()) == []


def test_missing_extra_and_mismatched_routes_are_reported(spec, collection):
    spec, collection = copy.deepcopy(spec), copy.deepcopy(collection)
    spec["paths"]["/api/runs/{run_id}"]["delete"] = spec["paths"]["/api/runs/{run_id}"].pop("get")
    body = spec["paths"]["/api/transform"]["post"]["requestBody"]["content"]["application/json"]
    body["schema"]["properties"]["force"] = {}
    assert openapi_problems(spec, app_routes()) == [
        "openapi: GET /api/runs/{run_id} (run_status) is not described",
        "openapi: DELETE /api/runs/{run_id} is not a route of the app",
        "openapi: start_transform body fields ['force', 'run_id', 'sources'] are not what it accepts"]
    collection["item"] = [i for i in collection["item"] if i["name"] != "Health"]
    collection["item"][0]["request"]["url"]["path"] = ["api", "schema", "plans"]
    problems = postman_problems(collection, app_routes())
    assert "postman: GET /api/health (health) has no request" in problems
    assert "postman: GET /api/schema/plans is not a route of the app" in problems


def test_openapi_references_resolve(spec):
    def refs(node):
        if isinstance(node, dict):
            yield from ([node["$ref"]] if "$ref" in node else [])
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = sorted(set(refs(spec)))
    assert found
    for ref in found:
        target = spec
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, ref
            target = target[part]
    for ops in spec["paths"].values():
        for op in ops.values():
            schemes = op["security"] if "security" in op else spec["security"][0]
            assert set(schemes) <= set(spec["components"]["securitySchemes"])


def test_openapi_examples_pass_the_functions_parsers(spec):
    for ops in spec["paths"].values():
        for op in ops.values():
            if op.get("operationId") in PARSERS:
                example = op["requestBody"]["content"]["application/json"]["example"]
                PARSERS[op["operationId"]][0](request(example))   # raises BadRequest if the docs were wrong


def test_postman_bodies_pass_the_functions_parsers(collection):
    routes = app_routes()
    for key, item in postman_requests(collection).items():
        function = routes[key]
        if function in PARSERS:
            raw = item["request"]["body"]["raw"].replace("{{plan_hash}}", A_PLAN_HASH)
            PARSERS[function][0](request(json.loads(raw)))
        else:
            assert "body" not in item["request"], item["name"]
