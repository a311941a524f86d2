from pathlib import Path

import stage  # noqa: F401
from cifarflow.backend import software_versions, use_tensorflow
from cifarflow.runlog import logged
from cifarflow.fileio import load_json, load_split, save_json

with logged(snakemake.log[0]):
    use_tensorflow("the SavedModel and LiteRT export")
    from cifarflow.export.export import export_metadata, export_model
    from cifarflow.export.readme import export_readme

    out = snakemake.output
    selection = load_json(snakemake.input.selection)
    classes = load_json(snakemake.input.classes)
    images, _ = load_split(snakemake.input.test)  # every test image: each exported file must reproduce them all
    exported = export_model(snakemake.input.model, selection["tta"], out.keras, out.saved_model, out.litert,
                            check_images=images, temperature=selection["temperature"])
    save_json(out.classes, classes)
    metadata = export_metadata(selection, classes, load_json(snakemake.input.stats), exported, software_versions(),
                               images.shape[1:])
    Path(out.readme).write_text(export_readme(metadata))
    save_json(out.metadata, metadata)
    print(f"exported {selection['variant']} (test-time augmentation {selection['tta']}, temperature "
          f"{selection['temperature']:.4f}, both in the model) to {out.keras}, {out.saved_model} and {out.litert}")
