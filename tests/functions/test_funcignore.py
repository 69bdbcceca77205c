"""`.funcignore` decides what `azd deploy` / `func azure functionapp publish` ship. The package's
file list is built here the way those tools build it (gitignore rules applied to the folder) and
checked: the app ships, tests, infra, benchmarks, node_modules, local data and virtualenvs don't."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT

LEFT_OUT = ("cli/", "devhost/", "main.py", "tests/", "infra/",
            "benchmarks/", "node_modules/", ".kspyder/", ".venv/", ".venv-bench/", ".azure/",
            ".git/", "local.settings.json", ".azurite/")
SHIPPED = ("function_app.py", "host.json", "requirements.txt")
SHIPPED_FOLDERS = ("functions", "shared", "manifests")


def _glob(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out, i = out + "/.*", i + 3
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            out, i = out + "[" + pattern[i + 1:end].replace("!", "^", 1) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def compile_rules(text: str) -> list[tuple[re.Pattern, bool, bool]]:
    """(regex over a '/'-separated relative path, negated, directories only) per gitignore line."""
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line[1:] if negated else line
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        body = _glob(line.lstrip("/"))
        rules.append((re.compile(("^" if anchored else r"^(?:.*/)?") + body + "$"), negated, dir_only))
    return rules


def ignored(rules: list[tuple[re.Pattern, bool, bool]], path: str, is_dir: bool) -> bool:
    """The last matching rule decides, as in git."""
    result = False
    for regex, negated, dir_only in rules:
        if (is_dir or not dir_only) and regex.match(path):
            result = not negated
    return result


def package_files(folder: Path, funcignore: Path) -> list[str]:
    """Every file that would be packaged: an ignored folder is skipped with all it holds."""
    rules = compile_rules(funcignore.read_text())
    files = []
    for current, dirs, names in os.walk(folder):
        base = Path(current).relative_to(folder).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs[:] = sorted(d for d in dirs if not ignored(rules, prefix + d, True))
        files += [prefix + n for n in sorted(names) if not ignored(rules, prefix + n, False)]
    return files


def check_package(files: list[str]) -> list[str]:
    problems = [f"{f} is packaged" for f in files if f.startswith(LEFT_OUT) or f in LEFT_OUT]
    problems += [f"{f} is not packaged" for f in SHIPPED if f not in files]
    for folder in SHIPPED_FOLDERS:
        if not any(f.startswith(folder + "/") for f in files):
            problems.append(f"nothing of {folder}/ is packaged")
    return problems


@pytest.mark.parametrize("pattern, path, is_dir, expected", [
    ("tests", "tests", True, True),
    ("tests", "shared/tests", True, True),           # no slash: any depth
    ("/tests", "shared/tests", True, False),         # anchored
    ("docs/", "docs", False, False),                 # directories only
    ("*.pyc", "shared/x.pyc", False, True),
    (".git*", ".gitignore", False, True),
    ("a/**/b", "a/x/y/b", False, True),
    ("__azurite*", "__azurite_db_blob__.json", False, True),
])
def test_gitignore_rules(pattern, path, is_dir, expected):
    assert ignored(compile_rules(pattern), path, is_dir) is expected


def test_negation_re_includes():
    rules = compile_rules("*.json\n!host.json\n")
    assert ignored(rules, "x.json", False) and not ignored(rules, "host.json", False)


def test_the_repository_package():
    files = package_files(ROOT, ROOT / ".funcignore")
    assert check_package(files) == []
    app = [p.relative_to(ROOT).as_posix() for folder in ("functions", "shared") for p in (ROOT / folder).rglob("*.py")
           if "__pycache__" not in p.parts]
    assert set(app) <= set(files)   # the whole app ships


def test_local_data_and_tools_stay_out(tmp_path):
    for name in ("function_app.py", "host.json", "requirements.txt", "functions/runs.py", "shared/ledger.py",
                 "manifests/connector_models.yml", "tests/test_x.py", "infra/main.bicep", "benchmarks/b.py",
                 "node_modules/a/b.js", ".kspyder/target.db", ".venv/lib/site.py", ".venv-bench/x", ".azure/dev/.env",
                 "local.settings.json", "shared/__pycache__/ledger.cpython-311.pyc", ".git/HEAD", ".azurite/x"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / ".funcignore").write_text((ROOT / ".funcignore").read_text())
    files = package_files(tmp_path, tmp_path / ".funcignore")
    assert files == [".funcignore", "function_app.py", "host.json", "requirements.txt", "functions/runs.py",
                     "manifests/connector_models.yml", "shared/ledger.py"]


def test_a_funcignore_that_lets_tests_in_fails(tmp_path):
    lax = tmp_path / ".funcignore"
    lax.write_text("\n".join(line for line in (ROOT / ".funcignore").read_text().splitlines() if line != "tests"))
    problems = check_package(package_files(ROOT, lax))
    assert problems and all(p.startswith("tests/") and p.endswith(" is packaged") for p in problems)
