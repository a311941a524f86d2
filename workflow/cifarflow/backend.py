"""Where and how a stage computes, decided once, before Keras is imported: the Keras backend, the GPU (a share of
one), the CPU threads; then seeds, determinism and precision once the framework runs.

Every stage starts with its GPUs hidden (``hide_gpus``), so a stage that evaluates or exports a model never holds
a GPU. A training claims a GPU share first (``prepare_training``): an exclusive ``flock`` on one of
``shares_per_gpu`` lock files per GPU under ``.cifarflow/gpu-locks/`` in the working directory. The kernel drops
the lock when the process ends, however it ends (a crash or ``kill -9`` included); when every share is taken the
training waits for one. It then sees only its GPU (``CUDA_VISIBLE_DEVICES``), and the frameworks allocate GPU
memory as they need it instead of taking it all (``TF_FORCE_GPU_ALLOW_GROWTH``, ``XLA_PYTHON_CLIENT_PREALLOCATE``).
"""

import fcntl
import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .errors import StageError

KERAS_BACKENDS = ("tensorflow", "jax")
LOCK_ROOT = Path(".cifarflow/gpu-locks")
SCHEDULER_GPU_VARIABLES = ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS")
CPU_ONLY_BUILD_HINT = {
    "tensorflow": "tensorflow-cpu installed? with --sdm conda set train_env: gpu, else install tensorflow[and-cuda]==2.21.0",
    "jax": "a CPU-only jaxlib? install jax[cuda12]==0.10.2",
}

# What this process was set up with; the train script writes it to training.json.
SETUP: dict = {}
_GPUS_BEFORE_HIDING: list[str | None] = []  # CUDA_VISIBLE_DEVICES as the process found it (None: not set)


def usable_threads(requested: int) -> int:
    """Threads for the framework: what Snakemake gave the job (``threads``), at most the CPUs this process may run on."""
    return max(1, min(int(requested), len(os.sched_getaffinity(0))))


def hide_gpus() -> None:
    """Make every GPU invisible to this process (each stage starts so); ``visible_gpus`` still knows them."""
    if not _GPUS_BEFORE_HIDING:
        _GPUS_BEFORE_HIDING.append(os.environ.get("CUDA_VISIBLE_DEVICES"))
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


def visible_gpus(configured: list | None = None) -> list[str]:
    """The GPUs a training may use: ``configured`` ids if given, else those the environment (a scheduler) made
    visible with ``CUDA_VISIBLE_DEVICES``, else every GPU ``nvidia-smi -L`` lists; found without any framework."""
    if configured is not None:
        return [str(gpu) for gpu in configured]
    visible = _GPUS_BEFORE_HIDING[0] if _GPUS_BEFORE_HIDING else os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [gpu.strip() for gpu in visible.split(",") if gpu.strip() and gpu.strip() != "-1"]
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [match.group(1) for match in re.finditer(r"^GPU (\d+):", listing, re.MULTILINE)]


def lock_folder(root: Path = LOCK_ROOT) -> Path:
    """One folder per host (and per SLURM allocation): GPU ids mean different GPUs there."""
    job = os.environ.get("SLURM_JOB_ID")
    return Path(root) / (socket.gethostname() + (f"-slurm{job}" if job else ""))


@dataclass
class GpuShare:
    gpu: str
    share: int  # 1 .. shares_per_gpu
    shares_per_gpu: int
    lock: Path
    handle: IO = field(repr=False)

    def release(self) -> None:
        self.handle.close()


