"""Corrupted copies of CIFAR images, made here without any download (robustness of the selected model).

The corruptions and their five severities follow the published CIFAR-10-C definitions (Hendrycks & Dietterich
2019, "Benchmarking neural network robustness to common corruptions and perturbations", ``make_cifar_c.py`` of
their repository): the same formulas and the same severity constants, written with numpy, scipy.ndimage and
Pillow instead of OpenCV, scikit-image and ImageMagick. As there, every function works on pixel values scaled to
0-1 and the result is clipped to 0-1 and converted back to uint8 by truncation (``np.uint8(x * 255)``).

Twelve of the benchmark's corruptions, from its four families: noise (Gaussian, shot, impulse, speckle), blur
(defocus, Gaussian, zoom), weather (fog, brightness) and digital (contrast, JPEG compression, pixelate). Left out:
frost (needs the benchmark's frost photographs), snow and motion blur (ImageMagick's motion blur), glass blur and
elastic transform (per-pixel loops, slow without compiled code), spatter, and saturate, whose published severities
are not ordered by damage (1-2 desaturate, 3-5 oversaturate).

Random corruptions draw from a generator seeded by (seed, corruption name, severity), so each one is
reproducible on its own, whatever other corruptions are made and in which order.
"""

import io
import zlib

import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)


def _level(values, severity: int):
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    return values[severity - 1]


# --- noise --------------------------------------------------------------------------------------


def gaussian_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    scale = _level([0.04, 0.06, 0.08, 0.09, 0.10], severity)
    return x + rng.normal(size=x.shape, scale=scale)


def shot_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    photons = _level([500, 250, 100, 75, 50], severity)
    return rng.poisson(x * photons) / photons


