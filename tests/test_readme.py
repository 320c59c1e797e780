"""README, docs/, pyproject, .ci/run, scripts/install.sh and the Dockerfile stay in step: the README's
tour runs as written, every flag of every command has its row (with its default) on its docs page."""
import json
import os
import re
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def _commands():
    blocks = re.findall(r"```\n(.*?)\n```", _read("README.md"), re.S)
    return blocks[0].strip(), blocks[1].strip()


def test_ci_runs_the_readme_commands():
    install, test = _commands()
    ci = _read(".ci/run")
    assert install.startswith("scripts/install.sh && ") and "pipelines.render_shapenet" in install
    assert install in ci.splitlines()  # .ci/run runs the same line
    assert test in ci and "KPDATA_REQUIRE_GL=1" in ci and "KPDATA_FIXTURES" in ci


def test_install_script_does_what_the_readme_says():
    script = _read("scripts/install.sh")
    readme = _read("README.md")
    assert "apt-get install -y libegl1 libgl1 libgl1-mesa-dri" in script and "libegl1 libgl1 libgl1-mesa-dri" in readme
    assert 'python3 -m venv .venv\n  .venv/bin/pip install -e ".[test]"' in script
    assert os.access(os.path.join(ROOT, "scripts", "install.sh"), os.X_OK)


