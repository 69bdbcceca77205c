"""infra/ holds together without Azure: every .bicep parses with tree-sitter-bicep (no ERROR or
MISSING node), modules exist and get exactly the parameters they declare, module outputs used exist,
main.parameters.json matches main.bicep, azure.yaml points at the app and the hook, and the hook is
valid bash. A deliberately broken copy proves the parse check fails with file and line."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.helpers.infra import INFRA, ROOT, bicep_files, literal, load_bicep, parse, properties, syntax_errors, text

MODULES = {"main.bicep", "identity.bicep", "storage.bicep", "monitoring.bicep", "keyvault.bicep", "roles.bicep",
           "function.bicep", "eventgrid.bicep", "sql.bicep", "cosmos.bicep"}
AZD_VALUE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}$")


def parse_problems(infra: Path) -> list[str]:
    return [problem for path in bicep_files(infra) for problem in syntax_errors(path)]


def module_problems(infra: Path) -> list[str]:
    """What `bicep build` would reject about module wiring: a missing file, a required parameter
    not passed, a parameter the module does not declare, an output the module does not have."""
    problems = []
    for path in bicep_files(infra):
        tree = parse(path.read_bytes())
        for node in tree.children:
            if node.type != "module_declaration":
                continue
            named = [c for c in node.named_children if c.type != "comment"]
            symbol, target = text(named[0]), path.parent / (literal(named[1]) or "")
            where = f"{path.name}:{node.start_point[0] + 1}"
            if not target.is_file():
                problems.append(f"{where}: module {symbol}: no file {literal(named[1])}")
                continue
            module = load_bicep(target)
            body = named[-1] if named[-1].type == "object" else named[-1].named_children[-1]
            passed = set(properties(properties(body).get("params")))
            required = {name for name, param in module.params.items() if param.default is None}
            for name in sorted(required - passed):
                problems.append(f"{where}: module {symbol} needs parameter {name}")
            for name in sorted(passed - set(module.params)):
                problems.append(f"{where}: module {symbol} has no parameter {name}")
            used = set(re.findall(rf"\b{symbol}\.outputs\.(\w+)", path.read_text()))
            for output in sorted(used - set(module.outputs)):
                problems.append(f"{path.name}: {symbol}.outputs.{output} is not an output of {target.name}")
    return problems


def declared(tree) -> set[str]:
    names: set[str] = set()

    def walk(node) -> None:
        if node.type in ("parameter_declaration", "variable_declaration", "resource_declaration", "module_declaration"):
            names.add(text(node.named_children[0]))
        elif node.type == "for_statement":   # [for x in xs: ...] and [for (x, i) in xs: ...]
            names.update(text(c) for c in node.children if c.type == "identifier")
            for c in node.children:
                if c.type == "for_variables" or c.type == "parenthesized_expression":
                    names.update(text(i) for i in c.named_children if i.type == "identifier")
        elif node.type == "lambda_expression":
            names.update(text(c) for c in node.named_children[:-1] if c.type == "identifier")
        for child in node.children:
            walk(child)

    walk(tree)
    return names


def symbol_problems(infra: Path) -> list[str]:
    """Interpolations naming nothing declared: `'${VAR}'` in a description is an interpolation
    (write `\\${VAR}`), which bicep build rejects; so is a typo in a symbol."""
    problems = []
    for path in bicep_files(infra):
        tree = parse(path.read_bytes())
        known = declared(tree) | {"az", "sys"}

        def walk(node, known: set[str], name: str) -> None:
            if node.type == "interpolation":
                head = node.named_children[0]
                while head.type == "member_expression":
                    head = head.named_children[0]
                if head.type == "identifier" and text(head) not in known:
                    problems.append(f"{name}:{head.start_point[0] + 1}: {text(head)} is not declared")
            for child in node.children:
                walk(child, known, name)

        walk(tree, known, path.name)
    return problems


def test_every_bicep_file_parses():
    assert {p.name for p in bicep_files(INFRA)} == MODULES
    assert parse_problems(INFRA) == []


def test_a_broken_copy_fails_with_file_and_line(tmp_path):
    broken = tmp_path / "storage.bicep"
    shutil.copy(INFRA / "app" / "storage.bicep", broken)
    lines = broken.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if line.startswith("resource blobService "))
    lines[number + 1] = "  parent storage"            # the ':' is gone
    broken.write_text("\n".join(lines) + "\n")
    problems = parse_problems(tmp_path)
    assert problems and all(p.startswith("storage.bicep:") for p in problems)
    assert any(p.startswith(f"storage.bicep:{number + 2}:") for p in problems), problems


def test_an_unclosed_object_is_reported(tmp_path):
    (tmp_path / "main.bicep").write_text("param a string\nvar b = {\n  c: a\n")
    assert parse_problems(tmp_path) == ["main.bicep:3:7: missing }"]


def test_interpolations_name_declared_symbols(tmp_path):
    assert symbol_problems(INFRA) == []
    (tmp_path / "main.bicep").write_text("param a string\n@description('uses \\${VAR} and ${VAR}')\nparam b string = "
                                         "'${a}-${c.id}'\n")
    assert symbol_problems(tmp_path) == ["main.bicep:2: VAR is not declared", "main.bicep:3: c is not declared"]


def test_modules_get_exactly_their_parameters():
    assert module_problems(INFRA) == []


def test_module_wiring_mistakes_are_reported(tmp_path):
    infra = Path(shutil.copytree(INFRA, tmp_path / "infra"))
    main = infra / "main.bicep"
    source = main.read_text().replace("    rawRetentionDays: rawRetentionDays\n", "    rawRetentionDay: "
                                                                                  "rawRetentionDays\n")
    main.write_text(source.replace("storage.outputs.blobEndpoint", "storage.outputs.blobUrl"))
    (infra / "app" / "cosmos.bicep").unlink()
    lines = source.splitlines()
    storage, cosmos = (1 + next(i for i, line in enumerate(lines) if line.startswith(f"module {name} "))
                       for name in ("storage", "cosmos"))
    assert module_problems(infra) == [
        f"main.bicep:{storage}: module storage needs parameter rawRetentionDays",
        f"main.bicep:{storage}: module storage has no parameter rawRetentionDay",
        "main.bicep: storage.outputs.blobUrl is not an output of storage.bicep",
        f"main.bicep:{cosmos}: module cosmos: no file app/cosmos.bicep",
    ]


def test_parameters_file_matches_main_and_comes_from_azd():
    main = load_bicep(INFRA / "main.bicep")
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(values) <= set(main.params)
    assert {name for name, p in main.params.items() if p.default is None} <= set(values)
    assert values["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert values["location"]["value"] == "${AZURE_LOCATION}"
    assert values["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    for name, entry in values.items():   # azd fills every value from its environment: nothing literal
        assert AZD_VALUE.match(entry["value"]), name


def test_azure_yaml_deploys_this_folder_as_a_python_function_app():
    config = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert config["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    assert config["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert set(config["hooks"]) == {"postprovision", "postdeploy"}
    for event in config["hooks"]:
        for platform in ("posix", "windows"):
            hook = config["hooks"][event][platform]
            assert hook["run"].split() == ["bash", f"./infra/hooks/{event}.sh"]
            assert hook["continueOnError"] is False and (ROOT / "infra" / "hooks" / f"{event}.sh").is_file()
    function = (INFRA / "app" / "function.bicep").read_text()
    assert "'azd-service-name': 'api'" in function   # how azd finds the app to deploy the service to


def test_the_hooks_are_valid_bash(tmp_path):
    for name in ("postprovision.sh", "postdeploy.sh"):
        assert subprocess.run(["bash", "-n", str(INFRA / "hooks" / name)], capture_output=True).returncode == 0, name
    hook = INFRA / "hooks" / "postdeploy.sh"
    broken = tmp_path / "postdeploy.sh"
    broken.write_text(hook.read_text().replace("\nfi\n", "\n", 1))
    assert subprocess.run(["bash", "-n", str(broken)], capture_output=True).returncode != 0


def test_the_azure_sql_target_url_signs_in_with_the_app_identity():
    """main.bicep's KSPYDER_TARGET_URL for Azure SQL, as SQLAlchemy's pyodbc dialect turns it into an
    ODBC connection string: the identity's client id as UID, managed-identity auth, no password."""
    from sqlalchemy.dialects.mssql.pyodbc import MSDialect_pyodbc
    from sqlalchemy.engine import make_url

    main = load_bicep(INFRA / "main.bicep")
    template = text(main.variables["sqlTargetUrl"]).strip("'")
    url = (template.replace("${identity.outputs.clientId}", "11111111-2222-3333-4444-555555555555")
           .replace("${token}", "abc").replace("${environment().suffixes.sqlServerHostname}", ".database.windows.net")
           .replace("${sqlDatabaseName}", "kspyder"))
    assert "${" not in url and ":" not in url.split("@", 1)[0].split("//", 1)[1]   # a user name, no password
    parsed = make_url(url)
    assert (parsed.get_backend_name(), parsed.get_driver_name()) == ("mssql", "pyodbc")
    [odbc], _ = MSDialect_pyodbc().create_connect_args(parsed)
    parts = dict(p.split("=", 1) for p in odbc.split(";"))
    assert parts["UID"] == "11111111-2222-3333-4444-555555555555" and "PWD" not in parts
    assert parts["authentication"] == "ActiveDirectoryMsi" and parts["Server"] == "sql-abc.database.windows.net,1433"
    assert parts["DRIVER"] == "{ODBC Driver 18 for SQL Server}" and parts["Database"] == "kspyder"
