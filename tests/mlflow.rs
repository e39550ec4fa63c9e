//! MLflow's file store (`mlruns/`) against what MLflow's own tracking API reads back from it
//! (`tests/data/training/mlflow/make_mlflow.py`, mlflow-skinny 3.17.2), plus a store that grows
//! while it is followed and one with a damaged line.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns may unwrap too"
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use modelmap::training::{self, HParam, Runs, RunsWatcher, load_runs};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/training/mlflow")
}

fn facts() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("facts.json")).unwrap()).unwrap()
}

/// `lm-sweep/baseline` and its run id → the name modelmap gives the run.
fn shown(name: &str, fact: &serde_json::Value) -> String {
    format!("{name} ({})", &fact["run_id"].as_str().unwrap()[..8])
}

/// The runs are the facts' live runs, in name order (the deleted one is left out).
fn assert_names(runs: &Runs, facts: &serde_json::Value) {
    let mut want: Vec<String> = facts["runs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, fact)| shown(name, fact))
        .collect();
    want.sort();
    let names: Vec<&str> = runs.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, want, "the deleted run is left out");
}

#[test]
fn runs_match_mlflow_tracking_api() {
    let facts = facts();
    let runs = load_runs(root().join("mlruns")).unwrap();
    assert_names(&runs, &facts);
    assert!(!runs.runs.iter().any(|r| r.name.contains("aborted")));
    for (name, fact) in facts["runs"].as_object().unwrap() {
        let run = runs.get(&shown(name, fact)).unwrap();
        assert!(run.issues.is_empty(), "{name}: {:?}", run.issues);
        let metrics = fact["metrics"].as_object().unwrap();
        assert_eq!(run.scalars.len(), metrics.len(), "{name}");
        for (key, points) in metrics {
            let series = &run.scalars[key];
            let points = points.as_array().unwrap();
            assert_eq!(series.len(), points.len(), "{name} {key}");
            for (i, p) in points.iter().enumerate() {
                assert_eq!(
                    series.steps[i],
                    p[0].as_i64().unwrap(),
                    "{name} {key} [{i}]"
                );
                match p[1].as_f64() {
                    // serde_json (without `float_roundtrip`) may read a 17-digit decimal one
                    // ULP off; Rust's own parse, which modelmap uses, is exact.
                    Some(v) => assert!(
                        series.values[i].to_bits().abs_diff(v.to_bits()) <= 1,
                        "{name} {key} [{i}]: {} vs {v}",
                        series.values[i]
                    ),
                    None => assert!(series.values[i].is_nan(), "{name} {key} [{i}]"),
                }
                let wall = p[2].as_f64().unwrap();
                assert!(
                    (series.wall_times[i] - wall).abs() < 1e-6,
                    "{name} {key} time"
                );
            }
        }
        check_params(run, fact, name);
        assert!(!run.hparams.keys().any(|k| k.starts_with("tag.mlflow.")));
    }
    // A NaN logged by MLflow (`nan`) reads as NaN.
    let high = runs
        .runs
        .iter()
        .find(|r| r.name.contains("high-lr"))
        .unwrap();
    assert!(high.scalars["train/loss"].values[21].is_nan());
}

/// A run's params (as MLflow's API returns them, text), user tags and status.
fn check_params(run: &modelmap::training::Run, fact: &serde_json::Value, name: &str) {
    for (key, value) in fact["params"].as_object().unwrap() {
        let value = value.as_str().unwrap();
        let want = match value {
            "True" => HParam::Bool(true),
            v => v
                .parse::<f64>()
                .map_or_else(|_| HParam::Text(v.to_owned()), HParam::Number),
        };
        assert_eq!(run.hparams[key], want, "{name} param {key}");
    }
    for (key, value) in fact["tags"].as_object().unwrap() {
        assert_eq!(
            run.hparams[&format!("tag.{key}")],
            HParam::Text(value.as_str().unwrap().to_owned())
        );
    }
    assert_eq!(
        run.hparams["mlflow.status"],
        HParam::Text(fact["status"].as_str().unwrap().to_owned())
    );
}

