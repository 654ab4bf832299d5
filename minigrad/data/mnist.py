"""MNIST: the IDX file reader, the train/test split, and a checksummed downloader.

The IDX format (LeCun's) is a tiny header followed by raw big-endian numbers::

    bytes 0-1   0x00 0x00                      (the magic's first half is always zero)
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     number of dimensions D
    then        D big-endian uint32 sizes, then prod(sizes) elements, nothing else

so ``train-images-idx3-ubyte`` starts with magic 2051 = 0x00000803 (uint8, 3 dims)
and sizes 60000, 28, 28, and a labels file with 2049 = 0x00000801 (uint8, 1 dim).
:func:`read_idx` checks all of that -- magic, element type, a rank of 1 to
:data:`MAX_IDX_RANK`, and that the data is exactly as long as the header says (the
size is computed with Python's unbounded ints, so a corrupt header announcing, say,
2**66 elements cannot wrap around to a small number) -- and reads ``.gz`` files
transparently (it looks at the gzip signature ``1f 8b``, not at the name).  Any
problem is a :class:`~minigrad.errors.UserError` naming the file and saying what to do.

Files are looked up by their original names (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
each optionally ``.gz``) in the data directory or in its torchvision-style
``MNIST/raw`` subdirectory.

Splits (:func:`load_mnist`):

* all four files present: the official 60,000 training / 10,000 test images;
* only the two ``t10k`` files: the first 8,000 test images train and the last 2,000
  test (the split the project's offline benchmarks use; the description says so).

Pixels become float32 ``(x / 255 - 0.1307) / 0.3081``: the mean and standard deviation
of MNIST's training pixels, so that inputs are roughly zero-mean, unit-variance.

The downloader (:func:`download_mnist`) fetches the ``.gz`` files into a cache
directory, checks the MD5 of each file's *decompressed* content (mirrors sometimes
re-compress, which changes the ``.gz`` bytes but not the data), writes each file to a
temporary name and renames it only once it is verified.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .loader import TensorDataset

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# MD5 of each file's decompressed content (the same values torchvision, TensorFlow and others check).
MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
T10K_TRAIN = 8000  # with only the t10k files: the first 8,000 train, the last 2,000 test

# MNIST's files have 1 (labels) or 3 (images) dimensions, a colour image set would have 4; a larger
# count in byte 3 of the header is corruption, and refusing it early keeps the header read bounded.
MAX_IDX_RANK = 4
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_HOW_TO_GET = (
    "download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
    f"t10k-labels-idx1-ubyte.gz (e.g. from {MIRRORS[0]})"
)


# ---------------------------------------------------------------------------------------- IDX files
def _read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip signature."""
    if not path.is_file():
        raise UserError(f"{path}: no such file; check the path (or --data-dir)")
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"{path}: corrupt or truncated gzip file ({e}); delete it and download it again") from None


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (see the module docstring) into an array in native byte order."""
    fix = "delete it and download it again"
    if len(raw) < 4:
        raise UserError(f"{source}: only {len(raw)} bytes, too short to be an IDX file; {fix}")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        magic = int.from_bytes(raw[:4], "big")
        raise UserError(f"{source}: bad magic number 0x{magic:08x}, not an IDX file; {fix}")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    if not 1 <= ndim <= MAX_IDX_RANK:
        raise UserError(
            f"{source}: the IDX header announces {ndim} dimensions; MNIST files have 1 or 3 (at most "
            f"{MAX_IDX_RANK} are read), so the header is corrupt; {fix}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{source}: truncated IDX header ({len(raw)} bytes, need {header}); {fix}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow, however large the sizes
    found = len(raw) - header
    if found < expected:
        raise UserError(
            f"{source}: truncated: the header announces shape {shape} ({expected} bytes of data) but only "
            f"{found} bytes follow; {fix}"
        )
    if found > expected:
        raise UserError(f"{source}: {found - expected} unexpected bytes after the data of shape {shape}; {fix}")
    return (
        np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def read_mnist_pair(images_path: str | os.PathLike, labels_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) uint8, labels (N,) int64)``, checked to be MNIST-shaped and consistent."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise UserError(
            f"{images_path}: expected MNIST images (uint8, N x 28 x 28), found {images.dtype} of shape "
            f"{images.shape}; is this the right file?"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise UserError(
            f"{labels_path}: expected MNIST labels (uint8, N), found {labels.dtype} of shape {labels.shape}; "
            "is this the right file?"
        )
    if len(images) != len(labels):
        raise UserError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels; "
            "use the two files of the same split"
        )
    if labels.size and labels.max() > 9:
        raise UserError(f"{labels_path}: labels must be digits 0..9, found {int(labels.max())}")
    return images, labels.astype(np.int64)


# ---------------------------------------------------------------------------------------- finding and splitting
def _find(data_dir: Path, name: str) -> Path | None:
    for folder in (data_dir, data_dir / "MNIST" / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def find_mnist_files(data_dir: str | os.PathLike) -> dict[str, tuple[Path, Path]]:
    """``{"train": (images, labels), "t10k": (...)}`` for the splits whose two files exist."""
    data_dir = Path(data_dir)
    found = {}
    for split, (img_name, lbl_name) in FILES.items():
        img, lbl = _find(data_dir, img_name), _find(data_dir, lbl_name)
        if (img is None) != (lbl is None):
            missing = img_name if img is None else lbl_name
            raise UserError(f"{data_dir}: found one {split} file but not {missing}(.gz); copy it next to the other")
        if img is not None:
            found[split] = (img, lbl)
    return found


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28), ``(x / 255 - mean) / std``."""
    x = images.astype(np.float32)[:, None] / 255.0
    return (x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)


