import pytest
import torch

from ssl_bench.models.backbones import build_backbone


def test_timm_backbone_with_small_image_stem():
    model = build_backbone("resnet18", stem="small", stem_stride=1)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    feats = model.forward_features(torch.randn(2, 3, 32, 32))
    assert feats.shape == (2, 512, 4, 4)  # 32 px keeps a 4x4 map (the CIFAR ResNet)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 512) and model.num_features == 512


def test_timm_kwargs_and_default_stem():
    tiny = build_backbone(
        "resnet18", stem="small", stem_stride=2, model_kwargs={"layers": [1, 1, 1, 1], "channels": [32, 64, 128, 256]}
    )
    assert tiny.num_features == 256 and tiny(torch.randn(2, 3, 32, 32)).shape == (2, 256)
    imagenet = build_backbone("resnet18")
    assert imagenet.conv1.kernel_size == (7, 7) and not isinstance(imagenet.maxpool, torch.nn.Identity)


def test_convnet_and_clear_errors():
    net = build_backbone("convnet", model_kwargs={"widths": [8, 16]})
    assert net(torch.randn(3, 3, 32, 32)).shape == (3, 16) and net.num_features == 16
    with pytest.raises(ValueError, match="neither a timm model"):
        build_backbone("resnet19x")
    with pytest.raises(ValueError, match="needs a ResNet-style model"):
        build_backbone("vit_tiny_patch16_224", stem="small")
