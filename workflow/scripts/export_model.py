import stage  # noqa: F401
from cifarflow.backend import software_versions, use_tensorflow
from cifarflow.runlog import logged
from cifarflow.fileio import load_json, save_json
from cifarflow.splits import load_split

with logged(snakemake.log[0]):
    use_tensorflow("the SavedModel export")
    from cifarflow.export import export_metadata, export_model

    out = snakemake.output
    selection = load_json(snakemake.input.selection)
    classes = load_json(snakemake.input.classes)
    images, _ = load_split(snakemake.input.val)
    exported = export_model(snakemake.input.model, selection["tta"], out.keras, out.saved_model,
                            check_images=images[:snakemake.params.check_images], temperature=selection["temperature"])
    save_json(out.classes, classes)
    save_json(out.metadata, export_metadata(selection, classes, load_json(snakemake.input.stats), exported, software_versions(),
                                              images.shape[1:]))
    print(f"exported {selection['variant']} (test-time augmentation {selection['tta']}, temperature "
          f"{selection['temperature']:.4f}, both in the model) to {out.keras} and {out.saved_model}")
