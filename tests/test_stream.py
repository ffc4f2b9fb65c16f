"""Streamed image folders (``data.storage=stream``), fast decoding and the storage choice: stream and memory
give the same evaluation images and training order for a seed; unreadable files are counted or fatal;
``auto`` picks by the memory budget; the reduced-scale decode gives the crop its parameters say; the
device-decoding path (run on the CPU here) matches it; the missing-ImageNet message."""

import io
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from ssl_bench.data import decode as D, images as I
from ssl_bench.data.augment import BatchAugment, ViewAug
from ssl_bench.data.datamodule import InMemoryDataModule, build_datamodule
from ssl_bench.data.storage import resolve_storage
from ssl_bench.data.stream import StreamDataModule


def write_folder(root, n_per_class=12, size=32, classes=("cat", "dog", "eel"), splits=("train", "test"), seed=0):
    rng = np.random.default_rng(seed)
    for split in splits:
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n_per_class):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                    root / split / c / f"{i}.jpg"
                )
    return root


def folder_cfg(root, **kw):
    c = dict(
        name="imagefolder",
        root=str(root),
        train=["train"],
        eval_train="train",
        test="test",
        labels="auto",
        on_corrupt="skip",
        cache_dir=None,
        decode_workers=0,
        image_size=32,
        fraction=1.0,
        val_size=10,
        bank_size=None,
        split_seed=0,
        crop_min_scale=0.2,
        batch_size=6,
        eval_batch_size=16,
        num_workers=0,
        pin_memory=False,
        mean=[0.5] * 3,
        std=[0.25] * 3,
        storage="stream",
        memory_budget_gb=8.0,
        decode="cpu",
        shuffle_buffer=100,
    )
    c.update(kw)
    return OmegaConf.create(c)


def augment_cfg(**kw):
    c = dict(
        num_views=2,
        crop_min_scale=0.2,
        crop_max_scale=1.0,
        flip_p=0.5,
        color_p=0.8,
        color_strength=1.0,
        brightness=0.8,
        contrast=0.8,
        saturation=0.8,
        hue=0.2,
        grayscale_p=0.2,
        blur_p=0.0,
        blur_sigma_min=0.1,
        blur_sigma_max=2.0,
        solarize_p=0.0,
        blur_min_size=64,
        backend="batched",
    )
    c.update(kw)
    return OmegaConf.create(c)


