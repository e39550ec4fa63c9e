//! MLflow's file store (`mlruns/`): what `mlflow.log_metric` writes with a `file:` tracking URI,
//! MLflow's default before 3.0 and still what many projects keep.
//!
//! A run is a folder `mlruns/<experiment id>/<run id>/` holding `meta.yaml` (its name and
//! lifecycle stage), `metrics/<key>` (one line per logged value: `timestamp_ms value step`; a key
//! with `/` is a path of folders), `params/<key>` and `tags/<key>` (one value each). The
//! experiment's own `meta.yaml` names it. Metric files are append-only, so each is followed from
//! its last complete line (`--follow`, the window); params and tags are re-read when they change.
//! A run MLflow has deleted (`lifecycle_stage: deleted`) is left out, as MLflow's UI leaves it.
//!
//! Each metric becomes a scalar series; params become hyperparameters (numbers, booleans as
//! Python writes them, else text), user tags `tag.<key>`, and the run's status `mlflow.status`.
//! A line that is not three numbers is an [`Issue`] with its offset.
//!
//! MLflow's SQLite store (`mlflow.db`, MLflow 3's default) is read by `mlflow_db.rs`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{HParam, Issue, Run, TrainingError};

/// Whether `dir` is an MLflow run folder: `meta.yaml` beside `metrics/`.
pub fn is_run_folder(dir: &Path) -> bool {
    dir.join("meta.yaml").is_file() && dir.join("metrics").is_dir()
}

/// Top-level `key: value` pairs of a small YAML file (MLflow's `meta.yaml` is flat), quotes
/// removed. Files over 1 MiB are not MLflow's and read as empty.
fn meta(path: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(file) = File::open(path) else {
        return out;
    };
    let mut text = String::new();
    if file.take(1 << 20).read_to_string(&mut text).is_err() {
        return out;
    }
    for line in text.lines() {
        if line.starts_with([' ', '\t', '-', '#']) {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            let value = value.trim();
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(value);
            out.insert(key.trim().to_owned(), value.to_owned());
        }
    }
    out
}

/// Whether MLflow has deleted the run in `dir`.
pub fn is_deleted(dir: &Path) -> bool {
    meta(&dir.join("meta.yaml"))
        .get("lifecycle_stage")
        .is_some_and(|s| s == "deleted")
}

/// `experiment/run name` for the run in `dir` (from the two `meta.yaml` files); `None` when the
/// run has no name.
pub fn display_name(dir: &Path) -> Option<String> {
    let run = meta(&dir.join("meta.yaml"));
    let name = run
        .get("run_name")
        .filter(|n| !n.is_empty() && *n != "null")?;
    let experiment = dir
        .parent()
        .map(|e| meta(&e.join("meta.yaml")))
        .and_then(|m| m.get("name").cloned())
        .filter(|n| !n.is_empty());
    Some(match experiment {
        Some(e) => format!("{e}/{name}"),
        None => name.clone(),
    })
}

/// MLflow's `RunStatus` numbers.
fn status_name(code: &str) -> &str {
    match code {
        "1" => "RUNNING",
        "2" => "SCHEDULED",
        "3" => "FINISHED",
        "4" => "FAILED",
        "5" => "KILLED",
        other => other,
    }
}

/// A param as Python wrote it: a number, `True` / `False`, or text (both stores keep text).
pub(super) fn param(value: &str) -> HParam {
    match value {
        "True" | "true" => HParam::Bool(true),
        "False" | "false" => HParam::Bool(false),
        v => v
            .parse::<f64>()
            .map_or_else(|_| HParam::Text(v.to_owned()), HParam::Number),
    }
}

