"""The three reference tasks: input preparation, model, loss, predictions, metrics and baselines.

Each task takes the layout's common sample (``training/layouts.py``), so any layout that fills it
trains every model it can.

- ``keypoints``: an object-centred crop (the mask's tight box, squared, 15% margin, or the
  sample's ``crop_margin``: 0 for Click-Here crops, which are the object box already) resized to
  ``image_size``; a small encoder-decoder predicts one heatmap per keypoint class
  (``<category>/<name>``, every class seen in the training split) at half resolution, trained
  with a spatial softmax cross-entropy against a Gaussian (sigma ``sigma`` cells) on the visible
  keypoints. Baseline: each class's mean crop position over the training split. On KeyPose
  records (stereo) the right image's window joins the input and a disparity head is added.
- ``viewpoint``: the same crop; a CNN with Click-Here's heads: 360 one-degree bins per object
  category for azimuth, elevation and tilt; Render for CNN's soft-label loss (azimuth bandwidth
  15 sigma 5; elevation, tilt bandwidth 5 sigma 3; period 360); the prediction is the argmax of
  the ground-truth category's bins. Baseline: the most frequent bin of each angle per category.
- ``keypointnet``: pairs of full views resized to ``image_size``; a shared network predicts
  ``num_kp`` keypoints per view (spatial softmax over heatmaps -> (u, v); depth = ``z_bias`` +
  probability-weighted offset map), unprojected with the view's intrinsics. Losses (a compact
  KeypointNet): multi-view consistency (each view's keypoints projected into the other with the
  true relative pose, in normalised image units), relative pose (chordal distance between the
  Procrustes rotation and the true one), separation (hinge on squared 3D distances below
  ``sep_delta``^2) and silhouette (-log of each keypoint's probability mass on the mask).
  Baseline: the identity rotation.
"""
from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import tensorflow as tf

from training import layouts, metrics
from training.readers import AUTOTUNE, plain

SCAN_LIMIT = 5000  # records read from the training split to build a task's vocabulary


def _scan(source, task_name: str, limit: int = SCAN_LIMIT):
    """Adapter samples (numpy) of the training split, in record order."""
    layout = layouts.get(source.record)
    adapt = layout.adapter(task_name, source)
    ds = layout.read(source, "train", task_name, shuffle=False, seed=0, repeat=False, limit=limit)
    ds = ds.map(plain(adapt), num_parallel_calls=AUTOTUNE)
    ds = layout.group(task_name, ds, training=False, seed=0)
    return ds.prefetch(AUTOTUNE).as_numpy_iterator()


# ------------------------------------------------------------------------------------------
# shared pieces
# ------------------------------------------------------------------------------------------

def crop_to_object(image, mask, size: int, margin=0.15):
    """Square crop around the mask's tight box (longer side * (1 + 2 margin)), resized to
    ``size`` x ``size``; returns (float32 crop in [0, 1], origin (2,) and side of the crop in
    image pixels, tight box size in image pixels). Output pixel i samples image coordinate
    ``origin + (i + 0.5) * side / size - 0.5`` (OpenCV pixel-centre convention)."""
    shape = tf.shape(mask)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    rows = tf.where(tf.reduce_any(mask, axis=1))[:, 0]
    cols = tf.where(tf.reduce_any(mask, axis=0))[:, 0]
    empty = tf.equal(tf.size(rows), 0)
    y0 = tf.where(empty, 0.0, tf.cast(tf.reduce_min(rows), tf.float32))
    y1 = tf.where(empty, h - 1, tf.cast(tf.reduce_max(rows), tf.float32))
    x0 = tf.where(empty, 0.0, tf.cast(tf.reduce_min(cols), tf.float32))
    x1 = tf.where(empty, w - 1, tf.cast(tf.reduce_max(cols), tf.float32))
    box = tf.maximum(x1 - x0 + 1, y1 - y0 + 1)
    side = box * (1 + 2 * tf.cast(margin, tf.float32))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    origin = tf.stack([cx + 0.5 - side / 2, cy + 0.5 - side / 2])  # pixel edges: centre c spans [c-.5, c+.5]
    return crop_window(image, origin, side, size), origin, side, box


