//! The training stage against the real corpus (`../shared/corpus`, or `$MODELMAP_CORPUS`):
//! TensorBoard event files written by tensorboardX and a CSV log, compared with `facts.json`
//! (values from TensorBoard's own `EventAccumulator`), plus corruption, partial-file, follow,
//! tensor-summary and rendering checks on copies and on files written here.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns may unwrap too"
)]

use std::path::{Path, PathBuf};

use modelmap::training::proto::{
    Event, HistogramProto, PluginData, Summary, SummaryMetadata, SummaryValue, TensorProto,
    TensorShapeDim, TensorShapeProto,
};
use modelmap::training::tfrecord::write_record;
use modelmap::training::{
    self, EventFileReader, HParam, PlotOptions, Run, Runs, RunsWatcher, load_runs,
};
use prost::Message as _;

mod common;
use common::corpus;

fn facts_for(corpus: &Path, rel: &str) -> serde_json::Value {
    common::facts(corpus)["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == rel)
        .unwrap_or_else(|| panic!("{rel} not in facts.json"))
        .clone()
}

/// The summaries hold f32 values; facts.json has them widened to f64. serde_json (without its
/// `float_roundtrip` feature) may parse a 17-digit decimal one ULP off, so compare at f32 (exact)
/// and within one f64 ULP.
fn same_value(ours: f64, fact: &serde_json::Value, what: &str) {
    let fact = fact.as_f64().unwrap();
    assert_eq!(ours as f32, fact as f32, "{what}");
    assert!(
        ours.to_bits().abs_diff(fact.to_bits()) <= 1,
        "{what}: {ours} vs {fact}"
    );
}

#[test]
fn tb_runs_match_facts() {
    let Some(corpus) = corpus() else { return };
    let facts = facts_for(&corpus, "generated/tb_runs");
    let runs = load_runs(corpus.join("generated/tb_runs")).unwrap();
    let names: Vec<&str> = runs.runs.iter().map(|r| r.name.as_str()).collect();
    let mut expected: Vec<&str> = facts["runs"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    expected.sort_unstable();
    assert_eq!(names, expected);
    for (name, run_facts) in facts["runs"].as_object().unwrap() {
        let run = runs.get(name).unwrap();
        assert!(run.issues.is_empty(), "{:?}", run.issues);
        let scalar_facts = run_facts["scalars"].as_object().unwrap();
        let mut tags: Vec<&String> = run.scalars.keys().collect();
        tags.sort();
        let mut want: Vec<&String> = scalar_facts.keys().collect();
        want.sort();
        assert_eq!(tags, want, "scalar tags of {name}");
        for (tag, f) in scalar_facts {
            let s = &run.scalars[tag];
            assert_eq!(
                s.len() as u64,
                f["count"].as_u64().unwrap(),
                "{name} {tag} count"
            );
            let (step, value) = s.first().unwrap();
            assert_eq!(step, f["first"][0].as_i64().unwrap());
            same_value(value, &f["first"][1], &format!("{name} {tag} first"));
            let (step, value) = s.last().unwrap();
            assert_eq!(step, f["last"][0].as_i64().unwrap());
            same_value(value, &f["last"][1], &format!("{name} {tag} last"));
            assert!(s.wall_times.iter().all(|t| *t > 1.5e9));
        }
        let hist_facts = run_facts["histograms"].as_object().unwrap();
        assert_eq!(run.histograms.len(), hist_facts.len());
        for (tag, f) in hist_facts {
            let h = &run.histograms[tag];
            assert_eq!(h.points.len() as u64, f["count"].as_u64().unwrap());
            assert_eq!(h.points[0].step, f["first_step"].as_i64().unwrap());
            let last = h.points.last().unwrap();
            assert_eq!(last.step, f["last_step"].as_i64().unwrap());
            assert_eq!(last.min, f["last_min"].as_f64().unwrap());
            assert_eq!(last.max, f["last_max"].as_f64().unwrap());
            assert_eq!(last.num, f["last_num"].as_f64().unwrap());
            let bucket_total: f64 = last.buckets.iter().map(|b| b.count).sum();
            assert_eq!(bucket_total, last.num);
            // Distribution bands are ordered and span min..max.
            let bands = training::distribution(h);
            let (_, _, b) = bands.last().unwrap();
            assert!(b.windows(2).all(|w| w[0] <= w[1]), "{b:?}");
            assert!(
                (b[0] - last.min).abs() < 1e-12 && (b[8] - last.max).abs() < 1e-12,
                "{b:?}"
            );
        }
    }
}

#[test]
fn metrics_csv_matches_facts() {
    let Some(corpus) = corpus() else { return };
    let facts = facts_for(&corpus, "generated/metrics.csv");
    let path = corpus.join("generated/metrics.csv");
    let runs = load_runs(&path).unwrap();
    assert_eq!(runs.runs.len(), 1);
    let run = &runs.runs[0];
    assert_eq!(run.name, "metrics.csv");
    let table = &run.logs[0];
    let columns: Vec<&str> = facts["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(table.columns, columns);
    let rows = facts["rows"].as_u64().unwrap() as usize;
    assert_eq!(table.rows, rows);
    // `step` is x; every other numeric column is a series with a point per row.
    for c in columns.iter().filter(|c| **c != "step") {
        assert_eq!(run.scalars[*c].len(), rows, "{c}");
    }
    let loss = &run.scalars["train_loss"];
    assert_eq!(loss.first(), Some((100, 2.0408183824277035)));
    assert_eq!(loss.steps.last(), Some(&5000));
}

fn event_file(corpus: &Path, run: &str) -> PathBuf {
    std::fs::read_dir(corpus.join("generated/tb_runs").join(run))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("tfevents"))
        .unwrap()
}

/// Offsets of every record in a TFRecord file.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut pos = 0;
    while pos + 12 <= bytes.len() {
        offsets.push(pos);
        let len = u64::from_le_bytes(bytes[pos..pos + 8].try_into().unwrap()) as usize;
        pos += 12 + len + 4;
    }
    offsets
}

#[test]
fn corrupted_record_is_reported_and_skipped() {
    let Some(corpus) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = event_file(&corpus, "run_a");
    let bytes = std::fs::read(&src).unwrap();
    let offsets = record_offsets(&bytes);
    let clean = load_runs(&src).unwrap();
    let clean_loss = &clean.runs[0].scalars["train/loss"];

    // Flip a byte in the length of record 100 and in the data of record 500.
    let mut bad = bytes.clone();
    let (len_at, data_at) = (offsets[100], offsets[500]);
    bad[len_at + 1] ^= 0x10;
    bad[data_at + 20] ^= 0x01;
    let path = dir.path().join("events.out.tfevents.1.bad");
    std::fs::write(&path, &bad).unwrap();
    let runs = load_runs(&path).unwrap();
    let run = &runs.runs[0];
    let offsets_reported: Vec<u64> = run.issues.iter().map(|i| i.offset).collect();
    assert_eq!(
        offsets_reported,
        vec![len_at as u64, data_at as u64],
        "{:?}",
        run.issues
    );
    assert!(run.issues[0].to_string().contains("length CRC"));
    assert!(
        run.issues[1]
            .to_string()
            .contains(&format!("at byte {data_at}"))
    );
    // Exactly two records lost; everything after them is still read.
    let total_clean: usize = clean.runs[0]
        .scalars
        .values()
        .map(|s| s.len())
        .sum::<usize>()
        + clean.runs[0]
            .histograms
            .values()
            .map(|h| h.points.len())
            .sum::<usize>();
    let total: usize = run.scalars.values().map(|s| s.len()).sum::<usize>()
        + run
            .histograms
            .values()
            .map(|h| h.points.len())
            .sum::<usize>();
    assert_eq!(total, total_clean - 2);
    assert_eq!(run.scalars["train/loss"].last(), clean_loss.last());
}

#[test]
fn partial_file_then_follow() {
    let Some(corpus) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = event_file(&corpus, "run_b");
    let bytes = std::fs::read(&src).unwrap();
    let offsets = record_offsets(&bytes);
    let run_dir = dir.path().join("live");
    std::fs::create_dir(&run_dir).unwrap();
    let path = run_dir.join("events.out.tfevents.2.host");
    // Cut in the middle of record 1000.
    let cut = offsets[1000] + 9;
    std::fs::write(&path, &bytes[..cut]).unwrap();

    let mut watcher = RunsWatcher::new(dir.path());
    let mut runs = Runs::default();
    assert!(watcher.poll(&mut runs).unwrap());
    let run = runs.get("live").unwrap();
    assert!(
        run.issues.is_empty(),
        "a partial record is not corruption: {:?}",
        run.issues
    );
    let n: usize = run.scalars.values().map(|s| s.len()).sum::<usize>()
        + run
            .histograms
            .values()
            .map(|h| h.points.len())
            .sum::<usize>();
    assert_eq!(
        n,
        1000 - 1,
        "records 1..1000 (record 0 is the file version)"
    );
    assert!(!watcher.poll(&mut runs).unwrap(), "nothing new");

    // The writer finishes the file: only the new records are read.
    std::fs::write(&path, &bytes).unwrap();
    assert!(watcher.poll(&mut runs).unwrap());
    let full = load_runs(&src).unwrap();
    assert_eq!(runs.get("live").unwrap().scalars, full.runs[0].scalars);
    assert_eq!(
        runs.get("live").unwrap().histograms,
        full.runs[0].histograms
    );
}

fn tensor_scalar(v: f32) -> TensorProto {
    TensorProto {
        dtype: 1,
        tensor_shape: Some(TensorShapeProto::default()),
        float_val: vec![v],
        ..TensorProto::default()
    }
}

fn metadata(plugin: &str, content: Vec<u8>) -> Option<SummaryMetadata> {
    Some(SummaryMetadata {
        plugin_data: Some(PluginData {
            plugin_name: plugin.to_owned(),
            content,
        }),
        ..SummaryMetadata::default()
    })
}

fn event(step: i64, values: Vec<SummaryValue>) -> Vec<u8> {
    Event {
        wall_time: 1_700_000_000.0 + step as f64,
        step,
        file_version: None,
        summary: Some(Summary { value: values }),
    }
    .encode_to_vec()
}

/// Tensor-based summaries as `tf.summary` and PyTorch's SummaryWriter write them.
#[test]
fn tensor_summaries_scalars_histograms_text_hparams() {
    let mut file = Vec::new();
    let version = Event {
        wall_time: 1.0,
        file_version: Some("brain.Event:2".into()),
        ..Event::default()
    };
    write_record(&mut file, &version.encode_to_vec());
    for step in 0..5i64 {
        let mut values = vec![SummaryValue {
            tag: "loss".into(),
            tensor: Some(tensor_scalar(1.0 / (step + 1) as f32)),
            metadata: if step == 0 {
                metadata("scalars", vec![])
            } else {
                None
            },
            ..SummaryValue::default()
        }];
        // A double scalar in tensor_content.
        values.push(SummaryValue {
            tag: "lr".into(),
            tensor: Some(TensorProto {
                dtype: 2,
                tensor_content: (0.1f64 * step as f64).to_le_bytes().to_vec(),
                ..TensorProto::default()
            }),
            metadata: if step == 0 {
                metadata("scalars", vec![])
            } else {
                None
            },
            ..SummaryValue::default()
        });
        // A [2, 3] histogram tensor.
        values.push(SummaryValue {
            tag: "w".into(),
            tensor: Some(TensorProto {
                dtype: 2,
                tensor_shape: Some(TensorShapeProto {
                    dim: vec![
                        TensorShapeDim {
                            size: 2,
                            name: String::new(),
                        },
                        TensorShapeDim {
                            size: 3,
                            name: String::new(),
                        },
                    ],
                    unknown_rank: false,
                }),
                double_val: vec![-1.0, 0.0, 3.0, 0.0, 2.0, 1.0 + step as f64],
                ..TensorProto::default()
            }),
            metadata: if step == 0 {
                metadata("histograms", vec![])
            } else {
                None
            },
            ..SummaryValue::default()
        });
        file.extend({
            let mut r = Vec::new();
            write_record(&mut r, &event(step, values));
            r
        });
    }
    // Text and an old-style HistogramProto.
    let text = SummaryValue {
        tag: "notes".into(),
        tensor: Some(TensorProto {
            dtype: 7,
            string_val: vec![b"hello".to_vec()],
            ..TensorProto::default()
        }),
        metadata: metadata("text", vec![]),
        ..SummaryValue::default()
    };
    let histo = SummaryValue {
        tag: "old".into(),
        histo: Some(HistogramProto {
            min: -2.0,
            max: 5.0,
            num: 4.0,
            sum: 3.0,
            sum_squares: 30.0,
            bucket_limit: vec![-3.0, 0.0, 1.0, 6.0, f64::MAX],
            bucket: vec![0.0, 2.0, 0.0, 2.0, 0.0],
        }),
        ..SummaryValue::default()
    };
    write_record(&mut file, &event(7, vec![text, histo]));
    // hparams: HParamsPluginData{session_start_info{hparams{"lr": 0.01, "opt": "adam"}}}.
    let start = modelmap::training::proto::HParamsPluginData {
        version: 0,
        session_start_info: Some(modelmap::training::proto::SessionStartInfo {
            hparams: [
                (
                    "lr".to_owned(),
                    modelmap::training::proto::ProtoValue {
                        number_value: Some(0.01),
                        ..Default::default()
                    },
                ),
                (
                    "opt".to_owned(),
                    modelmap::training::proto::ProtoValue {
                        string_value: Some("adam".into()),
                        ..Default::default()
                    },
                ),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        }),
    };
    let hp = SummaryValue {
        tag: "_hparams_/session_start_info".into(),
        tensor: Some(TensorProto {
            dtype: 1,
            ..TensorProto::default()
        }),
        metadata: metadata("hparams", start.encode_to_vec()),
        ..SummaryValue::default()
    };
    write_record(&mut file, &event(0, vec![hp]));

    let mut run = Run::new("t");
    let records = training::parse_event_bytes(Path::new("mem"), &file, &mut run);
    assert_eq!(records, 8);
    assert!(run.issues.is_empty(), "{:?}", run.issues);
    let expected: Vec<f64> = (0..5).map(|s| f64::from(1.0 / (s + 1) as f32)).collect();
    assert_eq!(run.scalars["loss"].values, expected);
    assert_eq!(run.scalars["lr"].values[3], 0.1 * 3.0);
    let w = &run.histograms["w"];
    assert_eq!(w.points.len(), 5);
    assert_eq!(
        (w.points[4].min, w.points[4].max, w.points[4].num),
        (-1.0, 2.0, 8.0)
    );
    assert_eq!(run.texts["notes"][0].text, "hello");
    let old = &run.histograms["old"].points[0];
    let edges: Vec<(f64, f64, f64)> = old
        .buckets
        .iter()
        .map(|b| (b.left, b.right, b.count))
        .collect();
    assert_eq!(
        edges,
        vec![(-2.0, 0.0, 2.0), (0.0, 1.0, 0.0), (1.0, 5.0, 2.0)]
    );
    assert_eq!(run.hparams["lr"], HParam::Number(0.01));
    assert_eq!(run.hparams["opt"], HParam::Text("adam".into()));
    assert!(!run.scalars.contains_key("_hparams_/session_start_info"));
}

#[test]
fn folder_of_runs_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("exp1/seed_0");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(
        nested.join("log.jsonl"),
        "{\"step\":1,\"loss\":3}\n{\"step\":2,\"loss\":2}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("metrics.csv"), "epoch,acc\n0,0.5\n1,0.7\n").unwrap();
    let mut file = Vec::new();
    write_record(
        &mut file,
        &event(
            5,
            vec![SummaryValue {
                tag: "loss".into(),
                simple_value: Some(1.5),
                ..SummaryValue::default()
            }],
        ),
    );
    std::fs::write(nested.join("events.out.tfevents.9.h"), &file).unwrap();
    let runs = load_runs(dir.path()).unwrap();
    let names: Vec<&str> = runs.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec![".", "exp1/seed_0"]);
    let seed = runs.get("exp1/seed_0").unwrap();
    // JSONL and the event file of one folder are one run.
    let mut steps = seed.scalars["loss"].steps.clone();
    steps.sort_unstable();
    assert_eq!(steps, vec![1, 2, 5]);
    assert_eq!(runs.get(".").unwrap().scalars["acc"].values, vec![0.5, 0.7]);
    assert!(load_runs(dir.path().join("nope")).is_err());
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        load_runs(empty.path()),
        Err(training::TrainingError::NoLogs { .. })
    ));
}

