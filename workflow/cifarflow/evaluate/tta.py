"""Test-time augmentation: which views of an image a variant's prediction averages, and with what weights."""


def tta_settings(train) -> dict:
    """A variant's test-time augmentation (from its recipe's ``train``): mirror images and/or views shifted by
    ``translate`` pixels."""
    return {"flip": train.flip_tta, "translate": train.translate_tta}


def uses_tta(tta: dict | None) -> bool:
    return bool(tta and (tta.get("flip") or tta.get("translate")))


def tta_views(images, tta: dict | None) -> list[tuple[float, object]]:
    """(weight, view) pairs whose weighted sum of predicted probabilities is the augmented prediction.

    Without translation the image itself carries all the weight; with ``translate`` = t it keeps half and the
    views shifted t pixels down-right and up-left (edges mirrored) a quarter each; ``flip`` splits each weight
    between the view and its mirror image. Works on arrays and on symbolic Keras tensors alike."""
    import keras

    tta = tta or {}
    shift = int(tta.get("translate", 0))
    groups = [(1.0, images)]
    if shift:
        padded = keras.ops.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]], mode="reflect")
        groups = [(0.5, images), (0.25, padded[:, : -2 * shift, : -2 * shift, :]), (0.25, padded[:, 2 * shift :, 2 * shift :, :])]
    if not tta.get("flip"):
        return groups
    return [pair for weight, view in groups for pair in ((weight / 2, view), (weight / 2, keras.ops.flip(view, axis=2)))]
