"""The report: every figure of the tiny study is a valid image, `snakemake --report` builds a page that headless
Chromium renders offline with every category, figure and the notebook listed, and a report-only setting reruns
only report rules."""

import html
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import TINY_CONFIG, archive_config, copy_of_study, snakemake, workflow_rules

VARIANTS = ["small", "small_augmented"]  # the variants of configs/tiny.yaml

FIGURES = [
    "results/figures/data/class_counts.png",
    "results/figures/data/sample_images.png",
    *[f"results/figures/training/variant_learning_curves/{v}.png" for v in VARIANTS],
    "results/figures/training/all_learning_curves.png",
    "results/figures/selection/variant_comparison.png",
    "results/figures/selection/regularization_sweep.png",
    "results/figures/selection/verdicts.png",
    "results/figures/test/confusion_matrix.png",
    "results/figures/test/class_metrics.png",
    "results/figures/test/test_samples.png",
    "results/figures/test/confused_pairs.png",
    "results/figures/beyond_accuracy/calibration.png",
    "results/figures/beyond_accuracy/test_reliability.png",
    "results/figures/beyond_accuracy/corruption_heatmap.png",
    "results/figures/beyond_accuracy/severity_curves.png",
    "results/figures/pipeline/rulegraph.png",
    "results/figures/pipeline/job_costs.png",
]
HTML_RESULTS = [
    *[f"results/figures/architectures/{v}.html" for v in VARIANTS],
    "results/figures/selection/variant_comparison.html",
    "results/figures/beyond_accuracy/calibration.html",
    "results/figures/summary/analysis.html",
]

# What the rendered report must list: category -> subcategory ("" if none) -> rows (label values) and the kind of
# content each row opens.
EXPECTED_REPORT = {
    "1. Summary": {"": {("Analysis notebook",): "html"}},
    "2. Data": {"": {("Images per class",): "image", ("Sample images per class",): "image"}},
    "3. Training": {
        "Learning curves per variant": {(v, "Learning curves"): "image" for v in VARIANTS},
        "All variants": {("Validation curves of all variants",): "image"},
    },
    "4. Architectures": {"": {(v, "Layer table"): "html" for v in VARIANTS}},
    "5. Selection": {"": {("Variant comparison",): "image", ("Variant table",): "html",
                          ("Regularization sweep",): "image", ("Paired comparisons",): "image",
                          ("The seed's conclusions",): "image"}},
    "6. Test": {"": {("Confusion matrix",): "image", ("Per-class precision, recall and F1",): "image",
                     ("Sample predictions",): "image", ("Most-confused class pairs",): "image"}},
    "7. Beyond accuracy": {
        "Calibration": {("Reliability diagrams of all variants",): "image", ("Calibration table",): "html",
                        ("Test reliability before and after temperature scaling",): "image"},
        "Robustness": {("Accuracy per corruption and severity",): "image", ("Accuracy and ECE against severity",): "image"},
    },
    "8. Pipeline": {"": {("Rule graph",): "image", ("Run time and memory per job",): "image"}},
    "9. Model": {"": {("Model card",): "html", ("Model card (Markdown)",): "html"}},
}

PROBE = Path(__file__).with_name("report_probe.js")
ERROR_CATCHER = Path(__file__).with_name("report_errors.js")
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)
# What a page names to load: quoted src and href values (in its HTML or in strings of its scripts), CSS url() and
# @import; the address is the match's last group. Values a script builds (`${...}`, `$1`) are left to the browser test.
LOADS = re.compile(r"""\b(?:src|srcset|href|poster)\s*=\s*\\?["']([^"'\\\s>]*)"""
                   r"""|(?<![\w.$-])url\(\s*\\?["']?([^"')\\\s]*)|(?i:@import)\s+(?:url\(\s*)?\\?["']?([^"')\\\s;]*)""")


def report_rules() -> set[str]:
    """The rules that write only report results (figures, tables, the notebook), as Snakemake loads them."""
    return {name for name, rule in workflow_rules().items()
            if rule["output"] and all(path.startswith(("results/figures/", "results/notebook/")) for path in rule["output"])}


def dry_run_rules(result: subprocess.CompletedProcess) -> set[str]:
    """The rules of the jobs a dry run (-n) lists."""
    return set(re.findall(r"^\s*(?:local)?rule (\w+):\s*$", result.stdout + result.stderr, re.MULTILINE))