#[test]
fn renders_png_and_json() {
    let Some(corpus) = corpus() else { return };
    let runs = load_runs(corpus.join("generated/tb_runs")).unwrap();
    let opts = PlotOptions {
        width: 800,
        height: 300,
        ..PlotOptions::default()
    };
    let (w, h, rgba) = training::render_curves_rgba(&runs, &opts).unwrap();
    assert_eq!((w, h), (800, 300));
    // Both run colours appear (orange run_a, blue run_b), solid somewhere.
    let has = |c: [u8; 3]| {
        rgba.chunks_exact(4)
            .any(|p| p[0] == c[0] && p[1] == c[1] && p[2] == c[2])
    };
    assert!(has(training::plot::run_color(0)));
    assert!(has(training::plot::run_color(1)));
    let png = training::render_curves_png(&runs, &opts).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    if let Ok(out) = std::env::var("MODELMAP_CURVES_PNG") {
        let full = training::render_curves_png(&runs, &PlotOptions::default()).unwrap();
        std::fs::write(out, full).unwrap();
    }

    let json = training::curves_json(&runs, &["loss".to_owned()], 0.6);
    let run_a = &json["runs"][0];
    assert_eq!(run_a["name"], "run_a");
    let points = run_a["scalars"]["train/loss"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 2000);
    assert_eq!(points[0][1], 0);
    assert_eq!(points[0][2].as_f64().unwrap(), 2.5022058486938477);
    assert!(run_a["scalars"].get("train/accuracy").is_none());
    assert_eq!(
        run_a["scalars"]["train/loss"]["smoothed"]
            .as_array()
            .unwrap()
            .len(),
        2000
    );
}

