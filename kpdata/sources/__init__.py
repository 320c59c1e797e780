"""Input sources: where the data a pipeline starts from comes from (imported by name).

* :mod:`~kpdata.sources.shapenet`: the ShapeNetCore catalog (synsets, v1 / v2 model trees);
* :mod:`~kpdata.sources.pascal3d`: PASCAL3D+ annotations (what R4CNN's KDE scripts read);
* :mod:`~kpdata.sources.photos`: photo folders (listing, decoding, resizing).
"""
