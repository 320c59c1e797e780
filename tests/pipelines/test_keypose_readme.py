"""The README documents every flag of render_stereo and gen_tfrecords with its default."""
import os
import re

from pipelines import gen_tfrecords, render_stereo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IN_WORDS = {"--synsets": "all", "--keypoints": "none", "--tfset": "none", "--val": "none", "--exclude": "none"}


def test_readme_lists_every_keypose_flag_with_its_default():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    for module, heading in ((render_stereo, "### `python -m pipelines.render_stereo` flags"),
                            (gen_tfrecords, "### `python -m pipelines.gen_tfrecords` flags")):
        section = readme[readme.index(heading):]
        section = section[:section.index("\n\n", section.index("|---|"))]
        for action in module.build_parser()._actions:
            for flag in action.option_strings:
                if not flag.startswith("--") or flag == "--help":
                    continue
                row = re.search(rf"^\| `{flag}` \| ([^|]+) \|", section, re.MULTILINE)
                assert row, f"README has no row for {flag} in {heading}"
                default = action.default
                if flag in IN_WORDS:
                    assert row.group(1).strip() == IN_WORDS[flag], (flag, row.group(1))
                    continue
                if isinstance(default, tuple):
                    default = "x".join(map(str, default))
                if isinstance(default, float) and default.is_integer():
                    default = int(default)
                assert f"`{default}`" in row.group(1), (flag, default, row.group(1))
