"""README, pyproject and .ci/run stay in step."""
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
    assert install.startswith("apt-get update && apt-get install") and "pipelines.render_shapenet" in install
    # .ci/run runs the same line, with apt-get through as_root
    assert install.replace("apt-get ", "as_root apt-get ") in ci
    assert test in ci and "KPDATA_REQUIRE_GL=1" in ci and "KPDATA_FIXTURES" in ci


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