fn copy_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    copy(&root().join("mlruns"), &dir.path().join("mlruns"));
    dir
}

fn loss_file(store: &Path, run_id: &str) -> PathBuf {
    for exp in std::fs::read_dir(store).unwrap() {
        let p = exp.unwrap().path().join(run_id).join("metrics/train/loss");
        if p.is_file() {
            return p;
        }
    }
    panic!("no metrics/train/loss for {run_id}");
}

/// The run folder of its `metrics/train/loss` file.
fn run_folder(loss: &Path) -> PathBuf {
    loss.ancestors().nth(3).unwrap().to_path_buf()
}

/// A project folder holding `mlruns/` opens as logs; so do the store, an experiment, a run.
#[test]
fn store_experiment_and_run_open_as_logs() {
    let facts = facts();
    let (name, fact) = facts["runs"].as_object().unwrap().iter().next().unwrap();
    let store = root().join("mlruns");
    assert!(training::looks_like_logs(&root()));
    assert!(training::looks_like_logs(&store));
    let run_dir = run_folder(&loss_file(&store, fact["run_id"].as_str().unwrap()));
    assert!(training::looks_like_logs(&run_dir));
    let runs = load_runs(&run_dir).unwrap();
    assert_eq!(runs.runs.len(), 1);
    assert_eq!(runs.runs[0].name, shown(name, fact));
    let runs = load_runs(root()).unwrap();
    assert!(runs.get(&format!("mlruns/{}", shown(name, fact))).is_some());
    let runs = load_runs(run_dir.parent().unwrap()).unwrap();
    assert_eq!(runs.runs.len(), 2, "the experiment's two live runs");
}

/// Following a run as it logs: lines appended are read, a line being written waits, and a
/// damaged line is an issue with its offset while the lines after it still read.
#[test]
fn growing_and_damaged_metric_files() {
    let facts = facts();
    let (name, fact) = facts["runs"].as_object().unwrap().iter().next().unwrap();
    let tmp = copy_store();
    let store = tmp.path().join("mlruns");
    let loss = loss_file(&store, fact["run_id"].as_str().unwrap());
    let run_name = shown(name, fact);
    let mut watcher = RunsWatcher::new(&store);
    let mut runs = Runs::default();
    assert!(watcher.poll(&mut runs).unwrap());
    let before = runs.get(&run_name).unwrap().scalars["train/loss"].len();
    assert!(!watcher.poll(&mut runs).unwrap(), "nothing new");

    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&loss)
        .unwrap();
    let at = f.metadata().unwrap().len();
    write!(
        f,
        "1795988500000 0.125 40\nnot a metric line\n1795988500100 0.0625 41\n1795988500200 0.03"
    )
    .unwrap();
    drop(f);
    assert!(watcher.poll(&mut runs).unwrap());
    let run = runs.get(&run_name).unwrap();
    let series = &run.scalars["train/loss"];
    assert_eq!(series.len(), before + 2, "the unfinished last line waits");
    assert_eq!(series.steps[before..], [40, 41]);
    assert_eq!(series.values[before + 1], 0.0625);
    assert_eq!(run.issues.len(), 1);
    assert_eq!(run.issues[0].path, loss);
    assert_eq!(
        run.issues[0].offset,
        at + "1795988500000 0.125 40\n".len() as u64
    );

    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&loss)
        .unwrap();
    writeln!(f, "125 42").unwrap();
    drop(f);
    assert!(watcher.poll(&mut runs).unwrap());
    let series = &runs.get(&run_name).unwrap().scalars["train/loss"];
    assert_eq!(series.steps.last(), Some(&42));
    assert_eq!(series.values.last(), Some(&0.03125));

    // A new param appears in the table.
    let params = run_folder(&loss).join("params");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(params.join("warmup"), "8").unwrap();
    assert!(watcher.poll(&mut runs).unwrap());
    assert_eq!(
        runs.get(&run_name).unwrap().hparams["warmup"],
        HParam::Number(8.0)
    );
}

