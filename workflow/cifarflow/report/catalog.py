"""The report's figure functions as the report rules need them, read from the source of the figure modules without
importing them: Snakemake makes one rule per figure function (``rules/report.smk``) each time it starts, and importing
the figures would cost it a second of matplotlib and scikit-learn.

A figure function is registered by one line, ``@registered("Title", ...)`` (``figures/style.py``), whose arguments
are literals: what the report shows of it. Its own arguments name what it draws from, results and settings.
"""

import ast
import inspect
from dataclasses import dataclass, field
from pathlib import Path

FIGURE_MODULES = Path(__file__).parent / "figures"
NOT_CATEGORIES = {"__init__", "style"}  # figure modules that are not a report category


@dataclass(frozen=True, order=True)
class FigureFunction:
    """A registered figure function: its name, its module (the report category), the title of its figure, the
    subcategory it is listed under, the title of the HTML table it also returns (``table``), whether it also returns a
    CSV table (``csv``), and its arguments without and with a default."""

    category: str
    name: str
    title: str
    subcategory: str | None = None
    table: str | None = None
    csv: bool = False
    required: tuple[str, ...] = field(default=())
    optional: tuple[str, ...] = field(default=())

    @property
    def outputs(self) -> tuple[str, ...]:
        """What the function returns, by output name: ``figure`` (PNG), ``table`` (HTML), ``csv``."""
        return ("figure",) + ("table",) * bool(self.table) + ("csv",) * self.csv


def described(function, category: str, title: str, **declared) -> FigureFunction:
    """The ``FigureFunction`` of a figure function object, as ``@registered`` sees it."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        raise TypeError(f"figure function {function.__name__} takes each input by name: no *args or **kwargs")
    return FigureFunction(
        category, function.__name__, title, **declared,
        required=tuple(p.name for p in parameters if p.default is p.empty),
        optional=tuple(p.name for p in parameters if p.default is not p.empty),
    )


def figure_functions(folder: Path = FIGURE_MODULES) -> list[FigureFunction]:
    """Every registered figure function of the figure modules in ``folder``, by module and then in source order."""
    functions = []
    for path in sorted(folder.glob("*.py")):
        if path.stem not in NOT_CATEGORIES:
            functions += _registered_in(path)
    return functions


def _registered_in(path: Path) -> list[FigureFunction]:
    functions = []
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            where = f"{path.parent.name}/{path.name}:{decorator.lineno}"
            if isinstance(decorator, ast.Name) and decorator.id == "registered":
                raise ValueError(f"{where}: @registered needs the figure's title: @registered(\"Title\", ...)")
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "registered":
                functions.append(_declared(node, decorator, path.stem, where))
    return functions


def _declared(function: ast.FunctionDef, decorator: ast.Call, category: str, where: str) -> FigureFunction:
    if len(decorator.args) != 1:
        raise ValueError(f"{where}: @registered(...) of {function.name} takes the title, then settings by name")
    try:
        title = ast.literal_eval(decorator.args[0])
        declared = {keyword.arg: ast.literal_eval(keyword.value) for keyword in decorator.keywords}
    except ValueError:
        raise ValueError(f"{where}: @registered(...) of {function.name} takes literals only (strings, True/False)") from None
    arguments = function.args
    if arguments.vararg or arguments.kwarg:
        raise ValueError(f"{where}: figure function {function.name} takes each input by name: no *args or **kwargs")
    names = [argument.arg for argument in arguments.posonlyargs + arguments.args]
    with_default = len(arguments.defaults)
    keyword_only = [(a.arg, d is not None) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults)]
    return FigureFunction(
        category, function.name, title, **declared,
        required=tuple(names[:len(names) - with_default]) + tuple(name for name, default in keyword_only if not default),
        optional=tuple(names[len(names) - with_default:]) + tuple(name for name, default in keyword_only if default),
    )
