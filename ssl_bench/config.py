"""Config schema and validation.

Hydra composes ``conf/``; ``validate`` then checks the composed config against typed schemas
(one dataclass per config group, one per method) *before any work starts*. A typo'd key, a
value of the wrong type or out of range raises ``ConfigError`` with one message that names the
key, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, InterpolationResolutionError, ValidationError

from ssl_bench.errors import ConfigError  # re-exported: ``from ssl_bench.config import ConfigError``
from ssl_bench.methods.registry import REGISTRY, check_method, method_schemas
from ssl_bench.schema import choice, num, per_view  # re-exported for the schemas of other apps


def _ratio(total: Any, part: Any) -> int:
    """``${ssl_bench.ratio:256,${data.batch_size}}``: how many batches make ``total`` images (>= 1), e.g.
    the gradient accumulation that keeps the optimizer's batch fixed while the loss batch shrinks."""
    return max(1, int(total) // int(part))


_NO_DEFAULT = object()


def _lookup(value: Any, table: Any, default: Any = _NO_DEFAULT) -> Any:
    """``${ssl_bench.lookup:${data.batch_size},{256: 1.0e-4, 2048: 7.0e-4}}``: the entry of ``table`` for
    ``value`` (``default`` when given and there is none), e.g. a learning rate tuned per batch size, so a
    sweep over one key sets a paired key too (Hydra sweeps the cartesian product of its keys)."""
    table = dict(table) if table is not None else {}
    for key, entry in table.items():
        if key == value or str(key) == str(value):
            return entry
    if default is not _NO_DEFAULT:
        return default
    raise ValueError(f"ssl_bench.lookup: no entry for {value!r}; entries: {', '.join(map(str, table)) or 'none'}")


if not OmegaConf.has_resolver("ssl_bench.ratio"):
    OmegaConf.register_new_resolver("ssl_bench.ratio", _ratio)
if not OmegaConf.has_resolver("ssl_bench.lookup"):
    OmegaConf.register_new_resolver("ssl_bench.lookup", _lookup)


def config_dir() -> str:
    """The ``conf/`` tree: inside the installed package, or at the root of a source checkout."""
    pkg = Path(__file__).resolve().parent
    for candidate in (pkg / "conf", pkg.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"ssl-bench config tree not found next to {pkg}")


METHODS: dict[str, type] = method_schemas()  # method.name -> schema, from the registry


@dataclass
class Backbone:
    name: str = "resnet18"
    pretrained: bool = False
    stem: str = choice("timm", "timm", "small")
    stem_stride: int = num(1, lo=1)
    model_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImageData:
    """Keys every image dataset has (the embedded shapes and the real ones)."""

    image_size: int = num(32, lo=8)
    crop_min_scale: float = num(0.2, lo=0, hi=1)
    batch_size: int = num(256, lo=1)
    eval_batch_size: int = num(512, lo=1)
    num_workers: int = num(0, lo=0)
    pin_memory: bool = False
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])


@dataclass
class Data(ImageData):
    name: str = choice("shapes", "shapes")
    train_size: int = num(5000, lo=1)
    val_size: int = num(1000, lo=1)
    test_size: int = num(1000, lo=1)
    generator_seed: int = 1234
    contrast: float = num(0.4, lo=0, hi=1)
    num_classes: int = num(10, lo=2, hi=1000)  # > 10: generated outlines after the ten named shapes
    palette: int = num(0, lo=0)  # 0: free colours; K >= 2: colours from K fixed ones


@dataclass
class TextData:
    name: str = choice("text_embedded", "text_embedded", "text_files")
    paths: list[str] = field(default_factory=list)
    documents: str = choice("blank_line", "blank_line", "file")
    pattern: str = "**/*.txt"
    vocab_size: int = num(2048, lo=261)  # 256 bytes + 5 special tokens at least
    min_frequency: int = num(2, lo=1)
    tokenizer_cache: Any = None
    max_length: int = num(128, lo=8)
    packing: str = choice("full_sentences", "full_sentences", "doc_sentences")
    heldout_fraction: float = num(0.1, lo=0, hi=1, lo_open=True)
    split_seed: int = 0
    heldout_mask_prob: float = num(0.15, lo=0, hi=1, lo_open=True)
    heldout_mask_token_prob: float = num(0.8, lo=0, hi=1)
    heldout_random_token_prob: float = num(0.1, lo=0, hi=1)
    heldout_mask_seed: int = 1234
    batch_size: int = num(16, lo=1)
    eval_batch_size: int = num(64, lo=1)
    num_workers: int = num(0, lo=0)


