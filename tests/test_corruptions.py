"""Every corruption: deterministic for a seed, uint8 in and out, damage growing with severity; and a few checks
of the definitions against their published formulas."""

import zlib

import numpy as np
import pytest
from scipy import ndimage

from cifarflow.evaluate.corruptions import (CORRUPTIONS, SEVERITIES, corrupt, corrupt_all_severities, disk_kernel,
                                            plasma_fractal, psnr, zoom_blur)

RANDOM = {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "fog"}


@pytest.fixture(scope="module")
def images():
    """Smooth random pictures (blurred noise) with values inside 20-235, so no corruption starts clipped."""
    rng = np.random.default_rng(0)
    fields = ndimage.gaussian_filter(rng.normal(size=(48, 32, 32, 3)), sigma=(0, 2.5, 2.5, 0))
    low, high = fields.min(axis=(1, 2, 3), keepdims=True), fields.max(axis=(1, 2, 3), keepdims=True)
    return np.uint8(20 + 215 * (fields - low) / (high - low))


def test_at_least_ten_corruptions_from_all_four_families():
    families = {family for _, family in CORRUPTIONS.values()}
    assert len(CORRUPTIONS) >= 10 and families == {"noise", "blur", "weather", "digital"}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_is_deterministic_and_keeps_dtype_and_shape(images, name):
    first = corrupt(images, name, 3, seed=7)
    assert first.dtype == np.uint8 and first.shape == images.shape
    assert (corrupt(images, name, 3, seed=7) == first).all()
    assert not (first == images).all()
    other_seed = corrupt(images, name, 3, seed=8)
    assert (other_seed != first).any() == (name in RANDOM)
    # one severity alone equals the same severity made among all of them
    assert (corrupt_all_severities(images[:4], name, seed=7)[2] == corrupt(images[:4], name, 3, seed=7)).all()


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_damage_grows_with_severity(images, name):
    quality = [psnr(images, damaged) for damaged in corrupt_all_severities(images, name, seed=0)]
    assert all(a > b for a, b in zip(quality, quality[1:])), f"{name}: PSNR by severity {np.round(quality, 2)}"


def test_unknown_names_severities_and_inputs_are_refused(images):
    with pytest.raises(ValueError, match="unknown corruption 'frost'"):
        corrupt(images, "frost", 1)
    with pytest.raises(ValueError, match="severity must be one of"):
        corrupt(images, "contrast", 6)
    with pytest.raises(ValueError, match="expected uint8"):
        corrupt(images.astype(np.float32), "contrast", 1)


def test_gaussian_noise_has_the_published_standard_deviations():
    gray = np.full((64, 32, 32, 3), 128, np.uint8)  # mid-gray: the noise is never clipped at these scales
    for severity, scale in zip(SEVERITIES, [0.04, 0.06, 0.08, 0.09, 0.10]):
        noise = corrupt(gray, "gaussian_noise", severity).astype(np.float64) - 128
        # truncation to uint8 subtracts 0.5 on average and adds 1/12 to the variance; 196,608 draws: 1 % accuracy
        assert np.sqrt(noise.var() - 1 / 12) == pytest.approx(scale * 255, rel=0.01)


def test_contrast_and_brightness_follow_their_formulas(images):
    x = images / 255.0
    means = x.mean(axis=(1, 2), keepdims=True)
    expected = np.uint8(np.clip((x - means) * 0.15 + means, 0, 1) * 255)
    assert (corrupt(images, "contrast", 5) == expected).all()
    brighter = corrupt(images, "brightness", 1).astype(np.float64)
    value = images.max(axis=-1).astype(np.float64)
    np.testing.assert_allclose(brighter.max(axis=-1), np.minimum(value + 0.05 * 255, 255), atol=1.0)  # V + 0.05
    # hue and saturation kept: every channel scaled by the same factor as the value (truncation: within 1)
    factor = np.minimum(value + 0.05 * 255, 255) / value
    np.testing.assert_allclose(brighter, images * factor[..., None], atol=1.0)


