"""`cifarflow predict` on image files of all kinds, with the tiny study's selected model."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cifarflow.export.predict import find_images, load_image
from conftest import REPO
from floats import NETWORK_ULPS, assert_float32_close, other_kernel_path

CONSOLE_SCRIPT = Path(sys.executable).with_name("cifarflow")


def cifarflow(*args: str, cwd: Path | None = None, env: dict | None = None, **options) -> subprocess.CompletedProcess:
    """Run the installed console script (or the module, where the package is not installed), with ``env`` added to
    the environment; ``options`` go to subprocess.run (the default: stdout and stderr captured as text)."""
    command = [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "cifarflow.cli"]
    env = dict(os.environ, PYTHONPATH=str(REPO / "workflow"), **(env or {}))
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **options}
    return subprocess.run(command + list(args), cwd=cwd, env=env, timeout=300, **options)


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).set_index("path")


@pytest.fixture(scope="module")
def png_folder(tiny_study, tmp_path_factory) -> Path:
    """The tiny study's test images as 32x32 PNG files, named by their index in the test split."""
    folder = tmp_path_factory.mktemp("png_folder")
    with np.load(tiny_study / "results/data/test.npz") as data:
        for i, image in enumerate(data["images"]):
            Image.fromarray(image).save(folder / f"test_{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def mixed_folder(tiny_study, tmp_path_factory) -> Path:
    """Images of several sizes, modes and formats, made from test images."""
    folder = tmp_path_factory.mktemp("mixed")
    with np.load(tiny_study / "results/data/test.npz") as data:
        images = data["images"][:6]
    rgb = [Image.fromarray(image) for image in images]
    rgb[0].resize((96, 64), Image.Resampling.BICUBIC).save(folder / "rgb_96x64.jpg", quality=90)
    rgb[1].convert("L").resize((50, 50)).save(folder / "gray_50x50.png")
    rgb[2].convert("L").save(folder / "gray_32x32.jpg")
    rgba = rgb[3].convert("RGBA")
    rgba.putalpha(Image.fromarray(np.where(np.arange(32) < 16, 255, 80).astype(np.uint8)[None, :].repeat(32, 0)))
    rgba.resize((40, 40)).save(folder / "rgba_40x40.png")
    rgb[4].convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(folder / "palette_32x32.png")
    rgb[5].resize((20, 28)).save(folder / "rgb_20x28.JPEG")
    (folder / "sub").mkdir()
    rgb[0].save(folder / "sub" / "nested.png")
    (folder / "readme.txt").write_text("not an image, and skipped when the folder is searched")
    return folder


def test_help_is_instant_and_imports_nothing_heavy():
    """`--help` and argument parsing must not import numpy or TensorFlow (they take seconds)."""
    code = ("import sys\nfrom cifarflow import cli\n"
            "for argv in (['--help'], ['predict', '--help']):\n"
            "    try:\n        cli.main(argv)\n    except SystemExit as exit:\n        assert exit.code == 0\n"
            "heavy = {'numpy', 'tensorflow', 'keras', 'PIL', 'ai_edge_litert'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO / "workflow")), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "bicubic" in result.stdout and "--csv" in result.stdout
    assert cifarflow("--help").returncode == 0


def test_predictions_on_test_pngs_equal_the_pipeline(tiny_study, png_folder, tmp_path):
    out = tmp_path / "predictions.csv"
    result = cifarflow("predict", str(png_folder), "--csv", str(out), "--top-k", "2", cwd=tiny_study)
    assert result.returncode == 0, result.stderr
    table = read_csv(out)
    assert len(table) == 50 and table["mode"].eq("RGB").all() and table["width"].eq(32).all()
    stored = pd.read_csv(tiny_study / "results/test/predictions.csv").set_index("index")
    index = [int(Path(p).stem.split("_")[1]) for p in table.index]
    assert_float32_close(table.filter(like="p_").to_numpy(), stored.loc[index].filter(like="p_").to_numpy(), ulps=NETWORK_ULPS)
    assert table["predicted"].tolist() == stored.loc[index, "predicted"].tolist()
    lines = result.stdout.splitlines()
    assert len(lines) == 50
    first = Path(table.index[0])
    assert lines[0].startswith(f"{first}: {table.loc[str(first), 'predicted']} ") and lines[0].count(",") == 1


def test_images_of_every_size_and_mode(tiny_study, mixed_folder, tmp_path):
    out = tmp_path / "mixed.csv"
    files = [mixed_folder / "rgb_96x64.jpg", mixed_folder / "palette_32x32.png"]  # files and a folder together
    result = cifarflow("predict", *map(str, files), str(mixed_folder / "sub"), str(mixed_folder),
                       "--csv", str(out), "-k", "3", cwd=tiny_study)
    assert result.returncode == 0, result.stderr
    table = read_csv(out)
    assert len(table) == 2 + 1 + 7  # the folder holds 6 images and one in sub/; readme.txt is skipped
    named = table.reset_index().assign(name=lambda t: t["path"].map(lambda p: Path(p).name))
    by_name = named.drop_duplicates("name").set_index("name")
    assert by_name.loc["gray_50x50.png", "mode"] == "L" and by_name.loc["gray_50x50.png", "width"] == 50
    assert by_name.loc["rgba_40x40.png", "mode"] == "RGBA"
    assert by_name.loc["palette_32x32.png", "mode"] == "P"
    assert (by_name.loc["rgb_96x64.jpg", "width"], by_name.loc["rgb_96x64.jpg", "height"]) == (96, 64)
    classes = json.loads((tiny_study / "results/data/classes.json").read_text())
    assert set(table["predicted"]) <= set(classes)
    assert_float32_close(table.filter(like="p_").sum(axis=1), np.ones(len(table)), ulps=NETWORK_ULPS)
    assert all(line.count(",") == 2 for line in result.stdout.splitlines())


def test_bad_inputs_are_reported_and_the_others_classified(tiny_study, png_folder, tmp_path):
    good = png_folder / "test_000.png"
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is text, not a PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:120])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    folder_named_like_an_image = tmp_path / "folder.png"
    folder_named_like_an_image.mkdir()
    missing = tmp_path / "missing.jpg"
    out = tmp_path / "out.csv"
    bad = [not_an_image, truncated, empty, folder_named_like_an_image, missing]
    result = cifarflow("predict", str(good), *map(str, bad), "--csv", str(out), cwd=tiny_study)
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    for path in bad:
        assert any(line.startswith(f"cifarflow predict: {path}: ") for line in errors), (path, result.stderr)
    assert f"{not_an_image}: not an image file" in result.stderr
    assert f"{missing}: no such file or folder" in result.stderr
    assert "1 image(s) classified, 5 input(s) failed" in result.stderr
    assert list(read_csv(out).index) == [str(good)]
    assert result.stdout.startswith(f"{good}: ")


