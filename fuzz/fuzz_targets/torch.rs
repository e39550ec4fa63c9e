//! Fuzzes the PyTorch checkpoint loader (zip archive + restricted unpickler) and the statistics of
//! whatever tensors it finds: any byte string must give a model or an error, never a panic, a hang
//! or an allocation sized by the input's numbers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(model) =
        modelmap::load::open_bytes_as("fuzz.pt", bytes, modelmap::model::Format::Torch)
    {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
