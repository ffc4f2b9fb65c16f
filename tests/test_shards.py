"""WebDataset shards (``python -m ssl_bench.data.shard``, ``data.storage=shards``): a round trip gives back
every image and label; under DDP every image is read once per epoch across ranks, each rank running the
same number of batches; the evaluation subsets are those of the other storage modes."""

import json
import logging
import tarfile

import numpy as np
import pytest
import torch
from test_stream import augment_cfg, cat, folder_cfg, write_folder
from torch.utils.data import DataLoader

from ssl_bench.data import shards as S
from ssl_bench.data.datamodule import build_datamodule
from ssl_bench.data.shard import main, write_shards
from ssl_bench.data.stream import StreamDataModule, collate_items


@pytest.fixture
def sharded(tmp_path):
    src = write_folder(tmp_path / "src", n_per_class=20, classes=("a", "b", "c"))  # 60 train, 60 test
    write_shards(src, tmp_path / "shards", shard_size=7, seed=1, progress=False)
    return src, tmp_path / "shards"


def test_round_trip_gives_back_every_image_and_label(sharded, tmp_path):
    src, dst = sharded
    index = json.loads((dst / "index.json").read_text())
    train = index["splits"]["train"]
    assert train["classes"] == ["a", "b", "c"] and train["class_counts"] == [20, 20, 20] and train["count"] == 60
    assert [s["count"] for s in train["shards"]] == [7] * 8 + [4]
    with tarfile.open(dst / train["shards"][0]["file"]) as tar:  # plain tar files
        assert sorted({m.name.split(".", 1)[1] for m in tar.getmembers()}) == ["cls", "jpg"]
    from ssl_bench.data.images import scan_folder

    files, targets, _ = scan_folder(src / "train")
    split = S.Split(dst, "train", train)
    got = {i: (data, label) for i, data, label in S.read(split, np.arange(60))}
    assert sorted(got) == list(range(60))
    for i, (data, label) in got.items():
        assert data == files[i].read_bytes() and label == targets[i]
    assert list(split.order) != sorted(split.order)  # written in a shuffled order


def _indices(ds, rank, world, batch, epoch, workers=2):
    ds.configure(rank=rank, world_size=world, batch_size=batch)
    ds.set_epoch(epoch)
    loader = DataLoader(ds, batch_size=batch, num_workers=workers, collate_fn=collate_items, drop_last=True)
    batches = [b.index for b in loader]
    assert all(len(b) == batch for b in batches)
    return torch.cat(batches).tolist() if batches else []


def test_ddp_ranks_read_every_image_once_per_epoch(sharded):
    _, dst = sharded
    split = S.Split(dst, "train", json.loads((dst / "index.json").read_text())["splits"]["train"])
    reader = lambda src: torch.zeros(1)  # noqa: E731  (the plan is under test, not the decode)
    ds = S.TrainShards(split, None, reader, seed=0, shuffle_buffer=8)
    orders = []
    for epoch in (0, 1):
        per_rank = [_indices(ds, r, 2, 5, epoch) for r in range(2)]
        assert [len(p) for p in per_rank] == [30, 30] and len(ds) == 30  # equal steps: 6 batches per rank
        assert sorted(per_rank[0] + per_rank[1]) == list(range(60))  # every image once across ranks
        orders.append(per_rank[0] + per_rank[1])
    assert orders[0] != orders[1]  # reshuffled per epoch
    assert _indices(ds, 0, 2, 5, 0) == orders[0][:30]  # the same for the same epoch
    # three ranks, batches of 4: 60 // 3 = 20 = 5 batches each, no image twice
    three = [_indices(ds, r, 3, 4, 2) for r in range(3)]
    assert [len(p) for p in three] == [20, 20, 20] and len(set(sum(three, []))) == 60
    # 7 per rank and batch 3: two batches each, the remainder (fewer than ranks x batch) dropped, never doubled
    seven = [_indices(ds, r, 8, 3, 0, workers=1) for r in range(8)]
    flat = sum(seven, [])
    assert [len(p) for p in seven] == [6] * 8 and len(flat) == len(set(flat)) == 48
    # each rank opens only its own shards (and at most two it shares with a neighbour)
    ds.configure(rank=0, world_size=4, batch_size=1)
    touched = [{s for s, _ in S.runs(split, ds.plan(0, w, 2))} for w in range(2)]
    assert len(set.union(*touched)) <= 4


