//! Fuzzes the PyTorch distributed-checkpoint reader: the `.metadata` pickle (items, chunks, their
//! storage), the `torch.save` archive of each chunk, the assembly of sharded tensors, with the
//! statistics of every tensor. The input is a little-endian u32 `n`, the metadata's `n` bytes
//! (fewer if the input is shorter), then the chunk file, which stands for every file the
//! metadata names.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let n = (u32::from_le_bytes(*head) as usize).min(rest.len());
    let (metadata, chunks) = rest.split_at(n);
    let chunks = bytes::Bytes::copy_from_slice(chunks);
    if let Ok(model) = modelmap::load::open_dcp_parts("fuzz", metadata, chunks) {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