@dataclass
class RealImages(ImageData):
    """Keys every real image dataset shares (``data=cifar10|cifar100|stl10|imagefolder``)."""

    name: str = "cifar10"
    root: str = "data"
    fraction: float = num(1.0, lo=0, hi=1, lo_open=True)
    val_size: int = num(2000, lo=1)
    bank_size: Any = None
    split_seed: int = 0


@dataclass
class CifarData(RealImages):
    name: str = choice("cifar10", "cifar10", "cifar100")
    download: bool = False
    verify: bool = True


@dataclass
class STL10Data(RealImages):
    name: str = choice("stl10", "stl10")
    download: bool = False
    verify: bool = True
    pretrain_splits: list[str] = field(default_factory=lambda: ["unlabeled", "train"])


@dataclass
class FolderData(RealImages):
    name: str = choice("imagefolder", "imagefolder")
    train: list[str] = field(default_factory=lambda: ["train"])
    eval_train: str = "train"
    test: str = "test"
    labels: str = choice("auto", "auto", "true", "false")
    on_corrupt: str = choice("skip", "skip", "error")
    cache_dir: Any = "~/.cache/ssl-bench/imagefolder"
    decode_workers: int = num(2, lo=0)
    storage: str = choice("auto", "auto", "memory", "stream", "shards")  # ssl_bench/data/storage.py
    memory_budget_gb: float = num(8.0, lo=0)  # auto: memory when the decoded images fit (per process)
    decode: str = choice("cpu", "cpu", "device")  # stream / shards: device = nvJPEG on the training GPU
    shuffle_buffer: int = num(1000, lo=1)  # shards: images mixed per loader worker


@dataclass
class ImageNetData(FolderData):
    """ImageNet-1k and the ImageNet-100 subset: image folders (or their shards) of a fixed layout."""

    name: str = choice("imagenet", "imagenet", "imagenet100")
    eval_train: str = "train"
    test: str = "val"


DATA: dict[str, type] = {
    "shapes": Data,
    "text_embedded": TextData,
    "text_files": TextData,
    "cifar10": CifarData,
    "cifar100": CifarData,
    "stl10": STL10Data,
    "imagefolder": FolderData,
    "imagenet": ImageNetData,
    "imagenet100": ImageNetData,
}
TEXT_METHODS = tuple(n for n, s in REGISTRY.items() if s.modality == "text")


@dataclass
class Augment:
    name: str = "simclr"
    num_views: int = num(2, lo=2)
    crop_min_scale: Any = per_view(0.2, lo=0, hi=1)
    crop_max_scale: Any = per_view(1.0, lo=0, hi=1)
    flip_p: Any = per_view(0.5, lo=0, hi=1)
    color_p: Any = per_view(0.8, lo=0, hi=1)
    color_strength: Any = per_view(0.5, lo=0)
    brightness: Any = per_view(0.8, lo=0)
    contrast: Any = per_view(0.8, lo=0)
    saturation: Any = per_view(0.8, lo=0)
    hue: Any = per_view(0.2, lo=0, hi=1)
    grayscale_p: Any = per_view(0.2, lo=0, hi=1)
    blur_p: Any = per_view(0.0, lo=0, hi=1)
    blur_sigma_min: Any = per_view(0.1, lo=0)
    blur_sigma_max: Any = per_view(2.0, lo=0)
    solarize_p: Any = per_view(0.0, lo=0, hi=1)
    blur_min_size: int = num(0, lo=0)
    backend: str = choice("batched", "batched", "torchvision")
    local_crops: int = num(0, lo=0)  # multi-crop: small views beside the global ones (methods that pair them)
    local_size: int = num(0, lo=0)  # their side in pixels; 0: 96/224 of data.image_size (DINO's)
    local_min_scale: float = num(0.05, lo=0, hi=1, lo_open=True)
    local_max_scale: float = num(0.4, lo=0, hi=1)


