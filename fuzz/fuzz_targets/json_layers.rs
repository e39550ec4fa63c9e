//! Fuzzes the JSON loaders (a layer list, or a sharded safetensors index): any byte string must give
//! a model or an error, never a panic, a hang or an allocation sized by the input's numbers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    let _ = modelmap::load::open_bytes_as("fuzz.json", bytes, modelmap::model::Format::JsonLayers);
});
