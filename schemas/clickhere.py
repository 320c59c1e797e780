"""Click-Here CNN records (formats.md §3.6 - §3.8): the compact view record, the instance
arrays rebuilt from it, and their full encodings (Caffe ``Datum`` LMDBs, ``tf.train.Example``).

*Compact* (``clickhere_view``, one record per view): the composited crop as JPEG plus sparse
labels (the keypoints' pixels in the 227x227 crop, their classes, the viewpoint label) and the
keys of the instances it holds. :func:`expand` rebuilds every instance's arrays from it; the full
layouts are written from exactly these arrays, so both layouts agree bit for bit.

*Instance* (one per (view, keypoint), plus ``_r`` flipped copies): ``image`` (227, 227, 3) uint8
RGB; ``keypoint_loc`` (227, 227) uint8; ``gaussian_keypoint_map`` (227, 227) uint8 (byte-scaled,
as Click-Here's ``imsave`` stored it); ``chessboard_dt_map`` / ``manhattan_dt_map`` (227, 227)
int32; ``euclidean_dt_map`` (227, 227) float64; ``keypoint_class`` (C,) uint8 one-hot;
``viewpoint_label`` (4,) int64 ``[cls, az + 360 cls, el + 360 cls, tilt + 360 cls]``;
``keypoint_pixel`` (2,) int64 (x, y).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kpdata.clickhere import imageops
from kpdata.clickhere import keypoint_maps as km
from schemas import caffe
from schemas.features import Field, PNGImage, Schema, SchemaError, Tensor, Text

S = km.CROP_SIZE


@dataclasses.dataclass(frozen=True)
class Bytes(Field):
    """Opaque bytes (here: a JPEG file)."""

    kind = "bytes"

    def cast(self, value) -> bytes:
        if not isinstance(value, bytes):
            raise SchemaError(f"{self.name}: expected bytes, got {type(value).__name__}")
        return value

    def values(self, value) -> list:
        return [self.cast(value)]

    def decode(self, values):
        return bytes(values[0])


CLICKHERE_VIEW = Schema("clickhere_view", "1.1.0", (
    Text("key", doc="view key <synset>/<model_id>/v<index:06d>"),
    Text("synset"),
    Text("model_id"),
    Tensor("seed", dtype="int64", doc="the run's seed; the view's draws come from rng_for(seed, key)"),
    Bytes("image/jpeg", doc="the truncation crop over its background, JPEG (quality 75), RGB: W x H "
                            "(image/width, image/height), or 227x227 when render/crop_render is 'box'"),
    Tensor("image/height", dtype="int64"),
    Tensor("image/width", dtype="int64"),
    Tensor("viewpoint", shape=(4,), doc="rendered azimuth, elevation, tilt (degrees), distance"),
    Tensor("object_class", dtype="int64", doc="index in Render for CNN's 12 classes"),
    Tensor("viewpoint_label", shape=(4,), dtype="int64", doc="[cls, az+360cls, el+360cls, tilt+360cls], unflipped"),
    Tensor("num_keypoint_classes", dtype="int64", doc="length C of the keypoint-class one-hot"),
    Text("keypoints/names", shape=(None,), dims=("N",), doc="the N keypoints visible in the crop"),
    Tensor("keypoints/uv", shape=(None,), dims=("N",), stride=2, doc="N x (u, v) pixels in the crop"),
    Tensor("keypoints/pixel", shape=(None,), dims=("N",), stride=2, dtype="int64",
           doc="N x (x, y) pixels in the 227x227 resized crop: floor(227 uv / (W, H)), clamped to 226"),
    Tensor("keypoints/class", shape=(None,), dims=("N",), dtype="int64", doc="keypoint class index"),
    Tensor("keypoints/flip_class", shape=(None,), dims=("N",), dtype="int64",
           doc="class of the left/right-swapped name (the _r copy's class)"),
    Text("instances/key", shape=(None,), dims=("N",), doc="Click-Here key of each keypoint's instance"),
    Text("instances/flip_key", shape=(None,), dims=("F",),
         doc="keys of the _r copies (F = N, or 0 if unflipped): the original key's kp<class> + _r"),
    Tensor("render/crop_box", shape=(4,), dtype="int64", doc="x0 y0 x1 y1 (inclusive) of the crop in the render"),
    Tensor("render/truncation", shape=(4,), doc="left right top bottom sample used for the crop"),
    Tensor("render/environment_energy", doc="Blender environment light energy"),
    Tensor("render/lights", shape=(None,), dims=("L",), stride=4,
           doc="L point lamps x (distance, azimuth, elevation, energy), Blender convention"),
    Text("render/background", doc="photo name@x,y of the background crop, or gray:<level>"),
    Text("render/crop_render", doc="'full': the crop of the whole render at its own size W x H (Render for CNN); "
                                   "'box': the crop box rendered directly at 227x227 (--clickhere_render box); "
                                   "image/width, image/height and keypoints/uv stay in the W x H crop's frame"),
))
CROP_RENDERS = ("full", "box")

CLICKHERE_INSTANCE = Schema("clickhere_instance", "1.0.0", (
    Text("key", doc="<8-digit random>_<stem>_obj0_objc<cls>_kp<kp>[_r]; kp = the unflipped class, also on _r"),
    Text("view_key"),
    Tensor("flipped", dtype="int64"),
    PNGImage("image/encoded", shape=(S, S, 3), doc="227x227 RGB crop"),
    Tensor("keypoint_pixel", shape=(2,), dtype="int64", doc="x, y in the 227x227 crop"),
    PNGImage("keypoint_loc", shape=(S, S), doc="255 at the keypoint"),
    PNGImage("gaussian_keypoint_map", shape=(S, S), doc="Gaussian (sigma 23) byte-scaled to 0-255"),
    Tensor("chessboard_dt_map", shape=(S * S,), array=(S, S), doc="Chebyshev distance to the keypoint, 227x227 row-major"),
    Tensor("euclidean_dt_map", shape=(S * S,), array=(S, S), doc="Euclidean distance, 227x227 row-major"),
    Tensor("manhattan_dt_map", shape=(S * S,), array=(S, S), doc="taxicab distance, 227x227 row-major"),
    Tensor("keypoint_class", shape=(None,), dims=("C",), dtype="int64", doc="one-hot keypoint class"),
    Tensor("viewpoint_label", shape=(4,), dtype="int64", doc="[cls, az+360cls, el+360cls, tilt+360cls]"),
))

# Click-Here's LMDB layout (formats.md §3.8), declared once: one LMDB per field, Caffe Datum values,
# identical key sets, as Click-Here's create_*_lmdb scripts write them. The writer
# (schemas.dataset.caffe_lmdb), the readers and the validator all derive from it.
CAFFE_LAYOUT = caffe.DatumLayout("caffe_datum", (
    caffe.DatumField("image", (3, S, S), "uint8", caffe.IMAGE, doc="227x227 crop, BGR in the Datum"),
    caffe.DatumField("keypoint_loc", (1, S, S), "uint8", caffe.PLANE, doc="255 at the keypoint"),
    caffe.DatumField("gaussian_keypoint_map", (1, S, S), "uint8", caffe.PLANE, doc="byte-scaled Gaussian"),
    caffe.DatumField("chessboard_dt_map", (1, S, S), "float32", caffe.PLANE, doc="int32 map, float_data"),
    caffe.DatumField("euclidean_dt_map", (1, S, S), "float32", caffe.PLANE, doc="float64 map, float_data"),
    caffe.DatumField("manhattan_dt_map", (1, S, S), "float32", caffe.PLANE, doc="int32 map, float_data"),
    caffe.DatumField("keypoint_class", (None, 1, 1), "uint8", caffe.VECTOR, doc="(C,) one-hot"),
    caffe.DatumField("viewpoint_label", (4, 1, 1), "float32", caffe.VECTOR, value_dtype="int64",
                     doc="(4,) int64 label, float_data"),
))
CAFFE_FIELDS = CAFFE_LAYOUT.names


def lmdb_name(field: str) -> str:
    """``<field>_lmdb``: the LMDB folder of one field in a split folder."""
    return CAFFE_LAYOUT[field].lmdb


def decode_view(data: bytes, fields=None) -> dict:
    """Parse a compact record in the array shapes: ``keypoints/uv`` (N, 2), ``keypoints/pixel``
    (N, 2), ``render/lights`` (L, 4)."""
    return CLICKHERE_VIEW.decode(data, fields, arrays=True)


def instance_arrays(image, xy, kp_class: int, num_classes: int, label, fields=None) -> dict:
    """The arrays of one instance. image: (227, 227, 3) uint8 RGB; xy: (x, y) keypoint pixel.
    ``fields``: build only these (a reader that needs no maps skips their cost); default all."""
    builders = {
        "image": lambda: image, "keypoint_pixel": lambda: np.asarray(xy, np.int64),
        "keypoint_loc": lambda: km.keypoint_loc(xy), "gaussian_keypoint_map": lambda: km.gaussian_map_uint8(xy),
        "chessboard_dt_map": lambda: km.chessboard_map(xy), "euclidean_dt_map": lambda: km.euclidean_map(xy),
        "manhattan_dt_map": lambda: km.manhattan_map(xy),
        "keypoint_class": lambda: km.one_hot(int(kp_class), int(num_classes)),
        "viewpoint_label": lambda: np.asarray(label, np.int64),
    }
    return {f: build() for f, build in builders.items() if fields is None or f in fields}


def expand(rec: dict, fields=None) -> list[dict]:
    """A decoded compact record -> its instances (``key``, ``view_key``, ``flipped`` and the
    arrays of :func:`instance_arrays`, all or only ``fields``), originals first, in keypoint
    order, then the ``_r`` copies.
    The image is the JPEG decoded (OpenCV) and resized to 227x227 (:func:`imageops.resize`; a
    ``box`` record's JPEG is 227x227 already, which the resize copies unchanged);
    a flipped copy mirrors it (``fliplr``), its keypoint ``x -> 226 - x``, its one-hot class is
    the left/right-swapped name's (while its key keeps the original ``kp<class>`` + ``_r``) and
    its label's azimuth and tilt are mirrored."""
    image = imageops.resize(imageops.decode_jpeg(rec["image/jpeg"]), S)
    pixel = np.asarray(rec["keypoints/pixel"]).reshape(-1, 2)
    cls = int(rec["object_class"])
    label = np.asarray(rec["viewpoint_label"], np.int64)
    az, el, tilt = (int(v) - 360 * cls for v in label[1:])
    flipped_label = km.viewpoint_label(cls, *km.flip_angles(az, el, tilt))
    n_cls = int(rec["num_keypoint_classes"])
    out = []
    for i, key in enumerate(rec["instances/key"]):
        out.append({"key": key, "view_key": rec["key"], "flipped": 0,
                    **instance_arrays(image, pixel[i], rec["keypoints/class"][i], n_cls, label, fields)})
    if rec["instances/flip_key"]:
        mirrored = np.ascontiguousarray(image[:, ::-1])
        for i, key in enumerate(rec["instances/flip_key"]):
            xy = (S - 1 - int(pixel[i][0]), int(pixel[i][1]))
            out.append({"key": key, "view_key": rec["key"], "flipped": 1,
                        **instance_arrays(mirrored, xy, rec["keypoints/flip_class"][i], n_cls, flipped_label,
                                          fields)})
    return out


def caffe_datums(inst: dict) -> dict[str, bytes]:
    """{field: serialized Datum} of one instance, as Click-Here's ``create_*_lmdb`` writes them
    (:data:`CAFFE_LAYOUT`)."""
    return CAFFE_LAYOUT.encode(inst)


def keypoint_hits(keypoint_loc) -> np.ndarray:
    """(n, 2) (row, column) of the pixels at 255 in a (227, 227) ``keypoint_loc``: one for a valid map."""
    return np.argwhere(np.asarray(keypoint_loc) == 255)


def instance_from_datums(datums: dict) -> dict:
    """The inverse of :func:`caffe_datums` for any subset of its fields: {field: serialized
    Datum} -> the instance arrays (``image`` (227, 227, 3) RGB, maps (227, 227), ``keypoint_class``
    (C,) uint8, ``viewpoint_label`` (4,) int64), plus ``keypoint_pixel`` (x, y) when
    ``keypoint_loc`` is given."""
    out = CAFFE_LAYOUT.decode(datums)
    if "keypoint_loc" in out:
        hits = keypoint_hits(out["keypoint_loc"])
        if len(hits) != 1:
            raise ValueError(f"keypoint_loc holds {len(hits)} keypoints, expected 1")
        out["keypoint_pixel"] = hits[0][::-1].astype(np.int64)
    return out


def encode_instance(inst: dict) -> bytes:
    """One instance (the arrays of :func:`expand`, whose ``image`` is the Example's
    ``image/encoded``) as a ``clickhere_instance`` Example."""
    values = {f.name: inst["image" if f.name == "image/encoded" else f.name] for f in CLICKHERE_INSTANCE.fields}
    return CLICKHERE_INSTANCE.encode(CLICKHERE_INSTANCE.record(values))


def decode_instance(data: bytes, fields=None) -> dict:
    """Parse a ``clickhere_instance`` Example; maps reshaped to (227, 227)."""
    return CLICKHERE_INSTANCE.decode(data, fields, arrays=True)
