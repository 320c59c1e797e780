"""Click-Here CNN / Render for CNN: the pieces of their synthetic-image chain (formats.md §3).

Modules:
* :mod:`~kpdata.clickhere.kde`: viewpoint and truncation distributions (Gaussian KDEs, R4CNN's text tables);
* :mod:`~kpdata.clickhere.lighting`: R4CNN's random lights;
* :mod:`~kpdata.clickhere.imageops`: truncation crop, background overlay, JPEG;
* :mod:`~kpdata.clickhere.keypoint_maps`: keypoint maps and viewpoint / keypoint-class labels;
* :mod:`~kpdata.clickhere.compose`: one rendered view -> a view sample (crop, composite, keypoints in the crop).

The package exports the composition API (:mod:`~kpdata.clickhere.compose`); the other modules are
imported by name (``from kpdata.clickhere import kde``).
"""

from kpdata.clickhere.compose import (
    KeypointClassTable, object_class_index, view_stem, instance_key, random_prefix, ViewSample, compose_view,
    crop_pixels,
)

__all__ = [
    "KeypointClassTable", "object_class_index", "view_stem", "instance_key", "random_prefix", "ViewSample",
    "compose_view", "crop_pixels",
]
