"""A command group that imports a command's module only when that command runs, so `main.py run`
pays for the run's imports alone (docs/benchmarks.md, `sql`, "Start-up").

Those imports live until the process exits: they are made with the garbage collector paused, then
frozen (`gc.freeze`), so neither the run's collections nor the interpreter's shutdown walk them.
Nothing relies on those collections: files, connections and child processes are closed by the
code that opened them, and Python never promised finalizers for objects alive at exit.
"""
from __future__ import annotations

import atexit
import gc
import importlib
import sys
from typing import Any

import click

_frozen_at_exit = False


def import_quietly(module: str) -> object:
    """The module, imported with the collector paused and its objects frozen when this process had
    not imported it yet (a test process that already has it keeps its collector untouched)."""
    if module in sys.modules:
        return sys.modules[module]
    enabled = gc.isenabled()
    gc.disable()
    try:
        loaded = importlib.import_module(module)
    finally:
        if enabled:
            gc.freeze()
            gc.enable()
    freeze_at_exit()
    return loaded


def freeze_at_exit() -> None:
    """Freeze what is alive when the process exits, once: the interpreter's final collections then
    skip it (at the end of a run, a few full collections of every object the process made)."""
    global _frozen_at_exit
    if not _frozen_at_exit:
        _frozen_at_exit = True
        atexit.register(gc.freeze)


class LazyGroup(click.Group):
    """`lazy_commands`: name -> "module:attribute" of a click command, imported when it is looked up."""

    def __init__(self, name: str | None = None, *, lazy_commands: dict[str, str], **attrs: Any):
        super().__init__(name, **attrs)
        self.lazy = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, attribute = self.lazy[cmd_name].split(":")
        command = getattr(import_quietly(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
        return command
