"""The code a rule script runs, found from its imports (directly or through other modules): the package's modules
and the helper modules beside the script (``stage.py``), so that a rule can list them as inputs and an edit to any
of them reruns the rule.

A module that sets ``AFFECTS_RESULTS = False`` at its top level (it only shows a job's progress, e.g. ``live``) is
left out, and so are the modules only it imports."""

import ast
from pathlib import Path

PACKAGE = "cifarflow"


def _imported_modules(source: Path, package_dir: Path) -> set[Path]:
    """The files of the package's modules, and of the script's sibling modules, that ``source`` imports anywhere in
    its body (imports inside functions included)."""
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
            if parts[0] == PACKAGE and len(parts) > 1:
                candidate = package_dir / f"{parts[1]}.py"
            elif not in_package and len(parts) == 1:
                candidate = source.parent / f"{parts[0]}.py"  # a helper beside the script, e.g. stage.py
            else:
                continue
            if candidate.exists() and candidate != source:
                found.add(candidate)
    return found


def affects_results(module: Path) -> bool:
    """False for a module that declares ``AFFECTS_RESULTS = False`` (it only watches a job)."""
    for node in ast.parse(module.read_text(), filename=str(module)).body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "AFFECTS_RESULTS" for t in node.targets)
                and isinstance(node.value, ast.Constant) and node.value.value is False):
            return False
    return True


def package_modules(script: Path, package_dir: Path) -> list[Path]:
    """Every module ``script`` reaches through its imports (the package's, and helpers beside the script), sorted;
    the package's ``__init__.py`` too, as Python runs it before any of its modules."""
    script, package_dir = Path(script), Path(package_dir)
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for module in _imported_modules(todo.pop(), package_dir) - seen:
            if affects_results(module):
                seen.add(module)
                todo.append(module)
    if any(module.parent == package_dir for module in seen) and (package_dir / "__init__.py").exists():
        seen.add(package_dir / "__init__.py")
    return sorted(seen)
