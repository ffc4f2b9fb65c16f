import pytest
import torch
from omegaconf import OmegaConf

from ssl_bench.data import augment as A
from ssl_bench.data.datamodule import build_datamodule
from ssl_bench.data.shapes import SHAPE_CLASSES, generate_shapes


def test_shapes_are_deterministic_balanced_and_seeded():
    x1, y1 = generate_shapes(200, image_size=32, seed=3)
    x2, y2 = generate_shapes(200, image_size=32, seed=3)
    x3, _ = generate_shapes(200, image_size=32, seed=4)
    assert x1.dtype == torch.uint8 and x1.shape == (200, 3, 32, 32)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    assert torch.bincount(y1, minlength=len(SHAPE_CLASSES)).tolist() == [20] * 10


def test_objects_contrast_with_background():
    """Every image spans at least about ``contrast`` in luminance (object vs background)."""
    x, _ = generate_shapes(300, image_size=32, seed=0, contrast=0.4)
    luma = (x.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1).flatten(1) / 255
    spread = luma.quantile(0.98, dim=1) - luma.quantile(0.02, dim=1)
    assert (spread > 0.3).float().mean() > 0.97


def test_datamodule_splits_and_batches():
    cfg = OmegaConf.create(
        dict(
            name="shapes",
            image_size=32,
            train_size=100,
            val_size=20,
            test_size=30,
            generator_seed=7,
            contrast=0.4,
            batch_size=32,
            eval_batch_size=64,
            num_workers=0,
            pin_memory=False,
        )
    )
    dm = build_datamodule(cfg)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.uint8 and y.shape == (32,)
    assert len(dm.train_dataloader()) == 3  # drop_last
    bank, val = dm.val_dataloader()
    assert sum(len(b[1]) for b in bank) == 100 and sum(len(b[1]) for b in val) == 20
    assert not torch.equal(dm.splits["train"].images[:20], dm.splits["val"].images)


def test_per_view_values_and_colour_strength():
    cfg = OmegaConf.create(
        dict(
            num_views=2,
            crop_min_scale=0.2,
            crop_max_scale=1.0,
            flip_p=0.5,
            color_p=0.8,
            color_strength=0.5,
            brightness=0.8,
            contrast=0.8,
            saturation=0.4,
            hue=0.2,
            grayscale_p=0.2,
            blur_p=[1.0, 0.1],
            blur_sigma_min=0.1,
            blur_sigma_max=2.0,
            solarize_p=[0.0, 0.2],
        )
    )
    v1, v2 = A.views_from_config(cfg)
    assert (v1.blur_p, v2.blur_p, v1.solarize_p, v2.solarize_p) == (1.0, 0.1, 0.0, 0.2)
    assert (v1.brightness, v1.contrast, v1.saturation, v1.hue) == (0.4, 0.4, 0.2, 0.1)  # BYOL's jitter
    cfg.color_strength = 1.0
    assert A.views_from_config(cfg)[0].brightness == 0.8


def test_crop_of_whole_image_with_flip_is_a_mirror():
    x = torch.rand(4, 3, 16, 16)
    out = A.resized_crop_flip(x, 16, 1.0, 1.0, flip_p=1.0, ratio=(1.0, 1.0))
    assert torch.allclose(out, x.flip(-1), atol=1e-5)
    same = A.resized_crop_flip(x, 16, 1.0, 1.0, flip_p=0.0, ratio=(1.0, 1.0))
    assert torch.allclose(same, x, atol=1e-5)


def test_colour_ops_are_identity_at_zero_strength_and_stay_in_range():
    x = torch.rand(8, 3, 8, 8)
    assert torch.allclose(A.color_jitter(x, 1.0, 0.0, 0.0, 0.0, 0.0), x)
    y = A.color_jitter(x, 1.0, 0.8, 0.8, 0.8, 0.5)
    assert y.min() >= 0 and y.max() <= 1 and not torch.allclose(y, x)
    assert torch.allclose(A._hsv_to_rgb(A._rgb_to_hsv(x)), x, atol=1e-5)
    g = A.grayscale(x, 1.0)
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    assert torch.equal(A.solarize(x, 0.0), x)
    s = A.solarize(x, 1.0)
    assert torch.allclose(s, torch.where(x >= 0.5, 1 - x, x))
    b = A.gaussian_blur(x, 1.0, 1.0, 1.0)
    assert b.std() < x.std() and torch.allclose(b.mean(), x.mean(), atol=0.02)


