from pathlib import Path

import stage  # noqa: F401
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    import nbformat
    from nbconvert import HTMLExporter

    # The report shows the narrative (the code stays in the executed notebook unless asked for); the template is
    # JupyterLab's without its CDN scripts, so the page loads nothing from the network.
    exporter = HTMLExporter(template_file=str(Path(snakemake.input.template).resolve()),
                            exclude_input=not snakemake.params.show_code,
                            exclude_input_prompt=True, exclude_output_prompt=True)
    notebook = nbformat.read(snakemake.input.notebook, as_version=4)
    notebook.metadata["title"] = snakemake.params.title
    body, _ = exporter.from_notebook_node(notebook)
    Path(snakemake.output.html).write_text(body)
    print(f"{len(body):,} characters of HTML")