def cat(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def test_stream_serves_the_memory_paths_images_and_order(tmp_path):
    write_folder(tmp_path)
    aug = augment_cfg(crop_min_scale=1.0, crop_max_scale=1.0, flip_p=0.0)  # a whole-image "crop" = the image
    kw = dict(fraction=0.75, val_size=10, bank_size=9)
    mem = build_datamodule(folder_cfg(tmp_path, storage="memory", **kw), aug)
    st = build_datamodule(folder_cfg(tmp_path, storage="stream", num_workers=2, **kw), aug)
    assert isinstance(mem, InMemoryDataModule) and isinstance(st, StreamDataModule)
    assert st.num_classes == mem.num_classes == 3 and st.image_shape == mem.image_shape == (3, 32, 32)
    for a, b in zip(mem.eval_loaders("test"), st.eval_loaders("test")):  # bank, test: same decoded images
        (xa, ya), (xb, yb) = cat(a), cat(b)
        assert xa.shape == (36, 3, 32, 32) and torch.equal(xa, xb) and torch.equal(ya, yb)
    for name in ("val", "monitor_bank"):  # the same seeded subsets
        x, y = cat(st.clean(b, name) for b in st._loader(name, False))
        assert torch.equal(x, mem.splits[name].images) and torch.equal(y, mem.splits[name].labels)
    for seed in (0, 5):
        torch.manual_seed(seed)
        ref = list(mem.train_dataloader())
        torch.manual_seed(seed)
        got = [st.clean(b, "train") for b in st.train_dataloader()]
        assert len(got) == len(ref) == 27 // 6  # fraction 0.75 of 36, drop_last
        for (x, y), (views, yv) in zip(ref, got):
            assert views.shape == (6, 2, 3, 32, 32) and torch.equal(yv, y)
            assert torch.equal(views[:, 0], x) and torch.equal(views[:, 1], x)


def test_stream_training_crops_are_random_views_of_the_image(tmp_path):
    write_folder(tmp_path, n_per_class=4, size=48)
    st = build_datamodule(folder_cfg(tmp_path, batch_size=4), augment_cfg(crop_min_scale=0.08))
    torch.manual_seed(0)
    x, y = st.clean(next(iter(st.train_dataloader())), "train")
    assert x.shape == (4, 2, 3, 32, 32) and x.dtype == torch.uint8
    assert not torch.equal(x[:, 0], x[:, 1])  # two independent crops per image


def test_stream_unreadable_files_are_counted_or_fatal(tmp_path, caplog):
    write_folder(tmp_path, n_per_class=4)
    (tmp_path / "train" / "dog" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "test" / "cat" / "empty.jpg").write_bytes(b"")
    st = build_datamodule(folder_cfg(tmp_path, batch_size=13, val_size=100), augment_cfg())
    assert len(st.datasets["train"]) == 13 and len(st.datasets["test"]) == 13  # file lists: not opened yet
    with caplog.at_level(logging.WARNING, logger="ssl_bench"):
        x, y = st.clean(next(iter(st.train_dataloader())), "train")  # one batch: every file once
        assert x.shape[0] == 13 and "unreadable" not in caplog.text  # counted, reported per epoch
        st.flush()
        xt, yt = cat(st.eval_loaders("test")[1])
    assert xt.shape[0] == 12 and (yt >= 0).all()  # the empty file left out
    text = caplog.text
    assert "skipped 1 unreadable image of 13 in train" in text and "bad.jpg" in text and "next readable" in text
    assert "skipped 1 unreadable image of 13 in test" in text and "empty.jpg" in text
    err = build_datamodule(folder_cfg(tmp_path, batch_size=13, on_corrupt="error"), augment_cfg())
    with pytest.raises(I.CorruptImage, match=r"unreadable image .*bad\.jpg .*data\.on_corrupt=skip") as e:
        err.clean(next(iter(err.train_dataloader())), "train")
    assert "\n" not in str(e.value)


def test_auto_storage_picks_memory_only_when_the_decoded_images_fit(tmp_path, caplog):
    write_folder(tmp_path, n_per_class=10)  # 60 images x 3 x 32 x 32 = 184,320 bytes decoded
    with caplog.at_level(logging.INFO, logger="ssl_bench"):
        assert resolve_storage(folder_cfg(tmp_path, storage="auto", memory_budget_gb=0.0002)) == "memory"
        assert resolve_storage(folder_cfg(tmp_path, storage="auto", memory_budget_gb=0.00018)) == "stream"
    assert "60 images at 32 px = 0.00 GB decoded" in caplog.text
    assert isinstance(build_datamodule(folder_cfg(tmp_path, storage="auto", memory_budget_gb=1e-5)), StreamDataModule)
    assert isinstance(build_datamodule(folder_cfg(tmp_path, storage="auto")), InMemoryDataModule)
    assert resolve_storage(folder_cfg(tmp_path, storage="memory", memory_budget_gb=0.0)) == "memory"


def _jpeg(width=1000, height=880, quality=92):
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([127 + 120 * np.sin(x / 37), 127 + 120 * np.cos(y / 53), 127 + 120 * np.sin((x + y) / 71)], -1)
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_crop_parameters_are_torchvisions():
    from torchvision.transforms import RandomResizedCrop

    torch.manual_seed(3)
    ours = [D.crop_params(350, 400, (0.08, 1.0)) for _ in range(200)]
    torch.manual_seed(3)
    ref = [RandomResizedCrop.get_params(torch.zeros(3, 350, 400), [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(200)]
    assert ours == ref
    assert D.draft_request(1000, 880, [(0, 0, 600, 500)], 224) == (448, 329)  # 1000 // 448 = 2: half scale


def test_reduced_scale_decode_gives_the_crop_its_parameters_say():
    from torchvision.transforms.v2 import functional as TF

    data = _jpeg()
    boxes = [(100, 40, 700, 620), (0, 0, 880, 1000), (300, 500, 260, 300)]  # 1/2-scale, 1/2, full decode
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", D.draft_request(1000, 880, boxes[:2], 224))
        assert im.size == (500, 440)  # the JPEG is decoded at half scale
    fast = D.crops(io.BytesIO(data), lambda h, w: boxes, 224).float()
    full = D.full_image(io.BytesIO(data))
    for k, (top, left, h, w) in enumerate(boxes):
        ref = TF.resized_crop(full, top, left, h, w, [224, 224], antialias=True).float()
        assert (fast[k] - ref).abs().mean() < 2.0 and (fast[k] - ref).abs().quantile(0.99) < 8
    # a box drawn elsewhere in the image is far off: the tolerance above is tight
    other = TF.resized_crop(full, 0, 0, 700, 620, [224, 224], antialias=True).float()
    assert (fast[0] - other).abs().mean() > 20


def test_device_decode_path_on_the_cpu_matches_the_worker_decode():
    data = _jpeg(640, 480)
    raw, boxes = D.read_for_device(data, [(0.08, 1.0), (0.08, 1.0)])
    assert raw.dtype == torch.uint8 and raw.numel() == len(data) and boxes.shape == (2, 4)
    views, errors = D.decode_views(
        [raw, torch.frombuffer(bytearray(b"garbage"), dtype=torch.uint8)], torch.stack([boxes, boxes]), 96, "cpu"
    )
    assert views.shape == (2, 2, 3, 96, 96) and errors[0] == "" and errors[1] and views[1].sum() == 0
    ref = D.crops(io.BytesIO(data), lambda h, w: [tuple(b) for b in boxes.tolist()], 96).float()
    assert (views[0].float() - ref).abs().mean() < 3.0


def test_device_decode_without_cuda_is_one_clear_line(tmp_path, monkeypatch):
    write_folder(tmp_path, n_per_class=2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(I.DataUnavailable, match="data.decode=device .* no GPU is visible .* use data.decode=cpu") as e:
        build_datamodule(folder_cfg(tmp_path, decode="device", batch_size=2), augment_cfg())
    assert "\n" not in str(e.value) and isinstance(e.value, I.DatasetMissing)  # the app's one-line data error


def test_device_decode_batches_through_the_datamodule_hook(tmp_path):
    write_folder(tmp_path, n_per_class=3, size=40)
    (tmp_path / "train" / "dog" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    from ssl_bench.data.storage import build_stream_datamodule
    from ssl_bench.data.stream import DeviceReader

    dm = build_stream_datamodule(folder_cfg(tmp_path, batch_size=10), augment_cfg(), "stream")
    dm.datasets["train"].reader = DeviceReader([(0.2, 1.0)] * 2, 32)  # what decode=device builds, minus the CUDA check
    dm.decode_device = "cpu"
    x, y = dm.clean(next(iter(dm.train_dataloader())), "train")
    assert x.shape == (10, 2, 3, 32, 32) and x.dtype == torch.uint8 and (x.flatten(1).float().std(1) > 0).all()


def test_batch_augment_takes_views_the_loader_cropped():
    torch.manual_seed(0)
    views = torch.randint(0, 256, (64, 2, 3, 8, 8), dtype=torch.uint8)
    plain = ViewAug(flip_p=0.5, color_p=0.0, grayscale_p=0.0)
    out = BatchAugment([plain, plain], 8, [0.0] * 3, [1.0] * 3)(views)
    assert len(out) == 2 and out[0].shape == (64, 3, 8, 8)
    for k in range(2):
        x = views[:, k].float() / 255
        same = (out[k] - x).abs().flatten(1).amax(1) < 1e-6
        flipped = (out[k] - x.flip(-1)).abs().flatten(1).amax(1) < 1e-6
        assert (same | flipped).all() and 10 < flipped.sum() < 54  # each flipped with p = 0.5
    with pytest.raises(ValueError, match="cropped 3 views per image"):
        BatchAugment([plain, plain], 8, [0.0] * 3, [1.0] * 3)(torch.zeros(2, 3, 3, 8, 8, dtype=torch.uint8))


def test_stream_fit_end_to_end(tmp_path, cfg_factory):
    from ssl_bench.train import run

    write_folder(tmp_path / "data", n_per_class=20)
    cfg = cfg_factory(
        "data=imagefolder",
        f"data.root={tmp_path / 'data'}",
        "data.storage=stream",
        "data.num_workers=1",
        "data.batch_size=20",
        "data.val_size=12",
        "data.eval_batch_size=32",
        "data.bank_size=30",
        "backbone.model_kwargs.widths=[8,16,16,32]",
        "method.projector.hidden_dim=64",
        "method.projector.out_dim=32",
        "eval.linear_epochs=5",
        "eval.knn_k=20",
        "eval.every_n_epochs=1",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "trainer.checkpoint=false",
        "logger=none",
        tiny=False,
    )
    record = run(cfg, tmp_path / "run", [], "stream")
    assert record["status"] in ("finished", "collapsed")
    assert len(record["epochs"]) == 2 and record["final"]["knn_acc"] >= 0
    assert record["timings"]["img_per_s"] > 0


def test_missing_imagenet_gives_one_line_with_the_layout(tmp_path):
    from ssl_bench.data.storage import check_root

    cfg = folder_cfg(tmp_path / "imagenet100", name="imagenet100", test="val", labels="true")
    with pytest.raises(I.DatasetMissing) as e:
        check_root(cfg)
    msg = str(e.value)
    assert msg.startswith(f"data=imagenet100: {tmp_path / 'imagenet100'} (data.root) does not exist")
    assert "/{train,val}/<wnid>/*.JPEG" in msg and "python -m ssl_bench.data.imagenet100 IMAGENET_ROOT DST" in msg
    assert "\n" not in msg
    write_folder(tmp_path / "imagenet100", n_per_class=1, classes=("n01440764",), splits=("train", "val"))
    with pytest.raises(
        I.DatasetMissing,
        match=r"has 1 class folders, 100 of the 100 ImageNet-100 classes missing "
        r"\(e\.g\. n01\d+\) and 1 others \(e\.g\. n01440764\)",
    ):
        check_root(cfg)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ssl_bench.app",
            "data=imagenet",
            f"data.root={tmp_path / 'none'}",
            "logger=none",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"ssl-bench: data error: data=imagenet: {tmp_path / 'none'} (data.root) does not exist; "
        f"expected {tmp_path / 'none'}/{{train,val}}/<wnid>/*.JPEG"
    )
    assert "image-net.org" in last


def test_imagenet100_subset_is_built_as_links(tmp_path):
    from ssl_bench.data.imagenet100 import CLASSES, build_subset, main

    assert len(CLASSES) == len(set(CLASSES)) == 100 and all(c.startswith("n") and len(c) == 9 for c in CLASSES)
    src = tmp_path / "imagenet"
    for split in ("train", "val"):
        for c in (*CLASSES[:100], "n99999999"):
            (src / split / c).mkdir(parents=True)
            (src / split / c / f"{c}_0.JPEG").write_bytes(b"x")
    counts = build_subset(src, tmp_path / "in100")
    assert counts == {"train": 100, "val": 100}
    links = sorted((tmp_path / "in100" / "train").iterdir())
    assert [p.name for p in links] == sorted(CLASSES) and all(p.is_symlink() for p in links)
    assert (tmp_path / "in100" / "val" / CLASSES[0] / f"{CLASSES[0]}_0.JPEG").is_file()
    assert main([str(src), str(tmp_path / "in100")]) == 0  # again: the same links are kept
    (src / "train" / CLASSES[5] / f"{CLASSES[5]}_0.JPEG").unlink()
    (src / "train" / CLASSES[5]).rmdir()
    assert main([str(src), str(tmp_path / "other")]) == 2


def test_under_ddp_each_rank_streams_its_share_once_per_epoch(tmp_path, monkeypatch):
    """Two ranks (their view of the process group patched in): the training images of an epoch split between
    them with none twice (the seeded sampler of memory mode), each evaluation split exactly once."""
    write_folder(tmp_path)
    aug = augment_cfg(crop_min_scale=1.0, crop_max_scale=1.0, flip_p=0.0)
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    st = build_datamodule(folder_cfg(tmp_path, storage="stream", val_size=11), aug)
    train, val, test = [], [], []
    for rank in (0, 1):
        monkeypatch.setattr(StreamDataModule, "_dist", lambda self, r=rank: (r, 2))
        loader = st.train_dataloader()
        loader.sampler.set_epoch(1)
        train.append(torch.cat([b.index for b in loader]).tolist())
        val.append(torch.cat([b.index for b in st._loader("val", False)]).tolist())
        test.append(torch.cat([y for _, y in st.eval_loaders("test")[1].sharded()]).tolist())
    assert len(train[0]) == len(train[1]) == 18 and not set(train[0]) & set(train[1])  # 36 images, batch 6
    assert sorted(val[0] + val[1]) == sorted(
        torch.cat([b.index for b in StreamDataModule._loader(st, "val", False, split_ranks=False)]).tolist()
    )
    assert len(val[0]) + len(val[1]) == 11 and sorted(test[0] + test[1]) == sorted([0] * 12 + [1] * 12 + [2] * 12)