def test_views_differ_per_image():
    aug = A.BatchAugment([A.ViewAug(), A.ViewAug()], 32, [0.5] * 3, [0.25] * 3)
    x, _ = generate_shapes(16, seed=0)
    v1, v2 = aug(x)
    assert v1.shape == (16, 3, 32, 32) and not torch.allclose(v1, v2)


def _preset(name, *overrides):
    from tests.conftest import make_cfg

    return make_cfg(f"augment={name}", *overrides, tiny=False).augment


def _ops(pipeline):
    """Transform class names of a torchvision v2 pipeline, looking inside RandomApply."""
    from torchvision.transforms import v2

    out = []
    for t in pipeline.transforms:
        out += [type(u).__name__ for u in t.transforms] if isinstance(t, v2.RandomApply) else [type(t).__name__]
    return out


def test_crop_only_has_no_colour_ops():
    cfg = _preset("crop_only")
    for v in A.views_from_config(cfg, 32):
        assert not v.has_color and v.grayscale_p == v.blur_p == v.solarize_p == v.flip_p == 0
        ops = _ops(A.torchvision_view(v, 32, [0.5] * 3, [0.25] * 3))
        assert ops == ["RandomResizedCrop", "ToDtype", "Normalize"]
    x, _ = generate_shapes(8, seed=0)
    aug = A.BatchAugment(A.views_from_config(cfg, 32), 32, [0.0] * 3, [1.0] * 3)
    v = aug(x)[0]  # crops only rescale pixels: colours stay in the source range
    assert v.min() >= 0 and v.max() <= 1
    assert _ops(A.torchvision_view(A.views_from_config(_preset("no_color"), 32)[0], 32, [0.5] * 3, [0.25] * 3)) == [
        "RandomResizedCrop",
        "RandomHorizontalFlip",
        "ToDtype",
        "Normalize",
    ]


def test_byol_views_use_their_own_probabilities_and_blur_follows_image_size():
    cfg = _preset("byol")
    small = A.views_from_config(cfg, 32)
    assert [v.blur_p for v in small] == [0.0, 0.0]  # no blur below blur_min_size (CIFAR recipes)
    v1, v2 = A.views_from_config(cfg, 96)
    assert (v1.blur_p, v2.blur_p, v1.solarize_p, v2.solarize_p) == (1.0, 0.1, 0.0, 0.2)
    from torchvision.transforms import v2 as T

    def probs(view):
        p = A.torchvision_view(view, 96, [0.5] * 3, [0.25] * 3)
        blur = [
            t.p for t in p.transforms if isinstance(t, T.RandomApply) and isinstance(t.transforms[0], T.GaussianBlur)
        ]
        sol = [t.p for t in p.transforms if isinstance(t, T.RandomSolarize)]
        return blur, sol

    assert probs(v1) == ([1.0], []) and probs(v2) == ([0.1], [0.2])


def test_colour_strength_scales_jitter_parameters():
    from torchvision.transforms import v2 as T

    def jitter(strength):
        v = A.views_from_config(_preset("simclr", f"augment.color_strength={strength}"), 32)[0]
        p = A.torchvision_view(v, 32, [0.5] * 3, [0.25] * 3)
        cj = next(t.transforms[0] for t in p.transforms if isinstance(t, T.RandomApply))
        return v, cj

    v1, cj1 = jitter(1.0)
    v5, cj5 = jitter(0.5)
    assert (v1.brightness, v1.hue) == (0.8, 0.2) and (v5.brightness, v5.saturation, v5.hue) == (0.4, 0.4, 0.1)
    assert cj1.brightness == pytest.approx((0.2, 1.8)) and cj5.brightness == pytest.approx((0.6, 1.4))
    assert cj5.hue == pytest.approx((-0.1, 0.1))


def test_torchvision_backend_builds_views_per_image_in_the_loader():
    from tests.conftest import make_cfg

    cfg = make_cfg("augment.backend=torchvision")
    dm = build_datamodule(cfg.data, cfg.augment)
    views, y = next(iter(dm.train_dataloader()))
    assert len(views) == 2 and views[0].shape == (64, 3, 32, 32) and views[0].dtype == torch.float32
    assert not torch.allclose(views[0], views[1]) and y.shape == (64,)
    assert abs(views[0].mean().item()) < 1.5  # normalised, not raw uint8
