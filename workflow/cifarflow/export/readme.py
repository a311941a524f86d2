"""results/export/README.md: what the exported files are, how they were checked and how to run them; the model
card shows the same files and example."""

from ..markdown import table


def human_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def exported_files(export: dict) -> str:
    """The exported model's files (format, size, what runs them) and how they were checked, as Markdown."""
    sizes, check = export["sizes"], export["check"]
    rows = [["`model.tflite`", f"LiteRT ({export['litert']['format']})", human_size(sizes["litert"]),
             f"{export['litert']['runtime']}, no TensorFlow; C++, Java, mobile"],
            ["`model.keras`", "Keras 3", human_size(sizes["keras"]), "`keras.models.load_model`"],
            ["`saved_model/`", "TensorFlow SavedModel", human_size(sizes["saved_model"]), "`tf.saved_model.load(...).serve`"],
            ["`classes.json`", "JSON list", "", "the class names, in the order of the output"]]
    differences = ", ".join(f"{fmt} {difference:.1e}" for fmt, difference in check["max_abs_difference"].items())
    same = ", ".join(f"{fmt} {count:,}" for fmt, count in check["same_top_class"].items())
    return (table(["file", "format", "size", "runs with"], rows) + "\n\n"
            f"Each model file was checked at export against the pipeline's predictions on all {check['images']:,} "
            f"{check['split']} images: largest probability difference {differences} (at most {check['tolerance']:g} "
            f"allowed); same top class on {same} of {check['images']:,} (all required).")


def litert_example(height: int, width: int) -> str:
    """A Python example that classifies cat.png with model.tflite and classes.json, using numpy, Pillow and the LiteRT
    runtime only (cifarflow predict's preprocessing for an RGB picture)."""
    return f"""```python
import json
import numpy as np
from PIL import Image, ImageOps
from ai_edge_litert.interpreter import Interpreter

classes = json.load(open("classes.json"))
image = ImageOps.fit(Image.open("cat.png").convert("RGB"), ({width}, {height}), Image.Resampling.BICUBIC)
batch = np.asarray(image, dtype=np.uint8)[np.newaxis]  # shape (1, {height}, {width}, 3), values 0-255
classify = Interpreter(model_path="model.tflite").get_signature_runner()
probabilities = classify(image=batch)["output_0"][0]
for i in np.argsort(-probabilities)[:3]:
    print(f"{{classes[i]}} {{probabilities[i]:.3f}}")
```"""


def export_readme(metadata: dict) -> str:
    """results/export/README.md: what the exported files are and how to use them, from the export's metadata."""
    height, width, channels = metadata["input"]["shape"][1:]
    n_classes = len(metadata["classes"])
    return f"""# `{metadata['variant']}`: an image classifier for {n_classes} classes

Input: RGB images as `uint8` (0-255), shape `(N, {height}, {width}, {channels})`, with no preprocessing (the model
normalizes them itself). Output: `(N, {n_classes})` {metadata['output']['meaning']}. `model_card.md` says how the
model was trained, how well it does and where it fails; `metadata.json` holds these facts for programs.

{exported_files(metadata)}

## Use it from Python, without TensorFlow

`pip install numpy pillow ai-edge-litert`, then, in this folder, for a picture `cat.png` of any size (its centre
square is resized to {width}×{height}):

{litert_example(height, width)}

The same file runs with LiteRT's C++, Java/Kotlin and mobile runtimes; or, in a cifarflow checkout,
`cifarflow predict --model model.tflite IMAGES_OR_FOLDERS`.
"""
