//! Fuzzes the OpenVINO IR reader (the XML's layers, ports and edges, constant folding through
//! `Convert`s, grouping by module path), with the statistics of every weight. No `.bin` lies
//! beside `fuzz.xml`, so the weights are missing and the XML is what is exercised.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(model) =
        modelmap::load::open_bytes_as("fuzz.xml", bytes, modelmap::model::Format::OpenVino)
    {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
