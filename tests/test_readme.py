"""README, pyproject, .ci/run, scripts/install.sh and the Dockerfile stay in step."""
import os
import re

from pipelines import render_shapenet

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
    assert image.group(1) in _read("README.md")  # the README's image tag is the Dockerfile's


def test_readme_lists_every_render_shapenet_flag_with_its_default():
    readme = _read("README.md")
    for action in render_shapenet.build_parser()._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                row = re.search(rf"^\| `{flag}` \| ([^|]+) \|", readme, re.M)
                assert row, f"README has no row for {flag}"
                default = action.default
                if isinstance(default, tuple) and flag == "--image_size":
                    default = "x".join(map(str, default))
                if flag in ("--synsets", "--keypoints", "--splits"):
                    continue  # described in words ("all", "none", "train=1")
                if isinstance(default, float) and default.is_integer():
                    default = int(default)
                assert f"`{default}`" in row.group(1), (flag, default, row.group(1))


def test_pyproject_installs_every_package():
    pyproject = _read("pyproject.toml")
    for pkg in ("kpdata", "renderers", "schemas", "pipelines", "training"):
        assert f'"{pkg}*"' in pyproject
