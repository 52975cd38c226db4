"""How a plugin author tests a plugin: call the hooks, then run the method through microrestore."""

import microrestore_example
import numpy as np

from microrestore import api


def test_registers_median():
    found = []
    microrestore_example.register_methods(found.append)
    assert found[0].name == "median" and found[0].task == "denoise"


def test_median_removes_salt_noise():
    image = np.zeros((32, 32), np.float32)
    image[10, 10] = 100
    out = api.restore(image, "median", size=3)
    assert out[10, 10] == 0
