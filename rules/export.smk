rule export_model:
    input:
        model=rules.select_best.output.model,
        selection=rules.select_best.output.selection,
        classes="results/data/classes.json",
        stats="results/data/normalization.json",
        test="results/data/test.npz",
        code=script_code("export_model"),
    output:
        keras="results/export/model.keras",
        saved_model=directory("results/export/saved_model"),
        litert="results/export/model.tflite",
        classes="results/export/classes.json",
        metadata="results/export/metadata.json",
        readme="results/export/README.md",
    log:
        "logs/export_model.log",
    benchmark:
        "benchmarks/export_model.tsv"
    threads: 2
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/export_model.py"
