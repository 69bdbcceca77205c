"""Parent-child models across a source: which model a child is read for, which parent fields it
uses and stores, and the checks no single model can make (a parent of another source, a cycle,
`{parent.x}` naming a field the parent does not have).

Included parent fields become ordinary columns of the child before validation (`with_parent_columns`),
typed and ruled like the parent's column, read from the key the walk puts on each child record; so
the plan, the loader, the PII rules and a primary key see them like any other column.
"""
from __future__ import annotations

from typing import Any

from shared.config.errors import ConfigIssue
from shared.config.models import ApiModel, ApiSource, check_identifier
from shared.config.naming import snake_case
from shared.config.templates import Placeholder, placeholders, request_texts, strings
from shared.config.yaml_source import YamlDocument

PARENT_KEY = "_kspyder_parent"   # on each child record: the included parent fields, by name
ITEM_KEY = "_kspyder_item"       # on each record of a for_each model: its item
_ANCESTOR = {1: "parent model", 2: "grandparent model"}


def included_column(parent: str, field: str) -> str:
    """The child column that stores parent field `field`: `<parent>_<field>` (repos.id -> repos_id)."""
    return f"{parent}_{field}"


def for_each_items(model: ApiModel) -> list[Any]:
    """The items of a for_each model: the list, or the comma-separated text (`${REGIONS}`) split and trimmed."""
    if model.for_each is None:
        return []
    if isinstance(model.for_each, str):
        return [part.strip() for part in model.for_each.split(",") if part.strip()]
    return list(model.for_each)


def parent_model(source: ApiSource, model: ApiModel) -> tuple[str, ApiModel] | None:
    """The model's parent in its source (under its target name when the source is snake_cased)."""
    if model.parent is None:
        return None
    for name in (model.parent, snake_case(model.parent)):
        if name in source.models:
            return name, source.models[name]
    return None


def lineage(source: ApiSource, name: str) -> list[tuple[str, ApiModel]]:
    """The model and its ancestors, the topmost first (validation has ruled out cycles)."""
    chain = [(name, source.models[name])]
    while (found := parent_model(source, chain[0][1])) is not None:
        if any(found[0] == seen for seen, _ in chain):
            raise ValueError(f"a cycle of parents through {found[0]}")
        chain.insert(0, found)
    return chain


def field_path(model: ApiModel, field: str) -> str | None:
    """Where field `field` (a column name, or a column's path) is read in the model's raw records."""
    for name in (field, snake_case(field)):
        column = model.columns.get(name)
        if column is not None:
            return column.path or name
    if any(column.path == field for column in model.columns.values()):
        return field
    return None


def model_texts(model: ApiModel) -> list[tuple[tuple[str, ...], str]]:
    """Every string of the model's request a placeholder may sit in, with its key path: the path,
    parameters, headers and body values (a GraphQL query's variables, not its query text, whose
    braces are GraphQL's)."""
    texts = list(request_texts(model.path, model.params, model.headers))
    texts += strings(model.json_body, ("json",))
    texts += strings(model.form, ("form",))
    if model.graphql is not None:
        texts += strings(model.graphql.variables, ("graphql", "variables"))
    return texts


def is_dependent(model: Any) -> bool:
    """A model read for each record of a parent, or for each item of a list."""
    return isinstance(model, ApiModel) and (model.parent is not None or model.for_each is not None)


# ---------------------------------------------------------------- before validation
def with_parent_columns(data: Any) -> Any:
    """The raw manifest with each child's included parent fields (and a for_each model's item column)
    added to its columns, copied from the parent's column with the path the walk fills. A name the
    model declares itself is left alone (`parent_issues` reports the collision)."""
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
        return data
    sources = dict(data["sources"])
    for source_name, source in data["sources"].items():
        if not isinstance(source, dict) or not isinstance(source.get("models"), dict):
            continue
        models = dict(source["models"])
        for _ in models:   # a grandchild may include a field its parent includes: repeat until none is added
            changed = {name: added for name, model in models.items()
                       if isinstance(model, dict) and (added := _added_columns(model, models))}
            if not changed:
                break
            models.update({name: {**models[name], "columns": {**models[name].get("columns", {}), **added}}
                           for name, added in changed.items()})
        if models != source["models"]:
            sources[source_name] = {**source, "models": models}
    return {**data, "sources": sources}


def _added_columns(model: dict, models: dict) -> dict[str, Any]:
    columns = model.get("columns", {})   # a store: mongo model may declare none: its included fields still are
    if not isinstance(columns, dict):
        return {}
    added: dict[str, Any] = {}
    item_column = model.get("for_each_column")
    if isinstance(item_column, str) and item_column not in columns:
        added[item_column] = {"type": "string", "path": ITEM_KEY}
    parent_name, fields = model.get("parent"), model.get("include_from_parent")
    if not isinstance(parent_name, str):
        return added
    parent = models.get(parent_name)
    parent_columns = parent.get("columns") if isinstance(parent, dict) else None
    if isinstance(fields, list) and isinstance(parent_columns, dict):
        for field in fields:
            column = parent_columns.get(field) if isinstance(field, str) else None
            name = included_column(parent_name, field) if isinstance(field, str) else ""
            if isinstance(column, dict) and name not in columns:
                added[name] = {**column, "path": f"{PARENT_KEY}.{field}"}
    return added


