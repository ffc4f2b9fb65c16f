"""ssl-bench performance benchmarks: one command, a table and a JSON file.

    python benchmarks/run.py                    # full run (a few minutes on a 2-core CPU)
    python benchmarks/run.py --quick            # smoke run (about 30 s)
    python benchmarks/run.py --only augment,batch --out bench.json
    python benchmarks/run.py --only train,lightly --methods mocov3,dino

Sections (``--only`` takes a comma-separated subset):
  train    training throughput per image method (every registered one, or ``--methods``): the suite's
           Lightning path (pl.Trainer fit, logger, progress bar, validation and checkpoints off) vs a
           bare PyTorch loop doing the same augmentation, forward, backward and optimizer step on the
           same modules
  lightly  the same setup with lightly's heads / losses / momentum update in a bare loop (MoCo v3: its
           heads and momentum update; lightly has no MoCo v3 loss, so the paper's ctr() is written out)
  mlm      masked-LM tokens/s: method=mlm training step vs transformers' Trainer
  augment  batched CPU augmentation img/s per preset, 32 and 96 px, 1 and 2 threads
  batch    SimCLR step time vs batch size
  sweep    wall time of a 2-job sweep: sequential vs the joblib launcher with 2 parallel jobs

Compared cases run alternately (A, B, A, B, ...) in one process so drift hits both; a figure is
the median over rounds of the per-round median step time (the first steps of a round are warm-up).
Image loading at 224 px (streaming, shards, torchvision's per-image loader): benchmarks/data_pipeline.py.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_MODE", "disabled")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ssl_bench.methods.registry import image_methods  # noqa: E402

SECTIONS = ("train", "lightly", "augment", "batch", "mlm", "sweep")
IMAGE_METHODS = tuple(image_methods())
ROWS: list[dict[str, Any]] = []


def row(
    section: str,
    case: str,
    value: float,
    unit: str,
    ratio: float | None = None,
    target: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    r = {
        "section": section,
        "case": case,
        "value": round(value, 3),
        "unit": unit,
        "ratio": None if ratio is None else round(ratio, 3),
        "target": target,
        "met": None if ratio is None or target is None else bool(ratio >= target),
        **extra,
    }
    ROWS.append(r)
    ratio_s = "" if ratio is None else f"  ratio {ratio:.3f}" + ("" if target is None else f" (target >= {target})")
    if "round_ratios" in extra:
        ratio_s += " rounds {:.3f}-{:.3f}".format(*extra["round_ratios"])
    print(f"  [{section}] {case}: {value:,.1f} {unit}{ratio_s}", flush=True)
    return r


def compose(*overrides: str) -> Any:
    from hydra import compose as hcompose, initialize_config_dir

    from ssl_bench.config import config_dir, validate

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = hcompose(
            "config",
            overrides=["logger=none", "trainer.enable_progress_bar=false", "trainer.checkpoint=false", *overrides],
        )
    validate(cfg)
    return cfg


def median_step(times: list[float], warmup: int) -> float:
    return statistics.median(times[warmup:] if len(times) > warmup + 1 else times)


# --- training throughput -------------------------------------------------------------------------------
class StepTimer:
    """Wall time between consecutive training-batch ends (a whole loop iteration: data, step, hooks)."""

    def __init__(self) -> None:
        self.t: list[float] = []

    def mark(self) -> None:
        self.t.append(time.perf_counter())

    def steps(self) -> list[float]:
        return [b - a for a, b in zip(self.t[:-1], self.t[1:])]


def lightning_steps(cfg: Any, dm: Any, steps: int) -> list[float]:
    """Step times of the suite's path: the method module under a pl.Trainer fit (as train.py builds it)."""
    import pytorch_lightning as pl

    from ssl_bench.methods import METHODS

    timer = StepTimer()

    class Cb(pl.Callback):
        def on_train_batch_end(self, *args: Any) -> None:
            timer.mark()

        def on_train_epoch_start(self, *args: Any) -> None:
            timer.mark()

    torch.manual_seed(0)
    model = METHODS[cfg.method.name].from_config(cfg, dm)
    tc = cfg.trainer
    trainer = pl.Trainer(
        max_steps=steps,
        max_epochs=-1,
        accelerator="cpu",
        devices=1,
        precision=tc.precision,
        log_every_n_steps=tc.log_every_n_steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=[Cb()],
        default_root_dir=tempfile.gettempdir(),
    )
    trainer.fit(model, datamodule=dm)
    return timer.steps()


