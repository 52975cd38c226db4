"""VGG-19 defined in the project: torchvision's key names, safe loading, the feature extractor."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from microrestore.errors import InputError
from microrestore.nn.vgg import VGG19, VGGFeatures, load_torchvision_state_dict, vgg19_layer_names

# torchvision.models.vgg19().state_dict(): conv layers at these indices of ``features`` (out, in) and the classifier.
TORCHVISION_CONVS = {
    0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256), 14: (256, 256),
    16: (256, 256), 19: (512, 256), 21: (512, 512), 23: (512, 512), 25: (512, 512), 28: (512, 512),
    30: (512, 512), 32: (512, 512), 34: (512, 512),
}  # fmt: skip
TORCHVISION_LINEAR = {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}


def torchvision_shapes() -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (out, inp) in TORCHVISION_CONVS.items():
        shapes[f"features.{i}.weight"] = (out, inp, 3, 3)
        shapes[f"features.{i}.bias"] = (out,)
    for i, (out, inp) in TORCHVISION_LINEAR.items():
        shapes[f"classifier.{i}.weight"] = (out, inp)
        shapes[f"classifier.{i}.bias"] = (out,)
    return shapes


def relu3_3_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under torchvision's names for the convs up to relu3_3 (features.0 .. features.14)."""
    gen = torch.Generator().manual_seed(seed)
    return {
        key: torch.randn(shape, generator=gen) * 0.05
        for key, shape in torchvision_shapes().items()
        if key.startswith("features.") and int(key.split(".")[1]) <= 14
    }


def test_vgg19_has_torchvision_keys_and_shapes():
    with torch.device("meta"):
        net = VGG19()
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == torchvision_shapes()
    assert len(net.features) == 37


def test_layer_names_and_keras_alias():
    names = vgg19_layer_names()
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names.index("relu3_3") == 15 and names[-1] == "pool5"
    assert len(VGGFeatures("relu3_3").features) == 16
    assert len(VGGFeatures("block3_conv3").features) == 16  # Keras' conv includes its ReLU
    assert isinstance(VGGFeatures("relu3_3").features[-1], torch.nn.ReLU)
    with pytest.raises(InputError, match="unknown VGG-19 layer"):
        VGGFeatures("relu9_9")


def test_loads_torchvision_state_dict_with_weights_only(tmp_path: Path):
    state = relu3_3_state_dict()
    path = tmp_path / "vgg19-test.pth"
    torch.save(state, path)
    loaded = load_torchvision_state_dict(path)
    features = VGGFeatures("relu3_3", input_range=(-1.0, 1.0))
    features.load_torchvision(loaded, path)
    assert torch.equal(features.features[14].weight, state["features.14.weight"])
    assert all(not p.requires_grad for p in features.parameters())
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    y = features(x)
    assert y.shape == (2, 256, 8, 8) and (y >= 0).all()
    # One channel is repeated to RGB: the same as giving the three channels explicitly.
    assert torch.allclose(y, features(x.expand(-1, 3, -1, -1)))
    # The extractor stays frozen and in eval mode even when a trainer calls train().
    features.train()
    assert not features.training


def test_full_vgg19_state_dict_loads_strictly(tmp_path: Path):
    """A state dict saved from the project's VGG19 (torchvision names) round-trips with weights_only=True."""
    net = VGG19(num_classes=3, hidden=8)  # small classifier, same key names
    path = tmp_path / "small.pth"
    torch.save(net.state_dict(), path)
    again = VGG19(num_classes=3, hidden=8)
    again.load_state_dict(load_torchvision_state_dict(path), strict=True)
    assert torch.equal(again.features[34].weight, net.features[34].weight)


def test_bad_state_dicts_are_refused(tmp_path: Path):
    state = relu3_3_state_dict()
    del state["features.12.bias"]
    with pytest.raises(InputError, match=r"features\.12\.bias"):
        VGGFeatures().load_torchvision(state)
    state = relu3_3_state_dict()
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    with pytest.raises(InputError, match="shape"):
        VGGFeatures().load_torchvision(state)
    # A pickle that is not plain tensors is refused by weights_only loading (never unpickled).
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"features.0.weight": Path("x")}))
    with pytest.raises(InputError, match="cannot read the state dict"):
        load_torchvision_state_dict(evil)
