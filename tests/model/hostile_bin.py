"""Writes hand-made pytorch_model.bin files that a careless or hostile checkpoint could carry, one
per folder under argv[1]: a storage record shorter than its tensor, a storage offset far past the
record, a pickle nested a million levels deep (plainly and through the memo, keeping the stack
small), an opcode a state dict never uses, a length past the pickle's end, and a good file."""
import collections
import io
import os
import pickle
import struct
import sys
import zipfile

import torch


class StorageRef:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride)

    def __reduce__(self):
        s, off, size, stride = self.args
        return (torch._utils._rebuild_tensor_v2, (s, off, size, stride, False, collections.OrderedDict()))


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def state_pickle(entries):
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(entries)
    return buf.getvalue()


def write(folder, pkl, records):
    os.makedirs(folder, exist_ok=True)
    with zipfile.ZipFile(os.path.join(folder, "pytorch_model.bin"), "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        for key, data in records.items():
            z.writestr("archive/data/" + key, data)
        z.writestr("archive/version", "3\n")
        z.writestr("archive/byteorder", "little")


def floats(n):
    return struct.pack("<%df" % n, *[float(i) for i in range(n)])


out = sys.argv[1]
write(os.path.join(out, "good"), state_pickle({"w": TensorRef(StorageRef("0", 16), 0, (4, 4), (4, 1))}), {"0": floats(16)})
# The pickle declares 1000 floats; the record holds 16.
write(os.path.join(out, "short_record"), state_pickle({"w": TensorRef(StorageRef("0", 1000), 0, (1000,), (1,))}),
      {"0": floats(16)})
write(os.path.join(out, "far_offset"), state_pickle({"w": TensorRef(StorageRef("0", 16), 10**9, (4,), (1,))}),
      {"0": floats(16)})
write(os.path.join(out, "huge_shape"), state_pickle({"w": TensorRef(StorageRef("0", 16), 0, (2**31 - 1, 2**31 - 1), (2**31 - 1, 1))}),
      {"0": floats(16)})
deep = 1_000_000
body = b"\x80\x02}(X\x01\x00\x00\x00x" + b"]" * deep + b"a" * (deep - 1) + b"u."
write(os.path.join(out, "deep_nesting"), body, {})
# Nesting grown through the memo: the stack never holds more than three values.
memo = b"\x80\x02}(X\x01\x00\x00\x00x]q\x00" + b"]q\x01a0h\x01" * deep + b"0h\x00u."
write(os.path.join(out, "deep_memo"), memo, {})
write(os.path.join(out, "bad_opcode"), b"\x80\x02}(X\x01\x00\x00\x00x(i__builtin__\nobject\nu.", {})
write(os.path.join(out, "long_string"), b"\x80\x02}(X\xff\xff\xff\x7fx", {})