def bare_steps(cfg: Any, dm: Any, steps: int, heads: str = "ours") -> list[float]:
    """The same work in a plain loop: augmentation, method forward + loss, online probe, backward,
    AdamW step (+ the EMA update of every momentum target: BYOL, MoCo v3, DINO), on the same backbone,
    data and batch. ``heads='lightly'`` swaps our heads, losses and momentum update for lightly's."""
    from ssl_bench.methods import METHODS
    from ssl_bench.models.momentum import tau_at, update_momentum

    torch.manual_seed(0)
    model = METHODS[cfg.method.name].from_config(cfg, dm)
    if cfg.trainer.channels_last:
        model.to(memory_format=torch.channels_last)
    if heads == "lightly":
        from lightly.models.utils import update_momentum as ema

        step = lightly_step_fn(model, cfg)
    else:
        ema, step = update_momentum, model.step
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=cfg.optim.weight_decay)
    model.train()
    times = [time.perf_counter()]
    done = 0
    while done < steps:
        for x, y in dm.train_dataloader():
            views = [model._layout(v) for v in model.augment(x)]
            out = step(views)
            logits = model.probe(out.features.detach())
            loss = out.loss + F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            model.on_after_backward()  # DINO: the head's last layer frozen in the first epoch
            opt.step()
            pairs = model.momentum_pairs() if hasattr(model, "momentum_pairs") else []
            if pairs:  # read after lightly_step_fn swapped the heads: the pairs name the swapped modules
                tau = tau_at(done, 1000, cfg.method.tau_base, cfg.method.tau_schedule)
                for online, target in pairs:
                    ema(online, target, tau)
            times.append(time.perf_counter())
            done += 1
            if done >= steps:
                break
    return [b - a for a, b in zip(times[:-1], times[1:])]


