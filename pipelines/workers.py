"""Per-worker resources of the rendering DoFns (DESIGN §7)."""
from __future__ import annotations

import apache_beam as beam

from renderers import create_renderer


class RendererDoFn(beam.DoFn):
    """A DoFn holding one renderer per worker: created in ``setup`` at ``self.config.image_size``
    (WxH) with the ``backend`` given to the constructor (``renderers.BACKENDS``), freed in
    ``teardown``. Subclasses set ``self.config`` in ``__init__``."""

    renderer = None

    def __init__(self, backend: str = "pyrender"):
        super().__init__()
        self.backend = backend

    def setup(self):
        w, h = self.config.image_size
        self.renderer = create_renderer(w, h, self.backend)

    def teardown(self):
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