def test_every_figure_is_a_valid_non_empty_image(tiny_study):
    for name in FIGURES:
        path = tiny_study / name
        assert path.stat().st_size > 1000, f"{name} is missing or nearly empty"
        if path.suffix == ".svg":
            assert "<svg" in path.read_text()[:2000], name
            continue
        with Image.open(path) as image:
            assert image.format == "PNG", name
            image.verify()
        with Image.open(path) as image:
            width, height = image.size
            assert width >= 200 and height >= 100, f"{name} is only {width}x{height}"
            low, high = image.convert("L").getextrema()
            assert high - low > 50, f"{name} is blank"


def test_tables_and_notebook_pages_are_self_contained(tiny_study):
    for name in HTML_RESULTS:
        text = (tiny_study / name).read_text()
        assert "<table" in text or "jp-Notebook" in text, name
        assert not EXTERNAL.search(text), f"{name} loads something from the network: {EXTERNAL.search(text).group(0)}"
    layers = (tiny_study / "results/figures/architectures/small.html").read_text()
    assert "Conv2D" in layers and "(None, 32, 32, 32)" in layers and "2,233,898" in layers


def test_executed_notebook_tells_the_study(tiny_study):
    notebook = json.loads((tiny_study / "results/notebook/analysis.ipynb").read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert all(cell["execution_count"] for cell in code), "a cell did not run"
    assert not [o for cell in code for o in cell["outputs"] if o["output_type"] == "error"]
    assert any("injected-parameters" in cell["metadata"].get("tags", []) for cell in code)
    story = " ".join("".join(o["data"]["text/markdown"]) for cell in code for o in cell["outputs"]
                     if "text/markdown" in o.get("data", {}))
    selected = json.loads((tiny_study / "results/selection/selection.json").read_text())["variant"]
    assert f"Selected: **{selected}**, by this rule: best mean val_accuracy" in story
    assert "**Which differences are real.**" in story and "every one of its seeds" in story
    assert "78.38 %" in story and "percentage points" in story
    page = (tiny_study / "results/figures/summary/analysis.html").read_text()
    assert f"Selected: <strong>{selected}</strong>" in page
    robustness = json.loads((tiny_study / "results/robustness/summary.json").read_text())
    assert "**Calibration** (validation split, ECE over 15 equal-width confidence bins)" in story
    assert "**Robustness** (4 corruptions x 5 severities of 50 test images)" in story
    assert f"weakest under **{robustness['weakest'][0]}**" in story


@pytest.fixture(scope="module")
def report_html(tiny_study, cifar10_archive, tmp_path_factory):
    """`snakemake --report` of a copy of the finished tiny study; returns the report's path (and prints the build
    time)."""
    folder = tmp_path_factory.mktemp("report")
    study = copy_of_study(tiny_study, folder / "tiny_study")
    path = folder / "report.html"
    started = time.monotonic()
    snakemake(study, "--report", str(path), *archive_config(cifar10_archive))
    print(f"\nreport built in {time.monotonic() - started:.1f} s: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return path


def test_report_embeds_every_result(report_html):
    text = report_html.read_text()
    for name in FIGURES + HTML_RESULTS:
        assert name in text, f"{name} is not in the report"


def outside_references(text: str) -> list[str]:
    """Every address the page or its styles and scripts name to load that is not inside the page itself: anything
    but data: URIs, fragments (#...), blank pages and values a script builds."""
    found = []
    for match in LOADS.finditer(text):
        target = next(group for group in reversed(match.groups()) if group is not None)
        if target and not target.lower().startswith(("data:", "#", "javascript:", "about:blank", "$")):
            found.append(match.group(0))
    return found


def test_report_loads_nothing_from_outside(report_html):
    """A static scan of report.html, with or without a browser: no src, href, url() or @import names a file or a host
    (the browser test below also watches what the rendered page requests)."""
    assert outside_references(report_html.read_text()) == []


@pytest.mark.parametrize("reference", ['<img src="https://cdn.example/a.png">', "<script src='//cdn.example/a.js'>",
                                       '<link rel="stylesheet" href="style.css">', "body { background: url(bg.png) }",
                                       '@import "fonts.css";', "@import url('https://fonts.example/a.css');",
                                       'el.innerHTML = "<img src=\\"http://example.org/x.png\\">"'])
def test_the_scan_finds_every_kind_of_outside_reference(reference):
    page = '<html><img src="data:image/png;base64,AAAA"><a href="#top">top</a>' + reference + "</html>"
    assert len(outside_references(page)) == 1, outside_references(page)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def headless(*args: str, profile: Path) -> subprocess.CompletedProcess:
    """Headless Chromium without network: every host resolves to nothing and every request goes to a dead proxy."""
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
        "--disable-extensions", f"--user-data-dir={profile}", "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars", "--window-size=1400,900",
        "--virtual-time-budget=60000", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


needs_chromium = pytest.mark.skipif(chromium() is None,
                                    reason="the headless browser test needs Chromium (apt-get install chromium)")


def probe_page(text: str, folder: Path) -> tuple[Path, dict]:
    """A copy of the page ``text`` in ``folder`` that catches every JavaScript error from its first script on
    (report_errors.js) and, once loaded, clicks through it like a reader (report_probe.js); returns the copy and what
    the probe saw in headless Chromium: categories, errors, resources requested."""
    head = re.search(r"<head[^>]*>", text)
    end = text.rindex("</body>")
    catcher, probe = (f"<script>\n{script.read_text()}\n</script>\n" for script in (ERROR_CATCHER, PROBE))
    page = folder / "probed.html"
    page.write_text(text[:head.end()] + catcher + text[head.end():end] + probe + text[end:])
    dom = headless("--dump-dom", page.as_uri(), profile=folder / "profile")
    found = re.search(r'<pre id="probe-result" style="display: none;">(.*?)</pre>', dom.stdout, re.DOTALL)
    assert found, f"the probe did not finish:\n{dom.stderr[-3000:]}"
    return page, json.loads(html.unescape(found.group(1)))


@needs_chromium
def test_the_probe_reports_every_javascript_error(tmp_path):
    page = """<html><head><script>console.error("logged as an error");</script></head><body>
<script>Promise.reject(new Error("a promise nobody caught"));</script>
<script>undefinedFunction();</script><p>still rendered</p></body></html>"""
    _, seen = probe_page(page, tmp_path)
    errors = "\n".join(seen["errors"])
    for message in ("console.error: logged as an error", "a promise nobody caught", "undefinedFunction is not defined"):
        assert message in errors, errors


@needs_chromium
def test_report_renders_offline_in_chromium(report_html, tmp_path):
    # The report is a single-page app: a copy of it carries a script that clicks through every category and
    # subcategory like a reader, opens every result, and writes what it saw (and every JavaScript error) into the page.
    probe, seen = probe_page(report_html.read_text(), tmp_path)
    assert seen["errors"] == []
    assert seen["resources"] == [], "the report tried to load files"
    for category, subcategories in EXPECTED_REPORT.items():
        assert category in seen["categories"], f"category {category} is missing; the page lists {list(seen['categories'])}"
        for subcategory, rows in subcategories.items():
            listed = {tuple(entry["labels"]): entry["content"] for entry in seen["categories"][category].get(subcategory, [])}
            assert listed == rows, f"{category} / {subcategory or '-'} lists {listed}, expected {rows}"

    screenshot = tmp_path / "report.png"
    headless(f"--screenshot={screenshot}", probe.as_uri(), profile=tmp_path / "profile2")
    with Image.open(screenshot) as image:
        assert image.size == (1400, 900)
        low, high = image.convert("L").getextrema()
        assert high - low > 50, "the screenshot is blank"
    keep = report_html.with_name("report-screenshot.png")
    shutil.copyfile(screenshot, keep)
    if os.environ.get("REPORT_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["REPORT_SCREENSHOT"])
    print(f"\nscreenshot of the rendered report: {keep}")


def test_report_only_setting_reruns_only_report_rules(own_tiny_study, cifar10_archive, tmp_path):
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["report"].update(samples_per_class=2, test_samples=4, notebook_code=True)
    edited = tmp_path / "report_edit.yaml"
    edited.write_text(yaml.safe_dump(config))
    rules = dry_run_rules(snakemake(own_tiny_study, "-n", *archive_config(cifar10_archive), config=edited))
    assert {"plot_sample_images", "plot_test_samples", "notebook_html"} <= rules
    # the study's MLflow run logs the report, so it follows it; nothing else outside the report reruns
    readers = report_rules() | {"track_study"}
    assert rules - {"all"} <= readers, f"not report rules: {sorted(rules - readers - {'all'})}"


# --- the package's report functions, without the workflow ---------------------------------------

def synthetic_history(epochs: int, gap: float):
    import numpy as np
    import pandas as pd

    e = np.arange(1, epochs + 1)
    loss = 2.0 * np.exp(-e / 4)
    val_loss = 1.5 * np.exp(-e / 3) + 0.6 + gap * np.clip(e - 4, 0, None)
    return pd.DataFrame({"epoch": e, "loss": loss, "accuracy": 1 - loss / 2.5,
                         "val_loss": val_loss, "val_accuracy": 1 - val_loss / 3})


def test_sweep_table_is_the_group_that_differs_only_in_regularization():
    from cifarflow.report.tables import sweep_table

    base = {"arch": "lenet3", "augment": {"shift": 0}, "train": {"epochs": 6}, "dropout_rates": {"conv": 0.25}}
    settings = {
        "model1": {**base, "arch": "lenet2", "weight_decay": 1e-4, "dropout": True},
        "l2_5e-4": {**base, "weight_decay": 5e-4, "dropout": False},
        "plain": {**base, "weight_decay": 0.0, "dropout": False},
        "dropout": {**base, "weight_decay": 0.0, "dropout": True},
    }
    histories = {name: synthetic_history(6, gap) for name, gap in zip(settings, (0.0, 0.02, 0.1, 0.01))}
    table = sweep_table(settings, histories)
    assert list(table["variant"]) == ["plain", "l2_5e-4", "dropout"]
    assert list(table["setting"]) == ["L2 0", "L2 0.0005", "L2 0 + dropout"]
    assert table["is_sweep"].all()
    plain = table.iloc[0]
    assert plain["loss_gap"] > table.iloc[1]["loss_gap"] and plain["val_loss_rise"] > 0
    alone = sweep_table({"a": settings["model1"], "b": {**settings["model1"], "arch": "lenet3"}},
                        {"a": histories["model1"], "b": histories["plain"]})
    assert set(alone["variant"]) == {"a", "b"} and not alone["is_sweep"].any()


RULE_GRAPH = """digraph snakemake_dag {
    graph[bgcolor=white, margin=0];
	0[label = "all", color = "0.00 0.6 0.85", style="rounded"];
	1[label = "train", color = "0.30 0.6 0.85", style="rounded"];
	2[label = "normalize", color = "0.60 0.6 0.85", style="rounded"];
	1 -> 0
	2 -> 1
	2 -> 0
}"""


def test_report_tables_and_the_model_card_are_pages_of_one_style():
    import pandas as pd

    from cifarflow.report.modelcard import to_html
    from cifarflow.report.tables import layer_table_html
    from cifarflow.train.recipe import recipe_record
    from recipes import recipe

    layers = pd.DataFrame([{"layer": "image", "type": "InputLayer", "output shape": "(None, 32, 32, 3)", "parameters": 0,
                            "connected to": ""}])
    counts = {"total": 0, "trainable": 0, "non_trainable": 0}
    table_page = layer_table_html("small", layers, counts, recipe_record(recipe(arch="lenet3")))
    card_page = to_html("# Model card: `small`\n\n## Use\n\nText.\n", "Model card: small")
    style = re.compile(r"<style>(.*?)</style>", re.DOTALL)
    assert style.search(table_page).group(1) == style.search(card_page).group(1)
    assert "<title>Layers of small</title>" in table_page and "<h1>Layers of small</h1>" in table_page
    assert "<title>Model card: small</title>" in card_page
    assert card_page.count("<h1>") == 1, "the card's own heading, not a second one from the page"


def test_rule_graph_is_parsed_and_layered():
    from cifarflow.report.figures.pipeline import _layers, parse_dot

    nodes, edges = parse_dot(RULE_GRAPH)
    assert [node["label"] for node in nodes.values()] == ["all", "train", "normalize"]
    assert edges == [("1", "0"), ("2", "1"), ("2", "0")]
    assert _layers(nodes, edges) == {"2": 0, "1": 1, "0": 2}


def write_benchmarks(folder: Path) -> list[Path]:
    """Two of Snakemake's benchmark files: job model1 of rule train, and rule normalize (its max_rss unknown)."""
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (folder / "benchmarks/train").mkdir(parents=True)
    (folder / "benchmarks/train/model1.tsv").write_text(header + "12.5\t0:00:12\t900.5\t1\t1\t1\t0\t0\t90\t11\n")
    (folder / "benchmarks/normalize.tsv").write_text(header + "2.0\t0:00:02\tNA\t1\t1\t1\t0\t0\t50\t1\n")
    return [folder / "benchmarks/train/model1.tsv", folder / "benchmarks/normalize.tsv"]


def test_benchmarks_are_read_by_rule_and_job(tmp_path):
    from cifarflow.report.tables import read_benchmarks

    table = read_benchmarks(write_benchmarks(tmp_path))
    assert list(table["rule"]) == ["train", "normalize"] and list(table["job"]) == ["model1", ""]
    assert table["seconds"].tolist() == [12.5, 2.0] and table["max_rss_mb"].iloc[0] == 900.5
    assert table["max_rss_mb"].isna().iloc[1]


def assert_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100, path.name


def test_figures_draw_from_synthetic_results(tmp_path):
    import numpy as np
    import pandas as pd

    from cifarflow.report.figures import beyond_accuracy, pipeline, selection
    from cifarflow.report.figures.style import FIGURES
    from cifarflow.evaluate.calibration import calibrate
    from cifarflow.evaluate.evaluation import test_report
    from cifarflow.report.figureio import write_output
    from cifarflow.evaluate.robustness import score_corruption
    from cifarflow.report.tables import sweep_table

    rng = np.random.default_rng(0)
    classes = ["cat", "dog", "ship"]
    images = rng.integers(0, 255, (60, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(60) % 3
    split = {"images": images, "labels": labels}
    probs = rng.dirichlet(np.ones(3), 60)
    probs[:40, labels[:40]] += 1
    probs /= probs.sum(axis=1, keepdims=True)
    result = test_report(labels, probs, classes)
    no_mistakes = pd.DataFrame(np.diag([20, 20, 20]), index=classes, columns=classes)
    histories = {"a": synthetic_history(5, 0.05), "b": synthetic_history(5, 0.0)}
    table = pd.DataFrame({"rank": [1, 2], "variant": ["b", "a"], "val_accuracy": [0.8, 0.7], "val_log_loss": [0.6, 0.9],
                          "parameters": [1000, 2000], "training_seconds": [60.0, 90.0], "val_accuracy_low": [0.78, 0.68],
                          "val_accuracy_high": [0.82, 0.72], "interval": "t over seeds"})
    settings = {"a": {"arch": "lenet2", "weight_decay": 0.0, "dropout": False},
                "b": {"arch": "lenet2", "weight_decay": 1e-3, "dropout": False}}
    calibrated = calibrate(labels, probs, bins=10)
    reliability_panels = [{"title": "a", "record": calibrated["reliability"]["uncalibrated"],
                           "scaled": calibrated["reliability"]["calibrated"], "chosen": True},
                          {"title": "b", "record": calibrated["reliability"]["calibrated"]}]
    test_metrics = {"variant": "a", "accuracy": 0.7, "n_images": 60, "calibration": calibrated}
    corrupted = pd.DataFrame([score_corruption(name, severity, labels, probs, probs)
                              for name in ("fog", "contrast") for severity in range(1, 6)])
    jobs = pd.DataFrame({"rule": ["train", "train", "unpack"], "job": ["a", "b", ""], "seconds": [10.0, 12.0, 1.0],
                         "max_rss_mb": [800.0, 820.0, float("nan")]})

    pipeline.rule_graph(RULE_GRAPH, tmp_path / "rule_graph.png")  # saves to the path its script gives
    assert_png(tmp_path / "rule_graph.png")
    returned = {  # the registered figure functions, and the figures they draw: they return figures (and tables)
        "curves": FIGURES["variant_learning_curves"](histories, "a"),
        "all_curves": FIGURES["all_learning_curves"](histories, {"variant": "b"}),
        "comparison": FIGURES["variant_comparison"](table, {"variant": "b"}),
        "sweep": selection.sweep_figure(sweep_table(settings, histories), histories, "b"),
        "reliability": beyond_accuracy.reliability_figure(reliability_panels, "reliability"),
        "counts": FIGURES["class_counts"](classes, train=split, val={"labels": labels[:10]}, test={"labels": labels[:30]}),
        "samples": FIGURES["sample_images"](split, classes, 3),
        "confusion": FIGURES["confusion_matrix"](result["confusion_matrix"]),
        "class_metrics": FIGURES["class_metrics"](result["classification_report"]),
        "test_samples": FIGURES["test_samples"](split, result["predictions"], 4),
        "pairs": FIGURES["confused_pairs"](result["confusion_matrix"], result["predictions"], split, 3),
        "no_pairs": FIGURES["confused_pairs"](no_mistakes, result["predictions"], split, 3),
        "test_reliability": FIGURES["test_reliability"](test_metrics),
        "heatmap": FIGURES["corruption_heatmap"](corrupted, {"clean_accuracy": 0.9, "clean_ece": 0.05}),
        "severity_curves": FIGURES["severity_curves"](corrupted, {"clean_accuracy": 0.9, "clean_ece": 0.05}),
        "job_costs": FIGURES["job_costs"](jobs),
    }
    assert len(returned["no_pairs"]["csv"]) == 0
    for name, drawn in returned.items():
        drawn = drawn if isinstance(drawn, dict) else {"figure": drawn}
        for output, value in drawn.items():
            if not isinstance(value, (pd.DataFrame, str)):
                write_output(value, tmp_path / f"{name}_{output}.png")
                assert_png(tmp_path / f"{name}_{output}.png")


def test_a_figure_rule_reads_its_inputs_by_file_type_and_writes_what_its_function_returns(tmp_path):
    import numpy as np
    import pandas as pd

    from cifarflow.evaluate.evaluation import most_confused_pairs, test_report
    from cifarflow.fileio import save_json, save_npz
    from cifarflow.report.figureio import draw, read_input
    from cifarflow.report.tables import read_benchmarks

    rng = np.random.default_rng(1)
    classes = ["cat", "dog", "ship"]
    images = rng.integers(0, 255, (30, 24, 24, 3), dtype=np.uint8)
    labels = np.arange(30) % 3
    result = test_report(labels, rng.dirichlet(np.ones(3), 30), classes)
    result["confusion_matrix"].to_csv(tmp_path / "confusion.csv")  # with its index, as evaluate_test writes it
    result["predictions"].to_csv(tmp_path / "predictions.csv", index=False)
    save_npz(tmp_path / "test.npz", images=images, labels=labels)
    inputs = {name: str(tmp_path / file) for name, file in
              (("confusion", "confusion.csv"), ("predictions", "predictions.csv"), ("test", "test.npz"))}
    outputs = {"figure": tmp_path / "pairs.png", "csv": tmp_path / "pairs.csv"}
    draw("confused_pairs", inputs, outputs, {"top": 4, "examples": 2}, {"confusion": "indexed_csv"})
    assert_png(outputs["figure"])
    expected = most_confused_pairs(result["confusion_matrix"], 4)
    pd.testing.assert_frame_equal(pd.read_csv(outputs["csv"]), expected[expected["count"] > 0])

    read = read_input(inputs["test"])
    assert set(read) == {"images", "labels"} and (read["images"] == images).all() and (read["labels"] == labels).all()
    save_json(tmp_path / "a.json", {"a": 1})
    save_json(tmp_path / "b.json", [2])
    assert read_input([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == [{"a": 1}, [2]]  # a list: each file read

    benchmarks = write_benchmarks(tmp_path)
    outputs = {"figure": tmp_path / "costs.png", "csv": tmp_path / "costs.csv"}
    draw("job_costs", {"benchmarks": [str(path) for path in benchmarks]}, outputs, {}, {"benchmarks": "benchmarks"})
    assert_png(outputs["figure"])
    assert outputs["csv"].read_text() == read_benchmarks(benchmarks).to_csv(index=False, float_format="%.6g")

    with pytest.raises(ValueError, match=r"one value per output, by output name: \['csv', 'figure'\]"):
        draw("confusion_matrix", {"confusion": inputs["confusion"]}, outputs, {}, {"confusion": "indexed_csv"})
