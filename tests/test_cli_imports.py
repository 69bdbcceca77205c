"""`main.py` loads the heavy libraries only for the commands that use them: every command pays for
what the command line imports, in start-up time and in the run's memory (the run benchmark's
RSS target counts it)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("azure", "alembic", "pandas", "matplotlib", "pymongo", "mongomock", "shared.chain", "shared.transform.runner")


def test_the_command_line_imports_no_heavy_library_up_front():
    code = f"import sys, shared.cli.main; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == ""