def crop_window(image, origin, side, size: int):
    """The square window of ``side`` image pixels whose top-left pixel edge is at ``origin``,
    resampled to ``size`` x ``size`` float32 in [0, 1] (zeros outside the image)."""
    shape = tf.shape(image)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    ox, oy = origin[0], origin[1]
    half = side / (2 * size)
    ys, ye = oy + half - 0.5, oy + side - half - 0.5
    xs, xe = ox + half - 0.5, ox + side - half - 0.5
    boxes = tf.reshape(tf.stack([ys / (h - 1), xs / (w - 1), ye / (h - 1), xe / (w - 1)]), [1, 4])
    return tf.image.crop_and_resize(tf.cast(image, tf.float32)[None] / 255.0, boxes, [0], [size, size])[0]


def lookup_table(keys):
    """string -> index in ``keys`` (-1 when absent); created eagerly, captured by tf.data maps."""
    keys = list(keys) or [""]
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.range(len(keys), dtype=tf.int64)), -1)


def _conv(x, filters, stride=1, name=None):
    x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


def encoder_decoder(inputs, out_channels: int, width: int = 32, name: str = "heatmaps"):
    """A small U-Net: 3 stride-2 stages down to 1/8, back up to 1/2 with skips; returns
    (1/2-resolution logits with ``out_channels`` channels, the 1/8 bottleneck)."""
    c1 = _conv(inputs, width)
    c2 = _conv(_conv(c1, width * 2, 2), width * 2)          # 1/2
    c3 = _conv(c2, width * 3, 2)                              # 1/4
    c4 = _conv(_conv(c3, width * 4, 2), width * 4)          # 1/8
    u3 = _conv(keras.layers.Concatenate()([keras.layers.UpSampling2D()(c4), c3]), width * 2)
    u2 = _conv(keras.layers.Concatenate()([keras.layers.UpSampling2D()(u3), c2]), width)
    return keras.layers.Conv2D(out_channels, 1, name=name)(u2), c4


@dataclasses.dataclass
class Task:
    name = ""
    image_size: int = 64
    seed: int = 0

    # -- configuration ------------------------------------------------------------------
    def to_config(self) -> dict:
        return {"task": self.name, **dataclasses.asdict(self)}

    @classmethod
    def from_config(cls, cfg: dict) -> Task:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in fields})

    def usable(self, inputs, labels):
        return tf.constant(True)

    def model_inputs(self, inputs):
        """What the Keras model is called with, from a batch's inputs."""
        return inputs["image"]

    def input_specs(self) -> dict:
        """{input name: shape without the batch} of the exported model."""
        return {"image": (self.image_size, self.image_size, 3)}


# ------------------------------------------------------------------------------------------
# keypoints
# ------------------------------------------------------------------------------------------

