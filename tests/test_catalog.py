"""The figure catalog: what Snakemake reads of the figure functions from their source (without importing matplotlib)
is what the functions register, and a registration it cannot read is refused with its file and line."""

import re

import pytest


def test_the_catalog_read_from_the_source_is_what_the_functions_register():
    from cifarflow.report.catalog import figure_functions
    from cifarflow.report.figures.style import FIGURES

    read = figure_functions()
    assert sorted(read) == sorted(function.figure for function in FIGURES.values())
    by_name = {function.name: function for function in read}
    assert by_name["calibration"].outputs == ("figure", "table", "csv")
    assert by_name["variant_comparison"].outputs == ("figure", "table")
    assert by_name["confusion_matrix"].outputs == ("figure",)
    assert by_name["variant_learning_curves"].required == ("histories", "variant")
    assert by_name["sample_images"].optional == ("seed",)


@pytest.mark.parametrize("registration, error", [
    ('@registered\ndef f(a):\n    pass\n', "needs the figure's title"),
    ('TITLE = "t"\n@registered(TITLE)\ndef f(a):\n    pass\n', "takes literals only"),
    ('@registered("t", "s")\ndef f(a):\n    pass\n', "takes the title, then settings by name"),
    ('@registered("t")\ndef f(a, **splits):\n    pass\n', r"no \*args or \*\*kwargs"),
])
def test_a_registration_the_catalog_cannot_read_is_refused_with_its_line(tmp_path, registration, error):
    from cifarflow.report.catalog import figure_functions

    (tmp_path / "data.py").write_text(registration)
    with pytest.raises(ValueError, match=error) as raised:
        figure_functions(tmp_path)
    assert re.search(r"data\.py:\d+", str(raised.value))


MODULE = '''
import functools


@functools.lru_cache(maxsize=2)
def cached(a):
    pass


@registered("A title", subcategory="Its place", table="Its table", csv=True)
def drawn(a, b=1, *, c, d=2):
    pass
'''


def test_the_catalog_reads_every_kind_of_argument_of_the_registered_functions_only(tmp_path):
    from cifarflow.report.catalog import FigureFunction, described, figure_functions

    (tmp_path / "data.py").write_text(MODULE)
    assert figure_functions(tmp_path) == [FigureFunction("data", "drawn", "A title", "Its place", "Its table", True,
                                                         required=("a", "c"), optional=("b", "d"))]
    module = {"registered": lambda *args, **kwargs: lambda function: function}
    exec(MODULE, module)
    assert described(module["drawn"], "data", "A title", subcategory="Its place", table="Its table", csv=True) == \
        figure_functions(tmp_path)[0]
    with pytest.raises(TypeError, match=r"no \*args or \*\*kwargs"):
        described(lambda *images: None, "data", "t")


def test_a_figure_module_that_does_not_parse_is_named(tmp_path):
    from cifarflow.report.catalog import figure_functions

    (tmp_path / "data.py").write_text("def broken(:\n    pass\n")
    with pytest.raises(SyntaxError) as raised:
        figure_functions(tmp_path)
    assert raised.value.filename == str(tmp_path / "data.py")
