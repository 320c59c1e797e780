"""KP2D: homography adaptation, photometric augmentation, the HPatches layout and the detector /
descriptor metrics of its evaluation (formats.md §4).

Modules (imported by name, ``from kpdata.kp2d import homography``):
* :mod:`~kpdata.kp2d.homography`: the homography sampler, KP2D's normalised convention, warping;
* :mod:`~kpdata.kp2d.augment`: non-spatial augmentations and HPatches-style illumination changes;
* :mod:`~kpdata.kp2d.hpatches`: writing and reading the HPatches sequences layout;
* :mod:`~kpdata.kp2d.metrics`: repeatability, localisation error, homography correctness, matching score.
"""