@dataclasses.dataclass
class KeypointsTask(Task):
    """With ``stereo`` (KeyPose records, set from the data) the input is the left crop and the
    same window of the right image stacked (6 channels), and a second map per keypoint gives its
    disparity: ``disparity_bias + image_size * sum(softmax(heatmap) * map)`` crop pixels (the
    stereo shift inside the crop; the bias = the training split's mean), trained with a Huber loss in
    units of the crop side; evaluation adds KeyPose's
    metrics (formats §2.8) in the original image, the baseline adding each keypoint's mean
    disparity of the training split."""

    name = "keypoints"
    classes: list = dataclasses.field(default_factory=list)
    categories: list = dataclasses.field(default_factory=list)
    sigma: float = 1.0
    stride: int = 2
    width: int = 32
    stereo: bool = False
    disparity_weight: float = 10.0
    disparity_bias: float = 0.0

    @classmethod
    def from_source(cls, source, seed=0, **kw):
        classes, cats, stereo, disp = set(), set(), False, []
        size = kw.get("image_size", cls.image_size)
        for s in _scan(source, cls.name):
            classes.update(c.decode() for c in s["classes"])
            cats.add(s["category"].decode())
            if "image_r" in s:
                stereo = True
                rows, cols = np.nonzero(s["mask"].any(1))[0], np.nonzero(s["mask"].any(0))[0]
                box = max(np.ptp(rows) + 1, np.ptp(cols) + 1) if len(rows) else max(s["mask"].shape)
                disp.append(s["disparity"].mean() * size / (box * 1.3))  # crop pixels (15% margin)
        if not classes:
            raise ValueError(f"{source.data_dir}: no keypoints in the training split")
        return cls(classes=sorted(classes), categories=sorted(cats), seed=seed, stereo=stereo,
                   disparity_bias=float(np.mean(disp)) if disp else 0.0, **kw)

    def __post_init__(self):
        self._class_table = lookup_table(self.classes)
        self._cat_table = lookup_table(self.categories)

    def prepare(self, s, training):
        crop, origin, side, box = crop_to_object(s["image"], s["mask"], self.image_size, s.get("crop_margin", 0.15))
        px = self.image_size / side
        uv = (s["uv"] - origin + 0.5) * px - 0.5
        idx = self._class_table.lookup(s["classes"])
        inside = tf.reduce_all((uv >= -0.5) & (uv <= self.image_size - 0.5), axis=-1)
        ok = s["visible"] & (idx >= 0) & inside
        n = len(self.classes)
        sel = tf.where(ok)[:, 0]
        at = tf.gather(idx, sel)[:, None]
        uv_c = tf.scatter_nd(at, tf.gather(uv, sel), [n, 2])
        valid = tf.scatter_nd(at, tf.ones_like(sel, tf.float32), [n])
        labels = {"uv": uv_c, "valid": valid, "box": box * px, "pixel_scale": 1.0 / px,
                  "category": self._cat_table.lookup(s["category"])}
        if not self.stereo:
            return {"image": crop}, labels
        right = crop_window(s["image_r"], origin, side, self.image_size)
        # KeyPose's metrics take every keypoint, in the original image
        sel = tf.where(idx >= 0)[:, 0]
        at = tf.gather(idx, sel)[:, None]
        uvd = tf.concat([s["uv"], s["disparity"][:, None]], -1)
        labels.update({"uvd_image": tf.scatter_nd(at, tf.gather(uvd, sel), [n, 3]),
                       "present": tf.scatter_nd(at, tf.ones_like(sel, tf.float32), [n]),
                       "origin": origin, "to_world": tf.cast(s["to_world"], tf.float32)})
        return {"image": tf.concat([crop, right], -1)}, labels

    def usable(self, inputs, labels):
        return tf.reduce_sum(labels["valid"]) > 0

    def input_specs(self) -> dict:
        return {"image": (self.image_size, self.image_size, 6 if self.stereo else 3)}

    def build_model(self) -> keras.Model:
        n, c = self.image_size, len(self.classes)
        image = keras.Input(self.input_specs()["image"], name="image")
        if not self.stereo:
            logits, _ = encoder_decoder(image, c, self.width)
            return keras.Model(image, {"heatmaps": logits}, name="keypoints")
        maps, _ = encoder_decoder(image, 2 * c, self.width, name="maps")
        logits = keras.layers.Identity(name="heatmaps")(maps[..., :c])
        hm = n // self.stride
        flat = keras.ops.reshape(keras.ops.transpose(logits, (0, 3, 1, 2)), (-1, c, hm * hm))
        prob = keras.ops.softmax(flat, axis=-1)
        dmap = keras.ops.reshape(keras.ops.transpose(maps[..., c:], (0, 3, 1, 2)), (-1, c, hm * hm))
        disparity = keras.layers.Identity(name="disparity")(self.disparity_bias + n * keras.ops.sum(prob * dmap, axis=-1))
        return keras.Model(image, {"heatmaps": logits, "disparity": disparity}, name="keypoints_stereo")

    def loss(self, model, inputs, labels, training):
        out = model(inputs["image"], training=training)
        logits = out["heatmaps"]  # (B, h, w, C)
        hm = self.image_size // self.stride
        grid = (tf.range(hm, dtype=tf.float32) + 0.5) * self.stride - 0.5  # cell centres, input px
        u, v = labels["uv"][..., 0], labels["uv"][..., 1]  # (B, C)
        du = (grid[None, None, :] - u[..., None]) / self.stride
        dv = (grid[None, None, :] - v[..., None]) / self.stride
        g = tf.exp(-0.5 * (dv[..., :, None] ** 2 + du[..., None, :] ** 2) / self.sigma ** 2)  # (B, C, h, w)
        g = g / (tf.reduce_sum(g, axis=[-2, -1], keepdims=True) + 1e-12)
        logp = tf.nn.log_softmax(tf.reshape(tf.transpose(logits, [0, 3, 1, 2]), [tf.shape(logits)[0], -1, hm * hm]))
        ce = -tf.reduce_sum(tf.reshape(g, tf.shape(logp)) * logp, axis=-1)  # (B, C)
        valid = labels["valid"]
        loss = tf.reduce_sum(ce * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)
        if not self.stereo:
            return loss, {"heatmap_ce": loss}
        d_true = labels["uvd_image"][..., 2] / labels["pixel_scale"][:, None]  # crop pixels
        err = tf.keras.losses.Huber(delta=0.05, reduction="none")(
            (d_true / self.image_size)[..., None], (out["disparity"] / self.image_size)[..., None])
        present = labels["present"]
        d_loss = tf.reduce_sum(err * present) / tf.maximum(tf.reduce_sum(present), 1.0)
        return loss + self.disparity_weight * d_loss, {"heatmap_ce": loss, "disparity_huber": d_loss}

    # -- evaluation (numpy) -------------------------------------------------------------
    def predict(self, outputs) -> np.ndarray:
        return metrics.decode_heatmaps(outputs["heatmaps"], self.stride)

    def evaluate(self, outputs, labels, baseline) -> dict:
        pred = self.predict(outputs)
        m = metrics.keypoint_metrics(pred, labels["uv"], labels["valid"] > 0, labels["box"], labels["pixel_scale"])
        mean = np.asarray(baseline["mean_uv"])[None].repeat(len(pred), 0)
        b = metrics.keypoint_metrics(mean, labels["uv"], labels["valid"] > 0, labels["box"], labels["pixel_scale"])
        name = "mean keypoint position per class (training split)"
        if self.stereo:
            m.update(self._keypose(pred, np.asarray(outputs["disparity"]) * labels["pixel_scale"][:, None], labels))
            d_mean = np.asarray(baseline["mean_disparity"])[None].repeat(len(pred), 0)
            b.update(self._keypose(mean, d_mean, labels))
            name = "mean keypoint position (crop) and disparity per keypoint (training split)"
        return {"model": m, "baseline": {"name": name, **b}}

    @staticmethod
    def _keypose(uv_crop, disparity, labels) -> dict:
        """KeyPose's metrics of crop-pixel keypoints and image-pixel disparities."""
        scale = labels["pixel_scale"][:, None, None]
        uv = (uv_crop + 0.5) * scale - 0.5 + labels["origin"][:, None, :]
        return metrics.keypose_metrics(np.concatenate([uv, disparity[..., None]], -1), labels["uvd_image"],
                                       labels["to_world"])

    def baseline_stats(self, labels) -> dict:
        valid = labels["valid"][..., None]
        mean = (labels["uv"] * valid).sum(0) / np.maximum(valid.sum(0), 1)
        out = {"mean_uv": mean.tolist()}
        if self.stereo:
            present = labels["present"]
            out["mean_disparity"] = ((labels["uvd_image"][..., 2] * present).sum(0)
                                     / np.maximum(present.sum(0), 1)).tolist()
        return out


