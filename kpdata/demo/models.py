"""The four demo models (two cars, a bus, a motorbike), their ids, keypoint names and textures.

Designed in the *design frame* (metres-ish, y = 0 is the ground, front = -Z, left = -X); the written
frame and its axes are set by ``ORIENT_*`` below (see :mod:`kpdata.demo.shapenet`)."""
from __future__ import annotations

import hashlib

import numpy as np

from kpdata.demo.parts import (
    Builder,
    GLASS,
    HEADLIGHT,
    METAL,
    TAILLIGHT,
    TRIM,
    TYRE,
    box,
    cylinder,
    cylinder_z,
    fill,
    finish,
    grid,
    mirror_pair,
    prism,
    slab_profile,
    textured,
    toward,
)

__all__ = ["CAR", "BUS", "MOTORBIKE",
           "DEMO_MODELS", "DEMO_KEYPOINT_NAMES", "DEMO_UP_AXIS", "DEMO_FRONT_AXIS", "DEMO_LEFT_AXIS", "BUILDERS"]

CAR, BUS, MOTORBIKE = "02958343", "02924116", "03790512"

# Click-Here keypoint names per synset, in Click-Here's KEYPOINT_TYPES order.
DEMO_KEYPOINT_NAMES: dict[str, tuple[str, ...]] = {
    BUS: ("body_back_left_lower", "body_back_left_upper", "body_back_right_lower",
          "body_back_right_upper", "body_front_left_upper", "body_front_right_upper",
          "body_front_left_lower", "body_front_right_lower", "left_back_wheel",
          "left_front_wheel", "right_back_wheel", "right_front_wheel"),
    CAR: ("left_front_wheel", "left_back_wheel", "right_front_wheel", "right_back_wheel",
          "upper_left_windshield", "upper_right_windshield", "upper_left_rearwindow",
          "upper_right_rearwindow", "left_front_light", "right_front_light",
          "left_back_trunk", "right_back_trunk"),
    MOTORBIKE: ("back_seat", "front_seat", "head_center", "headlight_center", "left_back_wheel",
                "left_front_wheel", "left_handle_center", "right_back_wheel",
                "right_front_wheel", "right_handle_center"),
}


def model_id(name: str) -> str:
    return hashlib.md5(f"kpdata-demo-{name}".encode("ascii")).hexdigest()


# (synset, name, model_id) per model, sorted by (synset, model_id).
DEMO_MODELS: tuple[tuple[str, str, str], ...] = tuple(sorted(
    ((synset, name, model_id(name)) for synset, name in
     ((CAR, "sedan"), (CAR, "hatchback"), (BUS, "bus"), (MOTORBIKE, "motorbike"))),
    key=lambda m: (m[0], m[2])))

# Axes of the OBJ frame (unit vectors, Y-up model frame). The models are designed with front = -Z,
# left = -X (the design frame); the written frame is the design frame after the signed axis
# permutation _ORIENT_*, applied before normalisation. A signed permutation is exact in floating
# point, so keypoints stay exactly on the surface. (2, 1, 0) with signs (-1, 1, 1) is a rotation
# about +Y that writes the models facing +X with their left at -Z, the way the ShapeNetCore v1
# models in shared/fixtures/shapenet_core_v1 (chair backrest, airplane tail at -X) face.
ORIENT_PERM = (2, 1, 0)      # output axis i takes design axis ORIENT_PERM[i] ...
ORIENT_SIGN = (-1.0, 1.0, 1.0)  # ... times ORIENT_SIGN[i]


def orient_vec(v) -> tuple[float, float, float]:
    v = np.asarray(v, dtype=np.float64)
    return tuple(float(ORIENT_SIGN[i] * v[ORIENT_PERM[i]]) for i in range(3))


DEMO_UP_AXIS = orient_vec((0.0, 1.0, 0.0))
DEMO_FRONT_AXIS = orient_vec((0.0, 0.0, -1.0))
DEMO_LEFT_AXIS = orient_vec((-1.0, 0.0, 0.0))


