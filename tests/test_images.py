"""Real image datasets: torchvision layouts written by hand, image folders with corrupt files,
missing data, the converter, and the per-image torchvision augmentation path."""

import logging
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_bench.data import images as I
from ssl_bench.data.convert import imagefolder_to_cifar
from ssl_bench.data.datamodule import build_datamodule
from tests.test_stream import folder_cfg


def write_cifar10(root, n_train=50, n_test=20, seed=0):
    """A tiny CIFAR-10 in the published python layout: pickled dicts, ``data`` uint8 [N, 3072]
    (R, G, B planes, row major), ``labels``; five training batches, a test batch and the meta file."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = {}
    for name, n in [(f"data_batch_{i}", n_train // 5) for i in range(1, 6)] + [("test_batch", n_test)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).tolist()
        with open(folder / name, "wb") as fh:
            pickle.dump(
                {"batch_label": name, "data": data, "labels": labels, "filenames": [f"{i}.png" for i in range(n)]},
                fh,
                protocol=2,
            )
        images[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump(
            {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": n_train // 5, "num_vis": 3072},
            fh,
            protocol=2,
        )
    return images


def test_cifar_loader_reads_the_torchvision_pickle_layout(tmp_path):
    written = write_cifar10(tmp_path)
    splits, classes = I.load_cifar("cifar10", tmp_path, verify=False)
    x, y = splits["train"]
    assert x.shape == (50, 3, 32, 32) and x.dtype == torch.uint8 and classes[3] == "class3"
    data, labels = written["data_batch_1"]
    # pixel (row 0, col 1) of image 0: planes of 1024 values, R then G then B
    assert x[0, :, 0, 1].tolist() == [data[0, 1], data[0, 1024 + 1], data[0, 2048 + 1]]
    assert y[:10].tolist() == labels
    assert splits["test"][0].shape == (20, 3, 32, 32)


def test_cifar_checksums_and_missing_data_give_one_actionable_message(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(I.DatasetMissing, match="does not match the published files.*data.verify=false"):
        I.load_cifar("cifar10", tmp_path, verify=True)
    with pytest.raises(I.DatasetMissing) as err:
        I.load_cifar("cifar10", tmp_path / "nowhere")
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in msg and "is missing" in msg
    assert "data.download=true" in msg and "cifar-10-python.tar.gz" in msg and "\n" not in msg


def test_missing_dataset_exits_with_one_line(tmp_path):
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ssl_bench.app",
            "data=cifar10",
            f"data.root={tmp_path}",
            "logger=none",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("ssl-bench: data error: data=cifar10:")
    assert "Traceback" not in out.stderr


def _folder(root, n_per_class=4, size=40, classes=("cat", "dog")):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n_per_class):
                Image.fromarray(rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)).save(
                    root / split / c / f"{i}.jpg"
                )


def test_imagefolder_skips_corrupt_files_with_a_count_or_fails_naming_them(tmp_path, caplog):
    _folder(tmp_path)
    (tmp_path / "train" / "dog" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "train" / "dog" / "worse.jpg").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="ssl_bench"):
        splits, classes = I.load_imagefolder(tmp_path, ["train"], "train", "test", 32, cache_dir=None)
    assert classes == ("cat", "dog")
    assert splits["train"][0].shape == (8, 3, 32, 32) and splits["train"][1].tolist() == [0] * 4 + [1] * 4
    assert "skipped 2 unreadable images of 10" in caplog.text and "bad.jpg" in caplog.text
    with pytest.raises(I.CorruptImage, match="bad.jpg"):
        I.load_imagefolder(tmp_path, ["train"], "train", "test", 32, on_corrupt="error", cache_dir=None)


def test_imagefolder_cache_unlabelled_pretraining_and_fraction(tmp_path, caplog):
    _folder(tmp_path / "data")
    (tmp_path / "data" / "unlabeled").mkdir()
    for i in range(6):
        Image.fromarray(np.full((36, 36, 3), i * 40, dtype=np.uint8)).save(tmp_path / "data" / "unlabeled" / f"{i}.png")
    cache = tmp_path / "cache"
    first, _ = I.load_imagefolder(tmp_path / "data", ["unlabeled", "train"], "train", "test", 32, cache_dir=cache)
    assert first["train"][1].tolist() == [-1] * 6 + [0] * 4 + [1] * 4  # unlabelled, then class folders
    assert len(list(cache.glob("*.pt"))) == 3
    with caplog.at_level(logging.INFO, logger="ssl_bench"):
        again, _ = I.load_imagefolder(tmp_path / "data", ["unlabeled", "train"], "train", "test", 32, cache_dir=cache)
    assert "from the cache" in caplog.text and torch.equal(again["train"][0], first["train"][0])
    half = I.subset(first["train"], fraction=0.5, seed=0)
    assert half[0].shape[0] == 7 and torch.equal(half[0], I.subset(first["train"], fraction=0.5, seed=0)[0])


def test_imagefolder_datamodule_serves_bank_monitor_and_val(tmp_path):
    _folder(tmp_path, n_per_class=10)
    cfg = folder_cfg(
        tmp_path,
        storage="memory",
        fraction=0.5,
        val_size=6,
        bank_size=8,
        batch_size=4,
        eval_batch_size=64,
        download=False,
        verify=True,
    )
    dm = build_datamodule(cfg)
    assert len(dm.splits["train"]) == 10 and len(dm.splits["bank"]) == 20 and len(dm.splits["monitor_bank"]) == 8
    monitor, val = dm.val_dataloader()
    assert sum(len(b[1]) for b in monitor) == 8 and sum(len(b[1]) for b in val) == 6
    bank, test = dm.eval_loaders("test")
    assert sum(len(b[1]) for b in bank) == 20 and sum(len(b[1]) for b in test) == 20


def test_converter_output_reads_with_torchvision(tmp_path):
    _folder(tmp_path / "src", classes=("airplane", "ship"))
    imagefolder_to_cifar(tmp_path / "src", tmp_path / "dst", workers=0)
    splits, classes = I.load_cifar("cifar10", tmp_path / "dst", verify=False)
    assert classes == ("airplane", "ship")
    x, y = splits["train"]
    assert x.shape == (8, 3, 32, 32) and sorted(y.tolist()) == [0] * 4 + [1] * 4
    ref = I.decode(tmp_path / "src" / "train" / "ship" / "0.jpg", 32)
    assert any(torch.equal(ref, img) for img in x)  # same pixels, CIFAR's plane order


def test_stl10_binary_layout(tmp_path):
    """STL-10's binary files (column-major 96x96 planes, 1-based labels), written by hand."""
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 3), ("unlabeled", 5)):
        rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8).tofile(folder / f"{split}_X.bin")
        if split != "unlabeled":
            np.array([1, 2, 3, 1][:n], dtype=np.uint8).tofile(folder / f"{split}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)))
    (folder / "fold_indices.txt").write_text("0 1\n" * 10)
    splits, classes = I.load_stl10(tmp_path, ["unlabeled", "train"], verify=False)
    assert splits["train"][0].shape == (9, 3, 96, 96)
    assert splits["train"][1].tolist() == [-1] * 5 + [0, 1, 2, 0]
    assert splits["test"][1].tolist() == [0, 1, 2] and classes[0] == "c0"