# ------------------------------------------------------------------------------------------
# viewpoint
# ------------------------------------------------------------------------------------------

ANGLES = ("azimuth", "elevation", "tilt")
SOFT_LABEL = {"azimuth": (15, 5.0), "elevation": (5, 3.0), "tilt": (5, 3.0)}  # bandwidth, sigma


def soft_label_weights(bins, bandwidth: int, sigma: float):
    """Render for CNN's soft view labels: (B,) bins -> (B, 360) weights exp(-d / sigma) for
    circular bin distance d <= bandwidth, normalised to sum 1."""
    d = tf.abs(tf.range(360, dtype=tf.int32)[None, :] - tf.cast(bins, tf.int32)[:, None])
    d = tf.cast(tf.minimum(d, 360 - d), tf.float32)
    w = tf.where(d <= bandwidth, tf.exp(-d / sigma), 0.0)
    return w / tf.reduce_sum(w, axis=-1, keepdims=True)


@dataclasses.dataclass
class ViewpointTask(Task):
    """With ``keypoint_map`` the network also takes Click-Here's keypoint inputs: one visible
    keypoint per record (chosen by a hash of the record key), as the chessboard distance map to
    it (``max(|x - u|, |y - v|) / image_size``, (S, S, 1)) and its class one-hot over ``classes``;
    the map is pooled to the 1/16 feature grid and stacked on the image features, the one-hot
    joins the fully connected layer."""

    name = "viewpoint"
    categories: list = dataclasses.field(default_factory=list)
    width: int = 32
    keypoint_map: bool = False
    classes: list = dataclasses.field(default_factory=list)

    @classmethod
    def from_source(cls, source, seed=0, keypoint_map=False, **kw):
        cats, classes = set(), set()
        for s in _scan(source, cls.name):
            cats.add(s["category"].decode())
            classes.update(c.decode() for c in s["classes"])
        if not cats:
            raise ValueError(f"{source.data_dir}: no records in the training split")
        if keypoint_map and not classes:
            raise ValueError(f"{source.data_dir}: --keypoint_map needs keypoints in the records")
        return cls(categories=sorted(cats), seed=seed, keypoint_map=keypoint_map,
                   classes=sorted(classes) if keypoint_map else [], **kw)

    def __post_init__(self):
        self._cat_table = lookup_table(self.categories)
        self._class_table = lookup_table(self.classes)

    def prepare(self, s, training):
        crop, origin, side, _ = crop_to_object(s["image"], s["mask"], self.image_size, s.get("crop_margin", 0.15))
        angles = tf.cast(s["angles"], tf.float32)
        bins = tf.math.floormod(tf.cast(angles, tf.int32), 360)  # int() truncation, as view2label
        labels = {"angles": angles, "bins": bins, "category": self._cat_table.lookup(s["category"])}
        inputs = {"image": crop}
        if self.keypoint_map and "keypoint_map" in s:
            # Click-Here records carry the map itself (chessboard distances in the record's
            # crop, which is the whole image here): resized to the input, in units of its side
            n = self.image_size
            size = tf.cast(tf.shape(s["keypoint_map"])[0], tf.float32)
            kmap = tf.image.resize(tf.cast(s["keypoint_map"], tf.float32)[..., None], [n, n], antialias=True)
            idx = self._class_table.lookup(s["classes"][0])
            inputs["keypoint_map"] = kmap / size
            inputs["keypoint_class"] = tf.one_hot(idx, len(self.classes))
            labels["has_keypoint"] = idx >= 0
        elif self.keypoint_map:
            n = self.image_size
            uv = (s["uv"] - origin + 0.5) * (n / side) - 0.5
            idx = self._class_table.lookup(s["classes"])
            inside = tf.reduce_all((uv >= -0.5) & (uv <= n - 0.5), axis=-1)
            k = tf.shape(idx, out_type=tf.int64)[0]
            # candidates, then a padding row k (no keypoint: far away, class -1)
            cand = tf.concat([tf.where(s["visible"] & inside & (idx >= 0))[:, 0], [k]], 0)
            count = tf.size(cand, out_type=tf.int64) - 1
            pick = tf.gather(cand, tf.math.floormod(tf.strings.to_hash_bucket_fast(s["key"], 1 << 30), tf.maximum(count, 1)))
            has = count > 0
            kuv = tf.gather(tf.concat([uv, [[-1e4, -1e4]]], 0), pick)
            grid = tf.range(n, dtype=tf.float32)
            cheb = tf.maximum(tf.abs(grid[None, :] - tf.round(kuv[0])), tf.abs(grid[:, None] - tf.round(kuv[1])))
            inputs["keypoint_map"] = tf.where(has, cheb / n, tf.ones_like(cheb))[..., None]
            cls = tf.gather(tf.concat([idx, [-1]], 0), pick)
            inputs["keypoint_class"] = tf.one_hot(cls, len(self.classes))
            labels["has_keypoint"] = has
        return inputs, labels

    def usable(self, inputs, labels):
        ok = labels["category"] >= 0
        return ok & labels["has_keypoint"] if self.keypoint_map else ok

    def model_inputs(self, inputs):
        return {k: inputs[k] for k in ("image", "keypoint_map", "keypoint_class")} if self.keypoint_map else inputs["image"]

    def input_specs(self) -> dict:
        n = self.image_size
        specs = {"image": (n, n, 3)}
        if self.keypoint_map:
            specs.update({"keypoint_map": (n, n, 1), "keypoint_class": (len(self.classes),)})
        return specs

    def build_model(self) -> keras.Model:
        image = keras.Input((self.image_size, self.image_size, 3), name="image")
        w = self.width
        x = _conv(image, w)
        x = _conv(_conv(x, w * 2, 2), w * 2)
        x = _conv(_conv(x, w * 3, 2), w * 3)
        x = _conv(_conv(x, w * 4, 2), w * 4)
        x = _conv(x, w * 4, 2)
        inputs = image
        if self.keypoint_map:
            kmap = keras.Input((self.image_size, self.image_size, 1), name="keypoint_map")
            kcls = keras.Input((len(self.classes),), name="keypoint_class")
            x = keras.layers.Concatenate()([x, keras.layers.AveragePooling2D(16)(kmap)])
            x = _conv(x, w * 4)
            inputs = {"image": image, "keypoint_map": kmap, "keypoint_class": kcls}
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dropout(0.3)(x)
        if self.keypoint_map:
            x = keras.layers.Concatenate()([x, kcls])
        x = keras.layers.Dense(256, activation="relu")(x)
        n = 360 * len(self.categories)
        return keras.Model(inputs, {a: keras.layers.Dense(n, name=a)(x) for a in ANGLES}, name="viewpoint")

    def loss(self, model, inputs, labels, training):
        out = model(self.model_inputs(inputs), training=training)
        cat = tf.maximum(labels["category"], 0)
        total, logs = 0.0, {}
        for i, a in enumerate(ANGLES):
            logits = tf.reshape(out[a], [-1, len(self.categories), 360])
            logits = tf.gather(logits, cat, batch_dims=1)
            target = soft_label_weights(labels["bins"][:, i], *SOFT_LABEL[a])
            ce = tf.reduce_mean(-tf.reduce_sum(target * tf.nn.log_softmax(logits), axis=-1))
            logs[a] = ce
            total += ce
        return total, logs

    def predict(self, outputs, category) -> np.ndarray:
        """(N, 3) predicted angles in degrees: the argmax bin of the given category's bins."""
        cols = []
        for a in ANGLES:
            logits = np.asarray(outputs[a]).reshape(len(category), len(self.categories), 360)
            cols.append(logits[np.arange(len(category)), np.maximum(category, 0)].argmax(-1))
        return np.stack(cols, -1).astype(np.float64)

    def evaluate(self, outputs, labels, baseline, r4cnn=False) -> dict:
        cat = labels["category"]
        names = np.asarray(self.categories)[np.maximum(cat, 0)]
        pred = self.predict(outputs, cat)
        mode = np.asarray(baseline["mode_bins"], np.float64)[np.maximum(cat, 0)]
        return {"model": metrics.viewpoint_metrics(pred, labels["angles"], names, r4cnn),
                "baseline": {"name": "most frequent bin per angle and category (training split)",
                             **metrics.viewpoint_metrics(mode, labels["angles"], names, r4cnn)}}

    def baseline_stats(self, labels) -> dict:
        modes = []
        for c in range(len(self.categories)):
            sel = labels["bins"][labels["category"] == c]
            modes.append([int(np.bincount(sel[:, i], minlength=360).argmax()) if len(sel) else 0 for i in range(3)])
        return {"mode_bins": modes}