# --------------------------------------------------------------------------------------------
# Procedural textures (RGB uint8, row 0 = top of the image = v=1 in OBJ texture coordinates)
# --------------------------------------------------------------------------------------------


def tex_sedan_body():
    """Red with a vertical gradient, two white racing stripes and a thin black pinstripe."""
    u, v = grid()
    img = np.zeros(u.shape + (3,))
    shade = (0.75 + 0.25 * v)[..., None]
    img[:] = np.array([200.0, 24.0, 30.0]) * shade
    fill(img, (np.abs(v - 0.42) < 0.07) | (np.abs(v - 0.62) < 0.07), (245, 245, 240))
    fill(img, np.abs(v - 0.52) < 0.015, (20, 20, 25))
    return finish(img)


def tex_hatchback_body():
    """Blue-to-cyan gradient with a yellow/black checker band low on the body."""
    u, v = grid()
    img = np.zeros(u.shape + (3,))
    t = v[..., None]
    img[:] = (1 - t) * np.array([20.0, 50.0, 170.0]) + t * np.array([40.0, 190.0, 220.0])
    band = (v > 0.12) & (v < 0.36)
    checker = ((np.floor(u * 12) + np.floor((v - 0.12) / 0.12)) % 2) == 0
    fill(img, band & checker, (250, 210, 20))
    fill(img, band & ~checker, (25, 25, 25))
    return finish(img)


def tex_bus_body():
    """School-bus yellow, darker towards the bottom, with green, white and green bands."""
    u, v = grid()
    img = np.zeros(u.shape + (3,))
    shade = (0.7 + 0.3 * v)[..., None]
    img[:] = np.array([250.0, 190.0, 20.0]) * shade
    fill(img, np.abs(v - 0.30) < 0.05, (20, 130, 60))
    fill(img, np.abs(v - 0.38) < 0.025, (245, 245, 245))
    fill(img, np.abs(v - 0.46) < 0.03, (20, 130, 60))
    fill(img, v < 0.06, (40, 40, 40))
    return finish(img)


def tex_moto_body():
    """Green with diagonal black and white stripes."""
    u, v = grid()
    img = np.zeros(u.shape + (3,))
    img[:] = np.array([30.0, 170.0, 70.0]) * (0.8 + 0.2 * u)[..., None]
    d = (u + v) * 4.0
    frac = d - np.floor(d)
    fill(img, frac < 0.22, (15, 15, 15))
    fill(img, (frac >= 0.22) & (frac < 0.3), (240, 240, 240))
    return finish(img)


def tex_moto_seat():
    """Dark brown/black quilted checker."""
    u, v = grid()
    img = np.zeros(u.shape + (3,))
    checker = ((np.floor(u * 8) + np.floor(v * 8)) % 2) == 0
    fill(img, checker, (70, 42, 25))
    fill(img, ~checker, (28, 22, 18))
    return finish(img)


# --------------------------------------------------------------------------------------------
# Models (design frame: metres-ish, y = 0 is the ground, front = -Z, left = -X)
# --------------------------------------------------------------------------------------------

