"""kpdata: the pure library. Imports only numpy, scipy, OpenCV, trimesh and protobuf: never Beam,
TensorFlow or OpenGL.

The core, at the top (imported by name, ``from kpdata import geometry``):

* :mod:`~kpdata.errors`: :class:`~kpdata.errors.InputError`, the one exception for bad input data;
* :mod:`~kpdata.seeding`: per-work-unit generators, stable hashes, the seeded split rule;
* :mod:`~kpdata.geometry`: rotations, rigid transforms, the Render-for-CNN viewpoint convention;
* :mod:`~kpdata.camera`: pinhole intrinsics, projection and unprojection (OpenCV convention);
* :mod:`~kpdata.viewpoints`: viewpoint sources (uniform prior, viewpoint files);
* :mod:`~kpdata.keypoints`: keypoint annotations and per-view keypoint labels;
* :mod:`~kpdata.mesh`: loading and checking OBJ models.

One sub-package per kind of thing:

* :mod:`kpdata.sources`: input sources (ShapeNet catalog, PASCAL3D+, photo folders);
* :mod:`kpdata.clickhere`: Click-Here CNN / Render for CNN (KDEs, lighting, image ops, keypoint maps);
* :mod:`kpdata.keypointnet`: KeypointNet view pairs;
* :mod:`kpdata.keypose`: KeyPose (folders, pbtxt protos, uvd geometry, EXR, stereo scenes);
* :mod:`kpdata.kp2d`: KP2D (homographies, augmentation, HPatches layout, metrics);
* :mod:`kpdata.preview`: contact sheets;
* :mod:`kpdata.demo`: the built-in demo data (meshes, photos, a PASCAL3D+ sample) and its cache.
"""
__version__ = "0.1.0"

__all__ = ["errors", "seeding", "geometry", "camera", "viewpoints", "keypoints", "mesh",
           "sources", "clickhere", "keypointnet", "keypose", "kp2d", "preview", "demo"]
