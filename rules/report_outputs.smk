# How a report output is declared: the report's categories, figure(...) for an output the report shows, and
# report_rule(...) for a rule of rules/report.smk.

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


def figure(path, caption, label, category, subcategory=None):
    """A report output: captioned by workflow/report/<caption>.rst, listed under category (and subcategory) with the
    label {"figure": label}, preceded by {"variant": ...} where the path has a variant."""
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
