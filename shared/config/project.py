"""Load a manifests folder into one validated `Project`: the single entry point for CLI and functions."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.config.auth_types import bind_token_stores
from shared.config.child_tables import child_tables, walk
from shared.config.deployment import document_store_issues
from shared.config.errors import ConfigError, ConfigIssue
from shared.config.models import ApiModel, ApiSource, ConnectorModels, PiiRule, SqlModel, SqlSource, check_identifier
from shared.config.naming import naming_issues, with_target_names
from shared.config.parents import parent_issues, with_parent_columns
from shared.config.secrets import SecretMasker, mark_secret_headers
from shared.config.settings import ENV_OVERRIDES, Settings
from shared.config.validation import issues_from_validation, model_issues, pii_guard_issues
from shared.config.yaml_source import YamlDocument, load_yaml

CONNECTORS_FILE = "connector_models.yml"
SETTINGS_FILE = "settings.yml"
DEFAULT_MANIFESTS = "manifests"

Model = ApiModel | SqlModel
SourceConfig = ApiSource | SqlSource


@dataclass(frozen=True)
class ModelRef:
    """One model of one source, with the settings that apply to it resolved."""

    source_name: str
    source: SourceConfig
    name: str
    model: Model
    pii_scan: str

    @property
    def qualified(self) -> str:
        return f"{self.source_name}.{self.name}"

    @property
    def documents(self) -> bool:
        """A `store: mongo` model: whole records, loaded as documents, not into a SQL table."""
        return self.source.store == "mongo"


@dataclass(frozen=True)
class Project:
    root: Path
    settings: Settings
    sources: dict[str, SourceConfig]
    masker: SecretMasker

    def models(self, selectors: list[str] | tuple[str, ...] = ()) -> list[ModelRef]:
        """Models named by `source` or `source.model` selectors (all when none). Unknown names are errors."""
        wanted = list(selectors) or list(self.sources)
        refs: list[ModelRef] = []
        problems: list[str] = []
        for selector in wanted:
            source_name, _, model_name = selector.partition(".")
            source = self.sources.get(source_name)
            if source is None:
                problems.append(f"unknown source '{source_name}' (sources: {', '.join(self.sources) or 'none'})")
                continue
            if model_name and model_name not in source.models:
                problems.append(f"unknown model '{selector}' (models of {source_name}: {', '.join(source.models)})")
                continue
            for name in [model_name] if model_name else list(source.models):
                ref = ModelRef(source_name, source, name, source.models[name],
                               source.models[name].pii_scan or self.settings.pii.scan)
                if ref not in refs:
                    refs.append(ref)
        if problems:
            raise ConfigError([ConfigIssue("command line", None, "", p) for p in problems])
        return refs


def manifests_dir(explicit: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(explicit or env.get("KSPYDER_MANIFESTS") or DEFAULT_MANIFESTS)


def load_project(folder: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Project:
    """Read and validate every manifest; raise one `ConfigError` listing all problems found."""
    env = dict(os.environ if env is None else env)
    root = manifests_dir(folder, env)
    issues: list[ConfigIssue] = []
    if not root.is_dir():
        raise ConfigError([ConfigIssue(str(root), None, "",
                                       "manifests folder not found (set KSPYDER_MANIFESTS or --manifests)")])

    settings_doc = YamlDocument(SETTINGS_FILE, {})
    if (root / SETTINGS_FILE).exists():
        settings_doc, found = load_yaml(root / SETTINGS_FILE, SETTINGS_FILE, env)
        issues += found
    settings = _settings(settings_doc, env, issues)

    connectors_path = root / CONNECTORS_FILE
    connectors_doc = YamlDocument(CONNECTORS_FILE, {})
    if not connectors_path.exists():
        issues.append(ConfigIssue(str(connectors_path), None, "",
                                  "file not found: every project declares its sources here"))
    else:
        connectors_doc, found = load_yaml(connectors_path, CONNECTORS_FILE, env)
        issues += found
    sources = _connectors(connectors_doc, issues)
    if sources is not None:
        issues += model_issues(connectors_doc, sources)
        issues += naming_issues(connectors_doc, sources)
        issues += parent_issues(connectors_doc, sources)

    if settings is not None and sources is not None:
        issues += _pii_key_issues(connectors_doc, sources, settings)
        issues += pii_guard_issues(connectors_doc, sources, settings.pii.scan)
        issues += document_store_issues(connectors_doc, sources, settings)   # Azure: never a local fallback
    if issues or settings is None or sources is None:   # either None only beside an issue above
        raise ConfigError(issues)
    masker = SecretMasker.from_config(settings, sources)
    named = with_target_names(sources)
    bind_token_stores(settings.state_dir, named)
    return Project(root, settings, named, masker)


def _settings(doc: YamlDocument, env: Mapping[str, str], issues: list[ConfigIssue]) -> Settings | None:
    data = doc.data if isinstance(doc.data, dict) else {}
    if doc.data is not None and not isinstance(doc.data, dict):
        issues.append(doc.issue((), "expected a mapping of settings"))
    for var, path in ENV_OVERRIDES.items():
        if env.get(var):
            node = data
            for part in path[:-1]:
                node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
            node[path[-1]] = env[var]
            doc.from_env.add(path)
            doc.lines.pop(path, None)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        found = issues_from_validation(exc, doc, Settings)
        for issue in found:
            overridden = next((v for v, p in ENV_OVERRIDES.items() if ".".join(p) == issue.key_path and env.get(v)),
                              None)
            issues.append(ConfigIssue(f"environment {overridden}", None, "", issue.message) if overridden else issue)
        return None


def _connectors(doc: YamlDocument, issues: list[ConfigIssue]) -> dict[str, SourceConfig] | None:
    if doc.data is None or doc.data == {}:
        if not issues:
            issues.append(doc.issue((), "no sources declared (expected a top-level 'sources:' mapping)"))
        return None
    if not isinstance(doc.data, dict):
        issues.append(doc.issue((), "expected a mapping with a top-level 'sources:' key"))
        return None
    name_issues = _identifier_issues(doc)
    issues.extend(name_issues)
    try:
        sources = ConnectorModels.model_validate(with_parent_columns(doc.data)).sources
    except ValidationError as exc:
        issues.extend(issues_from_validation(exc, doc, ConnectorModels))
        return None
    mark_secret_headers(doc.from_env, sources)
    return None if name_issues else sources


def _identifier_issues(doc: YamlDocument) -> list[ConfigIssue]:
    """Source, model and column names become SQL identifiers: `x; DROP TABLE y` must never reach SQL."""
    issues: list[ConfigIssue] = []

    def check(mapping: object, path: tuple[str, ...], what: str) -> dict[str, Any]:
        if not isinstance(mapping, dict):
            return {}
        for name in mapping:
            try:
                check_identifier(name, what)
            except ValueError as exc:
                issues.append(doc.issue(path + (name,), str(exc)))
        return mapping

    def check_columns(mapping: object, path: tuple[str, ...]) -> None:
        for name, column in check(mapping, path, "column name").items():
            if isinstance(column, dict) and column.get("type") == "table":   # a child table's columns
                check_columns(column.get("columns"), path + (name, "columns"))

    for source_name, source in check(doc.data.get("sources"), ("sources",), "source name").items():
        if isinstance(source, dict):
            models_path = ("sources", source_name, "models")
            for model_name, model in check(source.get("models"), models_path, "model name").items():
                if isinstance(model, dict):
                    check_columns(model.get("columns"), models_path + (model_name, "columns"))
    return issues


def _pii_key_issues(doc: YamlDocument, sources: dict[str, SourceConfig], settings: Settings) -> list[ConfigIssue]:
    """A hash rule without a key would be an unkeyed hash, reversible by brute force: refuse it up front."""
    if settings.pii.key:
        return []
    issues = []
    for source_name, source in sources.items():
        for model_name, model in source.models.items():
            model_base = ("sources", source_name, "models", model_name)
            if (model.pii_scan or settings.pii.scan) == "hash":
                issues.append(doc.issue(model_base + ("pii_scan",), "pii_scan hash needs a key: set KSPYDER_PII_KEY"))
            children = walk(child_tables(model_name, model)) if model.primary_key else iter(())
            for base, columns in [(model_base, model.columns)] + [(model_base + c.where, c.columns) for c in children]:
                issues += _column_key_issues(doc, base, columns)
    return issues


def _column_key_issues(doc: YamlDocument, base: tuple[str, ...], columns: dict[str, Any]) -> list[ConfigIssue]:
    """The hash rules and hash scans of one table's columns: each needs the PII key."""
    issues: list[ConfigIssue] = []
    for column_name, column in columns.items():
        if column.pii_scan == "hash":
            issues.append(doc.issue(base + ("columns", column_name, "pii_scan"),
                                    "pii_scan hash needs a key: set KSPYDER_PII_KEY"))
        rules: list[tuple[str, ...]] = [("pii",)] if column.pii and column.pii.rule == PiiRule.hash else []
        rules += [("pii_fields", p) for p, spec in (column.pii_fields or {}).items()
                  if spec.rule == PiiRule.hash]
        for rule_path in rules:
            issues.append(doc.issue(base + ("columns", column_name) + rule_path,
                                    "the hash rule needs a key: set KSPYDER_PII_KEY (never an unkeyed hash)"))
    return issues