def lightly_step_fn(model: Any, cfg: Any) -> Callable[[list[torch.Tensor]], Any]:
    """Replace the module's heads with lightly's (same widths) and return a lightly-style step."""
    import copy

    from lightly.loss import BarlowTwinsLoss, DINOLoss, NegativeCosineSimilarity, NTXentLoss, VICRegLoss
    from lightly.models.modules.heads import (
        BarlowTwinsProjectionHead,
        BYOLPredictionHead,
        BYOLProjectionHead,
        DINOProjectionHead,
        MoCoProjectionHead,
        ProjectionHead,
        SimCLRProjectionHead,
        SimSiamPredictionHead,
        VICRegProjectionHead,
    )
    from lightly.models.utils import deactivate_requires_grad

    from ssl_bench.methods.base import StepOutput

    m, d = cfg.method, model.feat_dim
    if m.name == "simclr":
        model.projector = SimCLRProjectionHead(d, m.projector.hidden_dim, m.projector.out_dim)
        crit = NTXentLoss(temperature=m.temperature)

        def step(views: list[torch.Tensor]) -> Any:
            f = model.backbone(torch.cat(views[:2]))
            z0, z1 = model.projector(f).chunk(2)
            return StepOutput(crit(z0, z1), f[: z0.shape[0]], z0)
    elif m.name == "byol":
        model.projector = BYOLProjectionHead(d, m.projector.hidden_dim, m.projector.out_dim)
        model.predictor = BYOLPredictionHead(m.projector.out_dim, m.predictor_head.hidden_dim, m.projector.out_dim)
        model.target_projector = copy.deepcopy(model.projector)
        deactivate_requires_grad(model.target_projector)
        crit = NegativeCosineSimilarity()

        def step(views: list[torch.Tensor]) -> Any:
            x0, x1 = views[:2]
            f0, f1 = model.backbone(x0), model.backbone(x1)
            p0, p1 = model.predictor(model.projector(f0)), model.predictor(model.projector(f1))
            with torch.no_grad():
                t0 = model.target_projector(model.target_backbone(x0))
                t1 = model.target_projector(model.target_backbone(x1))
            return StepOutput(2 + crit(p0, t1) + crit(p1, t0), f0, p0)  # = 2 - cos: same as ours / 2
    elif m.name == "mocov3":
        # lightly has MoCo v3's heads (its MoCoProjectionHead with batch_norm, BYOL's predictor) but no
        # MoCo v3 loss: the paper's ctr() is written out as lightly's own examples do.
        pj, ph = m.projector, m.predictor_head
        model.projector = MoCoProjectionHead(d, pj.hidden_dim, pj.out_dim, pj.num_layers, batch_norm=True)
        model.predictor = BYOLPredictionHead(pj.out_dim, ph.hidden_dim, pj.out_dim)
        model.target_projector = copy.deepcopy(model.projector)
        deactivate_requires_grad(model.target_projector)

        def ctr(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / m.temperature
            return 2 * m.temperature * F.cross_entropy(logits, torch.arange(len(q)))

        def step(views: list[torch.Tensor]) -> Any:
            x0, x1 = views[:2]
            f0, f1 = model.backbone(x0), model.backbone(x1)
            q0, q1 = model.predictor(model.projector(f0)), model.predictor(model.projector(f1))
            with torch.no_grad():
                k0 = model.target_projector(model.target_backbone(x0))
                k1 = model.target_projector(model.target_backbone(x1))
            return StepOutput(ctr(q0, k1) + ctr(q1, k0), f0, q0)
    elif m.name in ("barlow_twins", "vicreg"):
        pj = m.projector
        if m.name == "barlow_twins":
            model.projector = BarlowTwinsProjectionHead(d, pj.hidden_dim, pj.out_dim)
            crit: Any = BarlowTwinsLoss(lambda_param=m.lambda_offdiag)
        else:
            model.projector = VICRegProjectionHead(d, pj.hidden_dim, pj.out_dim, pj.num_layers)
            crit = VICRegLoss(m.sim_weight, m.var_weight, m.cov_weight, eps=m.var_eps)

        def step(views: list[torch.Tensor]) -> Any:
            x0, x1 = views[:2]
            f0 = model.backbone(x0)
            z0, z1 = model.projector(f0), model.projector(model.backbone(x1))
            return StepOutput(crit(z0, z1), f0, z0)
    elif m.name == "dino":
        h = m.head

        def head() -> torch.nn.Module:
            kw = {"batch_norm": h.use_bn, "norm_last_layer": h.norm_last_layer}
            return DINOProjectionHead(d, h.hidden_dim, h.bottleneck_dim, m.out_dim, **kw)

        model.head, model.target_head = head(), head()  # its weight-normalised layer cannot be deep-copied
        model.target_head.load_state_dict(model.head.state_dict())
        deactivate_requires_grad(model.target_head)
        crit = DINOLoss(
            m.out_dim,
            m.warmup_teacher_temp,
            m.teacher_temp,
            int(m.warmup_teacher_temp_epochs),
            m.student_temp,
            m.center_momentum,
        )

        def step(views: list[torch.Tensor]) -> Any:
            f = model.backbone(torch.cat(views[:2]))
            student = list(model.head(f).chunk(2))
            with torch.no_grad():
                teacher = list(model.target_head(model.target_backbone(torch.cat(views[:2]))).chunk(2))
            return StepOutput(crit(teacher, student, epoch=0), f[: len(f) // 2], student[0])
    elif m.name == "simsiam":
        # lightly's SimSiamProjectionHead has 3 layers (ImageNet); the suite's default has 2:
        # build the same 2-layer head from lightly's ProjectionHead blocks.
        hid, out = m.projector.hidden_dim, m.projector.out_dim
        model.projector = ProjectionHead(
            [
                (d, hid, torch.nn.BatchNorm1d(hid), torch.nn.ReLU(inplace=True)),
                (hid, out, torch.nn.BatchNorm1d(out, affine=False), None),
            ]
        )
        model.predictor = SimSiamPredictionHead(out, m.predictor_head.hidden_dim, out)
        crit = NegativeCosineSimilarity()

        def step(views: list[torch.Tensor]) -> Any:
            x0, x1 = views[:2]
            f0, f1 = model.backbone(x0), model.backbone(x1)
            z0, z1 = model.projector(f0), model.projector(f1)
            p0, p1 = model.predictor(z0), model.predictor(z1)
            return StepOutput(0.5 * (crit(p0, z1.detach()) + crit(p1, z0.detach())), f0, p0)
    else:
        raise ValueError(f"no lightly counterpart for method {m.name!r}")

    if cfg.trainer.channels_last:
        model.to(memory_format=torch.channels_last)
    return step


def section_train(args: argparse.Namespace, with_lightly: bool, with_suite: bool) -> None:
    from ssl_bench.data.datamodule import build_datamodule

    rounds, steps, warm = (2, 6, 2) if args.quick else (7, 20, 3)
    for method in args.methods:
        preset = [f"augment={method}"] if (ROOT / "conf" / "augment" / f"{method}.yaml").exists() else []
        cfg = compose(f"method={method}", *preset)  # a method's own augmentation preset where it has one
        dm = build_datamodule(cfg.data)
        bs = cfg.data.batch_size
        cases: dict[str, Callable[[], list[float]]] = {}
        if with_suite:
            cases["suite"] = lambda: lightning_steps(cfg, dm, steps)
        cases["bare"] = lambda: bare_steps(cfg, dm, steps)
        if with_lightly:
            cases["lightly"] = lambda: bare_steps(cfg, dm, steps, heads="lightly")
        per: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(rounds):
            for k, fn in cases.items():
                per[k].append(median_step(fn(), warm))
        ips = {k: bs / statistics.median(v) for k, v in per.items()}

        def spread(a: str, b: str) -> dict[str, Any]:
            """The per-round ratios a / b (the same round: the same drift) as [min, max]: the noise."""
            r = [tb / ta for ta, tb in zip(per[a], per[b])]
            return {"round_ratios": [round(min(r), 3), round(max(r), 3)]}

        if with_suite:
            row(
                "train",
                f"{method} suite (Lightning)",
                ips["suite"],
                "img/s",
                ips["suite"] / ips["bare"],
                0.95,
                vs="bare loop",
                **spread("suite", "bare"),
            )
        row("train", f"{method} bare loop", ips["bare"], "img/s")
        if with_lightly:
            row("lightly", f"{method} lightly bare loop", ips["lightly"], "img/s")
            if with_suite:
                row(
                    "lightly",
                    f"{method} suite vs lightly",
                    ips["suite"],
                    "img/s",
                    ips["suite"] / ips["lightly"],
                    1.0,
                    vs="lightly bare loop",
                    **spread("suite", "lightly"),
                )
            row(
                "lightly",
                f"{method} ours bare vs lightly",
                ips["bare"],
                "img/s",
                ips["bare"] / ips["lightly"],
                1.0,
                vs="lightly bare loop",
                **spread("bare", "lightly"),
            )


# --- augmentation ---------------------------------------------------------------------------------------
def section_augment(args: argparse.Namespace) -> None:
    from ssl_bench.data.augment import BatchAugment, TorchvisionViews, views_from_config
    from ssl_bench.data.shapes import generate_shapes

    reps = 3 if args.quick else 7
    old = torch.get_num_threads()
    sizes = (32,) if args.quick else (32, 96)
    for size in sizes:
        n = 128 if size == 32 else 64
        images = generate_shapes(n, image_size=size, seed=0)[0]
        for threads in (1, 2):
            torch.set_num_threads(threads)
            augs = {}
            for preset in ("simclr", "byol", "simsiam"):
                cfg = compose(f"augment={preset}", f"data.image_size={size}")
                augs[preset] = BatchAugment(views_from_config(cfg.augment, size), size, cfg.data.mean, cfg.data.std)
                augs[preset](images)  # warm-up
            per: dict[str, list[float]] = {k: [] for k in augs}
            for _ in range(reps):
                for k, aug in augs.items():
                    t = time.perf_counter()
                    aug(images)
                    per[k].append(time.perf_counter() - t)
            for k, v in per.items():
                # an image = one source image turned into its two views
                row(
                    "augment",
                    f"{k} {size}px {threads} thread{'s' if threads > 1 else ''}",
                    n / statistics.median(v),
                    "img/s",
                    batch=n,
                )
        # the per-image path (augment.backend=torchvision): what one DataLoader worker (1 thread) delivers,
        # and the batched path's rate on the same thread as a ratio
        torch.set_num_threads(1)
        for preset in ("simclr", "byol", "simsiam"):
            cfg = compose(f"augment={preset}", f"data.image_size={size}")
            views = views_from_config(cfg.augment, size)
            per_image = TorchvisionViews(views, size, cfg.data.mean, cfg.data.std)
            batched = BatchAugment(views, size, cfg.data.mean, cfg.data.std)
            per_image(images[0])
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                for img in images:
                    per_image(img)
                times.append(time.perf_counter() - t)
            tv_rate = n / statistics.median(times)
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                batched(images)
                times.append(time.perf_counter() - t)
            row(
                "augment",
                f"{preset} {size}px torchvision v2 per image, 1 worker",
                tv_rate,
                "img/s",
                ratio=(n / statistics.median(times)) / tv_rate,
                batch=n,
            )
    torch.set_num_threads(old)


# --- batch size -----------------------------------------------------------------------------------------
def section_batch(args: argparse.Namespace) -> None:
    from ssl_bench.data.datamodule import build_datamodule

    sizes = (64, 128) if args.quick else (64, 128, 256, 512)
    steps, warm, rounds = (4, 1, 1) if args.quick else (8, 2, 2)
    per: dict[int, list[float]] = {b: [] for b in sizes}
    setups = {}
    for b in sizes:
        cfg = compose("method=simclr", f"data.batch_size={b}", "data.train_size=2560")
        setups[b] = (cfg, build_datamodule(cfg.data))
    for _ in range(rounds):
        for b, (cfg, dm) in setups.items():
            per[b].append(median_step(bare_steps(cfg, dm, steps), warm))
    for b in sizes:
        s = statistics.median(per[b])
        row("batch", f"simclr batch {b}", s * 1000, "ms/step", img_per_s=round(b / s, 1))


# --- masked LM ------------------------------------------------------------------------------------------
def section_mlm(args: argparse.Namespace) -> None:
    import pytorch_lightning as pl

    try:
        import accelerate  # noqa: F401  (transformers' Trainer needs it)
        from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments
    except ImportError as err:
        print(f"  [mlm] skipped: {err}")
        ROWS.append({"section": "mlm", "case": "skipped", "reason": str(err)})
        return
    from ssl_bench.methods import METHODS
    from ssl_bench.text.datamodule import build_text_datamodule
    from ssl_bench.text.tokenizer import PAD

    rounds, steps, warm = (2, 6, 2) if args.quick else (4, 16, 3)
    cfg = compose("method=mlm", "method.export=false")
    dm = build_text_datamodule(cfg.data)
    m = cfg.method
    bs, L = cfg.data.batch_size, cfg.data.max_length
    n_seq = bs * steps

    def ours() -> tuple[float, float]:
        model = METHODS["mlm"].from_config(cfg, dm)
        timer = StepTimer()
        toks: list[int] = []

        class Cb(pl.Callback):
            def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, i: int) -> None:
                timer.mark()
                toks.append(int(batch[1].sum()))

            def on_train_epoch_start(self, *a: Any) -> None:
                timer.mark()

        trainer = pl.Trainer(
            max_steps=steps,
            max_epochs=-1,
            accelerator="cpu",
            devices=1,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            logger=False,
            callbacks=[Cb()],
            log_every_n_steps=cfg.trainer.log_every_n_steps,
            default_root_dir=tempfile.gettempdir(),
        )
        trainer.fit(model, datamodule=dm)
        return median_step(timer.steps(), warm), statistics.mean(toks)

    def hf() -> tuple[float, float]:
        from transformers import PreTrainedTokenizerFast, TrainerCallback

        from ssl_bench.methods.mlm import build_roberta

        model = build_roberta(m, dm.vocab_size, L)
        tok: PreTrainedTokenizerFast = dm.tokenizer
        coll = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=m.mask_prob)
        ids = dm.train_ids[:n_seq]
        data = [{"input_ids": r, "attention_mask": (r != PAD).long()} for r in ids]
        timer = StepTimer()

        class Cb(TrainerCallback):
            def on_step_end(self, *a: Any, **k: Any) -> None:
                timer.mark()

            def on_train_begin(self, *a: Any, **k: Any) -> None:
                timer.mark()

        with tempfile.TemporaryDirectory() as tmp:
            targs = TrainingArguments(
                output_dir=tmp,
                per_device_train_batch_size=bs,
                max_steps=steps,
                learning_rate=5e-4,
                weight_decay=0.01,
                warmup_steps=0,
                logging_strategy="no",
                save_strategy="no",
                eval_strategy="no",
                report_to=[],
                use_cpu=True,
                dataloader_num_workers=0,
                disable_tqdm=True,
                seed=0,
                remove_unused_columns=False,
            )
            with contextlib.redirect_stdout(io.StringIO()):  # the Trainer prints its summary dict
                Trainer(model=model, args=targs, train_dataset=data, data_collator=coll, callbacks=[Cb()]).train()
        toks = [int((ids[i * bs : (i + 1) * bs] != PAD).sum()) for i in range(steps)]
        return median_step(timer.steps(), warm), statistics.mean(toks)

    per: dict[str, list[float]] = {"ours": [], "hf": []}
    tok_per_batch = {}
    for _ in range(rounds):
        for k, fn in (("ours", ours), ("hf", hf)):
            s, t = fn()
            per[k].append(s)
            tok_per_batch[k] = t
    tps = {k: tok_per_batch[k] / statistics.median(v) for k, v in per.items()}
    row("mlm", "transformers Trainer", tps["hf"], "tokens/s")
    row(
        "mlm",
        "method=mlm (Lightning)",
        tps["ours"],
        "tokens/s",
        tps["ours"] / tps["hf"],
        1.0,
        vs="transformers Trainer",
    )


# --- sweep ----------------------------------------------------------------------------------------------
def section_sweep(args: argparse.Namespace) -> None:
    exe = Path(sys.executable).with_name("ssl-bench")
    cmd0 = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "ssl_bench.app"])]
    tiny = [
        "-m",
        "method=simclr,byol",
        "logger=none",
        "trainer.num_threads=1",
        "trainer.enable_progress_bar=false",
        "trainer.checkpoint=false",
        "trainer.max_epochs=1" if args.quick else "trainer.max_epochs=3",
        "data.train_size=1024" if args.quick else "data.train_size=2048",
        "data.val_size=256",
        "data.test_size=256",
        "eval.linear_epochs=10",
        "eval.knn_k=20",
        "eval.every_n_epochs=1",
    ]
    launchers = {
        "sequential (basic launcher)": [],
        "joblib n_jobs=2": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    }
    per: dict[str, list[float]] = {k: [] for k in launchers}
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(1):
            for k, extra in launchers.items():
                out = Path(tmp) / f"{r}-{len(per[k])}-{k.split()[0]}"
                t = time.perf_counter()
                res = subprocess.run(
                    [*cmd0, *tiny, *extra, f"hydra.sweep.dir={out}"], env=env, cwd=tmp, capture_output=True, text=True
                )
                if res.returncode:
                    print(res.stdout[-2000:], res.stderr[-2000:])
                    raise RuntimeError(f"sweep with {k} failed (exit {res.returncode})")
                per[k].append(time.perf_counter() - t)
    seq = statistics.median(per["sequential (basic launcher)"])
    par = statistics.median(per["joblib n_jobs=2"])
    row("sweep", "2 jobs sequential (basic launcher)", seq, "s wall")
    row("sweep", "2 jobs joblib n_jobs=2", par, "s wall", seq / par, None, vs="sequential (speed-up)")


