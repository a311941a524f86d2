"""A variant's complete settings from the study config: defaults, the variant's own values, the study budget."""

import copy
from pathlib import Path

# Where one training's results are: each (variant, seed) is its own training.
TRAINING_RESULTS = "results/variants/{variant}/seed-{seed}"
# The whole config of the last run that had jobs to do (written when it starts), read by ``cifarflow status``; beside
# Snakemake's own records, not among the results.
LAST_RUN_CONFIG = ".snakemake/cifarflow/last_run_config.yaml"


# What ``--config key=value`` may say for a boolean setting (Snakemake itself reads only True and False).
BOOLEAN_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


def command_line_booleans(config: dict, schema: dict) -> None:
    """Snakemake's ``--config key=value`` reads only ``True`` and ``False`` as booleans; a setting the schema declares
    boolean also takes true/false, yes/no, on/off in any case (``--config tracking=false``). Changes ``config`` in
    place, following the schema's ``properties``, ``$ref``, ``allOf`` and ``additionalProperties``."""

    def resolved(node: dict) -> list[dict]:  # the node and every node it refers to or combines
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].split("/")[-1]] | {k: v for k, v in node.items() if k != "$ref"}
        return [node] + [part for sub in node.get("allOf", []) for part in resolved(sub)]

    def walk(values: dict, node: dict) -> None:
        nodes = resolved(node)
        for key, value in values.items():
            settings = [n["properties"][key] for n in nodes if key in n.get("properties", {})] or [
                n["additionalProperties"] for n in nodes if isinstance(n.get("additionalProperties"), dict)]
            types = {t for setting in settings for n in resolved(setting) for t in _as_list(n.get("type"))}
            if isinstance(value, dict):
                for setting in settings:
                    walk(value, setting)
            elif isinstance(value, str) and "boolean" in types and value.lower() in BOOLEAN_WORDS:
                values[key] = BOOLEAN_WORDS[value.lower()]

    walk(config, schema)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def deep_merge(base: dict, override: dict | None) -> dict:
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def sorted_keys(value):
    """Settings with keys in a fixed order, so reordering a config file reruns nothing."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    return value


def own_settings(config: dict, name: str, seen: tuple = ()) -> dict:
    """What variant ``name`` sets itself, on top of the variant it names as ``base`` (if any), without defaults."""
    variants = config["variants"]
    own = dict(variants[name])
    base = own.pop("base", None)
    if base is None:
        return own
    if base not in variants:
        raise ValueError(f"variant {name}: its base {base!r} is not in variants: {sorted(variants)}")
    if base in seen + (name,):
        raise ValueError(f"variant {name}: its bases go round in a circle ({' -> '.join(seen + (name, base))})")
    return deep_merge(own_settings(config, base, seen + (name,)), own)


def variant_settings(config: dict, name: str) -> dict:
    settings = deep_merge(config["defaults"], own_settings(config, name))
    # the seed is set per training (training_settings), so adding one retrains no other; here the first one
    settings.pop("seeds", None)
    settings["train"]["seed"] = seeds_of(config, name)[0]
    settings["name"] = name
    if name in config.get("budget_exempt", []):
        return sorted_keys(settings)
    if config.get("budget_epochs"):
        settings["train"]["epochs"] = config["budget_epochs"]
    if config.get("budget_train_images"):
        settings["max_train_images"] = config["budget_train_images"]
    return sorted_keys(settings)


def all_variants(config: dict) -> dict[str, dict]:
    """Every variant's settings, or only those named in ``only_variants``, in the order of their names, so that
    reordering the config file changes no parameter of any rule."""
    names = list(config["variants"])
    chosen = config.get("only_variants") or names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise ValueError(f"only_variants names {unknown}, which are not in variants: {names}")
    unknown = sorted(set(config.get("budget_exempt", [])) - set(names))
    if unknown:
        raise ValueError(f"budget_exempt names {unknown}, which are not in variants: {names}")
    return {name: variant_settings(config, name) for name in sorted(names) if name in chosen}


def seeds_of(config: dict, name: str) -> list[int]:
    """The seeds variant ``name`` trains with: its own ``seeds``, else the study's (default [0]), sorted."""
    return sorted(set(config["variants"][name].get("seeds") or config.get("seeds") or [0]))


def variant_seeds(config: dict) -> dict[str, list[int]]:
    """Each chosen variant's seeds."""
    return {name: seeds_of(config, name) for name in all_variants(config)}


def training_results(directory: Path, variant: str, seed: int) -> Path:
    """The folder of one training's results in the study at ``directory``."""
    return Path(directory) / TRAINING_RESULTS.format(variant=variant, seed=seed)


def training_settings(settings: dict, seed: int) -> dict:
    """One training's settings: the variant's, trained with ``seed``."""
    return deep_merge(settings, {"train": {"seed": int(seed)}})
