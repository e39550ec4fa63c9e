//! Fuzzes the Core ML reader: the model protobuf (an ML program's functions, blocks, operations,
//! constants inline and in weight-file records), with the statistics of every weight. No weight
//! file lies beside `fuzz.mlmodel`, so stored constants are errors and the protobuf is what is
//! exercised.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(model) =
        modelmap::load::open_bytes_as("fuzz.mlmodel", bytes, modelmap::model::Format::CoreMl)
    {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