# ------------------------------------------------------------------------------------------
# keypointnet
# ------------------------------------------------------------------------------------------

def _resize_intrinsics(K, scale_x, scale_y):
    """Intrinsics of an image resized by (scale_x, scale_y) (pixel-centre convention)."""
    sx = tf.stack([scale_x, 0.0, 0.5 * scale_x - 0.5])
    sy = tf.stack([0.0, scale_y, 0.5 * scale_y - 0.5])
    return tf.stack([sx, sy, tf.constant([0.0, 0.0, 1.0])]) @ K


def procrustes_tf(x0, x1):
    """(B, N, 3) x 2 -> (B, 3, 3) rotation R minimising ||R (x0 - c0) - (x1 - c1)||^2."""
    a = x0 - tf.reduce_mean(x0, axis=1, keepdims=True)
    b = x1 - tf.reduce_mean(x1, axis=1, keepdims=True)
    h = tf.matmul(a, b, transpose_a=True)
    _, u, v = tf.linalg.svd(h)
    d = tf.sign(tf.linalg.det(tf.matmul(v, u, transpose_b=True)))
    diag = tf.linalg.diag(tf.stack([tf.ones_like(d), tf.ones_like(d), d], -1))
    return v @ diag @ tf.transpose(u, [0, 2, 1])