def car(kind: str) -> tuple[Builder, dict[str, np.ndarray]]:
    b = Builder()
    if kind == "sedan":
        half_w, cab_w = 0.90, 0.78
        # Lower body profile (z, y): bonnet slopes down to the nose, flat trunk lid.
        body = [(-2.30, 0.30), (2.30, 0.30), (2.30, 0.90), (1.30, 0.95), (-1.30, 0.95),
                (-2.30, 0.78)]
        body_top = 0.95
        cab_bottom = body_top - 0.03
        # Cabin profile (z, y): windshield from (-1.15, .) up to (-0.35, 1.45), rear window
        # from (0.60, 1.45) down to (1.25, .).
        ws_lo, ws_hi = (-1.15, cab_bottom), (-0.35, 1.45)
        rw_hi, rw_lo = (0.60, 1.45), (1.25, cab_bottom)
        wheel_r, wheel_w, wheel_y = 0.33, 0.22, 0.33
        wheel_z = (-1.40, 1.45)
        light_y, light_x = (0.51, 0.74), (0.46, 0.82)
        tail_y = (0.45, 0.56)  # low on the tail, clear of the trunk keypoints above them
        kp_inset = 0.22  # > 4% of the bounding-box diagonal (5.31)
        tex = tex_sedan_body()
    else:  # hatchback: shorter, taller, cabin runs to a steep tailgate.
        half_w, cab_w = 0.88, 0.80
        body = [(-2.00, 0.32), (2.00, 0.32), (2.00, 0.98), (-1.00, 0.98), (-2.00, 0.80)]
        body_top = 0.98
        cab_bottom = body_top - 0.03
        ws_lo, ws_hi = (-0.95, cab_bottom), (-0.15, 1.60)
        rw_hi, rw_lo = (1.78, 1.60), (1.97, cab_bottom)
        wheel_r, wheel_w, wheel_y = 0.34, 0.22, 0.34
        wheel_z = (-1.25, 1.30)
        light_y, light_x = (0.56, 0.78), (0.48, 0.78)
        tail_y = (0.48, 0.64)
        kp_inset = 0.20  # > 4% of the bounding-box diagonal (4.81)
        tex = tex_hatchback_body()
    paint = textured("texture0.png")
    b.add("paint", paint, prism(paint, body, "x", -half_w, half_w))
    cabin = [ws_lo, rw_lo, rw_hi, ws_hi]
    b.add("paint", paint, prism(paint, cabin, "x", -cab_w, cab_w))

    # Glass: windshield and rear window slabs inset from the cabin edges; side windows.
    def lerp(p, q, t):
        return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)

    inset_x = 0.07
    glass_w = cab_w - inset_x
    ws = slab_profile(lerp(ws_lo, ws_hi, 0.12), lerp(ws_lo, ws_hi, 0.92))  # p0 low, p1 high
    rw = slab_profile(lerp(rw_hi, rw_lo, 0.08), lerp(rw_hi, rw_lo, 0.88))  # p0 high, p1 low
    b.add("glass", GLASS, prism(GLASS, ws, "x", -glass_w, glass_w))
    b.add("glass", GLASS, prism(GLASS, rw, "x", -glass_w, glass_w))
    # Keypoints never sit on an edge or corner of the mesh (where the per-pixel depth test
    # that decides visibility flips at random): each lies inside one face, ``kp_inset`` from
    # every edge of it. Windshield / rear window: the upper corners of the glass's outer face
    # (slanted; the point is computed from that face's own (z, y) end points), pulled in
    # along the glass and across it.
    z, y = toward(ws[2], ws[3], kp_inset)  # from the windshield's top edge down the glass
    mirror_pair(b, "upper_left_windshield", "upper_right_windshield", glass_w - kp_inset, y, z)
    z, y = toward(rw[3], rw[2], kp_inset)  # from the rear window's top edge down the glass
    mirror_pair(b, "upper_left_rearwindow", "upper_right_rearwindow", glass_w - kp_inset, y, z)
    # Trunk: the upper outer corners of the tail panel (the body's back face, z = z_back),
    # inset from its top and side edges; the tail lights sit lower, below these points.
    mirror_pair(b, "left_back_trunk", "right_back_trunk", half_w - kp_inset,
                 body[2][1] - kp_inset, body[1][0])
    y_lo, y_hi = cab_bottom + 0.12, ws_hi[1] - 0.07
    pillar = 0.5 * (ws_hi[0] + rw_hi[0])
    for side in (-1.0, 1.0):
        x0, x1 = (-cab_w - 0.012, -cab_w + 0.003) if side < 0 else (cab_w - 0.003, cab_w + 0.012)

        def z_on(edge_lo, edge_hi, y, off):
            t = (y - edge_lo[1]) / (edge_hi[1] - edge_lo[1])
            return edge_lo[0] + (edge_hi[0] - edge_lo[0]) * t + off

        front = [(z_on(ws_lo, ws_hi, y_lo, 0.10), y_lo), (pillar - 0.05, y_lo),
                 (pillar - 0.05, y_hi), (z_on(ws_lo, ws_hi, y_hi, 0.10), y_hi)]
        back = [(pillar + 0.05, y_lo), (z_on(rw_lo, rw_hi, y_lo, -0.10), y_lo),
                (z_on(rw_lo, rw_hi, y_hi, -0.10), y_hi), (pillar + 0.05, y_hi)]
        b.add("glass", GLASS, prism(GLASS, front, "x", x0, x1))
        b.add("glass", GLASS, prism(GLASS, back, "x", x0, x1))

    # Lights on the nose (z = body front) and the tail; grille between the headlights.
    z_front, z_back = body[0][0], body[1][0]
    for side in (-1.0, 1.0):
        xa, xb = sorted((side * light_x[0], side * light_x[1]))
        b.add("headlight", HEADLIGHT, box(HEADLIGHT, xa, xb, light_y[0], light_y[1],
                                            z_front - 0.03, z_front + 0.02))
        b.add("taillight", TAILLIGHT, box(TAILLIGHT, xa, xb, tail_y[0], tail_y[1],
                                            z_back - 0.02, z_back + 0.02))
    # Front lights: the centre of the headlight's outward (front) face.
    mirror_pair(b, "left_front_light", "right_front_light", 0.5 * (light_x[0] + light_x[1]),
                 0.5 * (light_y[0] + light_y[1]), z_front - 0.03)
    b.add("trim", TRIM, box(TRIM, -light_x[0] + 0.06, light_x[0] - 0.06, light_y[0] - 0.12,
                              light_y[1] - 0.02, z_front - 0.015, z_front + 0.02))
    # Bumpers.
    for z0, z1 in ((z_front - 0.06, z_front + 0.05), (z_back - 0.05, z_back + 0.06)):
        b.add("trim", TRIM, box(TRIM, -half_w + 0.02, half_w - 0.02, 0.30, 0.44, z0, z1))

    for zi, fb in zip(wheel_z, ("front", "back")):
        for side, lr in ((-1, "left"), (1, "right")):
            b.wheel(f"{lr}_{fb}_wheel", side, (wheel_y, zi), wheel_r, wheel_w,
                    half_w + 0.04 - wheel_w, 0.16, 0.03)
    return b, {"texture0.png": tex}