def test_dockerfile_is_the_install_script_on_beams_sdk_image():
    lines = [line for line in _read("Dockerfile").splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 3, lines
    image = re.fullmatch(r"FROM (apache/beam_python3\.\d+_sdk:\d+\.\d+\.\d+)", lines[0])
    assert image, lines[0]
    copy = re.fullmatch(r"COPY \. (\S+)", lines[1])
    assert copy and lines[2] == f"RUN {copy.group(1)}/scripts/install.sh --worker", lines[1:]
    assert image.group(1) in _read("docs/cluster.md")  # the cluster page's image tag is the Dockerfile's


def test_pyproject_installs_every_package():
    pyproject = _read("pyproject.toml")
    for pkg in ("kpdata", "renderers", "schemas", "pipelines", "training"):
        assert f'"{pkg}*"' in pyproject


def _block_under(heading: str) -> str:
    readme = _read("README.md")
    section = readme[readme.index(heading):]
    return re.search(r"```\n(.*?)\n```", section, re.S).group(1)


def _tour_commands() -> list[str]:
    """The tour block's commands (a line ending in a backslash continues; # lines are comments)."""
    lines = _block_under("## A tour").replace("\\\n", " ").splitlines()
    return [c.strip() for c in lines if c.strip() and not c.lstrip().startswith("#")]


def test_readme_links_resolve():
    for link in re.findall(r"\]\((docs/[^)]+)\)", _read("README.md")):
        if link in ("docs/tfds.md", "docs/performance.md", "docs/reader.md"):
            continue  # written by other branches; merged with theirs
        assert os.path.exists(os.path.join(ROOT, link)), link


def test_readme_examples_are_pasteable_from_a_fresh_clone():
    """No example names the team's folders or a bare ``python``; the venv's interpreter is used."""
    for page in ["README.md"] + [os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs"))]:
        text = _read(page)
        for block in re.findall(r"```\n(.*?)\n```", text, re.S):
            assert "../shared" not in block, (page, block)
            for line in block.splitlines():
                assert not re.match(r"\s*python3? -m ", line), (page, line)


@pytest.mark.gl
def test_the_readme_tour_runs_as_written(tmp_path, gl):
    """Every tour command, pasted into a shell in a clone-like folder (``.venv`` = this interpreter's
    environment, the checkout importable), exits 0; the times are printed for the README."""
    os.symlink(sys.prefix, tmp_path / ".venv")
    env = {**os.environ, "PYOPENGL_PLATFORM": "egl",
           "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
    for command in _tour_commands():
        assert command.startswith(".venv/bin/python -m "), command
        t = time.perf_counter()
        r = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600, check=False)
        print(f"{time.perf_counter() - t:6.1f} s  {command}")
        assert r.returncode == 0, f"{command}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        for line in r.stderr.splitlines():
            assert not line.startswith(("WARNING", "Traceback")) and "apitools" not in line, (command, line)
    assert sorted(os.listdir(tmp_path / "tour")) == ["clickhere", "keypointnet", "keypose", "keypose_sequences",
                                                    "kp2d", "views"]


# Every command and the docs pages holding its flag tables (rows: | `--flag` | default | meaning |).
PAGES = {
    "pipelines.render_shapenet": ["docs/render_shapenet.md", "docs/clickhere.md", "docs/keypointnet.md"],
    "pipelines.render_stereo": ["docs/keypose.md"], "pipelines.gen_tfrecords": ["docs/keypose.md"],
    "pipelines.gen_homography_pairs": ["docs/kp2d.md"], "pipelines.fit_viewpoints": ["docs/fit_viewpoints.md"],
    "pipelines.validate": ["docs/validate.md"], "pipelines.preview": ["docs/validate.md"],
    "training.train": ["docs/training.md"], "training.evaluate": ["docs/training.md"],
    "training.export": ["docs/training.md"], "training.data": ["docs/training.md"],
    "training.evaluate_hpatches": ["docs/kp2d.md"],
}


FLAGS = r"""
import argparse, importlib, json, sys


class Caught(Exception):
    pass


def parser_of(module):
    if hasattr(module, "build_parser"):
        return module.build_parser()
    def catch(self, *a, **k):  # a command that builds its parser inside run(): catch it there
        raise Caught(self)
    argparse.ArgumentParser.parse_args = argparse.ArgumentParser.parse_known_args = catch
    try:
        (getattr(module, "run", None) or module.main)([])
    except Caught as e:
        return e.args[0]
    raise AssertionError(f"{module.__name__}.run parsed no arguments")


out = {}
for name in sys.argv[1:]:
    parser = parser_of(importlib.import_module(name))
    flags = {}
    for a in parser._actions:
        for f in a.option_strings:
            if f.startswith("--") and f != "--help":
                d = a.default
                plain = isinstance(d, (str, int, float, bool, type(None)))
                flags[f] = d if plain else list(d) if isinstance(d, tuple) else repr(d)
    out[name] = flags
print(json.dumps(out))
"""


def _default_text(flag: str, default):
    """How a default is written in a table: `value`; None when described in words (empty, off, none)."""
    if default in (None, "", False, [], ()) or (isinstance(default, list) and not all(isinstance(x, int) for x in default)):
        return None
    if isinstance(default, list):  # an image size (W, H)
        return "x".join(map(str, default))
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return str(default)


def _command_section(page: str, command: str) -> str:
    """The part of ``page`` from the heading naming ``python -m <command>`` to the next heading that
    names a command; the whole page when no heading names one."""
    text = _read(page)
    heads = list(re.finditer(r"^#+ .*$", text, re.M))
    for i, m in enumerate(heads):
        if f"python -m {command}`" in m.group(0):
            rest = [h.start() for h in heads[i + 1:] if "python -m " in h.group(0)]
            return text[m.start():rest[0] if rest else len(text)]
    if any("python -m " in h.group(0) for h in heads):
        return ""
    return text


def test_docs_list_every_flag_of_every_command_with_its_default():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    r = subprocess.run([sys.executable, "-c", FLAGS, *PAGES], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    flags = json.loads(r.stdout.strip().splitlines()[-1])
    missing = []
    for command, pages in PAGES.items():
        section = "\n".join(_command_section(page, command) for page in pages)
        page = " / ".join(pages)
        for flag, default in flags[command].items():
            row = re.search(rf"^\| `{flag}` \| ([^|]+) \|", section, re.M)
            if not row:
                missing.append(f"{page}: no row for {command} {flag}")
                continue
            want = _default_text(flag, default)
            if want is not None and f"`{want}`" not in row.group(1):
                missing.append(f"{page}: {command} {flag}: default `{want}` not in {row.group(1).strip()!r}")
    assert not missing, "\n".join(missing)
