//! Fuzzes the NeMo reader: the tar archive (ustar and GNU headers, checksums, pax records, long
//! names), gzip, the config, and the `torch.save` weights inside, with the statistics of every
//! tensor. The input is a `.nemo` file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let data = bytes::Bytes::copy_from_slice(data);
    if let Ok(model) =
        modelmap::load::open_bytes_as("fuzz.nemo", data, modelmap::model::Format::Nemo)
    {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
