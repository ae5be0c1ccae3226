from __future__ import annotations

import pytest
import torch

from brainaug.classify.networks import Conv5FC3, build_classifier, default_fc_hidden, penultimate_features
from brainaug.classify.settings import ClassifierSettings
from brainaug.device import num_threads


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: faster and steadier on a shared 2-core machine."""
    with num_threads(1):
        yield


@pytest.mark.parametrize(("size", "out_spatial"), [(16, 1), (32, 1), (64, 2)])
def test_conv5fc3_shapes(size, out_spatial):
    torch.manual_seed(0)
    model = Conv5FC3(n_classes=3, image_size=size, widths=(2, 2, 4, 4, 8)).eval()
    x = torch.randn(2, 1, size, size, size)
    assert model(x).shape == (2, 3)
    assert model.out_spatial == out_spatial
    feats = penultimate_features(model, x)
    assert feats.shape == (2, model.n_features)
    # features feed the head: head(features) == logits
    assert torch.allclose(model.head(feats), model(x), atol=1e-6)


@pytest.mark.parametrize(("size", "pooled", "out_spatial"), [(32, 3, 4), (64, 3, 8), (32, 0, 32), (16, 4, 1)])
def test_conv5fc3_pooled_blocks_keep_a_map_for_the_average_head(size, pooled, out_spatial):
    torch.manual_seed(0)
    model = Conv5FC3(n_classes=3, image_size=size, widths=(2, 2, 4, 4, 8), pooling="average",
                     pooled_blocks=pooled).eval()
    pools = [m for m in model.convolutions.modules() if isinstance(m, torch.nn.MaxPool3d)]
    assert len(pools) == min(pooled, 4 if size == 16 else 5)
    assert model.out_spatial == out_spatial
    x = torch.randn(2, 1, size, size, size)
    assert model(x).shape == (2, 3)
    assert penultimate_features(model, x).shape == (2, 8)
    with pytest.raises(ValueError, match=r"pooled_blocks must lie in \[0, 5\], got 6"):
        Conv5FC3(image_size=size, pooled_blocks=6)


def test_conv5fc3_default_head_sizes():
    assert default_fc_hidden(128) == (128, 50)
    assert default_fc_hidden(32256) == (1300, 50)
    model = Conv5FC3(n_classes=3, image_size=32)
    assert [m.out_features for m in model.embedding if isinstance(m, torch.nn.Linear)] == [128, 50]


def test_conv5fc3_rejects_wrong_input_and_args():
    model = Conv5FC3(n_classes=3, image_size=16)
    with pytest.raises(ValueError, match=r"expects input \(B, C, 16, 16, 16\), got \(1, 1, 8, 8, 8\)"):
        model(torch.zeros(1, 1, 8, 8, 8))
    with pytest.raises(ValueError, match="needs 5 widths"):
        Conv5FC3(widths=(8, 16))
    with pytest.raises(ValueError, match="n_classes must be >= 1"):
        Conv5FC3(n_classes=0)


@pytest.mark.parametrize(("name", "size", "n_feat"), [("densenet121", 32, 1024), ("resnet18", 16, 512)])
def test_monai_models_selectable(name, size, n_feat):
    torch.manual_seed(0)
    model = build_classifier(ClassifierSettings.from_config(dict(model=name)), n_classes=3, image_size=size)
    x = torch.randn(2, 1, size, size, size)
    model.eval()
    assert model(x).shape == (2, 3)
    assert penultimate_features(model, x).shape == (2, n_feat)
    assert model.training is False


def test_densenet_rejects_small_volumes():
    with pytest.raises(ValueError, match="'densenet121' needs image_size >= 32, got 16"):
        build_classifier(ClassifierSettings.from_config(dict(model="densenet121")), n_classes=3, image_size=16)


def test_build_classifier_is_seeded():
    settings = ClassifierSettings.from_config(dict(widths=(2, 2, 2, 2, 2)))
    torch.manual_seed(5)
    a = build_classifier(settings, 3, 16)
    torch.manual_seed(5)
    b = build_classifier(settings, 3, 16)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_settings_from_config():
    s = ClassifierSettings.from_config({"widths": [4, 8, 16, 32, 64], "max_epochs": 3, "model": "resnet18"})
    assert s.widths == (4, 8, 16, 32, 64) and s.max_epochs == 3 and s.lr == 1e-4
    assert ClassifierSettings.from_config(s.to_dict()) == s
    assert ClassifierSettings.from_config(None) == ClassifierSettings.from_config({})
    assert s.pooled_blocks == 5  # the study's (ClinicaDL's) five pools unless a config says otherwise
    with pytest.raises(ValueError, match=r"classifier config section: unknown keys \['lr_decay'\]"):
        ClassifierSettings.from_config({"lr_decay": 0.1})
    with pytest.raises(ValueError, match="classifier.model: expected one of"):
        ClassifierSettings.from_config({"model": "vit"})
    with pytest.raises(ValueError, match=r"classifier.widths: \[8, 16\] is too short"):
        ClassifierSettings.from_config({"widths": [8, 16]})
    with pytest.raises(ValueError, match="classifier.patience: 0 is less than the minimum of 1"):
        ClassifierSettings.from_config({"patience": 0})
    with pytest.raises(ValueError, match="classifier.precision: expected one of"):
        ClassifierSettings.from_config({"precision": "fp8"})


@pytest.mark.parametrize("centering", ["none", "train_mean"])
def test_channels_last_is_a_layout_not_another_network(centering):
    """The layout only speeds the convolutions up: same weights, same logits and gradients,
    and a checkpoint of one layout loads into the other."""
    common = dict(widths=(4, 4, 8, 8, 8), pooling="average", pooled_blocks=3, dropout=0.0, input_centering=centering)
    fast = ClassifierSettings.from_config({**common, "channels_last": True})
    plain = ClassifierSettings.from_config({**common, "channels_last": False})
    torch.manual_seed(3)
    a = build_classifier(fast, 3, 16)
    torch.manual_seed(3)
    b = build_classifier(plain, 3, 16)
    conv_a, conv_b = ([m for m in model.modules() if isinstance(m, torch.nn.Conv3d)][1] for model in (a, b))
    assert conv_a.weight.is_contiguous(memory_format=torch.channels_last_3d) and not conv_a.weight.is_contiguous()
    assert conv_b.weight.is_contiguous()
    x = torch.randn(4, 1, 16, 16, 16)
    for model in (a, b):
        model.train()
        model(x).square().sum().backward()
    torch.testing.assert_close(a(x), b(x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(conv_a.weight.grad, conv_b.weight.grad, rtol=1e-3, atol=1e-5)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    torch.testing.assert_close(a(x), b(x), rtol=1e-4, atol=1e-5)
