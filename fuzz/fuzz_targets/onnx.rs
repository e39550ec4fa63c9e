//! Fuzzes the onnx loader: any byte string must give a model or an error, never a panic, a hang or
//! an allocation sized by the input's numbers. A model that loads is also laid out (dataflow, the
//! default view), so grouping, constant chains and stubs meet malformed graphs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(model) =
        modelmap::load::open_bytes_as("fuzz.onnx", bytes, modelmap::model::Format::Onnx)
        && model.graph.nodes.len() <= 5000
    {
        let _ = modelmap::layout::dataflow(
            &model.graph,
            &model.hierarchy,
            &modelmap::layout::DataflowOptions::default(),
            &modelmap::layout::Progress::new(),
        );
    }
});
