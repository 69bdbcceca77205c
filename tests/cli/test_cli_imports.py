"""`main.py` loads the heavy libraries only for the commands that use them: every command pays for
what the command line imports, in start-up time and in the run's memory (the run benchmark's
RSS target counts it)."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

from tests.helpers.paths import ROOT

HEAVY = ("azure", "alembic", "pandas", "matplotlib", "pymongo", "mongomock", "shared.chain", "shared.transform.runner")


def test_the_command_line_imports_no_heavy_library_up_front():
    code = f"import sys, cli.main; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == ""


VALIDATE = """
import sys
from cli.main import cli
try:
    cli(["--manifests", sys.argv[1], "validate"], standalone_mode=False)
finally:
    print(",".join(m for m in {heavy!r} if m in sys.modules))
"""


def test_validate_without_transformations_imports_no_pandas(tmp_path):
    """transformations.yml is what needs pandas; a project without one validates without it."""
    (tmp_path / "connector_models.yml").write_text(
        "sources:\n  shop:\n    type: api\n    base_url: https://api.example.com\n    models:\n"
        "      items:\n        path: /items\n        primary_key: [id]\n        columns:\n"
        "          id: {type: integer}\n")
    out = subprocess.run([sys.executable, "-c", VALIDATE.format(heavy=HEAVY), str(tmp_path)], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    assert "manifests OK: 1 sources, 1 models" in out.stderr
    assert out.stdout.strip() == ""


COMMAND_MODULES = ("cli.commands", "cli.run_cmd", "cli.schema_cmd", "cli.probe_cmd", "cli.poison_cmd", "cli.host_cmd",
                   "cli.render_cmd", "cli.aggregate_cmd", "cli.transform_cmd", "cli.state_cmd")


def in_fresh_process(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, cwd=ROOT)


def test_the_command_group_imports_no_command_and_no_heavy_library():
    """`main.py` imports a command's module when that command runs (cli/lazy_group.py)."""
    code = ("import sys, cli.main; print(','.join(m for m in sys.modules if m in "
            f"{COMMAND_MODULES + ('sqlalchemy', 'pydantic', 'cli.context')!r}))")
    assert in_fresh_process(code).stdout.strip() == ""


IMPORTS_OF_A_COMMAND = """
import gc, sys
from cli.main import cli
try:
    cli(["--manifests", sys.argv[1], "validate"], standalone_mode=False)
finally:
    print(",".join(m for m in {modules!r} if m in sys.modules))
    print(gc.isenabled(), gc.get_freeze_count() > 10_000)
"""


def test_a_command_imports_its_own_module_only_and_freezes_its_imports(tmp_path):
    """validate loads cli.commands alone; what it imported is frozen (collections skip it) and the
    collector runs again."""
    (tmp_path / "connector_models.yml").write_text(
        "sources:\n  shop:\n    type: api\n    base_url: https://api.example.com\n    models:\n"
        "      items:\n        path: /items\n        primary_key: [id]\n        columns:\n"
        "          id: {type: integer}\n")
    out = in_fresh_process(IMPORTS_OF_A_COMMAND.format(modules=COMMAND_MODULES), str(tmp_path))
    assert "manifests OK" in out.stderr
    assert out.stdout.split() == ["cli.commands", "True", "True"]


def test_help_lists_every_command_and_a_typo_is_refused():
    from click.testing import CliRunner

    from cli.main import COMMANDS, cli
    listed = CliRunner().invoke(cli, ["--help"])
    assert listed.exit_code == 0
    commands = listed.output.split("Commands:")[1].split()
    assert set(COMMANDS) <= set(commands)
    result = CliRunner().invoke(cli, ["rnu"])
    assert result.exit_code == 2
    assert "No such command 'rnu'" in result.output


API_STACK = ("requests", "urllib3", "msgspec", "shared.extract.api", "shared.extract.http_client",
             "shared.extract.paginators", "shared.extract.auth", "shared.extract.throttle", "shared.probe")
OTHER_DIALECTS = ("sqlalchemy.dialects.postgresql", "sqlalchemy.dialects.mysql", "sqlalchemy.dialects.mssql")
NOT_NEEDED_WHEN_MATCHING = ("shared.schema.apply", "shared.schema.plan_render", "shared.outputs.writers")

SQL_RUN = """
import sys
from cli.main import cli
try:
    cli(["--manifests", sys.argv[1], *sys.argv[2:]], standalone_mode=False)
finally:
    print(",".join(m for m in {modules!r} if m in sys.modules))
"""


def test_a_sql_run_imports_no_api_stack_and_no_other_dialect(tmp_path):
    """A SQL source into SQLite needs no HTTP, paginators or auth, nor another database's dialect;
    a target that matches the manifests, nothing that applies or renders a plan; no file output,
    no writers (the tables are made by an `apply` before, in its own process, as a user would)."""
    source = tmp_path / "source.db"
    with sqlite3.connect(source) as connection:
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        connection.executemany("INSERT INTO items VALUES (?, ?)", [(1, "a"), (2, "b")])
    (tmp_path / "connector_models.yml").write_text(
        f"sources:\n  shop:\n    type: sql\n    url: sqlite:///{source}\n    models:\n"
        "      items:\n        table: items\n        primary_key: [id]\n        columns:\n"
        "          id: {type: integer}\n          name: {type: string, length: 20}\n")
    (tmp_path / "settings.yml").write_text(
        f"target_url: sqlite:///{tmp_path / 'target.db'}\nstate_dir: {tmp_path / 'state'}\n"
        f"storage: {{root: {tmp_path / 'storage'}}}\n")
    script = SQL_RUN.format(modules=API_STACK + OTHER_DIALECTS + NOT_NEEDED_WHEN_MATCHING + HEAVY + COMMAND_MODULES)
    in_fresh_process(script, str(tmp_path), "apply", "--auto-approve")
    out = in_fresh_process(script, str(tmp_path), "run")
    assert "shop.items: 2 records" in out.stderr
    assert out.stdout.strip() == "cli.run_cmd"
