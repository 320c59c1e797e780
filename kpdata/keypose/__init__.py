"""KeyPose: sequence folders, text protos, the uvd geometry and resize, EXR depth, KeyPose ``.obj``
files and the stereo scenes that ``render_stereo`` renders (formats.md §2).

Modules:
* :mod:`~kpdata.keypose.sequence`: folder layout, frame files, pbtxt reading / writing, PNG I/O, one
  frame read, checked and resized as ``gen_tfrecords`` does;
* :mod:`~kpdata.keypose.uvd`: cameras, targets, P / Q matrices, the ``WxH_flF`` resize;
* :mod:`~kpdata.keypose.objfile`: KeyPose CAD ``.obj`` files with keypoint groups;
* :mod:`~kpdata.keypose.proto`: KeyPose's ``data.proto`` messages (built in Python, no protoc);
* :mod:`~kpdata.keypose.exr`: depth EXRs (one float32 channel ``D``, metres);
* :mod:`~kpdata.keypose.scene`: object on a textured plane, a rectified stereo rig around it.

The package exports the API of ``sequence``, ``uvd`` and ``objfile``; ``proto``, ``exr`` and
``scene`` are imported by name.
"""

from kpdata.keypose.sequence import (
    DATA_PARAMS, MAX_TARGET_FRAMES, SUFFIXES, frame_path, list_frames, is_stereo, read_key_targets,
    read_data_params, read_tfset, write_text, read_png, write_png, read_frame_image, border_from_mask, ConvertedFrame,
    load_frame,
)
from kpdata.keypose.uvd import (
    camera_array, make_camera, p_matrix, q_matrix, transform_matrix, project_h, TargetArrays, target_arrays,
    world_points, make_target, ImageSize, ResizePlan, resize_plan, resize_target, resize_key_targets,
    resize_image,
)
from kpdata.keypose.objfile import (
    KeyPoseObj, read_keypose_obj, keypose_obj_text,
)

__all__ = [
    "DATA_PARAMS", "MAX_TARGET_FRAMES", "SUFFIXES", "frame_path", "list_frames", "is_stereo",
    "read_key_targets", "read_data_params", "read_tfset", "write_text", "read_png", "write_png", "read_frame_image",
    "border_from_mask", "ConvertedFrame", "load_frame", "camera_array", "make_camera", "p_matrix",
    "q_matrix", "transform_matrix", "project_h", "TargetArrays", "target_arrays", "world_points",
    "make_target", "ImageSize", "ResizePlan", "resize_plan", "resize_target", "resize_key_targets",
    "resize_image", "KeyPoseObj", "read_keypose_obj", "keypose_obj_text",
]
