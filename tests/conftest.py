"""Shared test fixtures.

KPDATA_FIXTURES: the real public samples (default ../shared/fixtures); tests that need them skip,
saying why, when the folder is absent. KPDATA_REQUIRE_GL=1 (set by CI): a missing GL stack fails
rendering tests instead of skipping them.
"""
from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def fixtures_dir() -> str:
    return os.environ.get("KPDATA_FIXTURES") or os.path.join(ROOT, "..", "shared", "fixtures")


@pytest.fixture(scope="session")
def fixtures():
    """Path of the shared real-data fixtures; skips when absent."""
    d = fixtures_dir()
    if not os.path.isdir(d):
        pytest.skip(f"real-data fixtures not found at {d} (set KPDATA_FIXTURES)")
    return d


@pytest.fixture(scope="session")
def renderer():
    """One pyrender renderer for the session (as a worker holds one)."""
    from renderers import create_renderer
    from renderers.pyrender_backend import RendererUnavailable
    try:
        r = create_renderer(320, 240)
    except RendererUnavailable as e:
        if os.environ.get("KPDATA_REQUIRE_GL") == "1":
            pytest.fail(f"KPDATA_REQUIRE_GL=1 but no GL stack: {e}")
        pytest.skip(f"no headless GL stack: {e}")
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _no_tensorflow_in_test_process():
    """TensorFlow must stay out of the test process: it crashes Mesa's rasterizer. Tests that
    need it run it in a subprocess."""
    yield
    assert "tensorflow" not in sys.modules, "a test imported TensorFlow into the pytest process"


GL_MODULES = ("OpenGL", "pyrender", "pyglet")
_BLOCK_GL = (
    "import sys\n"
    "class _BlockGL:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    f"        if name.split('.')[0] in {GL_MODULES!r}:\n"
    "            raise ImportError(f'{name} is blocked in this test')\n"
    "sys.meta_path.insert(0, _BlockGL())\n")
_REPORT_GL = (
    f"\nbad = sorted(n for n in sys.modules if n.split('.')[0] in {GL_MODULES!r})\n"
    "print('gl modules', bad)\n"
    "sys.exit(1 if bad else 0)\n")


@pytest.fixture(scope="session")
def run_without_gl():
    """``run(code)``: runs ``code`` in a fresh Python process (cwd: the repository root) where
    importing OpenGL, pyrender or pyglet raises ImportError; afterwards the process prints
    ``gl modules [...]`` and exits 1 if any of them got loaded. Returns the CompletedProcess."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def run(code: str, timeout: int = 300):
        return subprocess.run([sys.executable, "-c", _BLOCK_GL + code + _REPORT_GL], capture_output=True,
                              text=True, timeout=timeout, cwd=root)
    return run


@pytest.fixture(scope="session")
def gl(renderer):
    """Marks a test that renders through the pipeline: it needs (and checks) the GL stack."""
    return renderer
