"""One figure convention: a figure is a function registered by one line in its report category's module, and Snakemake
makes its rule from that line and the function's arguments; adding a figure touches two files, the module and the
caption. The catalog Snakemake reads (from the source, without importing matplotlib) is what the functions register."""

import re

import pytest
from PIL import Image

from conftest import archive_config, snakemake

FIGURE_MODULE = "workflow/cifarflow/report/figures/test.py"
NEW_FIGURE = '''

@registered("Prediction confidence")
def prediction_confidence(predictions: pd.DataFrame, bins: int = 10) -> Figure:
    """How confident the test predictions are, the correct and the wrong ones apart."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for correct, color, label in ((True, CORRECT, "correct"), (False, WRONG, "wrong")):
        ax.hist(predictions.loc[predictions["correct"] == correct, "confidence"], bins=bins, range=(0, 1),
                color=color, alpha=0.6, label=label)
    ax.legend(frameon=False)
    return fig
'''
NEW_PNG = "results/figures/test/prediction_confidence.png"


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


def test_adding_a_figure_takes_its_function_and_its_caption(own_tiny_study, cifar10_archive):
    study = own_tiny_study
    config = archive_config(cifar10_archive)
    module = study / FIGURE_MODULE
    module.write_text(module.read_text() + NEW_FIGURE)

    missing = snakemake(study, "-n", *config, check=False)
    assert missing.returncode != 0
    said = missing.stdout + missing.stderr
    assert "prediction_confidence" in said and "write workflow/report/prediction_confidence.rst" in said

    (study / "workflow/report/prediction_confidence.rst").write_text("How confident the test predictions are.\n")
    planned = snakemake(study, "-n", *config).stdout
    assert re.search(r"rule plot_prediction_confidence:", planned)
    assert NEW_PNG in planned.split("rule all:")[1].split("reason:")[0], "the new figure is not a target of rule all"

    snakemake(study, "--cores", "1", *config, "--", NEW_PNG)
    with Image.open(study / NEW_PNG) as image:
        assert image.format == "PNG" and image.size[0] >= 300

    module.write_text(module.read_text().replace("predictions: pd.DataFrame, bins", "predictions: pd.DataFrame, spread, bins"))
    unknown = snakemake(study, "-n", *config, check=False)
    assert unknown.returncode != 0
    said = unknown.stdout + unknown.stderr
    assert "prediction_confidence" in said and "takes 'spread', which is neither a result" in said
