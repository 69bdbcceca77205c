"""`python main.py ...` as a real process, for tests that kill it (SIGKILL) and run it again."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.flow import TEST_KEY
from tests.helpers.paths import ROOT


def start(folder: Path, *args: str, command: str = "run") -> subprocess.Popen:
    env = {**os.environ, "KSPYDER_PII_KEY": TEST_KEY}
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--manifests", str(folder), command, *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> None:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
