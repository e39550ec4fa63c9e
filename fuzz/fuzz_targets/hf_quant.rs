//! Fuzzes the readers of quantized Hugging Face checkpoints (MLX, GPTQ, AWQ, bitsandbytes,
//! compressed-tensors, FP8 blocks): the input is a `config.json` text (its length in the first two
//! bytes) then a safetensors file. Loading and reading every small quantized tensor (statistics,
//! a heatmap tile, a hover value, the neuron view) must give values or errors, never a panic, a
//! hang or an allocation sized by the input's numbers.
#![no_main]

use modelmap::stats::heatmap::{self, HeatmapView};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let n = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (config, st) = rest.split_at(n);
    let bytes = bytes::Bytes::copy_from_slice(st);
    let Ok(m) = modelmap::load::open_safetensors_with_config("fuzz.safetensors", config, bytes)
    else {
        return;
    };
    for t in m.tensors.iter().filter(|t| t.quant.is_some() && t.elements() <= 1 << 16) {
        let _ = modelmap::stats::tensor_stats(t);
        let view = HeatmapView::for_display(t);
        let _ = heatmap::value_at(t, &view, 0, 0);
        let _ = heatmap::tile(t, &view, 0, 0, 0, heatmap::Agg::MinMax);
    }
    let _ = modelmap::stats::neurons::find_dense_chains(&m);
});