fn db_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/training/mlflow_db")
}

/// MLflow's SQLite store (`mlflow.db`) against MLflow's tracking API on the same file.
#[test]
fn sqlite_store_matches_mlflow_tracking_api() {
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(db_root().join("facts.json")).unwrap())
            .unwrap();
    let db = db_root().join("mlflow.db");
    assert!(training::looks_like_logs(&db));
    assert!(training::looks_like_logs(&db_root()));
    let runs = load_runs(&db).unwrap();
    assert_names(&runs, &facts);
    for (name, fact) in facts["runs"].as_object().unwrap() {
        let run = runs.get(&shown(name, fact)).unwrap();
        assert!(run.issues.is_empty());
        let metrics = fact["metrics"].as_object().unwrap();
        assert_eq!(run.scalars.len(), metrics.len(), "{name}");
        for (key, points) in metrics {
            let s = &run.scalars[key];
            // MLflow's API sorts its history by nothing in particular: compare sorted by step.
            let mut ours: Vec<(i64, f64, f64)> = (0..s.len())
                .map(|i| (s.steps[i], s.values[i], s.wall_times[i]))
                .collect();
            ours.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.total_cmp(&b.2)));
            let points = points.as_array().unwrap();
            assert_eq!(ours.len(), points.len(), "{name} {key}");
            for ((step, value, wall), p) in ours.iter().zip(points) {
                assert_eq!(*step, p[0].as_i64().unwrap());
                match p[1].as_f64() {
                    Some(v) => assert!(value.to_bits().abs_diff(v.to_bits()) <= 1, "{name} {key}"),
                    None => assert!(value.is_nan(), "{name} {key} NaN"),
                }
                assert!((wall - p[2].as_f64().unwrap()).abs() < 1e-6);
            }
        }
        check_params(run, fact, name);
    }
}

/// A store being written: new metric rows are read, and only they; a damaged file is an error
/// naming it; a SQLite file of something else is no training log.
#[test]
fn sqlite_store_followed_and_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("mlflow.db");
    std::fs::copy(db_root().join("mlflow.db"), &db).unwrap();
    let mut watcher = RunsWatcher::new(tmp.path());
    let mut runs = Runs::default();
    assert!(watcher.poll(&mut runs).unwrap());
    let base = runs
        .runs
        .iter()
        .find(|r| r.name.contains("baseline"))
        .unwrap()
        .clone();
    let before = base.scalars["train/loss"].len();
    assert!(!watcher.poll(&mut runs).unwrap(), "nothing new");

    let id: String = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let id: String = conn
            .query_row(
                "SELECT run_uuid FROM runs WHERE name = 'baseline'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        conn.execute(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES \
             ('train/loss', 0.125, 1795990000000, ?1, 30, 0), ('train/loss', 0, 1795990000100, ?1, 31, 1)",
            [&id],
        )
        .unwrap();
        id
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(watcher.poll(&mut runs).unwrap());
    let run = runs
        .runs
        .iter()
        .find(|r| r.name.contains(&id[..8]))
        .unwrap();
    let loss = &run.scalars["train/loss"];
    assert_eq!(
        loss.len(),
        before + 2,
        "the two new rows, nothing read twice"
    );
    assert_eq!(loss.steps[before..], [30, 31]);
    assert_eq!(loss.values[before], 0.125);
    assert!(loss.values[before + 1].is_nan());

    // Half a store.
    let cut = tmp.path().join("cut");
    std::fs::create_dir(&cut).unwrap();
    let bytes = std::fs::read(db_root().join("mlflow.db")).unwrap();
    std::fs::write(cut.join("mlflow.db"), &bytes[..bytes.len() / 2]).unwrap();
    let e = load_runs(cut.join("mlflow.db")).unwrap_err().to_string();
    assert!(e.contains("mlflow.db") && e.contains("MLflow store"), "{e}");

    // Some other SQLite database is not a training log.
    let other = tmp.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute("CREATE TABLE t (x INTEGER)", [])
        .unwrap();
    assert!(!training::looks_like_logs(&other));
}
