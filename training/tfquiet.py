"""Import TensorFlow without its start-up noise on the terminal (the training commands import this
module first).

On a machine without a GPU, TensorFlow's C++ start-up writes lines such as ``I0000 ...
cudart_stub.cc:31] Could not find cuda drivers`` and ``E0000 ... failed call to cuInit: ...
UNKNOWN ERROR (303)`` straight to file descriptor 2, which ``TF_CPP_MIN_LOG_LEVEL`` does not
silence in every release and which read like failures. Here the import and the device discovery
run with descriptor 2 pointed at a temporary file; afterwards the lines that are not known start-up
noise (:data:`NOISE`) are written to stderr after all, so a real problem still shows. Python
warnings about ``tf.lite.Interpreter``'s deprecation (``training.export`` checks its TFLite file
with it) are ignored too. ``--verbose`` on the command line, or ``KPDATA_VERBOSE=1``, keeps
everything.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings

VERBOSE = "--verbose" in sys.argv or os.environ.get("KPDATA_VERBOSE", "") not in ("", "0")

# Lines of TensorFlow's start-up that say nothing is wrong for a CPU run.
NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} .*(cudart_stub|cuda_platform|cuda_executor|cuda_dnn|cuda_fft|cuda_blas|cuInit|gpu_device"
    r"|cpu_feature_guard|port\.cc|computation_placer|oneDNN|Unable to register).*"
    r"|To enable the following instructions: .*|.*rebuild TensorFlow with the appropriate compiler flags.*"
    r"|.*oneDNN custom operations are on.*|.*TF_ENABLE_ONEDNN_OPTS.*"
    # the TFLite converter and interpreter (training.export)
    r"|[IWE]\d{4} .*(node_def_util|tf_tfl_flatbuffer_helpers|flatbuffer_export|saved_model/reader|loader\.cc"
    r"|quantize_model|calibration_wrapper).*"
    r"|fully_quantize: .*|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)$")


@contextlib.contextmanager
def quiet_stderr():
    """File descriptor 2 captured for the block (TensorFlow's and TFLite's C++ log lines); on exit
    the lines that are not known noise (:data:`NOISE`) are written to stderr after all. A no-op
    with ``--verbose``."""
    if VERBOSE:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines() if line.strip() and not NOISE.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def _import():
    import tensorflow as tf

    tf.config.list_physical_devices()  # device discovery (cuInit) happens here, while captured
    return tf


def quiet_import():
    """``import tensorflow`` with its start-up lines filtered (module docstring); returns ``tf``."""
    if "tensorflow" not in sys.modules and not VERBOSE:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():
        return _import()


if not VERBOSE:
    warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated")
tf = quiet_import()
