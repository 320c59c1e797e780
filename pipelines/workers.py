"""The rendering DoFns' common part: one renderer per worker and the shape of ``process``
(DESIGN §7)."""
from __future__ import annotations

import abc
import contextlib
import time

import apache_beam as beam

from kpdata.errors import InputError
from pipelines import sinks
from pipelines.stream import DATA_ERRORS
from renderers import create_renderer


@contextlib.contextmanager
def failure_stage(stage: str):
    """Report a data error (:data:`pipelines.stream.DATA_ERRORS`) raised inside as a dead letter of
    ``stage`` (instead of the DoFn's :attr:`RendererDoFn.stage`); an inner block's stage wins."""
    try:
        yield
    except DATA_ERRORS as e:
        if not getattr(e, "stage", None):
            e.stage = stage
        raise


EMPTY_VIEW = "the render shows nothing of the object (empty mask: the model is out of view, or too thin to cover a pixel)"


def empty_view(key: str, path: str) -> beam.pvalue.TaggedOutput:
    """The dead letter of a view whose render holds no pixel of the object: never a record."""
    return beam.pvalue.TaggedOutput("failed", sinks.failure_record(key, "render", "empty_view", EMPTY_VIEW, path))


class EmptyViews:
    """The views of one model whose render holds no pixel of the object (:meth:`shows`), never
    records: their dead letters (:meth:`letters`, stage ``render``, error ``empty_view``) are one
    per such view, or one for the model (``key``, ``path``) when none of its views shows it (a
    model too small or too thin to cover a pixel)."""

    def __init__(self, key: str, path: str):
        self.key, self.path, self.empty, self.seen = key, path, [], False

    def shows(self, out: dict, view_key: str) -> bool:
        """Whether the render ``out`` (a renderer's dict with ``mask`` (H, W) bool) shows the object."""
        if out["mask"].any():
            self.seen = True
            return True
        self.empty.append(view_key)
        return False

    def letters(self) -> list:
        if not self.empty:
            return []
        if not self.seen:
            return [beam.pvalue.TaggedOutput("failed", sinks.failure_record(
                self.key, "render", "empty_view", f"none of the model's {len(self.empty)} views shows the object "
                "(empty masks: the model is out of view, or too small or thin to cover a pixel)", self.path))]
        return [empty_view(k, self.path) for k in self.empty]


class RendererDoFn(beam.DoFn, abc.ABC):
    """A DoFn that renders work units (tasks) with one renderer per worker.

    The renderer (``image_size`` (W, H) pixels, ``backend`` of :func:`renderers.create_renderer`)
    is created in ``setup`` and freed in ``teardown``. ``process(task)``:

    1. ``load(task)`` reads the task's inputs. An :class:`InputError` there becomes one dead letter
       on the ``failed`` output (key and input path from :meth:`source`, stage :attr:`stage` or the
       one given by :func:`failure_stage`) and counts :attr:`failed_counter`;
    2. ``render(task, loaded)`` yields the outputs; a data error it lets out (a model the renderer
       cannot draw, a record that does not fit its schema) ends the task as one dead letter of stage
       ``render`` (or its own), made by :class:`pipelines.stream.WriteUnits`;
    3. the task's wall time goes to the ``timing`` output as ``("render", seconds)``.
    """

    namespace = "render_shapenet"  # of the Beam counters
    failed_counter = "models_failed"
    stage = "load"

    def __init__(self, image_size: tuple[int, int], backend: str = "pyrender"):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.backend = backend
        self.renderer = None

    def setup(self):
        self.renderer = create_renderer(*self.image_size, backend=self.backend)

    def teardown(self):
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None

    def process(self, task):
        t0 = time.perf_counter()
        try:
            loaded = self.load(task)
        except InputError as e:
            self.count(self.failed_counter)
            key, path = self.source(task)
            yield beam.pvalue.TaggedOutput("failed", sinks.failure_record(
                key, getattr(e, "stage", self.stage), e.error, e.message, e.path or path))
            return
        try:
            with failure_stage("render"):
                yield from self.render(task, loaded)
        except DATA_ERRORS:
            self.count(self.failed_counter)
            raise
        yield beam.pvalue.TaggedOutput("timing", ("render", time.perf_counter() - t0))

    @abc.abstractmethod
    def load(self, task):
        """The task's inputs (InputError for bad input)."""

    @abc.abstractmethod
    def render(self, task, loaded):
        """Yield the task's outputs."""

    def source(self, task) -> tuple[str, str]:
        """The dead letter's key and input path; by default those of a ShapeNet model task."""
        return task.model.key, task.model.model_dir

    def count(self, name: str, n: int = 1) -> None:
        beam.metrics.Metrics.counter(self.namespace, name).inc(n)

    @contextlib.contextmanager
    def prepared(self, mesh):
        """The mesh uploaded to the renderer for the block: its handle, released after."""
        handle = self.renderer.prepare(mesh)
        try:
            yield handle
        finally:
            self.renderer.release(handle)
