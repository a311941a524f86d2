"""The code a rule script runs, found from its imports (directly or through other modules): the package's modules
and the helper modules beside the script (``stage.py``), so that a rule can list them as inputs and an edit to any
of them reruns the rule.

A module that sets ``AFFECTS_RESULTS = False`` at its top level (it only shows a job's progress, e.g. ``live``) is
left out, and so are the modules only it imports."""

import ast
from pathlib import Path

PACKAGE = "cifarflow"


def _module_file(name: str, package_dir: Path) -> Path | None:
    """The file of the package's module ``name`` (``cifarflow.train.models``), or of its subpackage's ``__init__.py``."""
    parts = name.split(".")
    if parts[0] != PACKAGE or len(parts) == 1:
        return None
    path = package_dir.joinpath(*parts[1:])
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imported_modules(source: Path, package_dir: Path) -> set[Path]:
    """The files of the package's modules, and of the script's sibling modules, that ``source`` imports anywhere in
    its body (imports inside functions included)."""
    tree = ast.parse(source.read_text(), filename=str(source))
    in_package = package_dir in source.parents
    # the package ``from .x import y`` starts from, one folder up for each further dot
    home = [PACKAGE, *source.parent.relative_to(package_dir).parts] if in_package else []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level and in_package:  # from . import x / from ..x import y
                base = ".".join(home[:len(home) - node.level + 1] + ([node.module] if node.module else []))
            elif node.module:
                base = node.module
            else:
                continue
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            candidate = _module_file(name, package_dir)
            if candidate is None and not in_package and "." not in name:
                candidate = source.parent / f"{name}.py"  # a helper beside the script, e.g. stage.py
            if candidate is not None and candidate.exists() and candidate != source:
                found.add(candidate)
    return found


def affects_results(module: Path) -> bool:
    """False for a module that declares ``AFFECTS_RESULTS = False`` (it only watches a job)."""
    for node in ast.parse(module.read_text(), filename=str(module)).body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "AFFECTS_RESULTS" for t in node.targets)
                and isinstance(node.value, ast.Constant) and node.value.value is False):
            return False
    return True


def _package_inits(module: Path, package_dir: Path) -> set[Path]:
    """The ``__init__.py`` of every package above ``module`` in the package, which Python runs before the module."""
    folders = [folder for folder in module.parents if folder == package_dir or package_dir in folder.parents]
    return {folder / "__init__.py" for folder in folders if (folder / "__init__.py").exists()}


def package_modules(script: Path, package_dir: Path) -> list[Path]:
    """Every module ``script`` reaches through its imports (the package's, and helpers beside the script), sorted;
    the ``__init__.py`` of the packages they are in too, and what those import."""
    script, package_dir = Path(script), Path(package_dir)
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for module in _imported_modules(todo.pop(), package_dir) - seen:
            if affects_results(module):
                for reached in ({module} | _package_inits(module, package_dir)) - seen:
                    seen.add(reached)
                    todo.append(reached)
    return sorted(seen)
