"""A variant's complete settings from the study config: defaults, the variant's own values, the study budget."""

import copy


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


def variant_settings(config: dict, name: str) -> dict:
    settings = deep_merge(config["defaults"], config["variants"][name])
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


def variant_seeds(config: dict) -> dict[str, list[int]]:
    """Each chosen variant's seeds, sorted: the variant's own ``seeds``, else the study's, else [0]. Every
    (variant, seed) is one training."""
    return {name: sorted(config["variants"][name].get("seeds") or config.get("seeds") or [0])
            for name in all_variants(config)}
