//! Fuzzes the OpenVINO IR reader: the XML's layers, ports and edges through `roxmltree`, weights
//! sliced from the `.bin`, folding through `Convert` / `Reshape`, NNCF's int8 and int4
//! decompression subgraphs read as quantization, grouping by module path; with the statistics of
//! every weight. The input is a little-endian u32 `n`, then the XML's `n` bytes (fewer if the
//! input is shorter), then the `.bin`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let n = (u32::from_le_bytes(*head) as usize).min(rest.len());
    let (xml, bin) = rest.split_at(n);
    let xml = bytes::Bytes::copy_from_slice(xml);
    let bin = bytes::Bytes::copy_from_slice(bin);
    if let Ok(model) = modelmap::load::open_openvino_parts("fuzz.xml", xml, bin) {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
        }
    }
});
