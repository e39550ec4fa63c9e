//! W&B run files (`run-<id>.wandb`) against what wandb 0.31's own SDK wrote into them
//! (`tests/data/training/wandb/make_wandb.py`: two offline runs, the values logged kept in
//! `facts.json`, and what the SDK adds itself read back with wandb's protobuf classes), plus cut,
//! growing and damaged copies.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns may unwrap too"
)]

use std::path::{Path, PathBuf};

use modelmap::training::{self, HParam, Run, Runs, RunsWatcher, load_runs};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/training/wandb")
}

fn facts() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("facts.json")).unwrap()).unwrap()
}

/// serde_json (without `float_roundtrip`) may read a 17-digit decimal one ULP off.
fn close(ours: f64, fact: f64, what: &str) {
    assert!(
        ours == fact || (ours - fact).abs() <= fact.abs() * 4e-16,
        "{what}: {ours} vs {fact}"
    );
}

fn check_run(run: &Run, fact: &serde_json::Value) {
    let name = &run.name;
    assert!(run.issues.is_empty(), "{name}: {:?}", run.issues);
    for (tag, points) in fact["scalars"].as_object().unwrap() {
        let series = run
            .scalars
            .get(tag)
            .unwrap_or_else(|| panic!("{name}: no scalar {tag}"));
        let points = points.as_array().unwrap();
        assert_eq!(series.len(), points.len(), "{name} {tag}");
        for (i, p) in points.iter().enumerate() {
            assert_eq!(
                series.steps[i],
                p[0].as_i64().unwrap(),
                "{name} {tag} [{i}]"
            );
            match p[1].as_f64() {
                Some(v) => close(series.values[i], v, &format!("{name} {tag} [{i}]")),
                None => assert!(series.values[i].is_nan(), "{name} {tag} [{i}] is NaN"),
            }
            let wall = fact["wall_time"][series.steps[i].to_string()]
                .as_f64()
                .unwrap();
            close(
                series.wall_times[i],
                wall,
                &format!("{name} {tag} time [{i}]"),
            );
        }
    }
    for (tag, points) in fact["histograms"].as_object().unwrap() {
        let series = &run.histograms[tag].points;
        let points = points.as_array().unwrap();
        assert_eq!(series.len(), points.len(), "{name} {tag}");
        for (h, p) in series.iter().zip(points) {
            assert_eq!(h.step, p["step"].as_i64().unwrap());
            let bins: Vec<f64> = p["bins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let counts: Vec<f64> = p["counts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            // Empty buckets at both ends are dropped, as TensorBoard's are.
            let first = counts.iter().position(|&c| c > 0.0).unwrap();
            let last = counts.iter().rposition(|&c| c > 0.0).unwrap();
            assert_eq!(
                h.buckets.len(),
                last - first + 1,
                "{name} {tag} @{}",
                h.step
            );
            for (b, i) in h.buckets.iter().zip(first..) {
                close(b.left, bins[i], "left edge");
                close(b.right, bins[i + 1], "right edge");
                assert_eq!(b.count, counts[i]);
            }
            assert_eq!(h.num, counts.iter().sum::<f64>());
        }
    }
    for (tag, entries) in fact["texts"].as_object().unwrap() {
        let ours = &run.texts[tag];
        let entries = entries.as_array().unwrap();
        assert_eq!(ours.len(), entries.len());
        for (t, e) in ours.iter().zip(entries) {
            assert_eq!(t.step, e[0].as_i64().unwrap());
            assert_eq!(t.text, e[1].as_str().unwrap());
        }
    }
    for (key, value) in fact["config"].as_object().unwrap() {
        let ours = run
            .hparams
            .get(key)
            .unwrap_or_else(|| panic!("{name}: no config {key}"));
        let want = match value {
            serde_json::Value::Bool(b) => HParam::Bool(*b),
            serde_json::Value::String(s) => HParam::Text(s.clone()),
            v => HParam::Number(v.as_f64().unwrap()),
        };
        assert_eq!(ours, &want, "{name} config {key}");
    }
    assert_eq!(
        run.hparams["wandb.project"],
        HParam::Text(fact["project"].as_str().unwrap().to_owned())
    );
    assert!(
        !run.hparams.keys().any(|k| k.starts_with("_wandb")),
        "W&B's own config is left out"
    );
    let images = fact["images"].as_object().unwrap();
    assert_eq!(run.images.len(), images.len(), "{name}: image tags");
    for (tag, entries) in images {
        let ours = &run.images[tag];
        let entries = entries.as_array().unwrap();
        assert_eq!(ours.len(), entries.len(), "{name} {tag}");
        for (image, e) in ours.iter().zip(entries) {
            assert_eq!(image.step, e["step"].as_i64().unwrap());
            assert_eq!(image.sample as u64, e["sample"].as_u64().unwrap());
            let size = [
                e["width"].as_u64().unwrap() as u32,
                e["height"].as_u64().unwrap() as u32,
            ];
            assert_eq!(image.size, size);
            let (w, h, rgba) = image.decode_rgba().unwrap();
            assert_eq!([w, h], size);
            let sum: u64 = rgba.iter().map(|&b| u64::from(b)).sum();
            assert_eq!(sum, e["rgba_sum"].as_u64().unwrap(), "{name} {tag} pixels");
            assert!(
                image.file.starts_with(root()),
                "media read beside the run file"
            );
        }
    }
    let system = fact["system"].as_object().unwrap();
    let ours_system = run
        .scalars
        .keys()
        .filter(|k| k.starts_with("system/"))
        .count();
    assert_eq!(ours_system, system.len(), "{name}: system metrics");
    for (key, values) in system {
        let series = &run.scalars[&format!("system/{key}")];
        let values = values.as_array().unwrap();
        assert_eq!(series.len(), values.len(), "{name} system/{key}");
        for (i, v) in values.iter().enumerate() {
            close(
                series.values[i],
                v[1].as_f64().unwrap(),
                &format!("system/{key}"),
            );
            assert_eq!(series.steps[i], v[0].as_i64().unwrap(), "sample number");
        }
    }
}

#[test]
fn runs_match_what_wandb_wrote() {
    let facts = facts();
    let runs = load_runs(root()).unwrap();
    let names: Vec<&str> = runs.runs.iter().map(|r| r.name.as_str()).collect();
    let mut want: Vec<&str> = facts["runs"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    want.sort_unstable();
    assert_eq!(names, want, "runs named by display name and id");
    let with_system = facts["runs"]
        .as_object()
        .unwrap()
        .values()
        .filter(|f| !f["system"].as_object().unwrap().is_empty())
        .count();
    assert_eq!(with_system, 1, "one fixture run samples system metrics");
    for run in &runs.runs {
        check_run(run, &facts["runs"][&run.name]);
    }
    // System metrics come after the logged charts.
    let tags = runs.scalar_tags();
    let first_system = tags.iter().position(|t| t.starts_with("system/")).unwrap();
    assert!(
        tags[first_system..]
            .iter()
            .all(|t| t.starts_with("system/"))
    );
    assert!(tags.contains(&"train/loss".to_owned()));
}

fn run_file(fact: &serde_json::Value) -> PathBuf {
    root().join(fact["file"].as_str().unwrap())
}

/// One run's file, or its `wandb/` folder, opens as training logs under the same name.
#[test]
fn file_and_folders_open_as_logs() {
    let facts = facts();
    let (name, fact) = facts["runs"].as_object().unwrap().iter().next().unwrap();
    let file = run_file(fact);
    assert!(training::looks_like_logs(&file));
    assert!(training::looks_like_logs(&root()));
    assert!(training::looks_like_logs(&root().join("wandb")));
    let shown = name.strip_prefix("wandb/").unwrap();
    for path in [file.clone(), file.parent().unwrap().to_path_buf()] {
        let runs = load_runs(&path).unwrap();
        assert_eq!(runs.runs.len(), 1);
        assert_eq!(runs.runs[0].name, shown, "{}", path.display());
        check_run(&runs.runs[0], fact);
    }
    let runs = load_runs(root().join("wandb")).unwrap();
    assert!(runs.get(shown).is_some());
}

/// A run still being written: whatever prefix of the file exists reads without an issue, and the
/// rest is picked up as it is appended; every cut reads a prefix of the whole run.
#[test]
fn growing_file_reads_whole_records_only() {
    let facts = facts();
    let (name, fact) = facts["runs"].as_object().unwrap().iter().next().unwrap();
    let bytes = std::fs::read(run_file(fact)).unwrap();
    let whole = load_runs(run_file(fact)).unwrap().runs.remove(0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run-live.wandb");
    let mut watcher = RunsWatcher::new(&path);
    let mut runs = Runs::default();
    let mut steps_seen = 0;
    for cut in [
        0,
        3,
        7,
        100,
        5000,
        20_000,
        32_768,
        32_770,
        40_000,
        bytes.len(),
    ] {
        let cut = cut.min(bytes.len());
        std::fs::write(&path, &bytes[..cut]).unwrap();
        watcher.poll(&mut runs).unwrap();
        let run = &runs.runs[0];
        assert!(
            run.issues.is_empty(),
            "{name} cut at {cut}: {:?}",
            run.issues
        );
        let steps = run.scalars.get("train/loss").map_or(0, |s| s.len());
        assert!(steps >= steps_seen, "never fewer");
        steps_seen = steps;
        if let Some(s) = run.scalars.get("train/loss") {
            let n = s.len();
            assert_eq!(s.steps[..], whole.scalars["train/loss"].steps[..n]);
        }
    }
    // Debug text, so that a NaN loss compares equal to itself.
    let run = &runs.runs[0];
    assert_eq!(format!("{:?}", run.scalars), format!("{:?}", whole.scalars));
    assert_eq!(
        format!("{:?}", run.histograms),
        format!("{:?}", whole.histograms)
    );
    assert_eq!(run.hparams, whole.hparams);
}

/// A damaged record is an issue naming the file and its offset; the records after it still read.
#[test]
fn damaged_and_truncated_files() {
    let facts = facts();
    let (_, fact) = facts["runs"]
        .as_object()
        .unwrap()
        .iter()
        .next_back()
        .unwrap();
    let bytes = std::fs::read(run_file(fact)).unwrap();
    let whole = load_runs(run_file(fact)).unwrap().runs.remove(0);
    let dir = tempfile::tempdir().unwrap();

    let damaged = dir.path().join("run-damaged.wandb");
    let mut copy = bytes.clone();
    copy[10_000] ^= 0x55;
    std::fs::write(&damaged, &copy).unwrap();
    let run = load_runs(&damaged).unwrap().runs.remove(0);
    assert_eq!(run.issues.len(), 1, "{:?}", run.issues);
    let issue = &run.issues[0];
    assert_eq!(issue.path, damaged);
    assert!(issue.offset <= 10_000 && issue.offset >= 7, "{issue}");
    assert!(issue.what.contains("CRC"), "{issue}");
    let ours = run.scalars["train/loss"].len();
    let all = whole.scalars["train/loss"].len();
    assert!(ours < all && ours > 0, "{ours} of {all} steps read");
    // Rows from the next block on are there.
    assert_eq!(
        run.scalars["train/loss"].steps.last(),
        whole.scalars["train/loss"].steps.last()
    );

    // Not a W&B file at all: an issue, no series, no panic.
    let other = dir.path().join("run-other.wandb");
    std::fs::write(&other, b"PK\x03\x04 this is a zip").unwrap();
    let run = load_runs(&other).unwrap().runs.remove(0);
    assert!(run.issues[0].what.contains("W&B"), "{}", run.issues[0]);
    assert!(run.scalars.is_empty());

    // Garbage that passes the CRC is still no panic: fuzz-style sweep of single-byte changes
    // in the header region of every record of the first block.
    for at in (7..2_000).step_by(37) {
        let mut copy = bytes.clone();
        copy[at] = copy[at].wrapping_add(1);
        let path = dir.path().join(format!("run-{at}.wandb"));
        std::fs::write(&path, &copy).unwrap();
        let run = load_runs(&path).unwrap().runs.remove(0);
        assert!(
            !run.issues.is_empty() || run.scalars == whole.scalars,
            "byte {at}: a change is either reported or harmless"
        );
    }
}

/// `info`, `stats` and `render` given a training log say what it is and which command reads it.
#[test]
fn model_commands_point_logs_to_curves() {
    for args in [
        vec!["info"],
        vec!["stats"],
        vec!["render", "-o", "/dev/null"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_modelmap"))
            .args(&args)
            .arg(root())
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is a training log") && err.contains("modelmap curves"),
            "{args:?}: {err}"
        );
    }
}
