"""Contact sheets, for a human to check a dataset at a glance (numpy + OpenCV only).

Modules:
* :mod:`~kpdata.preview.sheet`: tiles of rendered views (image over a checkerboard, keypoints, mask
  outline, caption) and the sheet layout every kind shares; exported here;
* :mod:`~kpdata.preview.keypointnet`: KeypointNet view pairs with their relative rotation;
* :mod:`~kpdata.preview.stereo`: stereo pairs with disparity lines;
* :mod:`~kpdata.preview.pairs`: homography pairs with the warped patch outlined.

Which sheet a written dataset gets is decided by the preview registry of :mod:`schemas.dataset`.
"""

from kpdata.preview.sheet import (
    BACKGROUND_COLOR, CAPTION_HEIGHT, CHECKER_COLORS, GAP, MASK_COLOR, MIN_LABEL_TILE_WIDTH, OCCLUDED_COLOR,
    OUTSIDE_COLOR, SheetLayout, TileBox, VISIBLE_COLOR, caption_lines, contact_sheet, render_tile,
    sheet_layout, write_contact_sheet, crop_to_content,
)

__all__ = [
    "BACKGROUND_COLOR", "CAPTION_HEIGHT", "CHECKER_COLORS", "GAP", "MASK_COLOR", "MIN_LABEL_TILE_WIDTH",
    "OCCLUDED_COLOR", "OUTSIDE_COLOR", "SheetLayout", "TileBox", "VISIBLE_COLOR", "caption_lines",
    "contact_sheet", "render_tile", "sheet_layout", "write_contact_sheet", "crop_to_content",
]
