//! Fuzzes the ExecuTorch reader: a `.pte` program's flatbuffer (plans, values, instructions,
//! operators, delegates), its extended header and constant segment, with the statistics of
//! every weight.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(model) =
        modelmap::load::open_bytes_as("fuzz.pte", bytes, modelmap::model::Format::ExecuTorch)
    {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
