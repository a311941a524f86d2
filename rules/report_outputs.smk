# How a report output is declared: the report's categories, figure(...) for an output the report shows,
# report_rule(...) for a rule of rules/report.smk, and figure_rule(...) for the rule of a figure function.
import os
from collections import namedtuple

# The report's categories, in the order the report lists them.
SUMMARY = "1. Summary"
DATA = "2. Data"
TRAINING = "3. Training"
ARCHITECTURES = "4. Architectures"
SELECTION = "5. Selection"
TEST = "6. Test"
BEYOND_ACCURACY = "7. Beyond accuracy"
PIPELINE = "8. Pipeline"
MODEL = "9. Model"

# The report category of each figure module (workflow/cifarflow/report/figures/<module>.py).
FIGURE_CATEGORIES = {
    "data": DATA,
    "training": TRAINING,
    "selection": SELECTION,
    "test": TEST,
    "beyond_accuracy": BEYOND_ACCURACY,
    "pipeline": PIPELINE,
}
FIGURES = "results/figures"


def figure(path, caption, label, category, subcategory=None):
    """A report output: captioned by workflow/report/<caption>.rst, listed under category (and subcategory) with the
    label {"figure": label}, preceded by {"variant": ...} where the path has a variant."""
    if not os.path.exists(os.path.join(workflow.basedir, "workflow", "report", f"{caption}.rst")):
        raise ValueError(f"{path} has no caption: write workflow/report/{caption}.rst")
    labels = {"variant": "{variant}"} if "{variant}" in path else {}
    labels["figure"] = label
    return report(
        path, caption=f"../workflow/report/{caption}.rst", category=category, subcategory=subcategory, labels=labels
    )


# Every output of the report rules, expanded over the variants; `rule all` requests them.
REPORT_TARGETS = []


def report_rule(name, input, output, params=None, plot=None, read=None, script_name=None, requested=True):
    """Defines a report rule named `name`, which runs a script in the report env with the script's package modules as
    `code` inputs, logs to logs/<name>.log and benchmarks to benchmarks/<name>.tsv (a folder per variant where the
    outputs have one), and adds its outputs to REPORT_TARGETS (unless not `requested`: a part of the report that a
    setting switches on).

    With `plot`, the script is the generic workflow/scripts/plot.py: it calls the figure function registered as `plot`
    (workflow/cifarflow/report/figures/) with the inputs (read by file type; `read` names another reader of an input, see
    cifarflow/report/figureio.py) and the params, and writes what the function returns to the outputs. Without it, the
    script is workflow/scripts/<script_name, by default name>.py. A figure rule (its script is plot.py or plot_*.py)
    is a local rule: on a cluster it runs where Snakemake runs."""
    # not `script`: the rule's body calls Snakemake's script() by that name
    if plot:
        script_name, params = "plot", {**(params or {}), "plot": plot, "read": read or {}}
    script_name = script_name or name
    job = f"{name}/{{variant}}" if any("{variant}" in path for path in output.values()) else name
    rule:
        name:
            name
        # A figure takes seconds of matplotlib on small result files: on a cluster it is drawn where Snakemake runs
        # instead of waiting in the queue as a job of its own.
        localrule: script_name.startswith("plot")
        input:
            **input,
            code=script_code(script_name),
        output:
            **output,
        log:
            f"logs/{job}.log",
        benchmark:
            f"benchmarks/{job}.tsv"
        params:
            **(params or {}),
        conda:
            "../envs/report.yaml"
        script:
            f"../workflow/scripts/{script_name}.py"
    if requested:
        REPORT_TARGETS.extend(expand(str(path), variant=VARIANTS) for path in output.values())


# A result that figure functions take by argument name: its file (a pattern over {variant} and {seed}: one file per
# training), the figureio reader for it where the file type does not tell (READERS), and whether this run makes it.
Result = namedtuple("Result", ["path", "read", "made"], defaults=[None, True])


def figure_rule(function, results, settings):
    """Defines plot_<name>, the report rule of a figure function (cifarflow.report.catalog.FigureFunction). Each of
    its arguments is a result (`results`, an input), a setting (`settings`, a param) or `variant` (a figure per
    variant), else it keeps its default. Its outputs are results/figures/<module>/<name>.png, and .html and .csv as
    it returns them (per variant: <name>/{variant}.png), listed under its module's report category."""
    where = f"workflow/cifarflow/report/figures/{function.category}.py"
    if function.category not in FIGURE_CATEGORIES:
        raise ValueError(f"{where} is not a report category: add it to FIGURE_CATEGORIES in rules/report_outputs.smk")
    per_variant = "variant" in function.required
    input, params, read = {}, {}, {}
    for argument in function.required + function.optional:
        if argument in results:
            result = results[argument]
            if "{seed}" in str(result.path):
                input[argument] = seeds_of_variant(result.path) if per_variant else every_training(result.path)
            else:
                input[argument] = result.path
            if result.read:
                read[argument] = result.read
        elif argument in settings:
            params[argument] = settings[argument]
        elif argument == "variant":
            params[argument] = lambda wildcards: wildcards.variant
        elif argument in function.required:
            raise ValueError(
                f"figure function {function.name} ({where}) takes {argument!r}, which is neither a result (RESULTS in "
                f"rules/report.smk: {', '.join(sorted(results))}) nor a setting (SETTINGS: {', '.join(sorted(settings))})"
            )
    stem = os.path.join(FIGURES, function.category, function.name)
    if per_variant:
        stem = os.path.join(stem, "{variant}")
    shown = (FIGURE_CATEGORIES[function.category], function.subcategory)
    output = {"figure": figure(f"{stem}.png", function.name, function.title, *shown)}
    if function.table:
        output["table"] = figure(f"{stem}.html", f"{function.name}_table", function.table, *shown)
    if function.csv:
        output["csv"] = f"{stem}.csv"
    report_rule(
        f"plot_{function.name}",
        input=input,
        output=output,
        params=params,
        plot=function.name,
        read=read,
        requested=all(results[argument].made for argument in input),
    )
