# Runs where snakemake runs: cluster nodes often have no internet.
localrules:
    download,


rule download:
    input:
        code=script_code("download"),
    output:
        archive=archive_path(),
    log:
        "logs/download.log",
    params:
        source=archive_source(),
        md5=archive_checksum()[0],
        sha256=archive_checksum()[1],
        retries=config["download_retries"],
        timeout=config["download_timeout"],
    conda:
        "../envs/data.yaml"
    script:
        "../workflow/scripts/download.py"


rule unpack:
    input:
        archive=rules.download.output.archive,
        code=script_code("unpack"),
    output:
        batches=raw_batches(),
        classes="results/data/classes.json",
    log:
        "logs/unpack.log",
    benchmark:
        "benchmarks/unpack.tsv"
    params:
        dataset=DATASET.name,
        label_mode=config["cifar100_labels"],
    conda:
        "../envs/data.yaml"
    script:
        "../workflow/scripts/unpack.py"


rule normalize:
    input:
        batches=rules.unpack.output.batches,
        code=script_code("normalize"),
    output:
        train="results/data/train.npz",
        val="results/data/val.npz",
        test="results/data/test.npz",
        stats="results/data/normalization.json",
    log:
        "logs/normalize.log",
    benchmark:
        "benchmarks/normalize.tsv"
    params:
        dataset=DATASET.name,
        validation_batches=config["validation_batches"],
        validation_size=config["validation_size"],
    conda:
        "../envs/data.yaml"
    script:
        "../workflow/scripts/normalize.py"
