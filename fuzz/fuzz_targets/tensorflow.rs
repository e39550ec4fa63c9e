//! Fuzzes the TensorFlow readers: a frozen `GraphDef` (`.pb`), and, when the input starts as a
//! SavedModel does (`0x08`, its schema version; a GraphDef starts with a node, `0x0a`), a
//! SavedModel's `saved_model.pb` (signatures, function inlining, the object graph; its checkpoint
//! is absent, so that path ends in a warning), and, when it starts with a letter, a text-format
//! `.pbtxt`; with the statistics of every constant found. Any
//! input must give a model or an error, never a panic, a hang or memory sized by its numbers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = match data.first() {
        Some(0x08) => "fuzz-saved-model/saved_model.pb",
        // Text format starts with a field name (`node {`).
        Some(b) if b.is_ascii_alphabetic() => "fuzz.pbtxt",
        _ => "fuzz.pb",
    };
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(model) =
        modelmap::load::open_bytes_as(path, bytes, modelmap::model::Format::TensorFlow)
    {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