#[test]
fn reader_reports_offsets_incrementally() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.out.tfevents.3.h");
    let mut file = Vec::new();
    for step in 0..10 {
        write_record(
            &mut file,
            &event(
                step,
                vec![SummaryValue {
                    tag: "x".into(),
                    simple_value: Some(step as f32),
                    ..SummaryValue::default()
                }],
            ),
        );
    }
    std::fs::write(&path, &file[..file.len() / 2]).unwrap();
    let mut reader = EventFileReader::new(&path);
    let mut run = Run::new("r");
    let first = reader.read_new(&mut run).unwrap();
    assert!(first > 0 && first < 10);
    assert!(reader.offset() < file.len() as u64 / 2 + 1);
    std::fs::write(&path, &file).unwrap();
    assert_eq!(first + reader.read_new(&mut run).unwrap(), 10);
    assert_eq!(
        run.scalars["x"].values,
        (0..10).map(f64::from).collect::<Vec<_>>()
    );
    assert_eq!(reader.offset(), file.len() as u64);
}

/// The tfevents bench through the library (no CLI needed): `MODELMAP_BENCH_MB=150 cargo test
/// --test training bench_tfevents -- --ignored --nocapture`. Ignored: it writes a large file.
#[test]
#[ignore = "benchmark; run explicitly"]
fn bench_tfevents() {
    let size_mb = std::env::var("MODELMAP_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let args = modelmap::bench::tfevents::TfeventsBenchArgs {
        size_mb,
        file: None,
        repeat: 3,
        no_python: std::env::var_os("MODELMAP_BENCH_NO_PYTHON").is_some(),
        json: true,
    };
    let report = modelmap::bench::tfevents::run(&args).unwrap();
    if let Some(n) = report.tensorboard_points {
        assert_eq!(n, report.points, "both readers see every point");
    }
}