def claim_gpu_share(gpus: list[str], shares_per_gpu: int, folder: Path, poll_seconds: float = 1.0) -> GpuShare:
    """Take a free share (first share 1 of every GPU, then share 2...), waiting while all are taken."""
    folder.mkdir(parents=True, exist_ok=True)
    slots = [(gpu, share) for share in range(1, shares_per_gpu + 1) for gpu in gpus]
    waiting_since = None
    while True:
        for gpu, share in slots:
            path = folder / f"gpu{re.sub(r'[^A-Za-z0-9._-]', '_', gpu)}-share{share}.lock"
            handle = open(path, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.truncate(0)
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            if waiting_since is not None:
                print(f"GPU share free after {time.monotonic() - waiting_since:.0f} s of waiting", flush=True)
            return GpuShare(gpu, share, shares_per_gpu, path, handle)
        if waiting_since is None:
            waiting_since = time.monotonic()
            print(f"all {len(slots)} GPU shares ({len(gpus)} GPU(s) x {shares_per_gpu}) are taken: waiting for one "
                  f"(locks in {folder})", flush=True)
        time.sleep(poll_seconds)


def _check_not_imported(keras_backend: str) -> None:
    if keras_backend not in KERAS_BACKENDS:
        raise StageError(f"unknown keras_backend {keras_backend!r}; use one of {', '.join(KERAS_BACKENDS)}")
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != keras_backend:
        raise StageError(f"Keras was imported with the {sys.modules['keras'].backend.backend()} backend before "
                         f"{keras_backend} was chosen")
    if importlib.util.find_spec(keras_backend) is None:
        raise StageError(f"keras_backend is {keras_backend}, which is not installed here: install it "
                         f"(jax: pip install jax==0.10.2) or set keras_backend: tensorflow")


def _framework_environment(keras_backend: str, on_gpu: bool, threads: int | None = None) -> None:
    os.environ["KERAS_BACKEND"] = keras_backend
    os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"  # also under JAX: Keras may start TensorFlow for its data tools
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    if threads:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = str(min(2, threads))
    if not on_gpu:
        os.environ["JAX_PLATFORMS"] = "cpu"


def use_backend(keras_backend: str) -> None:
    """For a stage other than training: the study's Keras backend, on the CPU (GPUs stay hidden)."""
    _check_not_imported(keras_backend)
    _framework_environment(keras_backend, on_gpu=False)
    print(f"Keras backend: {keras_backend}, on the CPU (GPUs are left to the trainings)", flush=True)


def use_tensorflow(purpose: str) -> None:
    """For a stage that needs TensorFlow itself, whatever backend trained the models."""
    if importlib.util.find_spec("tensorflow") is None:
        raise StageError(f"{purpose} needs TensorFlow, which is not installed here (pip install tensorflow-cpu==2.21.0); "
                         "the trained models and every other stage run without it")
    _check_not_imported("tensorflow")
    _framework_environment("tensorflow", on_gpu=False)
    print(f"Keras backend: tensorflow, on the CPU, for {purpose}", flush=True)


def prepare_training(keras_backend: str, threads: int, gpu: dict, lock_root: Path = LOCK_ROOT) -> int:
    """Choose the backend, take a GPU share when there are GPUs, cap the threads; returns the threads to use.
    Must run before Keras is imported."""
    _check_not_imported(keras_backend)
    used = usable_threads(threads)
    print(f"threads: {used} (Snakemake gave the job {threads}; this process may run on "
          f"{len(os.sched_getaffinity(0))} CPU(s))", flush=True)
    gpus = visible_gpus(gpu.get("devices"))
    share = claim_gpu_share(gpus, gpu.get("shares_per_gpu", 1), lock_folder(lock_root)) if gpus else None
    os.environ["CUDA_VISIBLE_DEVICES"] = share.gpu if share else ""
    if share:
        print(f"GPU share: GPU {share.gpu}, share {share.share} of {share.shares_per_gpu} (lock {share.lock}); "
              f"CUDA_VISIBLE_DEVICES={share.gpu}", flush=True)
    else:
        print("no GPU found: training on the CPU", flush=True)
    _framework_environment(keras_backend, bool(share), used)
    SETUP.clear()
    SETUP.update(keras_backend=keras_backend, threads=used, threads_requested=int(threads),
                 gpu_share=None if share is None else {"gpu": share.gpu, "share": share.share,
                                                       "shares_per_gpu": share.shares_per_gpu, "lock": str(share.lock)},
                 _share=share)  # held until the process ends
    return used


def backend_record() -> dict:
    """What training.json records of the set-up: backend, threads, GPU share, device found."""
    return {key: value for key, value in SETUP.items() if not key.startswith("_")}


def configure_backend(threads: int, seed: int, deterministic: bool, mixed_precision: bool) -> str:
    """Set threads, seeds and precision before any op runs; return the device used ('GPU' or 'CPU')."""
    import keras

    threads = usable_threads(threads)
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
        except RuntimeError:  # TensorFlow already started in this process (tests); threads stay as they were
            pass
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        gpus = tf.config.list_physical_devices("GPU")
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else None
    else:
        import jax

        gpus = [device for device in jax.devices() if device.platform == "gpu"]
        name = gpus[0].device_kind if gpus else None
        cpus = len(os.sched_getaffinity(0))
        if not gpus and threads < cpus:  # XLA sizes its CPU pool by the affinity only
            print(f"note: JAX computes on all {cpus} CPUs this process may run on, not {threads} threads", flush=True)
    device = "GPU" if gpus else "CPU"
    print(f"device: {name or 'CPU'} ({keras.backend.backend()})", flush=True)
    SETUP.update(device=device, device_name=name, keras_backend=keras.backend.backend(), cpu=cpu_description())
    SETUP.pop("gpu_unused", None)
    share = SETUP.get("gpu_share")
    scheduled = [f"{variable}={os.environ[variable]}" for variable in SCHEDULER_GPU_VARIABLES if os.environ.get(variable)]
    given = f"GPU share {share['gpu']}" if share else (scheduled[0] if scheduled else None)
    if given and not gpus:
        SETUP["gpu_unused"] = f"this job was given a GPU ({given}) but {keras.backend.backend()} finds none: training on the CPU"
        print(f"WARNING: {SETUP['gpu_unused']} ({CPU_ONLY_BUILD_HINT[keras.backend.backend()]})", flush=True)
    bfloat16 = mixed_precision and (device == "GPU" or cpu_has_bfloat16())
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if bfloat16 else "float32")
    return device


