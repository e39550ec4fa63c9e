//! Precision–recall curves (TensorBoard's `pr_curves` plugin) written by PyTorch's
//! `SummaryWriter.add_pr_curve`, against what TensorBoard's EventAccumulator reads back
//! (`tests/data/training/pr/make_pr.py`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns may unwrap too"
)]

use std::path::{Path, PathBuf};

use modelmap::training::load_runs;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/training/pr")
}

#[test]
fn add_pr_curve_matches_tensorboard() {
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("facts.json")).unwrap()).unwrap();
    let runs = load_runs(root()).unwrap();
    assert_eq!(runs.pr_tags(), ["val/pr"]);
    for (name, tags) in facts.as_object().unwrap() {
        let run = runs.get(name).unwrap();
        assert!(run.issues.is_empty(), "{:?}", run.issues);
        assert_eq!(
            run.scalars["val/loss"].len(),
            3,
            "scalars beside the curves"
        );
        for (tag, entries) in tags.as_object().unwrap() {
            let ours = &run.pr_curves[tag];
            let entries = entries.as_array().unwrap();
            assert_eq!(ours.len(), entries.len());
            for (curve, e) in ours.iter().zip(entries) {
                assert_eq!(curve.step, e["step"].as_i64().unwrap());
                let rows = e["data"].as_array().unwrap();
                assert_eq!(rows.len(), 6);
                let ours_rows = [
                    &curve.tp,
                    &curve.fp,
                    &curve.tn,
                    &curve.fn_,
                    &curve.precision,
                    &curve.recall,
                ];
                for (k, (row, fact)) in ours_rows.iter().zip(rows).enumerate() {
                    let fact: Vec<f64> = fact
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().unwrap())
                        .collect();
                    assert_eq!(row.len(), 33, "thresholds");
                    // f32 in the file, widened exactly by both sides.
                    let as_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
                    assert_eq!(as_f32(row), as_f32(&fact), "{name} {tag} row {k}");
                }
                // Recall falls as the threshold rises; at the lowest threshold everything is
                // predicted positive.
                assert_eq!(curve.recall[0], 1.0);
                assert!(curve.recall.windows(2).all(|w| w[0] >= w[1]));
                assert_eq!(curve.fn_[0], 0.0);
            }
        }
    }
    let json = modelmap::training::curves_json(&runs, &[], 0.0);
    assert_eq!(
        json["runs"][0]["pr_curves"]["val/pr"][2]["recall"]
            .as_array()
            .unwrap()
            .len(),
        33
    );
}