def test_ddp_evaluation_is_shared_exactly(sharded):
    _, dst = sharded
    split = S.Split(dst, "test", json.loads((dst / "index.json").read_text())["splits"]["test"])
    ds = S.EvalShards(split, None, 32)
    parts = []
    for r in range(7):  # 60 = 4 x 9 + 3 x 8
        ds.configure(rank=r, world_size=7, batch_size=4)
        loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_items)
        idx = torch.cat([b.index for b in loader]).tolist()
        assert len(idx) == len(ds) in (8, 9)
        parts.append(idx)
    flat = sum(parts, [])
    assert sorted(flat) == list(range(60))  # every image once, none repeated


def test_shards_serve_the_same_evaluation_subsets_as_the_folder(sharded, caplog):
    src, dst = sharded
    kw = dict(val_size=10, bank_size=9, batch_size=6, num_workers=2)
    folder = build_datamodule(folder_cfg(src, storage="stream", **kw), augment_cfg())
    with caplog.at_level(logging.INFO, logger="ssl_bench"):
        sh = build_datamodule(folder_cfg(dst, storage="auto", **kw), augment_cfg())  # auto finds the index
    assert isinstance(sh, StreamDataModule) and isinstance(sh.datasets["train"], S.TrainShards)
    for name in ("val", "monitor_bank", "test"):
        (xa, ya), (xb, yb) = (cat(dm.clean(b, name) for b in dm._loader(name, False)) for dm in (folder, sh))
        ia = torch.cat([b.index for b in folder._loader(name, False)])
        ib = torch.cat([b.index for b in sh._loader(name, False)])
        order = torch.argsort(ib)  # shards: stored order
        assert torch.equal(ia, ib[order]) and torch.equal(xa, xb[order]) and torch.equal(ya, yb[order])
    torch.manual_seed(0)
    x, y = sh.clean(next(iter(sh.train_dataloader())), "train")
    assert x.shape == (6, 2, 3, 32, 32) and x.dtype == torch.uint8
    assert len(sh.train_dataloader()) == 60 // 6


def test_unreadable_files_when_writing_and_reading(tmp_path, capsys, caplog):
    src = write_folder(tmp_path / "src", n_per_class=3, classes=("a", "b"))
    (src / "train" / "a" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main([str(src), str(tmp_path / "strict"), "--on-corrupt", "error"]) == 2
    assert "unreadable image" in capsys.readouterr().err
    assert main([str(src), str(tmp_path / "ok"), "--shard-size", "4"]) == 0
    out = capsys.readouterr()
    assert "skipped 1 unreadable image of 7" in out.err and "6 images in 2 shards" in out.out
    assert main([str(src), str(tmp_path / "ok")]) == 2  # never overwrites shards
    # written without verification, the bad file is met while training: replaced, counted, reported
    write_shards(src, tmp_path / "raw", splits=["train", "test"], verify=False, progress=False)
    dm = build_datamodule(folder_cfg(tmp_path / "raw", storage="shards", batch_size=7), augment_cfg())
    with caplog.at_level(logging.WARNING, logger="ssl_bench"):
        x, _ = dm.clean(next(iter(dm.train_dataloader())), "train")
        dm.flush()
    assert x.shape[0] == 7 and "skipped 1 unreadable image of 7 in train" in caplog.text


def test_storage_and_index_mismatches_are_one_line(sharded):
    from ssl_bench.data.images import DatasetMissing

    src, dst = sharded
    with pytest.raises(
        DatasetMissing,
        match=r"data.storage=shards: .*index.json is missing; write the shards with "
        r"`python -m ssl_bench.data.shard IMAGE_FOLDER ",
    ):
        build_datamodule(folder_cfg(src, storage="shards"), augment_cfg())
    with pytest.raises(DatasetMissing, match=r"holds shards .*index.json.*use data.storage=shards or auto"):
        build_datamodule(folder_cfg(dst, storage="stream"), augment_cfg())
    with pytest.raises(
        DatasetMissing,
        match=r"has the splits test, train; 'val' \(data.train, data.eval_train or "
        r"data.test\) is not among them",
    ):
        build_datamodule(folder_cfg(dst, storage="shards", test="val"), augment_cfg())
