//! Criterion benches for tensor statistics and heatmap tiles on in-memory tensors (a few tens of MB,
//! so they run in seconds); the 2.5 GB figures come from `modelmap bench stats`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use modelmap::model::{DType, Tensor};
use modelmap::stats::heatmap::{Agg, HeatmapView, tile, tile_preview};
use modelmap::stats::tensor_stats;

fn tensor(name: &str, dtype: DType, shape: &[u64], bytes: Vec<u8>) -> Tensor {
    Tensor::from_bytes(name, dtype, shape, bytes)
}

/// Deterministic pseudo-random f32 in [-0.05, 0.05).
fn values(n: usize) -> Vec<f32> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / 16_777_216.0 - 0.5) * 0.1
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let n = 4096 * 4096;
    let v = values(n);
    let bf16: Vec<u8> = v
        .iter()
        .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
        .collect();
    let f32b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let tb = tensor("bf16", DType::BF16, &[4096, 4096], bf16);
    let tf = tensor("f32", DType::F32, &[4096, 4096], f32b);

    let mut g = c.benchmark_group("stats");
    g.sample_size(10);
    g.throughput(Throughput::Bytes((n * 2) as u64));
    g.bench_function("stats_bf16_16m", |b| b.iter(|| tensor_stats(&tb)));
    g.throughput(Throughput::Bytes((n * 4) as u64));
    g.bench_function("stats_f32_16m", |b| b.iter(|| tensor_stats(&tf)));
    g.finish();

    let view = HeatmapView::for_tensor(&tb);
    let top = view.levels() - 1;
    let mut g = c.benchmark_group("heatmap");
    g.sample_size(10);
    g.bench_function("tile_top_exact_bf16_4096x4096", |b| {
        b.iter(|| tile(&tb, &view, top, 0, 0, Agg::Mean))
    });
    g.bench_function("tile_top_preview_bf16_4096x4096", |b| {
        b.iter(|| tile_preview(&tb, &view, top, 0, 0, Agg::Mean))
    });
    g.bench_function("tile_level0_bf16", |b| {
        b.iter(|| tile(&tb, &view, 0, 3, 5, Agg::Mean))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
