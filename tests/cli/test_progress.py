"""Progress bars: tqdm on a terminal; without one, a silent bar and no tqdm import at all (a piped
or scheduled run pays neither its import nor its monitor thread)."""
from __future__ import annotations

import io
import subprocess
import sys

from cli.progress import PageProgress, SilentBar, progress_bar
from shared.extract.base import ExtractStats
from shared.extract.types import Page
from tests.helpers.paths import ROOT


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_terminal_is_tqdm_and_counts_records(monkeypatch):
    from tqdm import tqdm
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = PageProgress("shop.items")
    assert isinstance(progress.bar, tqdm) and not progress.bar.disable
    progress(Page("shop", "items", 0, [{"id": 1}, {"id": 2}]), ExtractStats())
    assert progress.bar.n == 2
    progress.bar.close()
    assert "shop.items" in terminal.getvalue()


def test_without_a_terminal_the_bar_is_silent(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress_bar("shop.items")
    assert isinstance(bar, SilentBar) and bar.disable
    bar.update(5)
    bar.set_postfix(pages=1, refresh=False)
    bar.close()
    assert sys.stderr.getvalue() == ""


def test_a_piped_command_line_never_imports_tqdm():
    code = ("import sys; from cli.progress import PageProgress; PageProgress('shop.items'); "
            "print('tqdm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
