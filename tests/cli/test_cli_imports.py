"""`main.py` loads the heavy libraries only for the commands that use them: every command pays for
what the command line imports, in start-up time and in the run's memory (the run benchmark's
RSS target counts it)."""
from __future__ import annotations

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