@dataclasses.dataclass
class KeypointNetTask(Task):
    name = "keypointnet"
    num_kp: int = 8
    z_bias: float = 2.5
    sep_delta: float = 0.1
    weights: dict = dataclasses.field(default_factory=lambda: {
        "consistency": 1.0, "pose": 0.2, "separation": 1.0, "silhouette": 1.0})
    width: int = 16

    @classmethod
    def from_source(cls, source, seed=0, **kw):
        dist = [np.linalg.norm(s[f"T{i}"][:3, 3]) for s in _scan(source, cls.name, 1000) for i in (0, 1)]
        if not dist:
            raise ValueError(f"{source.data_dir}: no view pairs in the training split")
        return cls(z_bias=float(np.mean(dist)), seed=seed, **kw)

    def prepare(self, s, training):
        n = self.image_size
        hm = n // 2
        inputs, labels = {}, {}
        for i in (0, 1):
            img = tf.image.resize(tf.cast(s[f"image{i}"], tf.float32) / 255.0, [n, n], antialias=True)
            shape = tf.cast(tf.shape(s[f"image{i}"])[:2], tf.float32)
            inputs[f"image{i}"] = img
            mask = tf.image.resize(tf.cast(s[f"mask{i}"], tf.float32)[..., None], [hm, hm], antialias=True)[..., 0]
            labels[f"mask{i}"] = tf.cast(mask > 0, tf.float32)
            labels[f"K{i}"] = _resize_intrinsics(s[f"K{i}"], n / shape[1], n / shape[0])
            labels[f"T{i}"] = tf.cast(s[f"T{i}"], tf.float32)
        return inputs, labels

    def model_inputs(self, inputs):
        return inputs["image0"]

    def build_model(self) -> keras.Model:
        """One view -> ``prob`` (B, h, w, N) keypoint probability maps, ``uv`` (B, N, 2) input
        pixels, ``z`` (B, N) depth along the optical axis."""
        image = keras.Input((self.image_size, self.image_size, 3), name="image")
        maps, _ = encoder_decoder(image, 2 * self.num_kp, self.width)
        hm = self.image_size // 2
        logits, dz = maps[..., :self.num_kp], maps[..., self.num_kp:]
        flat = keras.ops.reshape(keras.ops.transpose(logits, (0, 3, 1, 2)), (-1, self.num_kp, hm * hm))
        prob = keras.ops.transpose(keras.ops.reshape(keras.ops.softmax(flat, axis=-1), (-1, self.num_kp, hm, hm)), (0, 2, 3, 1))
        grid = (np.arange(hm, dtype=np.float32) + 0.5) * 2 - 0.5
        u = keras.ops.sum(prob * grid[None, None, :, None], axis=(1, 2))
        v = keras.ops.sum(prob * grid[None, :, None, None], axis=(1, 2))
        z = self.z_bias + keras.ops.sum(prob * dz, axis=(1, 2)) * 0.1
        uv = keras.ops.stack([u, v], axis=-1)
        return keras.Model(image, {"prob": prob, "uv": uv, "z": z}, name="keypointnet")

    @staticmethod
    def unproject(K, uv, z):
        """(B, 3, 3), (B, N, 2), (B, N) -> (B, N, 3) camera points (OpenCV frame)."""
        fx, fy, cx, cy = K[:, 0, 0, None], K[:, 1, 1, None], K[:, 0, 2, None], K[:, 1, 2, None]
        return tf.stack([(uv[..., 0] - cx) / fx * z, (uv[..., 1] - cy) / fy * z, z], -1)

    @staticmethod
    def project(K, x):
        p = tf.einsum("bij,bnj->bni", K, x)
        return p[..., :2] / tf.maximum(p[..., 2:], 1e-3)

    def loss(self, model, inputs, labels, training):
        both = model(tf.concat([inputs["image0"], inputs["image1"]], 0), training=training)
        b = tf.shape(inputs["image0"])[0]
        uv = [both["uv"][:b], both["uv"][b:]]
        z = [both["z"][:b], both["z"][b:]]
        prob = [both["prob"][:b], both["prob"][b:]]
        x = [self.unproject(labels[f"K{i}"], uv[i], z[i]) for i in (0, 1)]
        t01 = labels["T1"] @ tf.linalg.inv(labels["T0"])
        t10 = tf.linalg.inv(t01)
        half = self.image_size / 2

        def moved(t, pts):
            return tf.einsum("bij,bnj->bni", t[:, :3, :3], pts) + t[:, None, :3, 3]

        cons = (tf.reduce_mean(tf.reduce_sum(((self.project(labels["K1"], moved(t01, x[0])) - uv[1]) / half) ** 2, -1))
                + tf.reduce_mean(tf.reduce_sum(((self.project(labels["K0"], moved(t10, x[1])) - uv[0]) / half) ** 2, -1)))
        r_hat = procrustes_tf(x[0], x[1])
        pose = tf.reduce_mean(tf.reduce_sum((r_hat - t01[:, :3, :3]) ** 2, axis=[1, 2]))
        sep = 0.0
        sil = 0.0
        n = self.num_kp
        for i in (0, 1):
            d2 = tf.reduce_sum((x[i][:, :, None] - x[i][:, None]) ** 2, -1)
            hinge = tf.maximum(0.0, self.sep_delta ** 2 - d2) * (1.0 - tf.eye(n))
            sep += tf.reduce_mean(tf.reduce_sum(hinge, [1, 2]) / (n * (n - 1)))
            mass = tf.reduce_sum(prob[i] * labels[f"mask{i}"][..., None], axis=[1, 2])
            sil += tf.reduce_mean(-tf.math.log(mass + 1e-4))
        w = self.weights
        total = w["consistency"] * cons + w["pose"] * pose + w["separation"] * sep + w["silhouette"] * sil
        return total, {"consistency": cons, "pose": pose, "separation": sep, "silhouette": sil}

    # -- evaluation (numpy) -------------------------------------------------------------
    def evaluate(self, outputs, labels, baseline) -> dict:
        """``outputs``: {"uv0", "z0", "uv1", "z1"} per pair."""
        x = []
        for i in (0, 1):
            K = labels[f"K{i}"]
            uv, z = outputs[f"uv{i}"], outputs[f"z{i}"]
            x.append(np.stack([(uv[..., 0] - K[:, 0, 2, None]) / K[:, 0, 0, None] * z,
                               (uv[..., 1] - K[:, 1, 2, None]) / K[:, 1, 1, None] * z, z], -1))
        r_gt = (labels["T1"] @ np.linalg.inv(labels["T0"]))[:, :3, :3]
        r_hat = metrics.procrustes_rotation(x[0], x[1])
        ident = np.broadcast_to(np.eye(3), r_gt.shape)
        return {"model": metrics.relative_pose_metrics(r_hat, r_gt),
                "baseline": {"name": "identity rotation", **metrics.relative_pose_metrics(ident, r_gt)}}

    def baseline_stats(self, labels) -> dict:
        return {}


TASKS = {t.name: t for t in (KeypointsTask, ViewpointTask, KeypointNetTask)}


def from_config(cfg: dict) -> Task:
    return TASKS[cfg["task"]].from_config(cfg)


def dumps(task: Task) -> str:
    return json.dumps(task.to_config(), indent=2, sort_keys=True)