@dataclass
class Optim:
    name: str = choice("sgd", "sgd", "lars", "adamw")
    base_lr: float = num(0.05, lo=0, lo_open=True)
    lr_scaling: str = choice("linear", "linear", "sqrt", "none")
    reference_batch: int = num(256, lo=1)
    weight_decay: float = num(5e-4, lo=0)
    momentum: float = num(0.9, lo=0, hi=1)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = num(1e-8, lo=0)
    trust_coeff: float = num(1e-3, lo=0)
    exclude_bias_norm: bool = False
    scheduler: str = choice("cosine", "cosine", "linear", "constant")
    warmup_epochs: float = num(0.0, lo=0)
    min_lr_ratio: float = num(0.0, lo=0, hi=1)


@dataclass
class Trainer:
    max_epochs: int = num(10, lo=1)
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = num(1, lo=1)
    strategy: str = "auto"
    precision: str = choice("32-true", "32-true", "32", "bf16-mixed", "16-mixed", "bf16-true")
    accumulate_grad_batches: int = num(1, lo=1)
    gradient_clip_val: Any = None
    deterministic: bool = False
    log_every_n_steps: int = num(10, lo=1)
    limit_train_batches: Any = None
    enable_progress_bar: bool = True
    checkpoint: bool = True
    num_threads: int = num(0, lo=0)
    channels_last: bool = False
    sync_batchnorm: str = choice("auto", "auto", "true", "false")  # auto: on when there are several processes
    compile: bool = False


@dataclass
class Logger:
    name: str = choice("wandb", "wandb", "csv", "none")
    mode: str = choice("auto", "auto", "online", "offline", "disabled")
    project: str | None = "ssl-bench"  # null: ssl-bench-eval takes the pretraining run's
    entity: Any = None
    group: Any = None
    tags: list[str] = field(default_factory=list)
    job_type: str = "pretrain"
    notes: Any = None
    init_timeout: float = num(30.0, lo=0, lo_open=True)  # seconds to reach the W&B server, then offline


@dataclass
class Eval:
    every_n_epochs: int = num(1, lo=1)
    knn_k: int = num(200, lo=1)
    knn_t: float = num(0.1, lo=0, lo_open=True)
    probe_lr: float = num(0.1, lo=0, lo_open=True)
    linear_epochs: int = num(100, lo=1)
    linear_lr: float = num(0.1, lo=0, lo_open=True)
    linear_weight_decay: float = num(1e-4, lo=0)
    collapse_threshold: float = num(0.1, lo=0)
    collapse_rank: float = num(2.0, lo=0)
    initial: bool = True
    final: bool = True


@dataclass
class Root:
    seed: int = 0
    name: Any = None
    resume: Any = None  # null | auto | path to a .ckpt
    study: Any = None  # conf/experiment/*: what ssl-bench-report needs to lay out a paper's table
    skip_finished: bool = True  # multirun: jobs whose record says finished/collapsed/diverged are not rerun
    overwrite: bool = False  # a folder that holds a run: move its files aside and start over


GROUPS: dict[str, type] = {
    "backbone": Backbone,
    "data": Data,
    "augment": Augment,
    "optim": Optim,
    "trainer": Trainer,
    "logger": Logger,
    "eval": Eval,
}


# --- validation ---------------------------------------------------------------------------------
def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _nested(schema: type) -> dict[str, type]:
    """Fields of ``schema`` that are schemas themselves (``method.projector``, ``linear`` ...)."""
    return {
        f.name: f.default_factory
        for f in fields(schema)  # type: ignore[misc]
        if f.default_factory is not MISSING and is_dataclass(f.default_factory)
    }


def unknown_key(key: Any, allowed: Any, path: str = "") -> str:
    """``unknown key 'PATH.KEY'. Did you mean 'PATH.CLOSE'? Allowed keys: ...`` (one line)."""
    names = [str(n) for n in allowed]
    close = difflib.get_close_matches(str(key), names, n=1)
    hint = f" Did you mean '{_join(path, close[0])}'?" if close else ""
    return f"unknown key '{_join(path, key)}'.{hint} Allowed keys: {', '.join(names)}"