# --- main -----------------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.is_available(),
    }


def summary_table() -> str:
    head = f"{'section':8} {'case':42} {'figure':>18} {'ratio':>7} {'target':>7} {'met':>4}"
    lines = [head, "-" * len(head)]
    for r in ROWS:
        if "value" not in r:
            lines.append(f"{r['section']:8} {'skipped: ' + r.get('reason', '')[:70]}")
            continue
        fig = f"{r['value']:,.1f} {r['unit']}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.3f}x"
        target = "" if r["target"] is None else f">={r['target']}"
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        lines.append(f"{r['section']:8} {r['case']:42} {fig:>18} {ratio:>7} {target:>7} {met:>4}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: fewer rounds, steps and cases")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument(
        "--methods",
        default=",".join(IMAGE_METHODS),
        help="comma-separated image methods for train / lightly (default: every registered one)",
    )
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "latest.json"))
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        p.error(f"unknown section(s) {bad}; allowed: {','.join(SECTIONS)}")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in args.methods if m not in IMAGE_METHODS]
    if bad:
        p.error(f"unknown image method(s) {bad}; allowed: {','.join(IMAGE_METHODS)}")
    import logging
    import warnings

    import pytorch_lightning  # noqa: F401  (sets its loggers' levels on import: silence them after)

    warnings.filterwarnings("ignore")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    t0 = time.perf_counter()
    print(f"ssl-bench benchmarks ({'quick' if args.quick else 'full'}): {', '.join(only)}", flush=True)
    want_lightly = "lightly" in only
    if want_lightly:
        try:
            import lightly  # noqa: F401
        except ImportError as err:
            print(f"  [lightly] skipped: {err} (pip install 'ssl-bench[bench]')")
            ROWS.append({"section": "lightly", "case": "skipped", "reason": f"lightly not installed: {err}"})
            want_lightly = False
    sections: dict[str, Callable[[], None]] = {
        "augment": lambda: section_augment(args),
        "batch": lambda: section_batch(args),
        "mlm": lambda: section_mlm(args),
        "sweep": lambda: section_sweep(args),
    }
    if "train" in only or want_lightly:
        print("== train / lightly", flush=True)
        section_train(args, with_lightly=want_lightly, with_suite="train" in only)
    for name in ("augment", "batch", "mlm", "sweep"):
        if name in only:
            print(f"== {name}", flush=True)
            sections[name]()
    result = {
        "command": " ".join(["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "sections": only,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": round(time.perf_counter() - t0, 1),
        "rows": ROWS,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print()
    print(summary_table())
    print(f"\nwall {result['wall_s']} s; JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
