"""Training package: tf.data readers built from ``schemas``, reference models, train / evaluate /
export (DESIGN §3: imports ``schemas`` and ``kpdata``, never ``pipelines`` or ``renderers``).

Modules, each importing only those listed before it:
* :mod:`~training.spec`: what to read, without TensorFlow: a dataset's splits and record type,
  the parse plan of a ``schemas.Schema``;
* :mod:`~training.metrics`: the seeds' metrics (viewpoint, keypoint, pose), numpy only;
* :mod:`~training.error_plot`: the error distributions ``evaluate`` draws (``errors.png``), numpy
  and matplotlib (``kpdata.preview.plots``);
* :mod:`~training.readers`: tf.data basics: a split's serialized records (TFRecord, LMDB), the
  parser generated from a schema, PNG decoding;
* :mod:`~training.layouts`: each record type's reader and adapter onto a task's common sample;
* :mod:`~training.tasks`: the reference tasks (inputs, model, loss, metrics, baselines);
* :mod:`~training.common`: the model directory (config, checkpoints) train / evaluate / export share;
* :mod:`~training.data`: a task's input pipeline (``build``) and ``python -m training.data``;
* :mod:`~training.tfquiet`: imports TensorFlow without its start-up noise (the commands import it first);
* :mod:`~training.train`, :mod:`~training.evaluate`, :mod:`~training.export`: the commands;
  :mod:`~training.evaluate_hpatches`: detectors on an HPatches-layout folder.

The package exports nothing itself (importing it does not import TensorFlow); import the modules
by name.
"""

__all__: list[str] = []
