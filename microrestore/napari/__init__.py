"""microrestore in napari: an npe2 plugin (``napari.yaml``) with docked widgets, a reader and sample data.

Nothing here is imported when napari starts: the manifest names Python paths, and napari imports a widget's
module only when the user opens it. Torch is imported only when a job runs (in its worker thread).

Modules
-------
- :mod:`~microrestore.napari.layers`: layers to :class:`~microrestore.io.ImageData` and results back to layers
  (scale, translate, units, contrast limits); no Qt.
- :mod:`~microrestore.napari.jobs`: the widget base (worker thread, progress bar, Cancel, one-line errors),
  layer pickers and the live loss plot.
- :mod:`~microrestore.napari.widgets`: Restore, Self-supervised, Train, Assess and SIM reconstruct.
- :mod:`~microrestore.napari.reader`, :mod:`~microrestore.napari.samples`: the reader and sample data.
"""
