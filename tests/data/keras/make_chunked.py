"""Rewrites cnn_legacy.h5 with every dataset chunked, for tests/keras.rs: the same groups,
attributes and values, each weight in chunks that do not divide its shape (so edge chunks are
partial) through a filter pipeline. Files:

- chunked_gzip.h5: h5py's default file format (layout message v3, chunks indexed by a v1 B-tree),
  shuffle + deflate + Fletcher-32 on every dataset;
- chunked_latest.h5: libver="latest" (layout message v4: a fixed-array index, or a single chunk
  where the chunk is the whole dataset), deflate only, and some datasets unfiltered;
- chunked_lzf.h5: the LZF filter, which modelmap does not decode: those weights are an error each,
  the file still opens;
- cnn_bigendian.h5: every weight stored as big-endian numbers, half of them contiguous and half
  chunked and deflated;
- chunked_many.h5: not a Keras file: a 40×40 float32 arange in 1×1 chunks, as "btree" (v3 layout,
  a B-tree of several levels), "paged" (a fixed array of 1 600 entries, paged) and "paged_gzip"
  (the same, deflated: entries with sizes and masks).

    python3 tests/data/keras/make_chunked.py
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "cnn_legacy.h5")


def chunks_for(shape):
    # About a third of each dimension, so chunks straddle the far edges and the 3×3×3×8 kernel
    # has 81 chunks (more than one B-tree node holds).
    return tuple(max(1, (d + 2) // 3) for d in shape)


def rewrite(out, libver, make):
    with h5py.File(SRC, "r") as src, h5py.File(out, "w", libver=libver) as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v

        def copy(name, obj):
            if isinstance(obj, h5py.Group):
                g = dst.require_group(name)
                for k, v in obj.attrs.items():
                    g.attrs[k] = v
            else:
                data = obj[()]
                if data.ndim == 0:
                    d = dst.create_dataset(name, data=data)
                else:
                    d = make(dst, name, data)
                for k, v in obj.attrs.items():
                    d.attrs[k] = v

        src.visititems(copy)


def gzip(dst, name, data):
    return dst.create_dataset(
        name, data=data, chunks=chunks_for(data.shape), compression="gzip",
        compression_opts=6, shuffle=True, fletcher32=True,
    )


counter = [0]


def latest(dst, name, data):
    counter[0] += 1
    if counter[0] % 3 == 0:
        # The whole dataset as one chunk: a single-chunk index.
        return dst.create_dataset(name, data=data, chunks=data.shape, compression="gzip")
    if counter[0] % 3 == 1:
        return dst.create_dataset(name, data=data, chunks=chunks_for(data.shape))
    return dst.create_dataset(name, data=data, chunks=chunks_for(data.shape), compression="gzip")


def lzf(dst, name, data):
    return dst.create_dataset(name, data=data, chunks=chunks_for(data.shape), compression="lzf")


rewrite(os.path.join(HERE, "chunked_gzip.h5"), "earliest", gzip)
rewrite(os.path.join(HERE, "chunked_latest.h5"), "latest", latest)
rewrite(os.path.join(HERE, "chunked_lzf.h5"), "earliest", lzf)

flip = [0]


def bigendian(dst, name, data):
    flip[0] += 1
    big = data.astype(data.dtype.newbyteorder(">"))
    if flip[0] % 2:
        return dst.create_dataset(name, data=big)
    return dst.create_dataset(name, data=big, chunks=chunks_for(data.shape), compression="gzip")


rewrite(os.path.join(HERE, "cnn_bigendian.h5"), "earliest", bigendian)
with h5py.File(os.path.join(HERE, "cnn_bigendian.h5"), "r") as f:
    assert f["model_weights/conv/conv/kernel"].dtype.byteorder == ">"

a = np.arange(1600, dtype="<f4").reshape(40, 40)
with h5py.File(os.path.join(HERE, "chunked_many.h5"), "w", libver="earliest") as f:
    f.create_dataset("btree", data=a, chunks=(1, 1))
with h5py.File(os.path.join(HERE, "chunked_many.h5"), "a", libver="latest") as f:
    f.create_dataset("paged", data=a, chunks=(1, 1))
    f.create_dataset("paged_gzip", data=a, chunks=(1, 1), compression="gzip")

with h5py.File(os.path.join(HERE, "chunked_latest.h5"), "r") as f:
    def show(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.chunks:
            print(name, obj.shape, obj.chunks, obj.compression, obj.id.get_create_plist().get_layout())
    f.visititems(show)
