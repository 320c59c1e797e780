"""The built-in demo data: every default input the commands run on without arguments.

Modules:
* :mod:`~kpdata.demo.shapenet`: the demo ShapeNetCore-v1 set (4 procedural textured models with
  Click-Here keypoints, plus seeded variants), built from :mod:`~kpdata.demo.models` and
  :mod:`~kpdata.demo.parts`;
* :mod:`~kpdata.demo.photos`: procedural demo photos (KP2D pairs, backgrounds);
* :mod:`~kpdata.demo.pascal3d`: a synthetic PASCAL3D+-structured annotation set (``fit_viewpoints``);
* :mod:`~kpdata.demo.cache`: the atomic on-disk cache they are materialised into.

The package exports the demo ShapeNet set's API, the demo photos' folder and the cache directory.
"""

from kpdata.demo.cache import default_cache_dir
from kpdata.demo.models import (BUS, CAR, DEMO_FRONT_AXIS, DEMO_KEYPOINT_NAMES, DEMO_LEFT_AXIS, DEMO_MODELS, DEMO_UP_AXIS,
                                MOTORBIKE)
from kpdata.demo.photos import demo_photo_dir
from kpdata.demo.shapenet import DEMO_DIR_NAME, demo_files, demo_models, demo_shapenet_dir, write_demo_set

__all__ = [
    "CAR", "BUS", "MOTORBIKE",
    "DEMO_DIR_NAME", "DEMO_FRONT_AXIS", "DEMO_KEYPOINT_NAMES", "DEMO_LEFT_AXIS", "DEMO_MODELS",
    "DEMO_UP_AXIS", "default_cache_dir", "demo_files", "demo_models", "demo_photo_dir", "demo_shapenet_dir",
    "write_demo_set",
]
