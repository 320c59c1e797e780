"""kpdata: the pure library (geometry, cameras, viewpoints, keypoints, meshes, catalogs, image ops).

Imports only numpy, scipy, opencv and trimesh: never Beam, TensorFlow or OpenGL.
"""
__version__ = "0.1.0"
