"""KeypointNet view pairs: object normalisation, pair cameras, the projection and pixel grid
(formats.md §1). Everything lives in :mod:`~kpdata.keypointnet.pairs` and is exported here."""

from kpdata.keypointnet.pairs import (
    DEFAULT_DISTANCE, DEFAULT_JITTER, DEFAULT_FOV, ROLL_RANGE_DEG, normalization, obj_T_model,
    random_top_sphere, perturb_sphere, jitter_location, direction_to_viewpoint, PairView, make_view,
    sample_pair, relative_rotation, rotation_angle_axis, focal_ndc, projection_matrix, format_projection,
    parse_projection, intrinsics, silhouette_rgba,
)

__all__ = [
    "DEFAULT_DISTANCE", "DEFAULT_JITTER", "DEFAULT_FOV", "ROLL_RANGE_DEG", "normalization", "obj_T_model",
    "random_top_sphere", "perturb_sphere", "jitter_location", "direction_to_viewpoint", "PairView",
    "make_view", "sample_pair", "relative_rotation", "rotation_angle_axis", "focal_ndc", "projection_matrix",
    "format_projection", "parse_projection", "intrinsics", "silhouette_rgba",
]