def configure_training(recipe, threads: int) -> str:
    """``configure_backend`` with a training recipe's seed, determinism and precision; returns the device ('GPU' or
    'CPU')."""
    return configure_backend(threads, recipe.train.seed, recipe.deterministic, recipe.train.mixed_precision)


def software_versions() -> dict:
    """Python, the Keras backend and the packages that computed the results, with the platform."""
    import importlib.metadata
    import platform

    import keras

    versions = {"python": sys.version.split()[0], "keras_backend": keras.backend.backend(),
                "platform": platform.platform(), "processor": platform.machine()}
    backend = keras.backend.backend()
    versions[backend] = importlib.import_module(backend).__version__
    for package in ("keras", "numpy", "scikit-learn"):
        versions[package] = importlib.metadata.version(package)
    return versions


def cpu_description() -> dict:
    """The CPU's model name and the widest vector instructions it has (the float32 results differ in their last
    bits between AVX-512 and AVX2 kernels), with oneDNN's cap where ONEDNN_MAX_CPU_ISA or TF_ENABLE_ONEDNN_OPTS set one."""
    import platform

    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), []))
    if "avx512f" in flags:
        isa = "AVX-512" + (" with BF16" if "avx512_bf16" in flags else "")
    elif "avx2" in flags:
        isa = "AVX2" + (" + FMA" if "fma" in flags else "")
    else:
        isa = "no AVX2"
    caps = [f"{name}={os.environ[name]}" for name in ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS") if os.environ.get(name)]
    return {"model": model, "cores": os.cpu_count(), "isa": isa, "kernel_cap": ", ".join(caps) or None}


def cpu_has_bfloat16() -> bool:
    """Whether the CPU computes in bfloat16 natively (AVX512-BF16 or AMX): there bfloat16 convolutions are
    about twice as fast as float32; elsewhere they are emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))
