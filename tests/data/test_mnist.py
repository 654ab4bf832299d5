"""The MNIST IDX reader, the splits, and the downloader -- offline.

Small IDX files are written here (raw and gzip, good and broken); the real test set
comes from the project's shared data directory, ``../shared/data/mnist`` beside the
repository, through the ``mnist_dir`` fixture (tests/conftest.py): skipped with the
reason when it is absent, a failure when ``MINIGRAD_REQUIRE_MNIST`` is set (as in CI).
The downloader is exercised with a ``file://`` mirror, never the network.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST_FILES, real_mnist_dir

import minigrad as mg
from minigrad.data import mnist
from minigrad.data.mnist import download_mnist, load_mnist, read_idx, read_mnist_pair

T10K_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # from the data's README


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_mnist(folder: Path, prefix: str, n: int, gz: bool = True, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    for name, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        data = idx_bytes(arr)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


def test_real_mnist_fixture_skips_or_fails_when_the_files_are_absent(tmp_path, monkeypatch):
    """A fresh clone has no data beside it: the tests that need MNIST skip, saying why -- unless
    MINIGRAD_REQUIRE_MNIST is set (CI), which turns the skip into a failure."""
    monkeypatch.delenv("MINIGRAD_REQUIRE_MNIST", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"not in {tmp_path} .missing t10k-images-idx3-ubyte.gz, t10k-l"):
        real_mnist_dir(tmp_path)
    monkeypatch.setenv("MINIGRAD_REQUIRE_MNIST", "0")
    with pytest.raises(pytest.skip.Exception):
        real_mnist_dir(tmp_path)
    monkeypatch.setenv("MINIGRAD_REQUIRE_MNIST", "1")
    with pytest.raises(pytest.fail.Exception, match="missing t10k-images.*MINIGRAD_REQUIRE_MNIST is set"):
        real_mnist_dir(tmp_path)
    (tmp_path / MNIST_FILES[0]).write_bytes(b"")
    with pytest.raises(pytest.fail.Exception, match=r"\(missing t10k-labels-idx1-ubyte.gz\)"):
        real_mnist_dir(tmp_path)
    (tmp_path / MNIST_FILES[1]).write_bytes(b"")
    assert real_mnist_dir(tmp_path) == tmp_path


# ---------------------------------------------------------------------------------------- IDX format
@pytest.mark.parametrize(
    "dtype, code",
    [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)],
)
@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, dtype, code, gz):
    a = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    data = idx_bytes(a, code)
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    path.write_bytes(gzip.compress(data) if gz else data)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.shape == (2, 3, 4)
    np.testing.assert_array_equal(a, b)
    b[0, 0, 0] = 1  # a writable array


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d[:2], "too short to be an IDX file"),
        (lambda d: b"\x08\x03" + d[2:], "bad magic number 0x08030803"),
        (lambda d: d[:2] + b"\x07" + d[3:], "bad magic number 0x00000703"),
        (lambda d: d[:9], "truncated IDX header"),
        (lambda d: d[:-5], r"truncated: the header announces shape \(3, 28, 28\) \(2352 bytes of data\) but only 2347"),
        (lambda d: d + b"\x00" * 3, "3 unexpected bytes after the data"),
        (lambda d: d[:3] + b"\x00" + d[4:], "announces 0 dimensions; MNIST files have 1 or 3"),
        (lambda d: d[:3] + b"\xc8" + d[4:], "announces 200 dimensions; MNIST files have 1 or 3 .at most 4"),
        # 3 x 2**22 elements = 2**66: an int64 product wraps to 0 and would have "matched" empty data
        (lambda d: d[:4] + struct.pack(">3I", 1 << 22, 1 << 22, 1 << 22), r"announces shape \(4194304, 4194304,"),
        # (2**32 - 1)**2 wraps to a negative int64
        (lambda d: d[:3] + b"\x02" + struct.pack(">2I", 2**32 - 1, 2**32 - 1) + d[16:], r"truncated: .*\(4294967295,"),
    ],
)
def test_corrupt_idx_is_a_clear_error_naming_the_file(tmp_path, mutate, message):
    write_mnist(tmp_path, "t10k", 3, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(mg.UserError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "download it again" in str(info.value)


def test_truncated_or_corrupt_gzip(tmp_path):
    write_mnist(tmp_path, "t10k", 5)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # an interrupted download
    with pytest.raises(mg.UserError, match=f"{path}: corrupt or truncated gzip file"):
        read_idx(path)
    path.write_bytes(good[:10] + bytes(len(good) - 10))  # garbage after the gzip header
    with pytest.raises(mg.UserError, match="corrupt or truncated gzip file"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(mg.UserError, match="nope.gz: no such file"):
        read_idx(tmp_path / "nope.gz")


def test_mnist_pair_checks(tmp_path):
    images, labels = write_mnist(tmp_path, "t10k", 4)
    img, lbl = tmp_path / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz"
    a, b = read_mnist_pair(img, lbl)
    np.testing.assert_array_equal(a, images)
    assert b.dtype == np.int64 and list(b) == list(labels)
    with pytest.raises(mg.UserError, match="expected MNIST images"):
        read_mnist_pair(lbl, lbl)
    with pytest.raises(mg.UserError, match="expected MNIST labels"):
        read_mnist_pair(img, img)
    (tmp_path / "short.gz").write_bytes(gzip.compress(idx_bytes(labels[:3])))
    with pytest.raises(mg.UserError, match="has 4 images but .* has 3 labels"):
        read_mnist_pair(img, tmp_path / "short.gz")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(idx_bytes(np.array([1, 2, 10, 3], dtype=np.uint8))))
    with pytest.raises(mg.UserError, match="labels must be digits 0..9, found 10"):
        read_mnist_pair(img, tmp_path / "bad.gz")


# ---------------------------------------------------------------------------------------- splits
def test_full_layout_and_torchvision_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    train_images, _ = write_mnist(raw, "train", 6, gz=False, seed=1)
    write_mnist(raw, "t10k", 4, seed=2)
    split = load_mnist(tmp_path)
    assert len(split.train) == 6 and len(split.test) == 4
    assert "6 training / 4 test" in split.description
    x, y = split.train.arrays
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0], (train_images / 255.0 - 0.1307) / 0.3081, rtol=1e-5, atol=1e-6)


def test_split_errors(tmp_path):
    with pytest.raises(mg.UserError, match="does not exist"):
        load_mnist(tmp_path / "missing")
    with pytest.raises(mg.UserError, match="no MNIST files in"):
        load_mnist(tmp_path)
    write_mnist(tmp_path, "t10k", 4)
    with pytest.raises(mg.UserError, match="t10k-only split needs more than 8000"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(mg.UserError, match="found one t10k file but not t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def test_real_t10k_files(mnist_dir):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        content = gzip.decompress((mnist_dir / f"{name}.gz").read_bytes())
        assert hashlib.md5(content).hexdigest() == mnist.MD5[name]
    images, labels = read_mnist_pair(mnist_dir / "t10k-images-idx3-ubyte.gz", mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == T10K_LABEL_COUNTS
    split = load_mnist(mnist_dir)
    assert len(split.train) == 8000 and len(split.test) == 2000
    assert "first 8000" in split.description and "last 2000" in split.description
    np.testing.assert_array_equal(split.test.arrays[1], labels[8000:])
    x = split.train.arrays[0]
    assert abs(x.mean()) < 0.05 and abs(x.std() - 1) < 0.05  # normalised with MNIST's mean/std


# ---------------------------------------------------------------------------------------- downloader
def test_downloader_verifies_checksums_with_a_local_mirror(tmp_path, mnist_dir, capsys):
    names = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    good = tmp_path / "good"
    good.mkdir()
    for n in names:
        shutil.copy(mnist_dir / f"{n}.gz", good / f"{n}.gz")
    bad = tmp_path / "bad"  # a mirror serving a corrupted copy
    bad.mkdir()
    for n in names:
        data = bytearray(gzip.decompress((mnist_dir / f"{n}.gz").read_bytes()))
        data[-1] ^= 0xFF
        (bad / f"{n}.gz").write_bytes(gzip.compress(bytes(data), compresslevel=1))
    cache = tmp_path / "cache"

    with pytest.raises(mg.UserError, match="checksum mismatch") as info:
        download_mnist(cache, names=names, mirrors=(bad.as_uri() + "/",))
    assert f"copy them into {cache}" in str(info.value)
    assert list(cache.iterdir()) == []  # nothing half-written or unverified is left behind

    # The bad mirror first, the good one second: the file comes from the good one.
    download_mnist(cache, names=names, mirrors=(bad.as_uri() + "/", good.as_uri() + "/"))
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in names)
    assert len(load_mnist(cache, download=False).test) == 2000
    assert "downloading" in capsys.readouterr().err

    # Verified files are kept: a mirror that doesn't exist is never contacted.
    download_mnist(cache, names=names, mirrors=((tmp_path / "nowhere").as_uri() + "/",))
    with pytest.raises(mg.UserError, match="could not download MNIST's t10k-images-idx3-ubyte.gz"):
        (cache / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b broken")
        download_mnist(cache, names=names, mirrors=((tmp_path / "nowhere").as_uri() + "/",))


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    assert mnist.default_data_dir() == tmp_path / "mnist"


def test_without_data_dir_uses_the_cache_and_downloads_only_when_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    cache = tmp_path / "mnist"
    calls = []

    def fake_download(root=None, **kwargs):  # stands in for the network
        calls.append(root)
        root.mkdir(parents=True, exist_ok=True)
        write_mnist(root, "train", 5)
        write_mnist(root, "t10k", 3)
        return root

    monkeypatch.setattr(mnist, "download_mnist", fake_download)
    split = load_mnist()
    assert calls == [cache] and len(split.train) == 5 and len(split.test) == 3
    load_mnist()  # now cached: no second download
    assert calls == [cache]


def test_offline_download_says_where_to_put_the_files(monkeypatch, tmp_path):
    def offline(url, timeout):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(mg.UserError, match="Temporary failure in name resolution") as info:
        download_mnist(tmp_path / "cache", names=("t10k-labels-idx1-ubyte",))
    msg = str(info.value)
    assert "If this machine is offline" in msg and str(tmp_path / "cache") in msg and "--data-dir" in msg
    assert list((tmp_path / "cache").iterdir()) == []
