"""The advrepro source files a module depends on: what a cache of outputs drawn by that module must hash."""

import ast
import importlib.util
from pathlib import Path

ROOT = "advrepro"


def _module_file(name: str) -> Path | None:
    """The source file of module `name`, or None when `name` is not a module of advrepro (an attribute)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def _imported_modules(path: Path) -> set[str]:
    """The advrepro modules that the file imports by name (`import a.b`, `from a.b import c`, c itself when it is a
    module); parent packages are not followed, so a package's registry does not pull in its siblings."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == ROOT}
        elif (
            isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == ROOT
        ):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def sources(package: str) -> list[Path]:
    """Every .py file of `package` and, transitively, of every advrepro module those files import, sorted."""
    spec = importlib.util.find_spec(package)
    seen: set[Path] = set()
    todo = sorted(Path(directory).rglob("*.py") for directory in spec.submodule_search_locations or ())
    todo = [path for paths in todo for path in paths] or [Path(spec.origin)]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += [file for name in _imported_modules(path) if (file := _module_file(name)) is not None]
    return sorted(seen)
