"""Read YAML while remembering where every key came from, and substitute `${VAR}` from the environment.

PyYAML's plain loaders drop line numbers and silently keep the last of duplicate keys; both matter
to a user fixing a manifest, so data is composed from the parser's events by `yaml_compose`, which
keeps a side table of lines and bounds nesting and alias expansion. A manifest is untrusted input
(a deployed app reads whatever the repository holds), so its size is bounded too.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.config.errors import ConfigIssue, format_path
from shared.config.yaml_compose import MAX_DEPTH, NESTING_MESSAGE, Composer, Refused

_ENV_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class YamlDocument:
    """A parsed YAML file: plain data plus, for each key path, the line it was written on."""

    file: str
    data: Any
    lines: dict[tuple, int] = field(default_factory=dict)
    from_env: set[tuple] = field(default_factory=set)
    missing_env: set[tuple] = field(default_factory=set)

    def line_of(self, path: tuple) -> int | None:
        """Line of the deepest part of `path` that exists in the file (1-based)."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return line
        return None

    def issue(self, path: tuple, message: str) -> ConfigIssue:
        return ConfigIssue(self.file, self.line_of(path), format_path(path), message)


def substitute_env(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace `${VAR}` / `${VAR:-default}`; `$${` is a literal `${`. Returns (text, missing names)."""
    missing: list[str] = []

    def repl(match: re.Match) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name in env:
            return str(env[name])
        if default is not None:
            return str(default)
        missing.append(name)
        return ""

    return _ENV_REF.sub(repl, text), missing


def referenced_env(text: str) -> set[str]:
    """The variables a file's `${VAR}` / `${VAR:-default}` references name."""
    return {m.group(1) for m in _ENV_REF.finditer(text) if m.group(1)}


_PLACEHOLDER = re.compile(r"__kspyder_env_(\d+)__")


def _hide_env_refs(text: str) -> tuple[str, list[str]]:
    """Swap `${...}` for YAML-neutral placeholders before parsing.

    `auth: {token: ${TOKEN}}` is what users write, but braces inside a flow mapping are not valid
    YAML; substituting after parsing also keeps an environment value from changing the structure.
    """
    refs: list[str] = []

    def hide(match: re.Match) -> str:
        refs.append(match.group(0))
        return f"__kspyder_env_{len(refs) - 1}__"

    return _ENV_REF.sub(hide, text), refs


@dataclass
class _Env:
    values: Mapping[str, str]
    refs: list[str]

    def resolve(self, text: str) -> tuple[str, list[str]]:
        missing: list[str] = []

        def reveal(match: re.Match) -> str:
            value, absent = substitute_env(self.refs[int(match.group(1))], self.values)
            missing.extend(absent)
            return value

        return _PLACEHOLDER.sub(reveal, text), missing


MAX_FILE_MB = 10                     # ten times the largest manifest benchmarked (docs/benchmarks.md)
_PYTHON_WORDING_UP_TO = 64 * 1024   # bytes up to a syntax error for PyYAML's Python parser to word it
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when PyYAML was built with it


def load_yaml(path: Path, display_name: str,
              env: Mapping[str, str] | None = None) -> tuple[YamlDocument, list[ConfigIssue]]:
    """Parse one YAML file. Syntax errors, duplicate keys, missing variables and the limits of
    `yaml_compose` (nesting, alias expansion) come back as issues, as does a file over MAX_FILE_MB."""
    env = os.environ if env is None else env
    doc = YamlDocument(display_name, None)
    limit = MAX_FILE_MB * 1024 * 1024
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        return doc, [ConfigIssue(display_name, None, "", f"cannot read file: {exc.strerror or exc}")]
    if len(raw) > limit:
        message = f"is larger than {MAX_FILE_MB} MB, the limit for a manifest file"
        return doc, [ConfigIssue(display_name, None, "", message)]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = raw.count(b"\n", 0, exc.start) + 1
        return doc, [ConfigIssue(display_name, bad_line, "", "invalid YAML: the file is not UTF-8 text")]
    text, refs = _hide_env_refs(text)
    issues: list[ConfigIssue] = []
    loader = _Loader(text)
    try:
        doc.data = Composer(loader, doc, _Env(env, refs).resolve, issues).compose()
    except Refused as exc:
        doc, issues = YamlDocument(display_name, None), [ConfigIssue(display_name, exc.line, "", exc.message)]
    except yaml.YAMLError as exc:   # syntax, or a scalar of an unknown tag
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        if "maximum nesting depth" in problem:   # libyaml's own limit (1000), met while it scans ahead
            problem = NESTING_MESSAGE
        elif mark and not isinstance(exc, yaml.constructor.ConstructorError):
            problem = "invalid YAML: " + (_python_wording(text, mark.line) or problem)
        else:
            problem = "invalid YAML: " + problem
        doc, issues = YamlDocument(display_name, None), [ConfigIssue(display_name, line, "", problem)]
    finally:
        loader.dispose()
    return doc, issues


def _python_wording(text: str, line: int) -> str | None:
    """PyYAML's Python parser says what it expected and what it found ("expected ',' or '}', but
    got ':'"); libyaml is terser. A small file is parsed again up to the error's line to word the
    error that way. That parser's cost grows with flow nesting, so it stops past MAX_DEPTH levels."""
    end = -1
    for _ in range(line + 2):
        end = text.find("\n", end + 1)
        if end < 0:
            end = len(text)
            break
    if _Loader is yaml.SafeLoader or end > _PYTHON_WORDING_UP_TO:
        return None
    loader = yaml.SafeLoader(text[:end])
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    return None
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        if exc.problem_mark is not None and exc.problem_mark.line == line:
            return exc.problem
    finally:
        loader.dispose()
    return None
