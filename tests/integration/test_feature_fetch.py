"""Feature-network weights fetched like zoo models: a loopback HTTP server, sha256 accepted or refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from microrestore.errors import InputError
from microrestore.nn import features
from microrestore.nn.vgg import VGGFeatures, load_torchvision_state_dict
from tests.integration.test_zoo_fetch import Server, env, registry, server  # noqa: F401  (fixtures)
from tests.unit.test_nn_vgg import relu3_3_state_dict

NAME = "vgg19-test.pth"


@pytest.fixture
def served(server: Server, env: Path) -> tuple[Server, bytes]:  # noqa: F811
    """The loopback zoo server (mirror URL and a fresh cache set) with a small VGG state dict at ``/<id>/<name>``."""
    folder = server.root / features.VGG19_IMAGENET.id
    folder.mkdir()
    torch.save(relu3_3_state_dict(), folder / NAME)
    return server, (folder / NAME).read_bytes()


def _weights(srv: Server, sha256: str) -> features.WeightsFile:
    return features.WeightsFile(
        id=features.VGG19_IMAGENET.id,
        name=NAME,
        url=f"{srv.url}/{features.VGG19_IMAGENET.id}/{NAME}",
        sha256=sha256,
        license="test",
    )


def test_known_hash_is_accepted_cached_and_loads(served, tmp_path: Path):
    srv, payload = served
    weights = _weights(srv, hashlib.sha256(payload).hexdigest())
    path = features.fetch_weights(weights)
    assert path.read_bytes() == payload and str(path).startswith(str(tmp_path / "cache"))
    net = VGGFeatures("relu3_3")
    net.load_torchvision(load_torchvision_state_dict(path), path)
    assert torch.equal(net.features[0].weight, relu3_3_state_dict()["features.0.weight"])
    # Second use: from the cache (verified again), no new request.
    requests = len(srv.paths)
    assert features.fetch_weights(weights) == path and len(srv.paths) == requests
    assert features.fetch_weights(weights, offline=True) == path


def test_wrong_hash_is_refused_and_nothing_is_cached(served, tmp_path: Path):
    srv, _ = served
    with pytest.raises(InputError, match="sha256"):
        features.fetch_weights(_weights(srv, "0" * 64))
    cache = tmp_path / "cache"
    assert not [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else True


def test_vgg19_imagenet_checks_the_published_hash(served, tmp_path: Path):
    """A mirror serving another file under the real name is refused by the real sha256; offline says what to do."""
    srv, _ = served
    folder = srv.root / features.VGG19_IMAGENET.id
    (folder / NAME).rename(folder / features.VGG19_IMAGENET.name)
    assert features.VGG19_IMAGENET.sha256.startswith("dcbb9e9d")  # torchvision names files by the sha256 prefix
    with pytest.raises(InputError, match="sha256"):
        features.feature_network("vgg19-imagenet")
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))
    with pytest.raises(InputError, match="feature_network=microscopy"):
        features.feature_network("vgg19-imagenet", offline=True)
    with pytest.raises(InputError, match="known: microscopy, vgg19-imagenet, pixel"):
        features.feature_network("resnet")
