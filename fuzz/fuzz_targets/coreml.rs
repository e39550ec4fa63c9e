//! Fuzzes the Core ML reader: the model protobuf (an ML program's functions, blocks, operations,
//! constants inline and in weight-file records, constexpr dequantization), with the statistics of
//! every weight. The input is a little-endian u32 `n`, the protobuf's `n` bytes (fewer if the
//! input is shorter), then the weight file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let n = (u32::from_le_bytes(*head) as usize).min(rest.len());
    let (spec, weights) = rest.split_at(n);
    let spec = bytes::Bytes::copy_from_slice(spec);
    let weights = bytes::Bytes::copy_from_slice(weights);
    if let Ok(model) = modelmap::load::open_coreml_parts("fuzz.mlmodel", spec, weights) {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
