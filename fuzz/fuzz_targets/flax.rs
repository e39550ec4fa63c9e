//! Fuzzes the Flax MessagePack reader (the streaming walk, array payloads, chunked arrays,
//! scalars), with the statistics of every array.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(model) =
        modelmap::load::open_bytes_as("fuzz.msgpack", bytes, modelmap::model::Format::Flax)
    {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
