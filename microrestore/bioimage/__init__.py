"""BioImage Model Zoo (bioimage.io) packages: export microrestore models, run any bioimage.io model.

Needs the ``bioimage`` extra (``pip install "microrestore[bioimage]"``). Importing this package is cheap:
``bioimageio`` and ``torch`` are imported only inside the functions that use them.

- :func:`export_model`: a model folder to a validated bioimage.io package (spec 0.5 zip).
- :func:`load_bioimage_predictor`: a bioimage.io package (``.zip`` or ``rdf.yaml``) as a microrestore
  :class:`~microrestore.plugins.registry.Predictor`.
- :func:`is_bioimage_package`: whether a ``--model`` value names such a package.
"""

from __future__ import annotations

from microrestore.bioimage.export import export_model
from microrestore.bioimage.importer import is_bioimage_package, load_bioimage_predictor

__all__ = ["export_model", "is_bioimage_package", "load_bioimage_predictor"]