/// A log folder, an event file or a CSV opens as training logs; a model, or a model folder that
/// also keeps its `runs/`, does not.
#[test]
fn training_logs_are_told_from_models() {
    let Some(corpus) = corpus() else { return };
    let tb = corpus.join("generated/tb_runs");
    assert!(training::looks_like_logs(&tb));
    assert!(training::looks_like_logs(
        &corpus.join("generated/metrics.csv")
    ));
    let event = std::fs::read_dir(tb.join("run_a"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(training::looks_like_logs(&event));
    assert!(!training::looks_like_logs(
        &corpus.join("generated/llama_tiny_st")
    ));
    assert!(!training::looks_like_logs(
        &corpus.join("generated/llama_tiny_4l.onnx")
    ));

    // A Hugging Face style folder: the weights, and the logs of the run that made them.
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs/exp1");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::copy(&event, runs.join("events.out.tfevents.1.host")).unwrap();
    assert!(training::looks_like_logs(tmp.path()));
    std::fs::copy(
        corpus.join("generated/llama_tiny_st/model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    assert!(!training::looks_like_logs(tmp.path()));
    // An empty folder is neither: it opens as a tab that says what is missing.
    let empty = tempfile::tempdir().unwrap();
    assert!(!training::looks_like_logs(empty.path()));
}