# ---------------------------------------------------------------- after validation
def parent_issues(doc: YamlDocument, sources: dict[str, Any]) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for source_name, source in sources.items():
        if not isinstance(source, ApiSource):
            continue
        for model_name, model in source.models.items():
            base = ("sources", source_name, "models", model_name)
            issues += [doc.issue(base + key, message)
                       for key, message in _model_problems(doc, source_name, source, model_name, model)]
    return issues


def _model_problems(doc: YamlDocument, source_name: str, source: ApiSource, name: str,
                    model: ApiModel) -> list[tuple[tuple, str]]:
    problems: list[tuple[tuple, str]] = []
    declared = _declared_columns(doc, source_name, name)
    if model.parent is not None and model.for_each is not None:
        problems.append((("for_each",), "give parent or for_each, not both: a for_each model has no parent"))
    if model.for_each is not None and not for_each_items(model):
        problems.append((("for_each",), "for_each has no items (an empty list, or a text without "
                                        "comma-separated values)"))
    if model.for_each_column is not None:
        problems += _item_column_problems(model, declared)
    if model.include_from_parent and model.parent is None:
        problems.append((("include_from_parent",), "include_from_parent needs a parent: declare parent:"))
    if "on_child_error" in model.model_fields_set and not is_dependent(model):
        problems.append((("on_child_error",), "on_child_error applies to models with a parent or for_each"))
    chain = _ancestors(source, name, model, problems)
    if chain is None:
        return problems
    if model.parent is not None:
        problems += _include_problems(model, chain[0], declared)
    for key, text in model_texts(model):
        for placeholder in placeholders(text):
            message = _placeholder_problem(placeholder, model, chain)
            if message is not None:
                problems.append((key, message))
    return problems


def _declared_columns(doc: YamlDocument, source_name: str, name: str) -> set[str]:
    """The columns the manifest itself declares for the model (not those added for its parent)."""
    node: Any = doc.data
    for part in ("sources", source_name, "models", name, "columns"):
        node = node.get(part) if isinstance(node, dict) else None
    return set(node) if isinstance(node, dict) else set()


def _item_column_problems(model: ApiModel, declared: set[str]) -> list[tuple[tuple, str]]:
    if model.for_each_column is None:
        return []
    if model.for_each is None:
        return [(("for_each_column",), "for_each_column needs for_each: on the model")]
    try:
        check_identifier(model.for_each_column, "for_each_column")
    except ValueError as exc:
        return [(("for_each_column",), str(exc))]
    if model.for_each_column in declared:
        return [(("for_each_column",), f"for_each_column '{model.for_each_column}' is a column the model "
                                       "declares too: name another column")]
    return []


def _ancestors(source: ApiSource, name: str, model: ApiModel,
               problems: list[tuple[tuple, str]]) -> list[tuple[str, ApiModel]] | None:
    """The model's parent, grandparent...; None (with a problem) when a parent is missing or cyclic."""
    chain: list[tuple[str, ApiModel]] = []
    seen, current = [name], model
    while current.parent is not None:
        found = parent_model(source, current)
        if found is None:
            if current is model:
                problems.append((("parent",), f"parent '{model.parent}' is not a model of this source: a parent must "
                                               f"be a model of the same source (models: {', '.join(source.models)})"))
            return None
        if found[0] in seen:
            if found[0] == name:
                problems.append((("parent",), f"a cycle of parents: {' -> '.join([*seen, name])}"))
            return None
        seen.append(found[0])
        chain.append(found)
        current = found[1]
    return chain


def _include_problems(model: ApiModel, parent: tuple[str, ApiModel], declared: set[str]) -> list[tuple[tuple, str]]:
    problems: list[tuple[tuple, str]] = []
    parent_name, parent_config = parent
    for field in model.include_from_parent:
        if model.include_from_parent.count(field) > 1:
            problems.append((("include_from_parent",), f"include_from_parent lists '{field}' twice"))
        elif field not in parent_config.columns:
            problems.append((("include_from_parent",), f"include_from_parent: '{field}' is not a column of parent "
                                                       f"model '{parent_name}' ({', '.join(parent_config.columns)})"))
        elif (column := included_column(parent_name, field)) in declared:
            problems.append((("columns", column), f"column '{column}' is also where include_from_parent stores "
                                                  f"'{parent_name}.{field}': rename the column or drop the field"))
        else:
            try:
                check_identifier(included_column(parent_name, field), "include_from_parent column")
            except ValueError as exc:
                problems.append((("include_from_parent",), str(exc)))
    return list(dict.fromkeys(problems))


def _placeholder_problem(placeholder: Placeholder, model: ApiModel, chain: list[tuple[str, ApiModel]]) -> str | None:
    text = placeholder.text
    if placeholder.depth == 0:
        return None if model.for_each is not None else f"{text} needs for_each: on this model"
    if placeholder.depth > len(chain):
        if not chain:
            return f"{text} needs a parent: declare parent:"
        return f"{text} reaches past the model's ancestors (it has {len(chain)})"
    name, ancestor = chain[placeholder.depth - 1]
    what = _ANCESTOR.get(placeholder.depth, "ancestor model")
    if placeholder.is_item:
        return None if ancestor.for_each is not None else f"{text}: {what} '{name}' has no for_each"
    if field_path(ancestor, placeholder.field) is None:
        return (f"{text} names no column or column path of {what} '{name}' "
                f"({', '.join(ancestor.columns)})")
    return None