@dataclass
class Split:
    """A dataset's training and held-out parts, and a line saying what they are."""

    train: TensorDataset
    test: TensorDataset
    description: str


def default_data_dir() -> Path:
    """Where downloaded MNIST goes: ``$MINIGRAD_DATA/mnist``, else ``~/.cache/minigrad/mnist``."""
    if os.environ.get("MINIGRAD_DATA"):
        return Path(os.environ["MINIGRAD_DATA"]) / "mnist"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "minigrad" / "mnist"


def check_data_dir(data_dir: str | os.PathLike) -> Path:
    """``data_dir`` as a Path if it is a directory, else a UserError saying what to put where."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        what = "is a file, not a directory" if data_dir.exists() else "does not exist"
        raise UserError(f"data directory {data_dir} {what}; {_HOW_TO_GET} into it, or fix --data-dir")
    return data_dir


def load_mnist(data_dir: str | os.PathLike | None = None, download: bool = True) -> Split:
    """MNIST as a :class:`Split` (see the module docstring for the two layouts).

    With ``data_dir=None`` the files are looked up in :func:`default_data_dir` and
    downloaded there if missing (``download=True``).
    """
    if data_dir is None:
        data_dir = default_data_dir()
        if download and len(find_mnist_files(data_dir) if data_dir.is_dir() else {}) < 2:
            download_mnist(data_dir)
    data_dir = check_data_dir(data_dir)
    found = find_mnist_files(data_dir)
    if "t10k" not in found:
        raise UserError(f"no MNIST files in {data_dir} (need at least the two t10k-* files); {_HOW_TO_GET} into it")
    test_images, test_labels = read_mnist_pair(*found["t10k"])
    if "train" in found:
        train_images, train_labels = read_mnist_pair(*found["train"])
        description = f"MNIST from {data_dir}: {len(train_images)} training / {len(test_images)} test images"
    else:
        if len(test_images) <= T10K_TRAIN:
            raise UserError(
                f"{found['t10k'][0]} holds {len(test_images)} images; the t10k-only split needs more than "
                f"{T10K_TRAIN}; add the train-* files to {data_dir}"
            )
        train_images, train_labels = test_images[:T10K_TRAIN], test_labels[:T10K_TRAIN]
        test_images, test_labels = test_images[T10K_TRAIN:], test_labels[T10K_TRAIN:]
        description = (
            f"MNIST from {data_dir}: only the t10k files are there, so the first {T10K_TRAIN} of its images "
            f"train and the last {len(test_images)} test"
        )
    return Split(
        TensorDataset(normalize(train_images), train_labels),
        TensorDataset(normalize(test_images), test_labels),
        description,
    )


# ---------------------------------------------------------------------------------------- downloading
def _md5_of_content(path: Path) -> str:
    return hashlib.md5(_read_bytes(path), usedforsecurity=False).hexdigest()


def download_mnist(
    root: str | os.PathLike | None = None,
    names: tuple[str, ...] = tuple(MD5),
    mirrors: tuple[str, ...] = MIRRORS,
    timeout: float = 30.0,
) -> Path:
    """Download the MNIST ``.gz`` files into ``root`` (default :func:`default_data_dir`); returns ``root``.

    Files already there with the right checksum are kept.  Each download is written
    to a temporary file, its decompressed MD5 is checked, and only then is it renamed
    into place, so an interrupted or corrupted download never looks like a good file.
    When no mirror works (offline), the UserError says where to put the files by hand.
    """
    root = Path(root) if root is not None else default_data_dir()
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = root / f"{name}.gz"
        if target.is_file():
            try:
                if _md5_of_content(target) == MD5[name]:
                    continue
            except UserError:
                pass  # a corrupt leftover: download it again
        errors = []
        for mirror in mirrors:
            url = mirror + f"{name}.gz"
            print(f"minigrad: downloading {url}", file=sys.stderr)
            fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                digest = _md5_of_content(Path(tmp))
                if digest != MD5[name]:
                    raise ValueError(f"checksum mismatch (MD5 {digest}, expected {MD5[name]})")
                os.replace(tmp, target)
                break
            except (OSError, ValueError, UserError, urllib.error.URLError) as e:
                errors.append(f"{url}: {e}")
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
        else:
            raise UserError(
                f"could not download MNIST's {name}.gz ({'; '.join(errors)}). If this machine is offline, "
                f"{_HOW_TO_GET} on another machine, copy them into {root} and run again (or pass --data-dir DIR)"
            )
    return root