/// Files under `dir`, recursively (a metric `train/loss` is `metrics/train/loss`), with their
/// paths relative to `dir` joined by `/`. At most 16 levels and 100 000 files.
fn files_under(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<(String, PathBuf)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if out.len() >= 100_000 {
                return;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            match entry.file_type() {
                Ok(t) if t.is_dir() && depth < 16 => walk(&entry.path(), &key, depth + 1, out),
                Ok(t) if t.is_file() => out.push((key, entry.path())),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", 0, &mut out);
    out
}

/// Follows one MLflow run folder.
#[derive(Debug)]
pub struct MlflowReader {
    dir: PathBuf,
    /// Bytes of each metric file consumed (whole lines).
    offsets: BTreeMap<PathBuf, u64>,
    /// Modification stamp of params/tags/meta last read.
    stamp: Option<(u64, std::time::SystemTime)>,
}

impl MlflowReader {
    /// A reader of the run folder `dir` (nothing read yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            offsets: BTreeMap::new(),
            stamp: None,
        }
    }

    /// The run folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Reads the lines appended to each metric file since the last call, and the params and tags
    /// when they changed; returns whether anything was new.
    pub fn read_new(&mut self, run: &mut Run) -> Result<bool, TrainingError> {
        let mut changed = false;
        for (key, path) in files_under(&self.dir.join("metrics")) {
            let offset = self.offsets.get(&path).copied().unwrap_or(0);
            let io = |source| TrainingError::Io {
                path: path.clone(),
                source,
            };
            let mut file = File::open(&path).map_err(io)?;
            let len = file.metadata().map_err(io)?.len();
            if len <= offset {
                continue;
            }
            file.seek(SeekFrom::Start(offset)).map_err(io)?;
            let mut bytes = Vec::new();
            file.take(len - offset)
                .read_to_end(&mut bytes)
                .map_err(io)?;
            // Whole lines only: the last one may still be being written.
            let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            let mut at = offset;
            for line in bytes[..=end].split(|&b| b == b'\n') {
                let line_at = at;
                at += line.len() as u64 + 1;
                let text = String::from_utf8_lossy(line);
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                match parse_line(text) {
                    Some((ms, value, step)) => {
                        run.push_scalar(&key, step, ms as f64 / 1000.0, value);
                    }
                    None => run.issues.push(Issue {
                        path: path.clone(),
                        offset: line_at,
                        what: format!("not `timestamp value step`: {text:.80}"),
                    }),
                }
            }
            self.offsets.insert(path, offset + end as u64 + 1);
            changed = true;
        }
        if self.read_params(run) {
            changed = true;
        }
        Ok(changed)
    }

    /// Params, user tags and the status, when any of their files changed.
    fn read_params(&mut self, run: &mut Run) -> bool {
        let mut files = files_under(&self.dir.join("params"));
        files.extend(files_under(&self.dir.join("tags")));
        files.push(("meta.yaml".to_owned(), self.dir.join("meta.yaml")));
        let newest = files
            .iter()
            .filter_map(|(_, p)| std::fs::metadata(p).ok()?.modified().ok())
            .max()
            .unwrap_or(std::time::UNIX_EPOCH);
        let stamp = (files.len() as u64, newest);
        if self.stamp == Some(stamp) {
            return false;
        }
        self.stamp = Some(stamp);
        let read = |p: &Path| -> Option<String> {
            let mut text = String::new();
            File::open(p)
                .ok()?
                .take(64 << 10)
                .read_to_string(&mut text)
                .ok()?;
            Some(text)
        };
        for (key, path) in files_under(&self.dir.join("params")) {
            if let Some(value) = read(&path) {
                run.hparams.insert(key, param(value.trim_end_matches('\n')));
            }
        }
        for (key, path) in files_under(&self.dir.join("tags")) {
            if key.starts_with("mlflow.") {
                continue;
            }
            if let Some(value) = read(&path) {
                run.hparams.insert(
                    format!("tag.{key}"),
                    HParam::Text(value.trim_end_matches('\n').to_owned()),
                );
            }
        }
        if let Some(status) = meta(&self.dir.join("meta.yaml")).get("status") {
            run.hparams.insert(
                "mlflow.status".to_owned(),
                HParam::Text(status_name(status).to_owned()),
            );
        }
        true
    }
}

/// `timestamp_ms value step` (MLflow before 1.0 wrote no step: step 0).
fn parse_line(text: &str) -> Option<(i64, f64, i64)> {
    let mut parts = text.split_ascii_whitespace();
    let ms = parts.next()?.parse::<i64>().ok()?;
    let value = parts.next()?.parse::<f64>().ok()?;
    let step = match parts.next() {
        Some(s) => s.parse::<i64>().ok()?,
        None => 0,
    };
    parts.next().is_none().then_some((ms, value, step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_mlflow_writes_them() {
        assert_eq!(
            parse_line("1795988403013 2.5 7"),
            Some((1_795_988_403_013, 2.5, 7))
        );
        let (_, v, _) = parse_line("1795988403013 nan 21").unwrap();
        assert!(v.is_nan());
        assert_eq!(parse_line("1 -inf 2").map(|l| l.1), Some(f64::NEG_INFINITY));
        assert_eq!(
            parse_line("1 0.5").map(|l| l.2),
            Some(0),
            "pre-1.0: no step"
        );
        assert_eq!(parse_line("1 0.5 2 extra"), None);
        assert_eq!(parse_line("x 0.5 2"), None);
        assert_eq!(param("True"), HParam::Bool(true));
        assert_eq!(param("0.0003"), HParam::Number(3e-4));
        assert_eq!(param("adamw"), HParam::Text("adamw".into()));
    }
}