def bus() -> tuple[Builder, dict[str, np.ndarray]]:
    b = Builder()
    hw, y0, y1, zf, zb = 1.25, 0.35, 3.20, -5.00, 5.00
    paint = textured("texture0.png")
    b.add("paint", paint, box(paint, -hw, hw, y0, y1, zf, zb))
    # Body corners: on the front / back face (not on the box's edges, where the per-pixel depth
    # test that decides visibility flips at random), ``kp_inset`` (> 4% of the bounding-box
    # diagonal, 11.02) in from the face's side and top / bottom edges. The windows, sign and
    # lights below keep clear of these points.
    kp_inset = 0.45
    for fb, z in (("front", zf), ("back", zb)):
        for lr, x in (("left", -hw + kp_inset), ("right", hw - kp_inset)):
            b.kp(f"body_{fb}_{lr}_lower", (x, y0 + kp_inset, z))
            b.kp(f"body_{fb}_{lr}_upper", (x, y1 - kp_inset, z))
    t, o = 0.003, 0.015  # slab depth inside / outside the body
    # Side windows (a row on each side; the right side keeps room for the door at the front).
    win_y = (1.85, 2.90)
    for side in (-1.0, 1.0):
        x0, x1 = (-hw - o, -hw + t) if side < 0 else (hw - t, hw + o)
        z_start = -4.70 if side < 0 else -3.55
        zs = np.linspace(z_start, 4.60, 7 if side < 0 else 6)
        for za, zc in zip(zs[:-1], zs[1:]):
            b.add("glass", GLASS, box(GLASS, x0, x1, win_y[0], win_y[1], za + 0.06, zc - 0.06))
    # Door (right side, front): glass panel with a dark frame behind it.
    b.add("trim", TRIM, box(TRIM, hw - t, hw + o, 0.45, 2.95, -4.75, -3.75))
    b.add("glass", GLASS, box(GLASS, hw - t, hw + o + 0.005, 0.60, 2.85, -4.68, -4.27))
    b.add("glass", GLASS, box(GLASS, hw - t, hw + o + 0.005, 0.60, 2.85, -4.23, -3.82))
    # Windshield, destination sign, rear window (below / between the upper body keypoints).
    b.add("glass", GLASS, box(GLASS, -1.10, 1.10, 1.45, 2.50, zf - o, zf + t))
    b.add("headlight", HEADLIGHT, box(HEADLIGHT, -0.45, 0.45, 2.85, 3.10, zf - o, zf + t))
    b.add("glass", GLASS, box(GLASS, -0.55, 0.55, 1.70, 2.50, zb - t, zb + o))
    # Head/tail lights (above the lower body keypoints), bumpers.
    for side in (-1.0, 1.0):
        xa, xb = sorted((side * 0.80, side * 1.10))
        b.add("headlight", HEADLIGHT, box(HEADLIGHT, xa, xb, 1.05, 1.25, zf - o, zf + t))
        b.add("taillight", TAILLIGHT, box(TAILLIGHT, xa, xb, 1.10, 1.45, zb - t, zb + o))
    b.add("trim", TRIM, box(TRIM, -hw + 0.05, hw - 0.05, 0.38, 0.56, zf - 0.10, zf + 0.05))
    b.add("trim", TRIM, box(TRIM, -hw + 0.05, hw - 0.05, 0.38, 0.56, zb - 0.05, zb + 0.10))
    for z, fb in ((-3.20, "front"), (3.00, "back")):
        for side, lr in ((-1, "left"), (1, "right")):
            b.wheel(f"{lr}_{fb}_wheel", side, (0.50, z), 0.50, 0.28, hw + 0.05 - 0.28, 0.24, 0.04)
    return b, {"texture0.png": tex_bus_body()}


