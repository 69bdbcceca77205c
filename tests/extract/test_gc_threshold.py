"""The collector's threshold is raised while pages flow and restored after, also when nested or
interrupted."""
from __future__ import annotations

import gc
import threading

import pytest

from shared.extract.gc_threshold import GEN0_THRESHOLD, fewer_collections


def test_raised_while_inside_and_restored_by_the_last_one_out():
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == (max(GEN0_THRESHOLD, before[0]), *before[1:])
        with fewer_collections():
            pass
        assert gc.get_threshold()[0] == max(GEN0_THRESHOLD, before[0])
    assert gc.get_threshold() == before


def test_restored_after_an_error_and_across_threads():
    before = gc.get_threshold()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with fewer_collections():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(5)
    with pytest.raises(RuntimeError):
        with fewer_collections():
            raise RuntimeError("boom")
    assert gc.get_threshold()[0] == max(GEN0_THRESHOLD, before[0])   # the other thread is still inside
    release.set()
    thread.join(5)
    assert gc.get_threshold() == before
