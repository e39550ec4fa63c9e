//! Fuzzes the NumPy `.npy` reader (the header dict parser, Fortran-order copies) and, through the
//! zip path, `.npz` archives (stored and deflated entries), with the statistics of every array.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(model) =
        modelmap::load::open_bytes_as("fuzz.npy", bytes, modelmap::model::Format::Numpy)
    {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
