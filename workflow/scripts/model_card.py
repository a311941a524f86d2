from pathlib import Path

import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json

with logged(snakemake.log[0]):
    from cifarflow.report.modelcard import model_card, split_summary, to_html

    inp, p = snakemake.input, snakemake.params
    selection = load_json(inp.selection)
    exported = f"{selection['variant']}/seed-{selection['exported_seed']}"
    training = next(path for path in inp.trainings if Path(path).parent.as_posix().endswith(exported))
    card = model_card(
        dataset=p.dataset,
        source=p.source,
        splits=split_summary({"train": inp.train, "validation": inp.val, "test": inp.test}),
        stats=load_json(inp.stats),
        classes=load_json(inp.classes),
        selection=selection,
        variants=pd.read_csv(inp.variants),
        training=load_json(training),
        export=load_json(inp.export),
        test_metrics=load_json(inp.test_metrics),
        confusion=pd.read_csv(inp.confusion, index_col=0),
        class_report=pd.read_csv(inp.class_report, index_col=0),
        confused_pairs=p.confused_pairs,
        robustness=load_json(inp.robustness),
        robustness_table=pd.read_csv(inp.robustness_table),
        weakest_corruptions=p.weakest_corruptions,
        questions=pd.read_csv(inp.questions),
    )
    Path(snakemake.output.markdown).write_text(card)
    Path(snakemake.output.html).write_text(to_html(card, f"Model card: {selection['variant']}"))
    print(f"model card of {selection['variant']}: {snakemake.output.markdown}, {snakemake.output.html}")
