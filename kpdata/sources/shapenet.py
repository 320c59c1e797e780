"""ShapeNetCore catalog: synset ids and names, and the models of a v1 or v2 tree.

Layouts read:

* v1: ``<root>/<synset>/<model_id>/model.obj`` (+ ``model.mtl``, ``images/``)
* v2: ``<root>/<synset>/<model_id>/models/model_normalized.obj`` (+ ``.mtl``, ``../images/``)

Model coordinates are the OBJ's own (Y-up, normalised by ShapeNet); nothing is rescaled here.
"""
from __future__ import annotations

import dataclasses
import os
import re

from kpdata.errors import InputError, is_utf8, printable

# The 55 ShapeNetCore synsets: id -> canonical name (lower case, underscores).
SYNSETS: dict[str, str] = {
    "02691156": "airplane", "02747177": "trash_bin", "02773838": "bag", "02801938": "basket",
    "02808440": "bathtub", "02818832": "bed", "02828884": "bench", "02843684": "birdhouse",
    "02871439": "bookshelf", "02876657": "bottle", "02880940": "bowl", "02924116": "bus",
    "02933112": "cabinet", "02942699": "camera", "02946921": "can", "02954340": "cap",
    "02958343": "car", "02992529": "cellphone", "03001627": "chair", "03046257": "clock",
    "03085013": "keyboard", "03207941": "dishwasher", "03211117": "display", "03261776": "earphone",
    "03325088": "faucet", "03337140": "file_cabinet", "03467517": "guitar", "03513137": "helmet",
    "03593526": "jar", "03624134": "knife", "03636649": "lamp", "03642806": "laptop",
    "03691459": "loudspeaker", "03710193": "mailbox", "03759954": "microphone",
    "03761084": "microwave", "03790512": "motorbike", "03797390": "mug", "03928116": "piano",
    "03938244": "pillow", "03948459": "pistol", "03991062": "flowerpot", "04004475": "printer",
    "04074963": "remote", "04090263": "rifle", "04099429": "rocket", "04225987": "skateboard",
    "04256520": "sofa", "04330267": "stove", "04379243": "table", "04401088": "telephone",
    "04460130": "tower", "04468005": "train", "04530566": "watercraft", "04554684": "washer",
}

# Other names the ShapeNet and PASCAL3D+ communities use for the same synsets.
_ALIASES = {
    "aeroplane": "02691156", "plane": "02691156", "ashcan": "02747177", "trash_can": "02747177",
    "bookcase": "02871439", "cellular_telephone": "02992529", "phone": "02992529",
    "monitor": "03211117", "tv_monitor": "03211117", "tvmonitor": "03211117",
    "headphone": "03261776", "tap": "03325088", "motorcycle": "03790512", "pot": "03991062",
    "remote_control": "04074963", "speaker": "03691459", "boat": "04530566", "vessel": "04530566",
    "couch": "04256520", "diningtable": "04379243",
}

NAME_TO_SYNSET: dict[str, str] = {name: sid for sid, name in SYNSETS.items()}
NAME_TO_SYNSET.update(_ALIASES)

_SYNSET_RE = re.compile(r"^\d{8}$")


def synset_id(name_or_id: str) -> str:
    """Resolve a synset id (``03001627``) or name (``chair``, ``Motorcycle``) to its id."""
    s = name_or_id.strip()
    if _SYNSET_RE.match(s):
        if s not in SYNSETS:
            raise ValueError(f"{s} is not one of the 55 ShapeNetCore synset ids")
        return s
    key = re.sub(r"[\s\-]+", "_", s.lower())
    if key in NAME_TO_SYNSET:
        return NAME_TO_SYNSET[key]
    raise ValueError(f"unknown ShapeNet synset {name_or_id!r}; use an 8-digit id or one of: "
                     + ", ".join(sorted(SYNSETS.values())))


def synset_name(synset: str) -> str:
    return SYNSETS.get(synset, synset)


@dataclasses.dataclass(frozen=True)
class ShapeNetModel:
    """One model of a ShapeNet tree. ``obj_path`` is empty when the folder holds no OBJ (the
    error is raised when the model is loaded, so it reaches the dead-letter output)."""

    synset: str
    model_id: str
    model_dir: str
    obj_path: str
    version: int  # 1 or 2; 0 when no OBJ was found

    @property
    def key(self) -> str:
        return f"{self.synset}/{self.model_id}"


V1_OBJ = "model.obj"
V2_OBJ = os.path.join("models", "model_normalized.obj")


def find_obj(model_dir: str) -> tuple[str, int]:
    """(path, version) of the model's OBJ, or ("", 0) when there is none."""
    for rel, version in ((V1_OBJ, 1), (V2_OBJ, 2)):
        path = os.path.join(model_dir, rel)
        if os.path.isfile(path):
            return path, version
    return "", 0


def require_obj(model: ShapeNetModel) -> str:
    """The model's OBJ path; InputError naming the real cause when there is none: a folder name
    that is not UTF-8 (a record key is text: such a model is refused, never renamed), a folder
    that cannot be read (permissions), or no OBJ in it."""
    if not is_utf8(os.path.basename(model.model_dir)):
        raise InputError("non_utf8_name", "model folder name is not valid UTF-8 (record keys are UTF-8 text); "
                         "rename the folder", printable(model.model_dir))
    if not model.obj_path:
        try:
            os.listdir(model.model_dir)
        except OSError as e:
            raise InputError("unreadable_model", f"cannot read the model folder: {e.strerror}",
                             printable(model.model_dir)) from None
        raise InputError("missing_obj", f"no {V1_OBJ} (v1) or {V2_OBJ} (v2) in the model folder",
                         printable(model.model_dir))
    return model.obj_path




def _listdir(path: str, what: str) -> list[str]:
    """``os.listdir``; InputError naming ``what`` at ``path`` and the system's reason when it fails."""
    try:
        return os.listdir(path)
    except OSError as e:
        raise InputError("unreadable_dir", f"cannot list {what}: {e.strerror}", printable(path)) from None


def scan(root: str, synsets=None) -> list[ShapeNetModel]:
    """Every model under ``root``, sorted by (synset, model_id).

    ``synsets``: an iterable of ids or names to keep (None = all). A synset folder that is
    asked for but missing, or that cannot be listed (permissions), is an error naming the folder.
    A model folder whose name is not UTF-8 is listed under its name with the bytes written
    ``\\xNN`` (:attr:`ShapeNetModel.model_id`; ``model_dir`` is the real path) and refused when
    loaded (:func:`require_obj`), so it becomes a dead letter.
    """
    if not os.path.isdir(root):
        raise InputError("missing_dir", "ShapeNet folder does not exist", root)
    present = sorted(d for d in _listdir(root, "the ShapeNet folder")
                     if _SYNSET_RE.match(d) and os.path.isdir(os.path.join(root, d)))
    if synsets:
        wanted = [synset_id(s) for s in synsets]
        missing = [s for s in wanted if s not in present]
        if missing:
            raise InputError("missing_synset", f"no folder for synset(s) {', '.join(missing)} "
                             f"(present: {', '.join(present) or 'none'})", root)
        present = sorted(set(wanted))
    models = []
    for synset in present:
        sdir = os.path.join(root, synset)
        for name in sorted(_listdir(sdir, f"synset folder {synset}")):
            mdir = os.path.join(sdir, name)
            if not os.path.isdir(mdir):
                continue
            obj, version = find_obj(mdir)
            models.append(ShapeNetModel(synset, printable(name), mdir, obj, version))
    return models
