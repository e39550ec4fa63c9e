//! Criterion: decoding an in-memory event file of scalars (both CRCs of every record checked).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use modelmap::training::proto::{Event, Summary, SummaryValue};
use modelmap::training::tfrecord::write_record;
use modelmap::training::{Run, parse_event_bytes};
use prost::Message as _;

fn synthetic(events: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    for i in 0..events {
        let event = Event {
            wall_time: 1.7e9 + i as f64,
            step: (i / 4) as i64,
            file_version: None,
            summary: Some(Summary {
                value: vec![SummaryValue {
                    tag: ["train/loss", "train/accuracy", "lr", "grad/norm"][i % 4].to_owned(),
                    simple_value: Some(1.0 / (1.0 + i as f32)),
                    ..SummaryValue::default()
                }],
            }),
        };
        write_record(&mut buf, &event.encode_to_vec());
    }
    buf
}

fn bench(c: &mut Criterion) {
    let data = synthetic(100_000);
    let mut group = c.benchmark_group("tfevents");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("parse_scalars_100k_events", |b| {
        b.iter(|| {
            let mut run = Run::new("bench");
            parse_event_bytes(std::path::Path::new("mem"), &data, &mut run)
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
