//! Fuzzes the gguf loader and what is drawn from its tensors (statistics and the first heatmap
//! tile, so every GGML block decoder meets arbitrary bytes): any byte string must give a model or
//! an error, never a panic, a hang or an allocation sized by the input's numbers.
#![no_main]

use modelmap::stats::heatmap::{Agg, HeatmapView, tile};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(model) =
        modelmap::load::open_bytes_as("fuzz.gguf", bytes, modelmap::model::Format::Gguf)
    {
        for t in &model.tensors {
            let _ = modelmap::stats::tensor_stats(t);
            let view = HeatmapView::for_display(t);
            let _ = tile(t, &view, view.levels(), 0, 0, Agg::Mean);
        }
    }
});
