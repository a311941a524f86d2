# Where the dataset's archive comes from and where it is kept: the download rule's source and path, and the
# model card's record of the source.


def archive_source():
    if not (config.get("archive") or DATASET.url):
        raise ValueError(f"dataset {DATASET.name} has no official download: set 'archive' and 'archive_sha256' (or 'archive_md5')")
    return config.get("archive") or DATASET.url


def archive_checksum():
    """(md5, sha256) of the archive to fetch; the official md5 unless another source is configured."""
    if not config.get("archive"):
        return DATASET.md5, None
    md5, sha256 = config.get("archive_md5"), config.get("archive_sha256")
    if not (md5 or sha256):
        raise ValueError(
            "config 'archive' is set, so 'archive_md5' or 'archive_sha256' must be set too "
            "(e.g. --config archive=PATH archive_sha256=HEX)"
        )
    return md5, sha256


def archive_path():
    """Archives are kept under their checksum, so each distinct archive is fetched once and never again."""
    md5, sha256 = archive_checksum()
    tag = f"sha256-{sha256[:16]}" if sha256 else f"md5-{md5[:16]}"
    return f"resources/{tag.lower()}/{DATASET.archive_name}"


def archive_record():
    """Where the archive came from, as the model card records it."""
    md5, sha256 = archive_checksum()
    return {"archive": archive_source(), "official": not config.get("archive"), "md5": md5, "sha256": sha256}


def raw_batches():
    return [f"results/data/raw/{batch}.npz" for batch in DATASET.batches]