def test_defocus_kernel_is_a_normalized_disk():
    for radius, blur in [(0.3, 0.4), (1, 0.2), (1.5, 0.1)]:
        kernel = disk_kernel(radius, blur)
        assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(kernel, kernel.T, atol=1e-15)
        assert kernel.shape[0] % 2 == 1 and kernel[kernel.shape[0] // 2, kernel.shape[0] // 2] == kernel.max()


def test_zoom_blur_equals_per_image_scipy_zoom(images):
    """The batched bilinear zoom against the benchmark's per-image scipy.ndimage.zoom (float32 round-off)."""
    x = images[:3] / 255.0

    def clipped_zoom(image, factor):
        crop = int(np.ceil(32 / factor))
        top = (32 - crop) // 2
        zoomed = ndimage.zoom(image[top:top + crop, top:top + crop], (factor, factor, 1), order=1)
        trim = (zoomed.shape[0] - 32) // 2
        return zoomed[trim:trim + 32, trim:trim + 32]

    for severity, top in zip(SEVERITIES, [1.06, 1.11, 1.16, 1.21, 1.26]):
        expected = []
        for image in x.astype(np.float32):
            factors = np.arange(1, top, 0.01)
            expected.append((image + sum(clipped_zoom(image, f) for f in factors)) / (len(factors) + 1))
        # 27 float32 additions of values <= 1: a few units of float32 epsilon
        np.testing.assert_allclose(zoom_blur(x, severity, None), np.stack(expected), atol=32 * np.finfo(np.float32).eps)


# The severity constants of Hendrycks & Dietterich's make_cifar_c.py (ImageNet-C/create_c/ of their repository),
# severities 1-5; zoom blur's are the ends of its np.arange(1, end, 0.01) zoom factors.
PUBLISHED = {
    "gaussian_noise": [0.04, 0.06, .08, .09, .10],
    "shot_noise": [500, 250, 100, 75, 50],
    "impulse_noise": [.01, .02, .03, .05, .07],
    "speckle_noise": [.06, .1, .12, .16, .2],
    "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
    "gaussian_blur": [.4, .6, 0.7, .8, 1],
    "zoom_blur": [1.06, 1.11, 1.16, 1.21, 1.26],
    "fog": [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
    "brightness": [.05, .1, .15, .2, .3],
    "contrast": [.75, .5, .4, .3, 0.15],
    "jpeg_compression": [80, 65, 58, 50, 40],
    "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],
}


def test_every_corruption_uses_the_published_severity_constants(images, monkeypatch):
    """The table each corruption picks its severity's constant from, caught as it is picked."""
    import cifarflow.evaluate.corruptions as corruptions

    tables = {}
    pick = corruptions._level

    def recorded(values, severity):
        tables.setdefault(name, []).append(list(values))
        return pick(values, severity)

    monkeypatch.setattr(corruptions, "_level", recorded)
    for name in CORRUPTIONS:
        corrupt(images[:2], name, 3)
    assert set(tables) == set(PUBLISHED) == set(CORRUPTIONS)
    for name, table in PUBLISHED.items():
        [picked] = tables[name]  # one table, picked from once
        np.testing.assert_allclose(np.array(picked, dtype=float), np.array(table, dtype=float), rtol=1e-12, err_msg=name)


def published_plasma(rng, decay, size=32):
    """The benchmark's plasma_fractal for one map, as written there (diamond-square on a size x size grid)."""
    grid, step, wibble = np.zeros((size, size)), size, 100.0

    def wibbled_mean(total):
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = grid[0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, axis=0)
        square += np.roll(square, -1, axis=1)
        grid[half:size:step, half:size:step] = wibbled_mean(square)
        centres, corners = grid[half:size:step, half:size:step], grid[0:size:step, 0:size:step]
        grid[0:size:step, half:size:step] = wibbled_mean(centres + np.roll(centres, 1, axis=0) + corners
                                                         + np.roll(corners, -1, axis=1))
        grid[half:size:step, 0:size:step] = wibbled_mean(centres + np.roll(centres, 1, axis=1) + corners
                                                         + np.roll(corners, -1, axis=0))
        step //= 2
        wibble /= decay
    grid -= grid.min()
    return grid / grid.max()


def published(name: str, x: np.ndarray, c, rng) -> np.ndarray:
    """The benchmark's definition of ``name`` with constant ``c``, image by image where it works so."""
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
    from PIL import Image

    def each(change):
        return np.stack([change(image) for image in x])

    def pil(change):
        return each(lambda image: np.asarray(change(Image.fromarray(np.uint8(image * 255)))) / 255.0)

    def jpeg(image, quality):
        import io

        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return Image.open(buffer)

    if name == "gaussian_noise":
        return x + rng.normal(size=x.shape, scale=c)
    if name == "shot_noise":
        return rng.poisson(x * c) / c
    if name == "impulse_noise":
        flipped, salt = rng.random(x.shape) < c, rng.random(x.shape) < 0.5
        return np.where(flipped, salt.astype(np.float64), x)
    if name == "speckle_noise":
        return x + x * rng.normal(size=x.shape, scale=c)
    if name == "defocus_blur":
        radius, alias_blur = c
        xx, yy = np.meshgrid(np.arange(-8, 9), np.arange(-8, 9))
        disk = ((xx**2 + yy**2) <= radius**2) / np.sum((xx**2 + yy**2) <= radius**2)
        taps = np.exp(-np.arange(-1, 2) ** 2 / (2 * alias_blur**2))  # cv2.GaussianBlur((3, 3), alias_blur)
        kernel = ndimage.correlate(disk, np.outer(taps, taps) / taps.sum() ** 2, mode="mirror")
        return each(lambda image: np.stack([ndimage.correlate(image[..., k], kernel, mode="mirror") for k in range(3)], -1))
    if name == "gaussian_blur":
        return each(lambda image: ndimage.gaussian_filter(image, sigma=(c, c, 0), mode="nearest"))
    if name == "fog":
        return each(lambda image: (image + c[0] * published_plasma(rng, c[1])[..., None]) * image.max()
                    / (image.max() + c[0]))
    if name == "brightness":
        hsv = rgb_to_hsv(x)
        hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
        return hsv_to_rgb(hsv)
    if name == "contrast":
        means = x.mean(axis=(1, 2), keepdims=True)
        return (x - means) * c + means
    if name == "jpeg_compression":
        return pil(lambda image: jpeg(image, c))
    size = int(32 * c)
    return pil(lambda image: image.resize((size, size), Image.Resampling.BOX).resize((32, 32), Image.Resampling.BOX))


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", [name for name in PUBLISHED if name != "zoom_blur"])  # zoom blur: its own test
def test_every_corruption_is_its_published_definition(images, name, severity):
    """Each severity against the benchmark's formula and constant, written again here (fog: one image, as the
    benchmark draws its map); the same random draws, so within one uint8 step (float round-off before truncation)."""
    x = images[:1] if name == "fog" else images[:6]
    rng = np.random.default_rng([7, zlib.crc32(name.encode()), severity])  # the module's documented seeding
    expected = np.uint8(np.clip(published(name, x / 255.0, PUBLISHED[name][severity - 1], rng), 0, 1) * 255)
    difference = np.abs(corrupt(x, name, severity, seed=7).astype(np.int16) - expected)
    assert difference.max() <= 1 and difference.mean() < 0.05, (difference.max(), difference.mean())


def test_psnr_of_known_errors():
    black = np.zeros((2, 4, 4, 3), np.uint8)
    assert psnr(black, black) == float("inf")
    assert psnr(black, black + 255) == pytest.approx(0.0, abs=1e-12)  # error 255 everywhere: in uint8, not wrapped
    one_off = black.copy()
    one_off[0, 0, 0, 0] = 16  # mean squared error 256 / 96
    assert psnr(black, one_off) == pytest.approx(10 * np.log10(255**2 * 96 / 256), rel=1e-12)
    assert psnr(one_off, black) == psnr(black, one_off)


def test_black_and_white_pixels_and_one_channel_images():
    black, white = np.zeros((1, 8, 8, 3), np.uint8), np.full((1, 8, 8, 3), 255, np.uint8)
    assert (corrupt(black, "brightness", 5) == np.uint8(0.3 * 255)).all()  # V of black raised: gray, not NaN
    assert (corrupt(white, "pixelate", 1) == 255).all() and (corrupt(white, "jpeg_compression", 1) >= 254).all()
    with pytest.raises(ValueError, match="expected uint8 images of shape N x H x W x 3"):
        corrupt(np.zeros((1, 8, 8, 1), np.uint8), "contrast", 1)


def test_each_image_gets_its_own_fog_map_and_brightness_limit(images):
    """Normalized per map, scaled by each image's own maximum: a dark image stays as dark under fog."""
    maps = plasma_fractal(3, np.random.default_rng(0), 32)
    assert maps.min(axis=(1, 2)).tolist() == [0, 0, 0] and maps.max(axis=(1, 2)).tolist() == [1, 1, 1]
    dark = images[:2] // 4
    batch = np.concatenate([images[:2], dark])
    fogged = corrupt(batch, "fog", 5)
    assert (fogged[2:].max(axis=(1, 2, 3)) <= dark.max(axis=(1, 2, 3)) + 1).all()


def test_psnr_of_an_error_of_one_everywhere():
    assert psnr(np.zeros((1, 2, 2, 3), np.uint8), np.ones((1, 2, 2, 3), np.uint8)) == pytest.approx(20 * np.log10(255))
