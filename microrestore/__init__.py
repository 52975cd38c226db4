"""microrestore: deep-learning restoration of fluorescence microscopy images.

The package root stays light (no torch import) so that ``microrestore --help`` starts fast. Plugin authors
write ``from microrestore import hookimpl``.
"""

from __future__ import annotations

from microrestore.plugins.markers import hookimpl, hookspec

__version__ = "0.2.0"

__all__ = ["__version__", "hookimpl", "hookspec"]
