import os
import sys

import stage  # noqa: F401
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    import papermill
    from jupyter_client.kernelspec import KernelSpecManager

    # "python3" must be the interpreter running this script (the one with the workflow's packages): jupyter_client
    # runs a kernel spec whose command is plain "python" with sys.executable, which is what ipykernel installs.
    kernel = snakemake.params.kernel
    spec = KernelSpecManager().get_kernel_spec(kernel)
    if spec.argv[0] not in ("python", "python3", f"python3.{sys.version_info.minor}", sys.executable):
        raise ValueError(f"the Jupyter kernel {kernel!r} ({spec.resource_dir}) runs {spec.argv[0]}, not this "
                         f"Python ({sys.executable}); remove that kernel spec or run: {sys.executable} -m ipykernel "
                         f"install --sys-prefix")
    parameters = dict(snakemake.params.parameters)
    parameters.update({name: str(path) if isinstance(path, str) else list(map(str, path))
                       for name, path in snakemake.input.items() if name not in ("notebook", "code")})
    print(f"executing {snakemake.input.notebook} with kernel {kernel} ({sys.executable}) and {parameters}", flush=True)
    papermill.execute_notebook(
        snakemake.input.notebook,
        snakemake.output.notebook,
        parameters=parameters,
        kernel_name=kernel,
        cwd=os.getcwd(),
        progress_bar=False,
        log_output=True,
        request_save_on_cell_execute=False,
    )
