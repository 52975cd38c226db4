"""Test helpers shipped for plugin authors (see :mod:`microrestore.testing.contract`)."""
