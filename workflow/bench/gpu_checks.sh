#!/usr/bin/env bash
# GPU checks on a lent machine that has JAX with CUDA but no TensorFlow: the pipeline's own training code runs
# there under Keras's JAX backend. Usage: gpu_checks.sh ARCHIVE SHA256 OUTDIR [WHEELS_DIR] [EPOCHS]
#   1. builds the splits from the archive with the pipeline's data functions;
#   2. fast94 and fast alone (clean timings), then the seed's variants side by side, all at the config's budget
#      (EPOCHS overrides it, for a quick trial run).
set -euo pipefail
archive=$1 sha=$2 out=$3 wheels=${4:-} epochs=${5:-}
here=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
if [ -n "$wheels" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$wheels"/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$here/workflow${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=${KERAS_BACKEND:-jax}
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
data=$out/data
echo "$sha  $archive" | sha256sum -c -
python3 - "$archive" "$data" <<'PY'
import sys, time
from pathlib import Path
from cifarflow.data.archive import load_batches
from cifarflow.data.datasets import get_dataset
from cifarflow.fileio import save_json, save_npz
from cifarflow.data.splits import channel_stats, split_batches
started = time.monotonic()
spec = get_dataset("cifar10")
batches, names = load_batches(Path(sys.argv[1]), spec)
out = Path(sys.argv[2])
for split, batch in split_batches(batches, spec, ["data_batch_1"], 0).items():
    save_npz(out / f"{split}.npz", images=batch.images, labels=batch.labels)
    if split == "train":
        save_json(out / "normalization.json", channel_stats(batch.images))
save_json(out / "classes.json", names)
print(f"splits ready in {time.monotonic() - started:.1f} s")
PY
bench="python3 $here/workflow/bench/bench.py --config $here/config.yaml --data $data ${epochs:+--epochs $epochs} --threads 4"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
$bench --variants fast94 fast --target 0.94 --json "$out/fast.json" --log "$out/fast.log"
seed="model1 model2 model3 model3_l2_0 model3_l2_5e-5 model3_l2_5e-4 model3_l2_0.05 model3_dropout model3_l2_5e-4_dropout"
for variant in $seed; do
  $bench --variants "$variant" --target 0.75 --json "$out/seed_$variant.json" --log "$out/seed.log" &
done
wait
python3 - "$out" <<'PY'
import json, sys
from pathlib import Path
rows = []
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    rows += json.loads(path.read_text())["results"]
for row in rows:  # the time-to-accuracy of the protocol: training seconds and test accuracy when validation first met the target
    reached = row.pop("at_target", None) or {}
    row["seconds_to_target"], row["test_at_target"] = reached.get("seconds"), reached.get("test_accuracy")
keys = ["variant", "images_per_second", "epochs", "training_seconds", "seconds_to_target", "test_at_target", "target",
        "val_accuracy", "val_log_loss", "test_accuracy", "test_log_loss", "peak_rss_mb"]
print("\t".join(keys))
for row in rows:
    print("\t".join(f"{row.get(k):.4f}" if isinstance(row.get(k), float) else str(row.get(k)) for k in keys))
PY
