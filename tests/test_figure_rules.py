"""One figure convention: a figure is a function registered by one line in its report category's module, and Snakemake
makes its rule from that line and the function's arguments; adding a figure touches two files, the module and the
caption (what the catalog reads of them: tests/test_catalog.py)."""

import re

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
