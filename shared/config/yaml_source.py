"""Read YAML while remembering where every key came from, and substitute `${VAR}` from the environment.

PyYAML's plain loaders drop line numbers and silently keep the last of duplicate keys; both matter
to a user fixing a manifest, so we compose the node graph ourselves and keep a side table of marks.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigIssue, format_path

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
            return env[name]
        if default is not None:
            return default
        missing.append(name)
        return ""

    return _ENV_REF.sub(repl, text), missing


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


def load_yaml(path: Path, display_name: str, env: Mapping[str, str] | None = None) -> tuple[YamlDocument, list[ConfigIssue]]:
    """Parse one YAML file. Syntax errors, duplicate keys and missing variables come back as issues."""
    env = os.environ if env is None else env
    doc = YamlDocument(display_name, None)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return doc, [ConfigIssue(display_name, None, "", f"cannot read file: {exc.strerror or exc}")]
    text, refs = _hide_env_refs(text)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        return doc, [ConfigIssue(display_name, mark.line + 1 if mark else None, "", f"invalid YAML: {problem}")]
    finally:
        loader.dispose()
    issues: list[ConfigIssue] = []
    if node is None:
        doc.data = {}
        return doc, issues
    try:
        doc.data = _convert(node, (), doc, loader, _Env(env, refs), issues)
    except yaml.YAMLError as exc:  # e.g. a bad merge key or an unknown tag
        mark = getattr(exc, "problem_mark", None)
        issues.append(ConfigIssue(display_name, mark.line + 1 if mark else None, "", f"invalid YAML: {getattr(exc, 'problem', exc)}"))
    return doc, issues


def _convert(node: yaml.Node, path: tuple, doc: YamlDocument, loader: yaml.SafeLoader,
             env: _Env, issues: list[ConfigIssue]) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int)):
                issues.append(ConfigIssue(doc.file, key_node.start_mark.line + 1, format_path(path),
                                          f"keys must be text, got {type(key).__name__}"))
                continue
            key = str(key)
            child = path + (key,)
            if key in out:
                issues.append(ConfigIssue(doc.file, key_node.start_mark.line + 1, format_path(child),
                                          f"duplicate key '{key}' (first defined on line {doc.lines[child]})"))
                continue
            doc.lines[child] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, child, doc, loader, env, issues)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), doc, loader, env, issues) for i, item in enumerate(node.value)]
    value = loader.construct_object(node, deep=True)
    if isinstance(value, str) and _PLACEHOLDER.search(value):
        new_value, missing = env.resolve(value)
        for name in missing:
            issues.append(doc.issue(path, f"environment variable {name} is not set (referenced as ${{{name}}})"))
            doc.missing_env.add(path)
        if new_value != value:
            doc.from_env.add(path)
        value = new_value
    return value
