"""Reading infra/ without Azure: Bicep files parsed with tree-sitter-bicep into just what the
infra checks compare (resources, their literal names, vars, params, outputs, app settings), and the
names the code uses, read from the running code itself (the app's bindings, the shared constants,
host.json, local.settings.sample.json).

The checks live in tests/infra/test_infra_*.py and take an infra folder as an argument, so each test can
also run them on a broken copy and prove they fail.
"""
from __future__ import annotations

import functools
import json
import re
import runpy
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

from tests.helpers.paths import ROOT

INFRA = ROOT / "infra"
BICEP = Language(tree_sitter_bicep.language())


def parse(source: bytes) -> Node:
    return Parser(BICEP).parse(source).root_node


def syntax_errors(path: Path) -> list[str]:
    """`file:line:column: ...` for every ERROR or MISSING node tree-sitter-bicep reports."""
    problems: list[str] = []

    def walk(node: Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            line, column = node.start_point
            near = node.text[:40].decode(errors="replace")
            what = f"missing {node.type}" if node.is_missing else f"syntax error near {near!r}"
            problems.append(f"{path.name}:{line + 1}:{column + 1}: {what}")
            if node.is_missing:
                return
        for child in node.children:
            walk(child)

    walk(parse(path.read_bytes()))
    return problems


def bicep_files(infra: Path) -> list[Path]:
    return sorted(infra.rglob("*.bicep"))


def text(node: Node) -> str:
    return node.text.decode()


def literal(node: Node | None) -> str | None:
    """The value of a string literal without interpolation, else None."""
    if node is None or node.type != "string" or any(c.type == "interpolation" for c in node.children):
        return None
    return "".join(text(c) for c in node.children if c.type not in ("'", "'''"))


def properties(obj: Node | None) -> dict[str, Node]:
    """key -> value node of an object literal's properties."""
    found: dict[str, Node] = {}
    if obj is None or obj.type != "object":
        return found
    for prop in obj.children:
        if prop.type == "object_property":
            key, value = prop.children[0], prop.children[-1]
            found[literal(key) if key.type == "string" else text(key)] = value
    return found


def path_of(obj: Node | None, *keys: str) -> Node | None:
    for key in keys:
        obj = properties(obj).get(key)
    return obj


@dataclass
class Resource:
    file: Path
    type: str                      # "Microsoft.Storage/storageAccounts" (no API version)
    body: Node | None              # the object literal
    loop: tuple[str, Node] | None  # (loop variable, iterable) of a `[for x in xs: ...]`
    line: int
    existing: bool = False         # `resource x '...' existing = {...}`: declared elsewhere

    def prop(self, *keys: str) -> Node | None:
        return path_of(self.body, *keys)


@dataclass
class Param:
    name: str
    decorators: list[str]
    default: Node | None
    line: int


@dataclass
class BicepFile:
    path: Path
    source: str
    variables: dict[str, Node] = field(default_factory=dict)
    params: dict[str, Param] = field(default_factory=dict)
    outputs: dict[str, Node] = field(default_factory=dict)
    resources: list[Resource] = field(default_factory=list)

    def where(self, node: Node) -> str:
        return f"{self.path.name}:{node.start_point[0] + 1}"

    def strings(self, node: Node | None, loop: tuple[str, Node] | None = None) -> list[str] | None:
        """Every string `node` can take when it is a literal, an array of them, a var holding
        them, or a loop variable over such an array; None when it depends on anything else."""
        if node is None:
            return None
        if node.type == "string":
            value = literal(node)
            return None if value is None else [value]
        if node.type == "array":
            values: list[str] = []
            for item in node.named_children:
                if item.type == "comment":
                    continue
                resolved = self.strings(item)
                if resolved is None:
                    return None
                values += resolved
            return values
        if node.type == "identifier":
            name = text(node)
            if loop is not None and name == loop[0]:
                return self.strings(loop[1])
            if name in self.variables:
                return self.strings(self.variables[name])
        return None


def _body(value: Node) -> tuple[Node | None, tuple[str, Node] | None]:
    """The object of a declaration's value, through `if (...)` and `[for x in xs: ...]`."""
    loop = None
    if value.type == "for_statement":
        named = [c for c in value.named_children if c.type != "comment"]
        loop = (text(named[0]), named[1])
        value = named[-1]
    if value.type == "if_statement":
        value = value.named_children[-1]
    return (value if value.type == "object" else None), loop


def load_bicep(path: Path) -> BicepFile:
    source = path.read_bytes()
    bicep = BicepFile(path, source.decode())
    decorators: list[str] = []
    for node in parse(source).children:
        if node.type == "decorators":
            decorators = [text(d).lstrip("@") for d in node.named_children if d.type == "decorator"]
            continue
        named = [c for c in node.named_children if c.type != "comment"]
        if node.type == "variable_declaration":
            bicep.variables[text(named[0])] = named[-1]
        elif node.type == "parameter_declaration":
            default = named[2] if len(named) > 2 else None
            bicep.params[text(named[0])] = Param(text(named[0]), decorators, default, node.start_point[0] + 1)
        elif node.type == "output_declaration":
            bicep.outputs[text(named[0])] = named[-1]
        elif node.type == "resource_declaration":
            body, loop = _body(named[-1])
            bicep.resources.append(Resource(path, (literal(named[1]) or "").split("@")[0], body, loop,
                                            node.start_point[0] + 1, any(c.type == "existing" for c in node.children)))
        decorators = []
    return bicep


def load_infra(infra: Path) -> list[BicepFile]:
    return [load_bicep(path) for path in bicep_files(infra)]


# ---------------------------------------------------------------- what the code uses

@dataclass(frozen=True)
class CodeNames:
    """Queues, containers and settings the function app uses, each with where it was found."""
    queues: dict[str, str]
    containers: dict[str, str]
    settings: dict[str, str]
    local_settings: frozenset[str]       # local.settings.sample.json's Values
    env_overrides: frozenset[str]        # shared/config/settings.py ENV_OVERRIDES
    blob_triggers: dict[str, str]        # function name -> container, for EventGrid-source blob triggers


@functools.cache
def function_bindings() -> dict[str, list[dict]]:
    """The bindings `app.get_functions()` reports. function_app.py is run afresh for its own `app`
    object: azure-functions raises when one app object is asked twice, and other tests ask the
    imported one."""
    app = runpy.run_path(str(ROOT / "function_app.py"))["app"]
    return {f.get_function_name(): json.loads(f.get_function_json())["bindings"] for f in app.get_functions()}


SETTING_REFERENCE = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")
CODE_SETTING = re.compile(r"\bKSPYDER_[A-Z0-9_]*[A-Z0-9]\b")


def code_names(root: Path = ROOT) -> CodeNames:
    from shared.chain import names
    from shared.config.settings import ENV_OVERRIDES

    queues = {q: "shared/chain/names.py" for q in names.QUEUES + names.POISON_QUEUES}
    containers = {c: "shared/chain/names.py" for c in names.CONTAINERS}
    settings = {s: "shared/chain/names.py" for s in names.SETTINGS}
    for name in ENV_OVERRIDES:
        settings.setdefault(name, "shared/config/settings.py ENV_OVERRIDES")
    local = json.loads((root / "local.settings.sample.json").read_text())["Values"]
    for name in local:
        settings.setdefault(name, "local.settings.sample.json")
    for match in SETTING_REFERENCE.finditer((root / "host.json").read_text()):
        settings.setdefault(match.group(1), "host.json")
    blob_triggers: dict[str, str] = {}
    for function, bindings in function_bindings().items():
        where = f"function {function}"
        for binding in bindings:
            if "queueName" in binding:
                queues.setdefault(binding["queueName"], where)
                queues.setdefault(names.poison(binding["queueName"]), where)
            if binding.get("type") in ("blobTrigger", "blob"):
                container = binding["path"].split("/", 1)[0]
                containers.setdefault(container, where)
                if binding.get("source") == "EventGrid":
                    blob_triggers[function] = container
            if "connection" in binding:
                settings.setdefault(binding["connection"], where)
            for value in binding.values():
                for match in SETTING_REFERENCE.finditer(value if isinstance(value, str) else ""):
                    settings.setdefault(match.group(1), where)
    for folder in ("shared", "functions", "cli", "devhost"):
        for path in sorted((root / folder).rglob("*.py")):
            for match in CODE_SETTING.finditer(path.read_text()):
                settings.setdefault(match.group(0), str(path.relative_to(root)))
    return CodeNames(queues, containers, settings, frozenset(local), frozenset(ENV_OVERRIDES), blob_triggers)


# ---------------------------------------------------------------- what infra/ provisions and sets

def resource_names(infra: list[BicepFile], kind: str,
                   allowed_expressions: set[str] = frozenset()) -> tuple[dict[str, str], list[str]]:
    """name -> file:line of the `kind` resources, and problems for names that are not literal."""
    found: dict[str, str] = {}
    problems: list[str] = []
    for bicep in infra:
        for resource in (r for r in bicep.resources if r.type == kind):
            name = resource.prop("name")
            values = bicep.strings(name, resource.loop)
            if values is None:
                if name is None or text(name) not in allowed_expressions:
                    problems.append(f"{bicep.path.name}:{resource.line}: {kind} name is not a literal the check can "
                                    "read")
                continue
            for value in values:
                found[value] = f"{bicep.path.name}:{resource.line}"
    return found, problems


def app_settings(infra: list[BicepFile]) -> tuple[dict[str, str], BicepFile | None, list[str]]:
    """The keys of the `appSettings` var the function app's appsettings resource uses."""
    owners = [b for b in infra if "appSettings" in b.variables]
    if len(owners) != 1:
        return {}, None, [f"expected one Bicep var appSettings (the function app's settings), found {len(owners)}"]
    bicep = owners[0]
    configs = [r for r in bicep.resources if r.type == "Microsoft.Web/sites/config"
               and bicep.strings(r.prop("name")) == ["appsettings"]]
    if len(configs) != 1 or "appSettings" not in text(configs[0].prop("properties")):
        return {}, bicep, [f"{bicep.path.name}: the sites/config 'appsettings' resource must use var appSettings"]
    obj = bicep.variables["appSettings"]
    return {key: bicep.where(value) for key, value in properties(obj).items()}, bicep, []