def test_a_wheel_of_the_project_holds_every_module_of_the_package(tmp_path):
    """`pip install .` (not only the README's editable install) gives the whole package, its stage folders included."""
    source = tmp_path / "source"
    shutil.copytree(REPO / "workflow/cifarflow", source / "workflow/cifarflow",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "wheel")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "wheel").glob("cifarflow-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = {name for name in archive.namelist() if name.startswith("cifarflow/") and name.endswith(".py")}
    modules = {path.relative_to(REPO / "workflow").as_posix() for path in (REPO / "workflow/cifarflow").rglob("*.py")}
    assert packaged == modules and "cifarflow/export/predict.py" in packaged


def test_nothing_readable_fails_without_loading_a_model(tmp_path):
    result = cifarflow("predict", str(tmp_path / "nothing.png"), cwd=tmp_path)
    assert result.returncode == 1 and "no such file or folder" in result.stderr


def test_missing_model_is_a_usage_error(tmp_path, png_folder):
    result = cifarflow("predict", "--run-dir", str(tmp_path), str(png_folder / "test_000.png"))
    assert result.returncode == 2 and "no model in" in result.stderr


def test_the_portable_path_imports_no_tensorflow(tiny_study, png_folder, tmp_path):
    """The default path runs the export's model.tflite in the LiteRT runtime: neither TensorFlow nor Keras (nor JAX)
    is imported, not even with --csv."""
    code = ("import sys\nfrom cifarflow import cli\n"
            f"code = cli.main(['predict', {str(png_folder)!r}, '--csv', {str(tmp_path / 'out.csv')!r}, '-q'])\n"
            "assert code == 0, code\n"
            "assert 'ai_edge_litert' in sys.modules\n"
            "heavy = {'tensorflow', 'keras', 'jax'} & {name.split('.')[0] for name in sys.modules}\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tiny_study,
                            env=dict(os.environ, PYTHONPATH=str(REPO / "workflow")), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # nor the runtime's notices
    assert len(read_csv(tmp_path / "out.csv")) == 50


@pytest.mark.parametrize("kernels", ["this CPU's", "another CPU's"])
@pytest.mark.parametrize("model", ["results/export/saved_model", "results/selection/best_model.keras",
                                   "results/export/model.keras", "results/export/model.tflite"])
def test_other_model_files_give_the_same_predictions(tiny_study, png_folder, tmp_path, model, kernels):
    """A SavedModel folder, the selection's bare model (its flip averaging applied from selection.json), the export's
    Keras file or its LiteRT file, each named with --model; also on the TensorFlow CPU kernels this machine does not
    take by default, as a user's other CPU computes them (the pipeline's predictions came from this CPU's)."""
    out = tmp_path / "out.csv"
    env = other_kernel_path() if kernels == "another CPU's" else {}
    result = cifarflow("predict", "--model", str(tiny_study / model), str(png_folder), "--csv", str(out), "-q", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    table = read_csv(out)
    stored = pd.read_csv(tiny_study / "results/test/predictions.csv").sort_values("index")
    assert_float32_close(table.filter(like="p_").to_numpy(), stored.filter(like="p_").to_numpy(), ulps=NETWORK_ULPS)


def test_portable_and_keras_paths_agree_on_a_folder(tiny_study, mixed_folder, tmp_path):
    """The default (LiteRT) and --backend keras on images of every size and mode: the same top classes, the same
    printed lines, probabilities equal to float32 round-off."""
    runs = {}
    for backend in ("litert", "keras"):
        out = tmp_path / f"{backend}.csv"
        options = ["--backend", "keras"] if backend == "keras" else []
        result = cifarflow("predict", str(mixed_folder), "--csv", str(out), *options, cwd=tiny_study)
        assert result.returncode == 0, result.stderr
        runs[backend] = result.stdout, read_csv(out)
    (litert_lines, litert), (keras_lines, keras) = runs["litert"], runs["keras"]
    assert len(litert) == 7 and list(litert.index) == list(keras.index)
    assert litert["predicted"].tolist() == keras["predicted"].tolist()
    assert litert.drop(columns=litert.filter(like="p_").columns.tolist() + ["confidence"]).equals(
        keras.drop(columns=keras.filter(like="p_").columns.tolist() + ["confidence"]))
    assert_float32_close(litert.filter(like="p_").to_numpy(), keras.filter(like="p_").to_numpy(), ulps=NETWORK_ULPS)
    assert [line.split(": ")[1].split(" ")[0] for line in litert_lines.splitlines()] == litert["predicted"].tolist()
    assert [line.split(" ")[0] for line in litert_lines.splitlines()] == [line.split(" ")[0] for line in keras_lines.splitlines()]


def test_a_model_for_the_other_backend_is_a_usage_error(tiny_study, png_folder):
    result = cifarflow("predict", "--backend", "litert", "--model", str(tiny_study / "results/export/model.keras"),
                       str(png_folder / "test_000.png"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().endswith("is a keras model, not one for --backend litert "
                                          "(LiteRT runs .tflite files, Keras .keras files and SavedModel folders)")
    broken = png_folder.parent / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    result = cifarflow("predict", "--model", str(broken), str(png_folder / "test_000.png"))
    assert result.returncode == 2 and result.stderr.startswith(f"cifarflow predict: cannot load the LiteRT model {broken}: ")
    assert len(result.stderr.splitlines()) == 1


def test_progress_line_on_a_terminal(tiny_study, png_folder):
    """With stderr on a terminal, a progress line counts the images (redrawn in place, cleared at the end); the
    per-image lines on stdout are unchanged."""
    import pty

    terminal, stderr = pty.openpty()
    result = cifarflow("predict", str(png_folder), "--batch-size", "16", cwd=tiny_study, stdout=subprocess.PIPE,
                       stderr=stderr, text=True)
    os.close(stderr)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the terminal's other end is closed: all read
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 50
    text = shown.decode()
    assert f"[{'#' * 30}] 50/50 images, " in text and "/s, 0 s left" in text
    assert text.endswith("\r\033[K")  # the line is cleared once done
    assert "Traceback" not in text


def test_decompression_bombs_are_refused(tiny_study, png_folder, tmp_path):
    """A PNG whose header declares 20,000 x 20,000 pixels (a few bytes on disk) is refused before it is decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))
    result = cifarflow("predict", str(bomb), str(png_folder / "test_000.png"), cwd=tiny_study)
    assert result.returncode == 1
    assert f"cifarflow predict: {bomb}: cannot read image: " in result.stderr and "decompression bomb" in result.stderr
    assert result.stdout.startswith(f"{png_folder / 'test_000.png'}: ") and len(result.stdout.splitlines()) == 1


# --- image conversion, without a model -------------------------------------------------------------------------


def test_transparency_is_composited_on_white(tmp_path):
    image = np.zeros((32, 32, 4), dtype=np.uint8)
    image[..., 0] = 200
    image[:, 16:, 3] = 255  # left half fully transparent, right half opaque red
    Image.fromarray(image, "RGBA").save(tmp_path / "a.png")
    array, info = load_image(tmp_path / "a.png", 32)
    assert info["mode"] == "RGBA" and array.shape == (32, 32, 3) and array.dtype == np.uint8
    assert (array[:, :16] == 255).all() and (array[:, 16:] == [200, 0, 0]).all()


def test_grayscale_palette_and_16_bit(tmp_path):
    gray = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64
    Image.fromarray(gray).save(tmp_path / "gray16.png")
    array, info = load_image(tmp_path / "gray16.png", 32)
    assert info["mode"].startswith("I") and array.shape == (32, 32, 3)
    assert (array[..., 0] == array[..., 1]).all() and array.max() >= 250  # 16-bit scaled to 8-bit, not clipped
    rgb = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(tmp_path / "p.png")
    assert (load_image(tmp_path / "p.png", 32)[0] == np.asarray(palette.convert("RGB"))).all()


def test_resize_crops_the_centre_square_or_stretches(tmp_path):
    wide = np.zeros((32, 96, 3), dtype=np.uint8)
    wide[:, 32:64] = 255  # white centre square between black sides
    Image.fromarray(wide).save(tmp_path / "wide.png")
    cropped, _ = load_image(tmp_path / "wide.png", 32, fit="crop")
    stretched, _ = load_image(tmp_path / "wide.png", 32, fit="stretch")
    assert cropped.shape == stretched.shape == (32, 32, 3)
    assert cropped.min() == 255  # only the centre square is left
    assert stretched[:, 0].max() < 10 and stretched[:, 16].min() > 245
    rgb = np.random.default_rng(1).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "exact.png")
    assert (load_image(tmp_path / "exact.png", 32)[0] == rgb).all()  # 32x32 RGB passes unchanged


def test_find_images(tmp_path):
    (tmp_path / "b.PNG").write_bytes(b"")
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    files, errors = find_images([str(tmp_path), str(tmp_path / "notes.txt"), str(tmp_path / "empty"), str(tmp_path / "nope")])
    assert files == [tmp_path / "a.jpg", tmp_path / "b.PNG", tmp_path / "notes.txt"]
    assert [e[0] for e in errors] == [str(tmp_path / "empty"), str(tmp_path / "nope")]
