"""Our Datum bytes against a separately built protobuf definition of Caffe's Datum."""
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from schemas import caffe

# caffe/proto/caffe.proto, message Datum (proto2), declared here independently of schemas.caffe
_CAFFE_PROTO = [("channels", 1, "TYPE_INT32", "LABEL_OPTIONAL"), ("height", 2, "TYPE_INT32", "LABEL_OPTIONAL"),
                ("width", 3, "TYPE_INT32", "LABEL_OPTIONAL"), ("data", 4, "TYPE_BYTES", "LABEL_OPTIONAL"),
                ("label", 5, "TYPE_INT32", "LABEL_OPTIONAL"), ("float_data", 6, "TYPE_FLOAT", "LABEL_REPEATED"),
                ("encoded", 7, "TYPE_BOOL", "LABEL_OPTIONAL")]


def reference_datum():
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="test/caffe.proto", package="caffe", syntax="proto2")
    m = fdp.message_type.add(name="Datum")
    for name, num, t, lab in _CAFFE_PROTO:
        m.field.add(name=name, number=num, type=getattr(F, t), label=getattr(F, lab))
    return message_factory.GetMessages([fdp], pool=descriptor_pool.DescriptorPool())["caffe.Datum"]


def test_datum_bytes_equal_protobufs_own_serialisation():
    Datum = reference_datum()
    rng = np.random.default_rng(0)
    for arr in (rng.integers(0, 256, (3, 227, 227)).astype(np.uint8), rng.random((1, 227, 227)) * 300,
                np.arange(34, dtype=np.uint8).reshape(34, 1, 1), np.array([5, 1830, 1810, 2155.0]).reshape(4, 1, 1),
                np.arange(227 * 227, dtype=np.int32).reshape(1, 227, 227)):
        d = Datum(channels=arr.shape[0], height=arr.shape[1], width=arr.shape[2])
        if arr.dtype == np.uint8:
            d.data = arr.tobytes()
        else:
            d.float_data.extend(arr.astype(np.float32).ravel().tolist())
        assert caffe.array_to_datum(arr) == d.SerializeToString(deterministic=True)
        back = caffe.datum_to_array(caffe.array_to_datum(arr))
        assert back.shape == arr.shape and np.array_equal(back, arr.astype(back.dtype))
