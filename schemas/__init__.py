"""Record declarations shared by writers, readers, the LMDB codec and the validator."""
from schemas.features import PNGImage, Schema, SchemaError, Tensor, Text
from schemas.view import VIEW, decode_view, make_view_record

__all__ = ["PNGImage", "Schema", "SchemaError", "Tensor", "Text", "VIEW", "decode_view", "make_view_record"]
