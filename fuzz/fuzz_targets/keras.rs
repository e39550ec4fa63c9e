//! Fuzzes the legacy Keras `.h5` path (the HDF5 reader: superblocks, object headers, symbol
//! tables, link messages, attributes, the global heap) and the graph built from the config it
//! holds, with the statistics of every weight found. A `.keras` archive is a zip and reaches the
//! same reader through the `torch` target. Any byte string must give a model or an error, never a
//! panic, a hang or an allocation sized by the input's numbers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(model) =
        modelmap::load::open_bytes_as("fuzz.h5", bytes, modelmap::model::Format::Keras)
    {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