def _check_keys(node: Any, schema: type, path: str) -> None:
    names = [f.name for f in fields(schema)]
    if not isinstance(node, DictConfig):
        raise ConfigError(f"{path}: expected a mapping with keys [{', '.join(names)}], got {node!r}")
    for key in node:
        if key not in names:
            raise ConfigError(unknown_key(key, names, path))
    for name, sub in _nested(schema).items():
        if name in node:
            _check_keys(node[name], sub, _join(path, name))


def _bool_choice(value: Any, meta: dict) -> str | None:
    """``true`` / ``false`` for a boolean given to a choice that lists them (YAML reads them as booleans)."""
    choices = meta.get("choices") or ()
    if isinstance(value, bool) or str(value) in ("True", "False"):
        text = str(value).lower()
        return text if text in choices else None
    return None


def _check_value(key: str, value: Any, meta: dict) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices and _bool_choice(value, meta) is None:
        raise ConfigError(f"{key}={value!r} is not allowed; allowed: {', '.join(map(str, choices))}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is None and hi is None:
        return
    values = list(value) if isinstance(value, (list, ListConfig)) and meta.get("per_view") else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise ConfigError(f"{key}={value!r} must be a number")
        lo_bad = lo is not None and (v <= lo if meta.get("lo_open") else v < lo)
        if lo_bad or (hi is not None and v > hi):
            lo_txt = "" if lo is None else (f"> {lo}" if meta.get("lo_open") else f">= {lo}")
            hi_txt = "" if hi is None else f"<= {hi}"
            raise ConfigError(
                f"{key}={value!r} is out of range; allowed: {' and '.join(t for t in (lo_txt, hi_txt) if t)}"
            )


def check_node(node: DictConfig, schema: type, path: str = "") -> DictConfig:
    """Check ``node`` against a schema dataclass: unknown keys (with did-you-mean), types (by merging
    into the structured schema) and ranges, nested schemas included; ``ConfigError`` on the first
    problem. Returns the typed values (defaults filled in)."""
    _check_keys(node, schema, path)
    try:  # interpolations resolve against the whole config first (e.g. ${data.batch_size} in trainer)
        values = OmegaConf.create(OmegaConf.to_container(node, resolve=True))
        typed = OmegaConf.merge(OmegaConf.structured(schema), values)
    except InterpolationResolutionError as err:
        raise ConfigError(f"{path or 'config'}: {str(err).splitlines()[0]}") from None
    except (ValidationError, ConfigKeyError) as err:
        key = _join(path, err.full_key) if getattr(err, "full_key", None) else (path or "config")
        raise ConfigError(f"{key}: {err.msg.splitlines()[0]}") from None
    _check_ranges(typed, node, schema, path)
    return typed


def _check_ranges(typed: DictConfig, raw: DictConfig, schema: type, path: str) -> None:
    """Range-check the typed values; messages quote the value as the user wrote it."""
    nested = _nested(schema)
    for f in fields(schema):
        key = _join(path, f.name)
        if f.name in nested:
            _check_ranges(typed[f.name], raw.get(f.name, typed[f.name]), nested[f.name], key)
            continue
        fixed = _bool_choice(raw.get(f.name), dict(f.metadata)) if f.name in raw else None
        if fixed is not None:  # data.labels=true: the choice's string, as the code compares it
            raw[f.name] = fixed
            continue
        try:
            _check_value(key, typed[f.name], dict(f.metadata))
        except ConfigError:
            _check_value(key, raw.get(f.name, typed[f.name]), dict(f.metadata))
            raise


def validate(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` on the first key or value that cannot run."""
    method = cfg.get("method")
    if not isinstance(method, DictConfig) or "name" not in method:
        raise ConfigError(f"method: missing; choose one with method=NAME (allowed: {', '.join(METHODS)})")
    if method.name not in METHODS:
        raise ConfigError(f"method.name={method.name!r} is not allowed; allowed: {', '.join(METHODS)}")
    check_node(method, METHODS[method.name], "method")
    for group, schema in GROUPS.items():
        if group not in cfg:
            raise ConfigError(f"{group}: missing config group")
        if group == "data":  # one schema per data.name
            data = cfg[group]
            if isinstance(data, DictConfig) and data.get("name") not in DATA:
                raise ConfigError(f"data.name={data.get('name')!r} is not allowed; allowed: {', '.join(DATA)}")
            schema = DATA[data.name] if isinstance(data, DictConfig) else Data
        check_node(cfg[group], schema, group)
    root_keys = sorted({f.name for f in fields(Root)} | set(GROUPS) | {"method"})
    for key in cfg:
        if key not in root_keys:
            raise ConfigError(unknown_key(key, root_keys))
    check_seed(cfg.get("seed", 0))
    resume = cfg.get("resume")
    if resume is not None and resume != "auto" and not (isinstance(resume, str) and Path(resume).is_file()):
        raise ConfigError(
            f"resume={resume!r} is not allowed; allowed: null, auto, or the path of an existing checkpoint (.ckpt)"
        )
    if "root" in cfg.data and OmegaConf.is_missing(cfg.data, "root"):
        raise ConfigError(f"data.root is required for data={cfg.data.name}: data.root=/path/to/dataset")
    text_data = DATA[cfg.data.name] is TextData
    if (method.name in TEXT_METHODS) != text_data:
        if text_data:
            raise ConfigError(
                f"data={cfg.data.name} is text; method.name={method.name!r} needs images "
                f"(data=shapes, cifar10, cifar100, stl10 or imagefolder), or use method=mlm"
            )
        raise ConfigError(
            f"method.name={method.name!r} needs text data (data=text_embedded or data=text_files); "
            f"data.name={cfg.data.name!r} is images"
        )
    check_method(method)
    if text_data and cfg.data.heldout_mask_token_prob + cfg.data.heldout_random_token_prob > 1:
        raise ConfigError("data.heldout_mask_token_prob + data.heldout_random_token_prob must be <= 1")
    if cfg.data.name == "shapes" and cfg.data.palette == 1:
        raise ConfigError("data.palette=1 is not allowed; allowed: 0 (free colours) or at least 2 colours")
    if cfg.data.name == "shapes" and cfg.data.batch_size > cfg.data.train_size:
        raise ConfigError(
            f"data.batch_size={cfg.data.batch_size} is larger than "
            f"data.train_size={cfg.data.train_size}: "
            "no full batch can be drawn (batches drop the remainder)"
        )
    aug = cfg.augment
    for f in fields(Augment):
        value = aug[f.name]
        if isinstance(value, ListConfig) and f.metadata.get("per_view") and len(value) != aug.num_views:
            raise ConfigError(
                f"augment.{f.name}={list(value)} has {len(value)} entries; "
                f"give one number or {aug.num_views} (augment.num_views)"
            )
    check_multicrop(cfg)
    check_trainer(cfg.trainer)


def check_multicrop(cfg: DictConfig) -> None:
    """``augment.local_crops``: a method whose loss pairs small crops, cropped on the batch (not by the loader)."""
    aug = cfg.augment
    n = int(aug.get("local_crops", 0) or 0)
    if n == 0:
        return
    users = [name for name, spec in REGISTRY.items() if spec.multicrop]
    if not REGISTRY[cfg.method.name].multicrop:
        raise ConfigError(
            f"augment.local_crops={n}: method={cfg.method.name} trains on its global views and does not pair "
            f"small crops; methods that do: {', '.join(users)} (or augment.local_crops=0)"
        )
    if aug.backend != "batched" or cfg.data.get("storage") in ("stream", "shards"):
        raise ConfigError(
            f"augment.local_crops={n} needs the batched augmentation on whole images "
            "(augment.backend=batched, data.storage=memory)"
        )
    if aug.local_min_scale >= aug.local_max_scale:
        raise ConfigError(
            f"augment.local_min_scale={aug.local_min_scale} must be below augment.local_max_scale={aug.local_max_scale}"
        )


SEED_MAX = 2**32 - 1  # numpy's and torch's seed range


def check_seed(seed: Any) -> None:
    """``seed`` is an integer in [0, 2**32 - 1] (what numpy and torch accept); a bool is not a seed."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"seed={seed!r} is not allowed; seed is an integer in [0, {SEED_MAX}]")


def check_trainer(tc: DictConfig) -> None:
    """Settings that cannot train: no training batches, no devices, an accelerator that is not here."""
    limit = tc.limit_train_batches
    if limit is not None and (
        isinstance(limit, bool)
        or not isinstance(limit, (int, float))
        or limit <= 0
        or (isinstance(limit, float) and limit > 1)
    ):
        raise ConfigError(
            f"trainer.limit_train_batches={limit!r} trains nothing or is not a size: give a fraction in "
            "(0, 1], a number of batches >= 1, or null (every batch)"
        )
    devices = tc.devices
    bad_devices = (
        devices == 0
        or isinstance(devices, bool)
        or (isinstance(devices, int) and devices < -1)
        or (isinstance(devices, (list, ListConfig)) and not devices)
        or (isinstance(devices, str) and devices != "auto" and devices.strip("-,0123456789 ") != "")
    )
    if bad_devices:
        raise ConfigError(
            f"trainer.devices={devices!r} is not allowed; allowed: auto, a number of devices >= 1, "
            "-1 (all), or a list of device indices"
        )
    accelerator = str(tc.accelerator)
    if accelerator not in ("auto", "cpu", "gpu", "cuda", "mps", "tpu", "xla", "hpu"):
        raise ConfigError(f"trainer.accelerator={accelerator!r} is not allowed; allowed: auto, cpu, gpu, cuda, mps")


def check_resources(cfg: DictConfig) -> None:
    """What this machine must have for the (valid) config to run here: a GPU for ``trainer=gpu``.
    Separate from ``validate``: a GPU recipe is a valid config on a machine without one."""
    accelerator = str(cfg.trainer.accelerator)
    if accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                f"trainer.accelerator={accelerator}: no CUDA GPU is visible here "
                "(torch.cuda.is_available() is false); use trainer=cpu"
            )


def _fields_of(schemas: list[type], path: list[str]) -> list[str] | None:
    """Field names at ``path`` under any of ``schemas`` (nested schemas followed); None: not a mapping."""
    names: dict[str, None] = {}
    found = False
    for schema in schemas:
        node: Any = schema
        for part in path:
            node = _nested(node).get(part) if node is not None else None
        if node is not None:
            found = True
            names.update(dict.fromkeys(f.name for f in fields(node)))
    return list(names) if found else None


def unknown_override(key: str, schema: type | None = None, choices: dict[str, str] | None = None) -> str | None:
    """The did-you-mean message for an override of a key the config does not have (``trainer.max_epoch``),
    or None when the key is not ours to judge (``hydra.*``). ``schema``: the root dataclass of the app's
    config (None: the pretraining config, whose ``method`` / ``data`` schemas follow ``choices``, the
    group options given on the command line, or cover every option)."""
    parts = key.split(".")
    if parts[0] == "hydra":
        return None
    if schema is not None:
        groups: dict[str, list[type]] = {n: [s] for n, s in _nested(schema).items()}
        root_keys = [f.name for f in fields(schema)]
    else:
        choices = choices or {}
        groups = {g: [s] for g, s in GROUPS.items()}
        method, data = choices.get("method"), choices.get("data")
        groups["method"] = [METHODS[method]] if method in METHODS else list(METHODS.values())
        groups["data"] = [DATA[data]] if data in DATA else list(dict.fromkeys(DATA.values()))
        root_keys = sorted({f.name for f in fields(Root)} | set(groups))
    if parts[0] not in groups:
        return unknown_key(parts[0], root_keys) if parts[0] not in root_keys else None
    for depth in range(1, len(parts)):
        allowed = _fields_of(groups[parts[0]], parts[1:depth])
        if allowed is None:
            return None
        if parts[depth] not in allowed:
            return unknown_key(parts[depth], allowed, ".".join(parts[:depth]))
    return None