def bar(material, p0, p1, half_t, x0, x1):
    """A straight bar of square-ish section in the (z, y) plane from p0 to p1 (both (z, y)),
    ``half_t`` thick on each side, over x in [x0, x1]."""
    p0 = np.asarray(p0, dtype=np.float64)
    p1 = np.asarray(p1, dtype=np.float64)
    d = (p1 - p0) / np.linalg.norm(p1 - p0)
    nrm = np.array([-d[1], d[0]]) * half_t
    prof = [tuple(p0 - nrm), tuple(p1 - nrm), tuple(p1 + nrm), tuple(p0 + nrm)]
    return prism(material, prof, "x", x0, x1)


def motorbike() -> tuple[Builder, dict[str, np.ndarray]]:
    b = Builder()
    paint = textured("texture0.png")
    seat = textured("texture1.png", ks=(0.1, 0.1, 0.1), ns=10.0)
    wr, wy = 0.32, 0.32
    zf_wheel, zb_wheel = -0.70, 0.70
    # Wheels: front tyre x in [-0.06, 0.06], rear [-0.08, 0.08]; hubs stand 0.02 proud.
    for z, fb, half in ((zf_wheel, "front", 0.06), (zb_wheel, "back", 0.08)):
        for side, lr in ((-1, "left"), (1, "right")):
            if side < 0:
                b.add("tyre", TYRE, cylinder(TYRE, (wy, z), wr, -half, half, 28)[0])
                hub, outer, _ = cylinder(METAL, (wy, z), 0.10, -half - 0.02, -half + 0.02, 14)
            else:
                hub, _, outer = cylinder(METAL, (wy, z), 0.10, half - 0.02, half + 0.02, 14)
            b.add("hub", METAL, hub)
            b.kp(f"{lr}_{fb}_wheel", outer)
    # Front fork (two legs, ending above the hub so the hub centre stays visible).
    for side in (-1.0, 1.0):
        xa, xb = sorted((side * 0.085, side * 0.115))
        b.add("metal", METAL, bar(METAL, (zf_wheel + 0.03, 0.44), (-0.53, 0.92), 0.018, xa, xb))
        # Swingarm to the rear hub.
        b.add("metal", METAL, bar(METAL, (zb_wheel - 0.12, 0.36), (0.02, 0.46), 0.022, xa, xb))
    # Engine, frame, exhaust.
    b.add("trim", TRIM, box(TRIM, -0.15, 0.15, 0.24, 0.60, -0.32, 0.22))
    # (The frame tube runs low enough under the seat to stay 2% of the diagonal from front_seat.)
    b.add("trim", TRIM, bar(TRIM, (-0.50, 0.88), (0.45, 0.66), 0.035, -0.04, 0.04))
    b.add("trim", TRIM, bar(TRIM, (-0.48, 0.80), (-0.30, 0.40), 0.035, -0.04, 0.04))
    # Exhaust above the rear axle height so the right rear hub stays visible from the right.
    ex, _, _ = cylinder_z(METAL, (0.19, 0.48), 0.04, -0.10, 0.90, 12)
    b.add("metal", METAL, ex)
    # Fuel tank (slanted top, textured) and the rear cowl.
    tank = [(-0.46, 0.64), (0.02, 0.64), (0.02, 0.84), (-0.30, 0.90), (-0.46, 0.86)]
    b.add("paint", paint, prism(paint, tank, "x", -0.16, 0.16))
    b.add("paint", paint, box(paint, -0.10, 0.10, 0.60, 0.72, 0.55, 0.98))
    # Front mudguard.
    b.add("paint", paint, box(paint, -0.075, 0.075, 0.66, 0.70, -0.90, -0.56))
    # Seat: top face y = 0.82; keypoints on the top at its front and back.
    seat_top = 0.82
    b.add("seat", seat, box(seat, -0.14, 0.14, 0.70, seat_top, 0.03, 0.62))
    # Both 0.10 (> 4% of the bounding-box diagonal, 2.42) in from the seat top's front / back
    # edge and 0.14 from its sides.
    b.kp("front_seat", (0.0, seat_top, 0.13))
    b.kp("back_seat", (0.0, seat_top, 0.52))
    # Tail light.
    b.add("taillight", TAILLIGHT, box(TAILLIGHT, -0.07, 0.07, 0.63, 0.70, 0.97, 1.00))
    # Steering head (top face centre = head_center), handlebar, grips.
    head_top = 1.03  # above the handlebar, so the keypoint on its top face stays visible
    b.add("metal", METAL, box(METAL, -0.06, 0.06, 0.86, head_top, -0.58, -0.46))
    b.kp("head_center", (0.0, head_top, -0.52))
    # Handlebar low in the grips and the head, clear of the keypoints on their tops.
    b.add("metal", METAL, box(METAL, -0.31, 0.31, 0.945, 0.980, -0.535, -0.505))
    grip_top = 1.015
    for side, lr in ((-1.0, "left"), (1.0, "right")):
        # Grips 0.10 x 0.10 in plan, so the keypoint (the centre of the top) is 0.05 (2% of
        # the diagonal) from the top's edges.
        xa, xb = sorted((side * 0.30, side * 0.40))
        b.add("trim", TRIM, box(TRIM, xa, xb, 0.955, grip_top, -0.570, -0.470))
        b.kp(f"{lr}_handle_center", (0.5 * (xa + xb), grip_top, -0.520))
    # Headlight: a cylinder along Z in front of the steering head; keypoint = front cap centre.
    lamp, front, _ = cylinder_z(HEADLIGHT, (0.0, 0.84), 0.075, -0.68, -0.58, 16)
    b.add("headlight", HEADLIGHT, lamp)
    b.kp("headlight_center", front)
    # Headlight housing behind the lamp.
    housing, _, _ = cylinder_z(TRIM, (0.0, 0.84), 0.085, -0.60, -0.50, 16)
    b.add("trim", TRIM, housing)
    return b, {"texture0.png": tex_moto_body(), "texture1.png": tex_moto_seat()}


BUILDERS = {
    "sedan": lambda: car("sedan"),
    "hatchback": lambda: car("hatchback"),
    "bus": bus,
    "motorbike": motorbike,
}


