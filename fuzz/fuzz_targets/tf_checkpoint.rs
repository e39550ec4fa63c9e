//! Fuzzes the TensorFlow checkpoint reader (a "tensor bundle": the `.index` LevelDB-format table,
//! its blocks, restart points and `BundleEntryProto`s, and the entries' ranges in the data
//! shard), with the statistics of every variable. The input is a little-endian u32 `n`, the
//! index's `n` bytes (fewer if the input is shorter), then the data shard, which stands for every
//! shard the index names.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let n = (u32::from_le_bytes(*head) as usize).min(rest.len());
    let (index, shard) = rest.split_at(n);
    let shard = bytes::Bytes::copy_from_slice(shard);
    if let Ok(model) = modelmap::load::open_tf_checkpoint_parts("fuzz/model.ckpt", index, shard) {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
