"""The command line end to end: train, eval, export, and every user error.

* the README's main command (``minigrad train``, digits defaults) reaches >= 97% held-out
  accuracy, and its checkpoint, plots and metrics are what they claim to be;
* ``minigrad eval`` reproduces the recorded accuracy; ``minigrad export`` writes a state_dict
  that the torch.nn LeNet5 loads (strict) and that predicts exactly as minigrad does;
* MNIST from the real t10k files (first 8,000 train / last 2,000 test, 3 epochs) reaches >= 97.5%;
* ``train --device cuda`` (emulated where there is no GPU) computes what the NumPy path does;
* user errors print one line on stderr and exit with code 2, without a traceback.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CUDA_PATH, HAS_CUDA, on_path
from PIL import Image
from test_models import TorchLeNet5

import minigrad as mg
from minigrad import train as T
from minigrad.__main__ import main
from minigrad.data import Split, TensorDataset, load_digits
from minigrad.models import LeNet5

REPO = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """The README's main command with its defaults (run once; several tests read its outputs)."""
    out = tmp_path_factory.mktemp("digits")
    code = main(["train", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


# ---------------------------------------------------------------------------------------- training
def test_digits_default_reaches_97_percent(digits_run):
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert metrics["dataset"] == "digits" and metrics["epoch"] == T.DEFAULTS["digits"]["epochs"]
    assert metrics["accuracy"] >= 0.97, f"held-out accuracy {metrics['accuracy']:.2%} < 97%"
    assert metrics["test_acc"][-1] == metrics["accuracy"] and len(metrics["test_acc"]) == metrics["epoch"]
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]  # it learned
    assert metrics["images_per_second"] > 0


def test_outputs_are_complete(digits_run):
    arrays, meta = T.read_checkpoint(digits_run / "lenet5.npz")
    assert meta["arch"] == "LeNet5" and meta["format"] == "minigrad-checkpoint"
    assert list(arrays) == list(TorchLeNet5().state_dict())
    for name in ("curves.png", "filters.png"):
        with Image.open(digits_run / name) as im:
            assert im.format == "PNG" and im.size[0] >= 400
    assert not [p for p in digits_run.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_eval_reproduces_the_recorded_accuracy(digits_run, capsys):
    _, meta = T.read_checkpoint(digits_run / "lenet5.npz")
    code, out, _ = run_cli(capsys, "eval", digits_run / "lenet5.npz")
    assert code == 0
    n = 359
    assert f"test accuracy: {meta['accuracy']:.2%} ({round(meta['accuracy'] * n)}/{n})" in out


def test_export_loads_into_torch_and_predicts_the_same(digits_run, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "export", digits_run / "lenet5.npz", tmp_path / "lenet5.pt")
    assert code == 0 and "lenet5.pt" in out
    ref = TorchLeNet5()
    ref.load_state_dict(torch.load(tmp_path / "lenet5.pt"))  # strict, weights_only
    model, meta = T.load_checkpoint(digits_run / "lenet5.npz")
    images, labels = load_digits().test.arrays
    with torch.no_grad():
        torch_logits = ref(torch.tensor(images)).numpy()
    with mg.no_grad():
        mg_logits = model(mg.tensor(images)).numpy()
    np.testing.assert_allclose(mg_logits, torch_logits, rtol=1e-4, atol=1e-4)
    assert np.array_equal(mg_logits.argmax(1), torch_logits.argmax(1))
    assert (torch_logits.argmax(1) == labels).mean() == pytest.approx(meta["accuracy"])


def test_mnist_t10k_split_reaches_97_5_percent(tmp_path, capsys, mnist_dir):
    code, out, _ = run_cli(
        capsys,
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        mnist_dir,
        "--epochs",
        3,
        "--out",
        tmp_path,
        "--no-progress",
    )
    assert code == 0
    assert "only the t10k files are there, so the first 8000 of its images train and the last 2000 test" in out
    meta = json.loads((tmp_path / "metrics.json").read_text())
    assert meta["accuracy"] >= 0.975, f"MNIST t10k split: {meta['accuracy']:.2%} < 97.5%"
    code, out, _ = run_cli(capsys, "eval", tmp_path / "lenet5.npz")  # eval finds the data dir in the checkpoint
    assert code == 0 and f"test accuracy: {meta['accuracy']:.2%}" in out


def test_same_seed_same_run(tmp_path):
    cfg = dict(epochs=1, batch_size=128, progress=False)
    a = T.train(T.TrainConfig(out=str(tmp_path / "a"), **cfg), log=lambda s: None)
    b = T.train(T.TrainConfig(out=str(tmp_path / "b"), **cfg), log=lambda s: None)
    assert a.history["step_loss"] == b.history["step_loss"]
    c = T.train(T.TrainConfig(out=str(tmp_path / "c"), seed=1, **cfg), log=lambda s: None)
    assert a.history["step_loss"] != c.history["step_loss"]


def test_training_on_cuda_matches_the_cpu_run(tmp_path, monkeypatch):
    """``train --device cuda``: batches, model and optimizer on "cuda" (emulated where there is no
    GPU), the checkpoint and plots written from there.  On 4 training images in 2 steps -- the Triton
    interpreter takes seconds per image and step -- so this checks that the path runs and computes
    what the NumPy path does, not accuracy."""
    full = load_digits()
    tiny = Split(
        TensorDataset(*(a[:4] for a in full.train.arrays)), TensorDataset(*(a[:2] for a in full.test.arrays)), "tiny"
    )
    monkeypatch.setattr(T, "load_dataset", lambda name, data_dir=None: tiny)
    cfg = dict(epochs=1, batch_size=2, progress=False, optimizer="sgd")
    cpu = T.train(T.TrainConfig(out=str(tmp_path / "cpu"), device="cpu", kernels="numpy", **cfg), log=lambda s: None)
    with on_path(CUDA_PATH):
        gpu = T.train(T.TrainConfig(out=str(tmp_path / "gpu"), device="cuda", **cfg), log=lambda s: None)
    np.testing.assert_allclose(gpu.history["step_loss"], cpu.history["step_loss"], rtol=1e-5)
    gpu_arrays, meta = T.read_checkpoint(gpu.checkpoint)
    cpu_arrays, _ = T.read_checkpoint(cpu.checkpoint)
    assert meta["device"] == "cuda" and meta["kernels"] == "triton"
    for k in cpu_arrays:
        np.testing.assert_allclose(gpu_arrays[k], cpu_arrays[k], rtol=1e-4, atol=1e-6, err_msg=k)
    assert (tmp_path / "gpu" / "filters.png").exists() and (tmp_path / "gpu" / "curves.png").exists()


# ---------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model = LeNet5()
    path = T.save_checkpoint(tmp_path / "ck.npz", model, {"arch": "LeNet5", "epoch": 1, "accuracy": 0.5})
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # the user pressed Ctrl-C in the middle of the save

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        T.save_checkpoint(path, model, {"arch": "LeNet5", "epoch": 2, "accuracy": 0.9})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]


# ---------------------------------------------------------------------------------------- user errors
def write_checkpoint(path: Path, meta: dict, arrays: dict | None = None):
    model = LeNet5()
    T.save_checkpoint(path, model, meta)
    if arrays is not None:
        with np.load(path) as f:
            data = dict(f)
        data.update(arrays)
        with open(path, "wb") as f:
            np.savez(f, **data)
    return path


def error_cases(tmp: Path):
    corrupt = tmp / "corrupt.npz"
    corrupt.write_bytes(b"this is not a zip file")
    no_meta = tmp / "plain.npz"
    np.savez(no_meta, w=np.zeros(3))
    other = write_checkpoint(tmp / "resnet.npz", {"arch": "ResNet18", "epoch": 1})
    misfit = write_checkpoint(tmp / "misfit.npz", {"arch": "LeNet5"}, {"fc3.weight": np.zeros((5, 84), np.float32)})
    bad_mnist = tmp / "bad_mnist"
    bad_mnist.mkdir()
    header = b"\x00\x00\x08\x03" + struct.pack(">3I", 10000, 28, 28)  # 10,000 images announced ...
    (bad_mnist / "t10k-images-idx3-ubyte").write_bytes(header + b"\x00" * 100)  # ... 100 bytes present
    (bad_mnist / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x27\x10" + b"\x00" * 10000)
    out = ["--out", tmp / "out"]
    return [
        (["train", "--dataset", "cifar10", *out], "unknown dataset 'cifar10'; use --dataset digits"),
        (["train", "--dataset", "mnist", "--data-dir", tmp / "nowhere", *out], "nowhere does not exist"),
        (["train", "--dataset", "mnist", "--data-dir", bad_mnist, *out], "truncated: the header announces"),
        (["train", "--data-dir", tmp, *out], "--data-dir .* is only used by --dataset mnist"),
        (["train", "--lr", "0", *out], r"learning rate must be a positive number, got --lr 0.0; try --lr 0.005"),
        (["train", "--device", "tpu", *out], "unknown device 'tpu'"),
        (["train", "--lr", "-0.1", *out], "learning rate must be a positive number"),
        (["train", "--optimizer", "rmsprop", *out], "unknown optimizer 'rmsprop'"),
        (["train", "--epochs", "0", *out], "--epochs must be at least 1"),
        (["train", "--epochs", "many", *out], "argument --epochs: invalid int value: 'many'"),
        (["train", "--kernels", "cuda", *out], "unknown kernel path 'cuda'"),
        (["eval", tmp / "missing.npz"], "missing.npz: no such checkpoint; train one with"),
        (["eval", corrupt], "corrupt.npz: not a readable minigrad checkpoint"),
        (["eval", no_meta], "plain.npz: not a minigrad checkpoint .no metadata header."),
        (["eval", other], "this checkpoint is for architecture 'ResNet18', but minigrad knows only LeNet5"),
        (["export", misfit, tmp / "x.pt"], r"its weights do not fit LeNet5: size mismatch for fc3.weight"),
        (["eval", "--dataset", "svhn", misfit], "weights do not fit"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ] + ([] if HAS_CUDA else [(["train", "--device", "cuda", *out], "torch sees no CUDA GPU on this machine")])


def test_user_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    for argv, message in error_cases(tmp_path):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse's own errors
            code = e.code
        out, err = capsys.readouterr()
        assert code == 2, (argv, code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("minigrad"), (argv, err)
        assert "error:" in lines[0] and re.search(message, lines[0]), (argv, lines[0])
        assert "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.pt").exists()  # nothing written on errors


def test_user_error_in_a_real_process_has_no_traceback():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "minigrad", "train", "--dataset", "nope"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "minigrad: error: unknown dataset 'nope'; use --dataset digits (offline) or --dataset mnist"
    ]
    assert proc.stdout == ""


def test_console_script_entry_point():
    """pyproject's ``minigrad = "minigrad.__main__:main"`` names the function these tests call."""
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["minigrad"].split(":")
    assert getattr(__import__(module, fromlist=[func]), func) is main
    script = Path(sys.executable).with_name("minigrad")
    if not script.exists():
        pytest.skip("minigrad is not pip-installed in this environment (no console script to run)")
    proc = subprocess.run([str(script), "train", "--lr", "-1"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("minigrad: error: learning rate must be a positive")
