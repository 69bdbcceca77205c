"""Read a recipe's manifest from docs/recipes.md by its section heading, so that the documented YAML
is exactly what the tests run against the API's emulation."""
from __future__ import annotations

import re

from tests.helpers.paths import ROOT

RECIPES = ROOT / "docs" / "recipes.md"
_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


def recipe_yaml(heading: str, base_url: str | None = None) -> str:
    """The first ```yaml block under `## <heading>`; `base_url` replaces the documented one."""
    text = RECIPES.read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    for section in sections[1:]:
        title, _, body = section.partition("\n")
        if title.strip() == heading:
            match = _BLOCK.search(body)
            if match is None:
                raise LookupError(f"docs/recipes.md: section '{heading}' has no yaml block")
            manifest = match.group(1)
            if base_url is not None:
                manifest = re.sub(r"(?m)^(\s*base_url:\s*).*$", lambda m: m.group(1) + base_url, manifest, count=1)
            return manifest
    raise LookupError(f"docs/recipes.md: no section '## {heading}'")
