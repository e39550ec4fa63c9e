//! Fuzzes the Orbax reader: TensorStore's OCDBT manifest and B+tree nodes (envelopes, zstd,
//! varint columns, data-file tables), zarr 2 and 3 metadata, and the assembly of every array from
//! its chunks and shards, with the statistics of every tensor. The input is a list of files, each
//! a little-endian u16 name length, the name, a little-endian u32 data length and the data (cut
//! short where the input ends); `tests/data/orbax/pack_seeds.py` packs the fixtures this way.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut files = Vec::new();
    let mut rest = data;
    while let Some((n, tail)) = rest.split_first_chunk::<2>() {
        let n = usize::from(u16::from_le_bytes(*n)).min(tail.len());
        let (name, tail) = tail.split_at(n);
        let Some((len, tail)) = tail.split_first_chunk::<4>() else {
            break;
        };
        let len = (u32::from_le_bytes(*len) as usize).min(tail.len());
        let (body, tail) = tail.split_at(len);
        files.push((
            String::from_utf8_lossy(name).into_owned(),
            bytes::Bytes::copy_from_slice(body),
        ));
        rest = tail;
    }
    if let Ok(model) = modelmap::load::open_orbax_files("fuzz", files) {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
