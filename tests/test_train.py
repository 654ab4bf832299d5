"""The command line end to end: train, eval, export, resume, and every user error.

* the README's main command (``minigrad train``, digits defaults) reaches >= 97% held-out
  accuracy, and its checkpoint, plots and metrics are what they claim to be;
* ``minigrad eval`` reproduces the recorded accuracy; ``minigrad export`` writes a state_dict
  that the torch.nn LeNet5 loads (strict) and that predicts exactly as minigrad does;
* MNIST from the real t10k files (first 8,000 train / last 2,000 test, 3 epochs) reaches >= 97.5%;
* ``train --device cuda`` (emulated where there is no GPU) computes what the NumPy path does;
* a run's outputs are published as a unit: an interrupted run leaves the previous set as it was,
  and runs publishing into one ``--out`` (also at the same time) never leave files of both;
* a run interrupted mid-epoch and resumed from its last checkpoint (``--resume``) ends with
  bit-identical weights, optimizer state and history to the uninterrupted run;
* user errors print one line on stderr and exit with code 2, without a traceback, and every
  ``train`` option is checked before any data is loaded.

The publishing and resuming tests train on a tiny slice of the digits (64 training images, 2
epochs of 4 steps) so that each takes a few seconds.
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
from minigrad.__main__ import build_parser, main
from minigrad.data import DataLoader, Split, TensorDataset, load_digits
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
    assert not list(digits_run.parent.glob(f".{digits_run.name}.*"))  # nor a staging directory beside it


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


# ---------------------------------------------------------------------------------------- publishing and resuming
TINY = ["--epochs", 2, "--batch-size", 16, "--no-progress"]  # 4 steps per epoch on TINY_SPLIT


@pytest.fixture(scope="module")
def tiny_split() -> Split:
    full = load_digits()
    return Split(
        TensorDataset(*(a[:64] for a in full.train.arrays)),
        TensorDataset(*(a[:32] for a in full.test.arrays)),
        "tiny digits: 64 training / 32 test images",
    )


@pytest.fixture
def tiny_data(tiny_split, monkeypatch):
    """``train`` reads the tiny split whatever the dataset (no MNIST involved)."""
    monkeypatch.setattr(T, "load_dataset", lambda name, data_dir=None: tiny_split)
    return tiny_split


@pytest.fixture
def interrupt(monkeypatch):
    """``interrupt["at"] = n``: Ctrl-C arrives at the n-th training step (counted by the shift
    augmentation, which runs once per step); ``None``: never."""
    control = {"at": None, "steps": 0}
    real = T.random_shift

    def shift(*args, **kwargs):
        control["steps"] += 1
        if control["steps"] == control["at"]:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "random_shift", shift)
    return control


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def kept_checkpoint(err: str) -> Path:
    """The checkpoint an interrupted run names on stderr."""
    match = re.search(r"--resume (\S+)`", err)
    assert match, err
    return Path(match.group(1))


def test_an_interrupted_run_leaves_the_previous_set_untouched(tmp_path, tiny_data, interrupt, monkeypatch, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", *TINY, "--out", out)[0] == 0
    before = files_of(out)
    assert sorted(before) == sorted(T.OUTPUT_NAMES)

    interrupt.update(at=interrupt["steps"] + 6, steps=interrupt["steps"])  # the 2nd step of epoch 2
    code, _, err = run_cli(capsys, "train", *TINY, "--seed", 1, "--out", out)
    assert code == 130 and err.strip().splitlines()[-1] == "minigrad: interrupted"
    assert "stopped after epoch 1/2" in err and files_of(out) == before
    kept = kept_checkpoint(err)
    assert kept.parent.parent == tmp_path and kept.parent.name.startswith(".run.tmp-")
    assert T.read_checkpoint(kept)[1]["epoch"] == 1

    interrupt["at"] = None

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # at the very end, while the plots are written

    monkeypatch.setattr(T, "plot_filters", crash)
    code, _, err = run_cli(capsys, "train", *TINY, "--seed", 1, "--out", out)
    assert code == 130 and "stopped after epoch 2/2" in err and files_of(out) == before
    assert "all epochs had finished: `python -m minigrad eval " in err and "--resume" not in err
    monkeypatch.undo()  # (also the tiny data and the interruptions: the next run needs neither)

    # A run that stops before its first checkpoint leaves nothing behind.
    monkeypatch.setattr(T, "evaluate", crash)
    monkeypatch.setattr(T, "load_dataset", lambda name, data_dir=None: tiny_data)
    assert run_cli(capsys, "train", *TINY, "--out", out)[0] == 130
    assert files_of(out) == before
    assert len(list(tmp_path.glob(".run.tmp-*"))) == 2  # the two runs that had a checkpoint to keep


def test_runs_into_one_out_replace_each_other_whole(tmp_path, tiny_data, capsys):
    """Run A, then run B (another seed, fewer epochs) into the same --out: every file is B's."""
    out = tmp_path / "run"
    assert run_cli(capsys, "train", *TINY, "--out", out)[0] == 0
    a = files_of(out)
    assert (
        run_cli(capsys, "train", "--epochs", 1, "--batch-size", 16, "--seed", 3, "--no-progress", "--out", out)[0] == 0
    )
    b = files_of(out)
    assert sorted(b) == sorted(a) and all(a[name] != b[name] for name in a)
    metrics = json.loads(b["metrics.json"])
    _, meta = T.read_checkpoint(out / "lenet5.npz")
    assert metrics["seed"] == meta["seed"] == 3 and len(metrics["test_acc"]) == meta["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging or retired directory left


def test_concurrent_publishers_never_mix_their_files(tmp_path):
    """Threads publishing whole directories into one target at once: after each round the target
    holds exactly one publisher's files, and no staging or retired directory is left behind."""
    import threading

    target = tmp_path / "out"
    for round_ in range(25):
        stagings = []
        for writer in range(4):
            staging = T.make_staging_dir(target)
            for name in T.OUTPUT_NAMES[: 2 + writer % 3]:  # sets of different sizes: a mix would show
                (staging / name).write_text(f"{round_}-{writer}")
            stagings.append(staging)
        threads = [threading.Thread(target=T.publish, args=(st, target)) for st in stagings]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        contents = {p.read_text() for p in target.iterdir()}
        assert len(contents) == 1, contents
        writer = int(contents.pop().split("-")[1])
        assert sorted(p.name for p in target.iterdir()) == sorted(T.OUTPUT_NAMES[: 2 + writer % 3])
        assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_train_one_epoch_and_evaluate_work_on_their_own(tiny_split):
    """The two halves of the loop, called as the PyTorch MNIST example calls its train and test."""
    mg.manual_seed(0)
    model = LeNet5()
    optimizer = mg.optim.Adam(model.parameters(), lr=5e-3)
    loader = DataLoader(tiny_split.train, batch_size=16, shuffle=True, generator=np.random.default_rng(0))
    fixed = DataLoader(tiny_split.train, batch_size=64)
    loss_before, _ = T.evaluate(model, fixed)
    for _ in range(4):
        stats = T.train_one_epoch(model, loader, optimizer)
        assert stats.images == 64 and len(stats.step_losses) == 4
        assert stats.loss == pytest.approx(np.mean(stats.step_losses))  # equal batches: the plain mean
    loss_after, acc_after = T.evaluate(model, fixed)
    assert loss_after < 0.5 * loss_before and acc_after > 0.5
    assert not model.training  # evaluate leaves the model in eval mode, train_one_epoch in train mode


def test_train_config_is_built_from_the_parsed_options_in_one_step():
    args = build_parser().parse_args(
        ["train", "--dataset", "mnist", "--epochs", "3", "--threads", "0", "--no-progress", "--resume", "r.npz"]
    )
    cfg = T.TrainConfig.from_args(args)
    assert (cfg.dataset, cfg.epochs, cfg.threads, cfg.progress, cfg.resume) == ("mnist", 3, None, False, "r.npz")
    assert (cfg.lr, cfg.kernels, cfg.out) == (None, "auto", None)  # unset: resolved() fills in the defaults
    assert T.TrainConfig.from_args(build_parser().parse_args(["train"])) == T.TrainConfig()


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resumed_run_ends_bit_identical_to_the_uninterrupted_one(optimizer, tmp_path, tiny_data, interrupt, capsys):
    args = [*TINY, "--optimizer", optimizer]
    assert run_cli(capsys, "train", *args, "--out", tmp_path / "straight")[0] == 0

    interrupt.update(at=6, steps=0)  # Ctrl-C in the middle of epoch 2
    code, _, err = run_cli(capsys, "train", *args, "--out", tmp_path / "resumed")
    assert code == 130 and not (tmp_path / "resumed").exists()
    kept = kept_checkpoint(err)
    interrupt["at"] = None
    code, out, _ = run_cli(capsys, "train", "--resume", kept, "--no-progress")  # --out: the run's own
    assert code == 0 and f"resuming {kept} after epoch 1/2" in out

    a_arrays, a_meta = T.read_checkpoint(tmp_path / "straight" / "lenet5.npz")
    b_arrays, b_meta = T.read_checkpoint(tmp_path / "resumed" / "lenet5.npz")
    for key in a_arrays:
        assert np.array_equal(a_arrays[key], b_arrays[key]), key
    a_opt, b_opt = a_meta["training"]["optimizer"], b_meta["training"]["optimizer"]
    assert a_opt["param_groups"] == b_opt["param_groups"] and a_opt["state"].keys() == b_opt["state"].keys()
    for i, state in a_opt["state"].items():
        for key, value in state.items():
            assert np.array_equal(value, b_opt["state"][i][key]), (i, key)
    assert a_meta["training"]["scheduler"] == b_meta["training"]["scheduler"]
    assert a_meta["training"]["rng"] == b_meta["training"]["rng"]
    a_metrics = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    b_metrics = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    for key in ("step_loss", "train_loss", "train_acc", "test_loss", "test_acc"):
        assert a_metrics[key] == b_metrics[key], key
    assert len(a_metrics["step_loss"]) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resumed", "straight"]  # the kept directory is gone


def test_resume_errors(tmp_path, tiny_data, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", *TINY, "--out", out)[0] == 0
    done = out / "lenet5.npz"
    arrays, meta = T.read_checkpoint(done)
    half = tmp_path / "half.npz"  # the same run as after epoch 1 (weights aside)
    training = dict(meta.pop("training"))
    training["history"] = {k: v[:1] if k != "step_loss" else v[:4] for k, v in training["history"].items()}
    T.save_checkpoint(half, LeNet5(), dict(meta, epoch=1), training)
    wrong_lr = tmp_path / "wrong_lr.npz"
    groups = [dict(training["optimizer"]["param_groups"][0], lr=-1.0)]
    T.save_checkpoint(
        wrong_lr,
        LeNet5(),
        dict(meta, epoch=1),
        dict(training, optimizer=dict(training["optimizer"], param_groups=groups)),
    )
    lost = tmp_path / "lost.npz"
    T.save_checkpoint(lost, LeNet5(), dict(meta, epoch=1), dict(training, rng={"minigrad": {}}))
    for argv, message in [
        (["--resume", done], "that run finished all its 2 epochs; nothing to resume"),
        (
            ["--resume", half, "--lr", "0.1"],
            r"--lr 0.1 differs from the run in .*half.npz \(--lr 0.005\); .* leave --lr out",
        ),
        (["--resume", half, "--dataset", "mnist"], "--dataset mnist differs from the run"),
        (["--resume", tmp_path / "nope.npz"], "nope.npz: no such checkpoint"),
        (["--resume", wrong_lr], "training state cannot be resumed .*invalid learning rate -1.0"),
        (["--resume", lost], "training state cannot be resumed .random generator states"),
    ]:
        code, _, err = run_cli(capsys, "train", *argv, "--no-progress")
        assert code == 2 and len(err.strip().splitlines()) == 1, (argv, err)
        assert re.search(message, err), (argv, err)
    assert files_of(out)["lenet5.npz"] == done.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["half.npz", "lost.npz", "run", "wrong_lr.npz"]


# ---------------------------------------------------------------------------------------- user errors
def write_checkpoint(path: Path, meta: dict, arrays: dict | None = None, header=None):
    model = LeNet5()
    T.save_checkpoint(path, model, meta)
    if arrays is not None or header is not None:
        with np.load(path) as f:
            data = dict(f)
        data.update(arrays or {})
        if header is not None:
            data["__metadata__"] = np.array(json.dumps(header))
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
    fine = write_checkpoint(tmp / "fine.npz", {"arch": "LeNet5", "epoch": 1})
    strings = write_checkpoint(tmp / "strings.npz", {"arch": "LeNet5"}, {"fc3.bias": np.array(["0.5"] * 10)})
    ints = write_checkpoint(tmp / "ints.npz", {"arch": "LeNet5"}, {"fc3.bias": np.zeros(10, np.int64)})
    bad_epoch = write_checkpoint(tmp / "bad_epoch.npz", {"arch": "LeNet5", "epoch": "3"})
    bad_dataset = write_checkpoint(tmp / "bad_dataset.npz", {"arch": "LeNet5", "dataset": "cifar10"})
    bad_kwargs = write_checkpoint(tmp / "bad_kwargs.npz", {"arch": "LeNet5", "arch_kwargs": {"num_classes": "ten"}})
    list_meta = write_checkpoint(tmp / "list_meta.npz", {"arch": "LeNet5"}, header=["LeNet5"])
    dangling = write_checkpoint(
        tmp / "dangling.npz",
        {"arch": "LeNet5"},
        header={"format": "minigrad-checkpoint", "arch": "LeNet5", "training": {"x": {"__array__": "__training__.x"}}},
    )
    bad_mnist = tmp / "bad_mnist"
    bad_mnist.mkdir()
    header = b"\x00\x00\x08\x03" + struct.pack(">3I", 10000, 28, 28)  # 10,000 images announced ...
    (bad_mnist / "t10k-images-idx3-ubyte").write_bytes(header + b"\x00" * 100)  # ... 100 bytes present
    (bad_mnist / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x27\x10" + b"\x00" * 10000)
    a_file = tmp / "a_file"
    a_file.write_text("not a directory")
    crowded = tmp / "crowded"
    crowded.mkdir()
    (crowded / "notes.txt").write_text("the user's own file")
    out = ["--out", tmp / "out"]
    return [
        (
            ["train", "--dataset", "cifar10", *out],
            "argument --dataset: invalid choice: 'cifar10' .choose from '?digits",
        ),
        (["train", "--dataset", "mnist", "--data-dir", tmp / "nowhere", *out], "nowhere does not exist"),
        (["train", "--dataset", "mnist", "--data-dir", a_file, *out], "a_file is a file, not a directory"),
        (["train", "--dataset", "mnist", "--data-dir", bad_mnist, *out], "truncated: the header announces"),
        (["train", "--data-dir", tmp, *out], "--data-dir .* is only used by --dataset mnist"),
        (["train", "--lr", "0", *out], r"learning rate must be a positive number, got --lr 0.0; try --lr 0.005"),
        (["train", "--lr", "-0.1", *out], "learning rate must be a positive number"),
        (["train", "--lr", "nan", *out], "argument --lr: must be a finite number, got nan"),
        (["train", "--lr", "fast", *out], "argument --lr: invalid float value: 'fast'"),
        (["train", "--device", "tpu", *out], "argument --device: invalid choice: 'tpu'"),
        (["train", "--optimizer", "rmsprop", *out], "argument --optimizer: invalid choice: 'rmsprop'"),
        (["train", "--epochs", "0", *out], "argument --epochs: must be an integer at least 1, got 0"),
        (["train", "--epochs", "many", *out], "argument --epochs: invalid int value: 'many'"),
        (["train", "--batch-size", "0", *out], "argument --batch-size: must be an integer at least 1, got 0"),
        (["train", "--seed", "-1", *out], "argument --seed: must be an integer between 0 and 18446744073709551615"),
        (["train", "--seed", str(2**64), *out], "argument --seed: must be an integer between 0 and"),
        (["train", "--max-shift", "28", *out], "argument --max-shift: must be an integer between 0 and 27, got 28"),
        (["train", "--threads", "-1", *out], "argument --threads: must be an integer at least 0, got -1"),
        (["train", "--kernels", "cuda", *out], "argument --kernels: invalid choice: 'cuda'"),
        (["train", "--out", a_file], "--out .*a_file is a file; pass a directory"),
        (["train", "--out", a_file / "sub"], "a_file is a file, so no directory can be made there"),
        (["train", "--out", crowded], r"--out .*crowded holds files a run did not write \(notes.txt\)"),
        (["train", "--out", "."], "--out . is the working directory or one above it"),
        (["train", "--resume", fine, *out], "fine.npz: this checkpoint holds no training state"),
        (["eval", tmp / "missing.npz"], "missing.npz: no such checkpoint; train one with"),
        (["eval", corrupt], "corrupt.npz: not a readable minigrad checkpoint"),
        (["eval", no_meta], "plain.npz: not a minigrad checkpoint .no metadata header."),
        (["eval", list_meta], "list_meta.npz: not a minigrad checkpoint"),
        (["eval", other], "this checkpoint is for architecture 'ResNet18', but minigrad knows only LeNet5"),
        (["eval", strings], "strings.npz: entry 'fc3.bias' holds strings, not numbers"),
        (["eval", ints], "ints.npz: weight 'fc3.bias' is stored as int64, not floating-point numbers"),
        (["eval", bad_epoch], "bad_epoch.npz: metadata field 'epoch' is '3', expected int"),
        (["eval", bad_dataset], "metadata field 'dataset' is 'cifar10', not one of"),
        (["eval", bad_kwargs], r"arch_kwargs \{'num_classes': 'ten'\} do not fit LeNet5"),
        (["eval", dangling], "dangling.npz: its training state names an array that is not in the file"),
        (["eval", "--batch-size", "0", fine], "argument --batch-size: must be an integer at least 1, got 0"),
        (["eval", "--kernels", "gpu", fine], "argument --kernels: invalid choice: 'gpu'"),
        (["eval", "--dataset", "svhn", fine], "argument --dataset: invalid choice: 'svhn'"),
        (["export", misfit, tmp / "x.pt"], r"its weights do not fit LeNet5: size mismatch for fc3.weight"),
        (["export", fine, tmp], "is a directory; name the file to write"),
        (["export", fine, a_file / "x.pt"], "cannot write there"),
        (["demo", "--steps", "0"], "argument --steps: must be an integer at least 1, got 0"),
        (["demo", "--lr", "0"], "argument --lr: must be a positive finite number, got 0"),
        (["demo", "--seed", "-1"], "argument --seed: must be an integer between 0 and"),
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
    assert not list(tmp_path.glob(".*"))  # no staging directory either
    assert (tmp_path / "a_file").read_text() == "not a directory" and len(list((tmp_path / "crowded").iterdir())) == 1


def test_train_options_are_checked_before_any_data_is_loaded(tmp_path, monkeypatch, capsys):
    """Every train error that is not in the data itself is found before the data is read: an
    ``--out`` that is a file, say, no longer fails after all the epochs."""

    def no_loading(*args, **kwargs):
        raise AssertionError("the data was loaded before the options were checked")

    monkeypatch.setattr(T, "load_dataset", no_loading)
    cases = [(a, m) for a, m in error_cases(tmp_path) if a[0] == "train" and "truncated" not in m]
    assert len(cases) > 20
    for argv, message in cases:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
        assert code == 2 and re.search(message, capsys.readouterr().err), argv


def test_out_in_a_directory_without_write_permission(tmp_path, monkeypatch, capsys):
    """The permission is asked of the OS (``os.access``); here it is made to say no for one directory,
    so that the test also runs as root, for whom every directory is writable."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    for out in (locked / "run", locked / "deeper" / "run"):
        code, _, err = run_cli(capsys, "train", "--out", out)
        assert code == 2 and f"no permission to write in {locked}" in err, err
    code, _, err = run_cli(capsys, "export", tmp_path / "missing.npz", locked / "x.pt")
    assert code == 2 and "cannot write there" in err, err
    assert not list(locked.iterdir())


def test_demo_runs_with_any_number_of_steps(capsys):
    for steps in (1, 2, 3, 4, 7):
        code, out, err = run_cli(capsys, "demo", "--steps", steps)
        lines = [line for line in out.splitlines() if line.startswith("step")]
        assert code == 0 and not err and lines[-1].startswith(f"step {steps - 1:4d}"), (steps, out)
        assert lines[0].startswith("step    0") and len(lines) <= 7, (steps, out)


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
    lines = proc.stderr.strip().splitlines()
    # (some Python versions quote the choices, others do not)
    assert len(lines) == 1 and re.fullmatch(
        r"minigrad train: error: argument --dataset: invalid choice: 'nope' \(choose from '?digits'?, '?mnist'?\) "
        r"\(see minigrad train --help\)",
        lines[0],
    ), lines
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
