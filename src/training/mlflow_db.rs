//! MLflow's SQL tracking store in SQLite (`mlflow.db`: `mlflow.set_tracking_uri("sqlite:///…")`,
//! MLflow 3's default backend), read with SQLite itself (rusqlite, opened read-only, so a run
//! that is logging meanwhile is never disturbed).
//!
//! Tables read: `experiments` (names), `runs` (name, status, lifecycle stage), `metrics` (one row
//! per logged value: key, value, timestamp in ms, step, and `is_nan`, since SQL has no NaN),
//! `params` and `tags`. Every active run of every experiment becomes a [`Run`] named
//! `experiment/run name (id)`, as the file store's are; deleted runs are left out. Metrics are
//! read in insertion order (`rowid`), and a second read takes only the rows added since (the
//! window follows a live store); params, tags and status are read again whenever the file
//! changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::mlflow::param;
use super::{HParam, Run, TrainingError};

/// SQLite's file header.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Whether `path` starts with SQLite's header.
pub fn is_sqlite(path: &Path) -> bool {
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head == SQLITE_MAGIC
}

/// Whether `path` is an MLflow SQLite store: a SQLite file (by its header) holding MLflow's
/// `experiments`, `runs` and `metrics` tables.
pub fn is_mlflow_db(path: &Path) -> bool {
    is_sqlite(path)
        && open(path).is_ok_and(|db| {
            ["experiments", "runs", "metrics"].iter().all(|t| {
                db.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [t],
                    |r| r.get::<_, i64>(0),
                )
                .is_ok_and(|n| n == 1)
            })
        })
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // A writer holding the lock briefly (MLflow commits each logged value) is waited for.
    db.busy_timeout(std::time::Duration::from_secs(2))?;
    Ok(db)
}

/// Follows one MLflow SQLite store.
#[derive(Debug)]
pub struct MlflowDbReader {
    path: PathBuf,
    /// Prefix of every run name (the store's folder under the root, or empty).
    prefix: String,
    /// The highest `metrics` rowid read.
    last_rowid: i64,
    /// The file's (and its write-ahead log's) size and modification time when last read.
    stamp: Option<Vec<(u64, std::time::SystemTime)>>,
    /// Run name by run id, for the runs read.
    names: HashMap<String, String>,
}

impl MlflowDbReader {
    /// A reader of the store at `path`, naming its runs under `prefix` (`""` for none).
    pub fn new(path: impl Into<PathBuf>, prefix: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            prefix: prefix.into(),
            last_rowid: 0,
            stamp: None,
            names: HashMap::new(),
        }
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn bad(&self, e: impl std::fmt::Display) -> TrainingError {
        TrainingError::BadLog {
            path: self.path.clone(),
            what: format!("MLflow store: {e}"),
        }
    }

    /// Reads what changed since the last call into `runs` (kept sorted by name); returns whether
    /// anything did.
    pub fn read_new(&mut self, runs: &mut Vec<Run>) -> Result<bool, TrainingError> {
        let stamp: Vec<(u64, std::time::SystemTime)> = [
            self.path.clone(),
            PathBuf::from(format!("{}-wal", self.path.display())),
        ]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| (m.len(), m.modified().unwrap_or(std::time::UNIX_EPOCH)))
        .collect();
        if self.stamp.as_ref() == Some(&stamp) {
            return Ok(false);
        }
        self.stamp = Some(stamp);
        let db = open(&self.path).map_err(|e| self.bad(e))?;
        self.read_runs(&db, runs).map_err(|e| self.bad(e))?;
        self.read_metrics(&db, runs).map_err(|e| self.bad(e))?;
        Ok(true)
    }

    /// The run named `name`, made (in name order) if new.
    fn run<'a>(runs: &'a mut Vec<Run>, name: &str) -> &'a mut Run {
        let index = match runs.binary_search_by(|r| r.name.as_str().cmp(name)) {
            Ok(i) => i,
            Err(i) => {
                runs.insert(i, Run::new(name));
                i
            }
        };
        &mut runs[index]
    }

    fn read_runs(&mut self, db: &Connection, runs: &mut Vec<Run>) -> rusqlite::Result<()> {
        let mut query = db.prepare(
            "SELECT r.run_uuid, coalesce(r.name, ''), coalesce(r.status, ''), e.name \
             FROM runs r JOIN experiments e ON r.experiment_id = e.experiment_id \
             WHERE r.lifecycle_stage = 'active'",
        )?;
        let rows = query.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut status = Vec::new();
        for row in rows {
            let (id, name, state, experiment) = row?;
            let short: String = id.chars().take(8).collect();
            let shown = if name.is_empty() { id.clone() } else { name };
            let full = if self.prefix.is_empty() {
                format!("{experiment}/{shown} ({short})")
            } else {
                format!("{}/{experiment}/{shown} ({short})", self.prefix)
            };
            self.names.insert(id, full.clone());
            status.push((full, state));
        }
        for (name, state) in status {
            let run = Self::run(runs, &name);
            run.hparams
                .insert("mlflow.status".to_owned(), HParam::Text(state));
        }
        for (table, prefix) in [("params", ""), ("tags", "tag.")] {
            let mut query = db.prepare(&format!("SELECT run_uuid, key, value FROM {table}"))?;
            let rows = query.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?;
            for row in rows {
                let (id, key, value) = row?;
                if prefix == "tag." && key.starts_with("mlflow.") {
                    continue;
                }
                let Some(name) = self.names.get(&id) else {
                    continue; // a deleted run's
                };
                let value = value.unwrap_or_default();
                let value = if prefix.is_empty() {
                    param(&value)
                } else {
                    HParam::Text(value)
                };
                Self::run(runs, name)
                    .hparams
                    .insert(format!("{prefix}{key}"), value);
            }
        }
        Ok(())
    }

    fn read_metrics(&mut self, db: &Connection, runs: &mut [Run]) -> rusqlite::Result<()> {
        let mut query = db.prepare(
            "SELECT rowid, run_uuid, key, value, timestamp, step, is_nan FROM metrics \
             WHERE rowid > ?1 ORDER BY rowid",
        )?;
        let mut rows = query.query([self.last_rowid])?;
        // Consecutive rows mostly belong to one run: look it up once per change.
        let mut current: Option<(String, usize)> = None;
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            self.last_rowid = self.last_rowid.max(rowid);
            let id: String = row.get(1)?;
            let Some(name) = self.names.get(&id) else {
                continue;
            };
            let index = match &current {
                Some((cached, i)) if *cached == id => *i,
                _ => {
                    let Ok(i) = runs.binary_search_by(|r| r.name.as_str().cmp(name)) else {
                        continue;
                    };
                    current = Some((id, i));
                    i
                }
            };
            let key: String = row.get(2)?;
            let nan: bool = row.get(6)?;
            let value: f64 = if nan { f64::NAN } else { row.get(3)? };
            let ms: i64 = row.get(4)?;
            let step: i64 = row.get(5)?;
            runs[index].push_scalar(&key, step, ms as f64 / 1000.0, value);
        }
        Ok(())
    }
}
