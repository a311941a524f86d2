"""The package modules a script runs, found from its imports (directly or through other modules), so that a rule
can list them as inputs and an edit to any of them reruns the rule.

A module that sets ``AFFECTS_RESULTS = False`` at its top level (it only shows a job's progress, e.g. ``live``) is
left out, and so are the modules only it imports."""

import ast
from pathlib import Path

PACKAGE = "cifarflow"


def _imported_modules(source: Path, package_dir: Path) -> set[str]:
    """Names of the package's modules (without the package prefix) that ``source`` imports anywhere in its body."""
    tree = ast.parse(source.read_text(), filename=str(source))
    in_package = source.parent == package_dir
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level and in_package:  # from . import x / from .x import y
                base = node.module or ""
                names = [base] if base else []
                names += [f"{base}.{alias.name}".lstrip(".") for alias in node.names]
                names = [f"{PACKAGE}.{name}" for name in names]
            elif node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == PACKAGE and len(parts) > 1 and (package_dir / f"{parts[1]}.py").exists():
                found.add(parts[1])
    return found


def affects_results(module: Path) -> bool:
    for node in ast.parse(module.read_text(), filename=str(module)).body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "AFFECTS_RESULTS" for t in node.targets)
                and isinstance(node.value, ast.Constant) and node.value.value is False):
            return False
    return True


def package_modules(script: Path, package_dir: Path) -> list[Path]:
    """Every module of the package that ``script`` reaches through its imports, sorted; the package's
    ``__init__.py`` too, as Python runs it before any of its modules."""
    script, package_dir = Path(script), Path(package_dir)
    seen: set[str] = set()
    todo = [script]
    while todo:
        for name in _imported_modules(todo.pop(), package_dir) - seen:
            if affects_results(package_dir / f"{name}.py"):
                seen.add(name)
                todo.append(package_dir / f"{name}.py")
    if seen and (package_dir / "__init__.py").exists():
        seen.add("__init__")
    return sorted(package_dir / f"{name}.py" for name in seen)