def impulse_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper on each channel value independently (scikit-image's ``random_noise(mode="s&p")``)."""
    amount = _level([0.01, 0.02, 0.03, 0.05, 0.07], severity)
    flipped = rng.random(x.shape) < amount
    salt = rng.random(x.shape) < 0.5
    out = x.copy()
    out[flipped & salt] = 1.0
    out[flipped & ~salt] = 0.0
    return out


def speckle_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    scale = _level([0.06, 0.1, 0.12, 0.16, 0.2], severity)
    return x + x * rng.normal(size=x.shape, scale=scale)


# --- blur ---------------------------------------------------------------------------------------


def _gaussian_kernel3(sigma: float) -> np.ndarray:
    """OpenCV's 3-tap Gaussian (``getGaussianKernel(3, sigma)``)."""
    taps = np.exp(-(np.arange(-1, 2) ** 2) / (2 * sigma**2))
    return taps / taps.sum()


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The benchmark's defocus kernel: a disk of ``radius`` on a 17 x 17 grid, normalized, then blurred by a 3 x 3
    Gaussian of ``alias_blur`` against aliasing; trimmed to its non-zero support (the result is unchanged)."""
    from scipy import ndimage

    grid = np.arange(-8, 9)
    xx, yy = np.meshgrid(grid, grid)
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    disk /= disk.sum()
    taps = _gaussian_kernel3(alias_blur)
    for axis in (0, 1):
        disk = ndimage.correlate1d(disk, taps, axis=axis, mode="mirror")
    extent = int(np.abs(grid[np.any(disk > 0, axis=0)]).max())
    return disk[8 - extent:9 + extent, 8 - extent:9 + extent]


def defocus_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    radius, alias_blur = _level([(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)], severity)
    kernel = disk_kernel(radius, alias_blur)
    return ndimage.correlate(x, kernel[None, :, :, None], mode="mirror")  # OpenCV's filter2D border


def gaussian_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    sigma = _level([0.4, 0.6, 0.7, 0.8, 1.0], severity)
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest")  # scikit-image's defaults


def _linear_zoom_matrix(size: int, factor: float) -> np.ndarray:
    """The (round(size * factor) x size) matrix of scipy.ndimage.zoom's linear interpolation (order=1) on one axis:
    output pixel o samples input coordinate o * (size - 1) / (out - 1)."""
    out = int(round(size * factor))
    position = np.arange(out) * (size - 1) / (out - 1)
    left = np.minimum(np.floor(position).astype(int), size - 2)
    weight = position - left
    matrix = np.zeros((out, size))
    matrix[np.arange(out), left] = 1 - weight
    matrix[np.arange(out), left + 1] += weight
    return matrix


def _clipped_zoom(planes: np.ndarray, factor: float) -> np.ndarray:
    """Zoom into the centre of ``planes`` (H x W x images*channels) by ``factor`` and crop back to H x W: bilinear,
    as scipy.ndimage.zoom(order=1) on each image, written as two matrix products (far faster on a batch)."""
    size = planes.shape[0]
    crop = int(np.ceil(size / factor))
    top = (size - crop) // 2
    matrix = _linear_zoom_matrix(crop, factor)
    trim = (matrix.shape[0] - size) // 2
    matrix = matrix[trim:trim + size].astype(planes.dtype)
    centre = np.ascontiguousarray(planes[top:top + crop, top:top + crop])
    rows = (matrix @ centre.reshape(crop, -1)).reshape(size, crop, -1)  # zoomed along the height
    columns = matrix @ np.ascontiguousarray(rows.transpose(1, 0, 2)).reshape(crop, -1)  # along the width
    return columns.reshape(size, size, -1).transpose(1, 0, 2)


def zoom_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """The image averaged with copies of itself zoomed by 1, 1.01, ... (the benchmark's float32 arithmetic)."""
    top = _level([1.06, 1.11, 1.16, 1.21, 1.26], severity)
    n, height, width, channels = x.shape
    planes = np.ascontiguousarray(x.astype(np.float32).transpose(1, 2, 0, 3)).reshape(height, width, -1)
    out = np.zeros_like(planes)
    factors = np.arange(1, top, 0.01)
    for factor in factors:
        out += _clipped_zoom(planes, factor)
    blurred = (planes + out) / (len(factors) + 1)
    return blurred.reshape(height, width, n, channels).transpose(2, 0, 1, 3)


# --- weather ------------------------------------------------------------------------------------


def plasma_fractal(count: int, rng: np.random.Generator, size: int, wibble_decay: float = 3.0) -> np.ndarray:
    """``count`` height maps in [0, 1] of ``size`` x ``size`` by the diamond-square algorithm, as the benchmark's
    ``plasma_fractal``: made on the next power of two (the algorithm halves its step down to 1), then cropped."""
    full = 1 << (size - 1).bit_length()
    maps = np.zeros((count, full, full))
    step = full
    wibble = 100.0

    def wibbled_mean(total):
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0:full:step, 0:full:step]
        square = corners + np.roll(corners, -1, axis=1)
        square += np.roll(square, -1, axis=2)
        maps[:, half:full:step, half:full:step] = wibbled_mean(square)
        centres = maps[:, half:full:step, half:full:step]
        corners = maps[:, 0:full:step, 0:full:step]
        left = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        maps[:, 0:full:step, half:full:step] = wibbled_mean(left)
        top = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        maps[:, half:full:step, 0:full:step] = wibbled_mean(top)
        step //= 2
        wibble /= wibble_decay
    maps = maps[:, :size, :size]
    maps -= maps.min(axis=(1, 2), keepdims=True)
    return maps / maps.max(axis=(1, 2), keepdims=True)


def fog(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    strength, decay = _level([(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)], severity)
    top = x.max(axis=(1, 2, 3), keepdims=True)
    foggy = x + strength * plasma_fractal(len(x), rng, x.shape[1], decay)[..., None]
    return foggy * top / (top + strength)


def brightness(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """The value channel of HSV raised by a constant, hue and saturation kept: every channel scales with it."""
    shift = _level([0.05, 0.1, 0.15, 0.2, 0.3], severity)
    value = x.max(axis=-1, keepdims=True)
    brighter = np.clip(value + shift, 0, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(value > 0, x * (brighter / value), brighter)


# --- digital ------------------------------------------------------------------------------------


def contrast(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    factor = _level([0.75, 0.5, 0.4, 0.3, 0.15], severity)
    means = x.mean(axis=(1, 2), keepdims=True)
    return (x - means) * factor + means


def _per_image_pil(x: np.ndarray, change) -> np.ndarray:
    """Apply ``change`` (a Pillow image -> Pillow image) to each image, on its uint8 pixels."""
    from PIL import Image

    pixels = np.uint8(np.clip(x, 0, 1) * 255)
    return np.stack([np.asarray(change(Image.fromarray(image)), dtype=np.uint8) for image in pixels]) / 255.0


def jpeg_compression(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    quality = _level([80, 65, 58, 50, 40], severity)

    def compress(image):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return Image.open(buffer).convert("RGB")

    return _per_image_pil(x, compress)


def pixelate(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    factor = _level([0.95, 0.9, 0.85, 0.75, 0.65], severity)
    size = x.shape[1]
    small = (int(size * factor), int(size * factor))
    return _per_image_pil(x, lambda image: image.resize(small, Image.Resampling.BOX).resize((size, size), Image.Resampling.BOX))


# name -> (function, family); the order of the report's tables and figures
CORRUPTIONS = {
    "gaussian_noise": (gaussian_noise, "noise"),
    "shot_noise": (shot_noise, "noise"),
    "impulse_noise": (impulse_noise, "noise"),
    "speckle_noise": (speckle_noise, "noise"),
    "defocus_blur": (defocus_blur, "blur"),
    "gaussian_blur": (gaussian_blur, "blur"),
    "zoom_blur": (zoom_blur, "blur"),
    "fog": (fog, "weather"),
    "brightness": (brightness, "weather"),
    "contrast": (contrast, "digital"),
    "jpeg_compression": (jpeg_compression, "digital"),
    "pixelate": (pixelate, "digital"),
}


def corruption_rng(name: str, severity: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode()), severity])


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """``images`` (uint8, N x height x width x channels) with corruption ``name`` at ``severity`` (1-5), as uint8."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images of shape N x H x W x 3, got {images.dtype} {images.shape}")
    function, _ = CORRUPTIONS[name]
    damaged = function(images / 255.0, severity, corruption_rng(name, severity, seed))
    return np.uint8(np.clip(damaged, 0, 1) * 255)


def corrupt_all_severities(images: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """severities x N x height x width x channels uint8: every severity of one corruption."""
    return np.stack([corrupt(images, name, severity, seed) for severity in SEVERITIES])


def psnr(reference: np.ndarray, damaged: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of uint8 images (over all of them together)."""
    error = np.mean((reference.astype(np.float64) - damaged.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))
