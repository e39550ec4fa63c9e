//! CSV and JSONL training logs → scalar series.
//!
//! A `step` column/key gives x (else `global_step`, `epoch`, `iteration`, `iter`, `_step`, else the
//! row number); every other column with at least one number becomes a scalar series. Empty cells
//! (Lightning's CSVLogger writes sparse rows: train and validation metrics on different rows) add no
//! point. `wall_time`/`timestamp`/`time`/`_timestamp` give the wall time. JSONL objects nest with
//! `/` (`{"val": {"acc": 1}}` → `val/acc`). A malformed line is an [`Issue`] and is skipped; a last
//! line without its newline is a line still being written and is left for the next read.
//!
//! Rejected: the `csv` crate (a dependency for a format this simple — the logs we target never
//! quote numbers; quoted header names are still handled).

use std::path::Path;

use super::{Issue, LogTable, Run, TrainingError};

const STEP_KEYS: [&str; 6] = ["step", "global_step", "epoch", "iteration", "iter", "_step"];
const TIME_KEYS: [&str; 4] = ["wall_time", "timestamp", "_timestamp", "time"];

/// Splits one CSV line, honouring double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    cells.push(cell);
    cells
}

/// Complete lines of `text` with their byte offsets (a trailing line without `\n` is dropped).
fn complete_lines(text: &str) -> impl Iterator<Item = (u64, &str)> {
    let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
    let mut offset = 0u64;
    complete.split_inclusive('\n').map(move |l| {
        let at = offset;
        offset += l.len() as u64;
        (at, l.trim_end_matches(['\n', '\r']))
    })
}

fn pick(columns: &[String], keys: &[&str]) -> Option<usize> {
    keys.iter()
        .find_map(|k| columns.iter().position(|c| c.eq_ignore_ascii_case(k)))
}

/// Reads a CSV log into `run`.
pub fn read_csv(path: &Path, text: &str, run: &mut Run) -> Result<(), TrainingError> {
    let mut lines = complete_lines(text).filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(TrainingError::BadLog {
            path: path.to_path_buf(),
            what: "CSV has no header line".to_owned(),
        });
    };
    let columns: Vec<String> = split_csv(header.trim_start_matches('\u{feff}'))
        .into_iter()
        .map(|c| c.trim().to_owned())
        .collect();
    let step_col = pick(&columns, &STEP_KEYS);
    let time_col = pick(&columns, &TIME_KEYS);
    let mut rows = 0usize;
    let mut last_step = -1i64;
    for (offset, line) in lines {
        let cells = split_csv(line);
        if cells.len() > columns.len() {
            run.issues.push(Issue {
                path: path.to_path_buf(),
                offset,
                what: format!(
                    "{} cells for {} columns; row skipped",
                    cells.len(),
                    columns.len()
                ),
            });
            continue;
        }
        let number = |i: usize| -> Option<f64> {
            let cell = cells.get(i)?.trim();
            if cell.is_empty() {
                None
            } else {
                cell.parse().ok()
            }
        };
        let step = match step_col {
            Some(i) => number(i).map_or(last_step.max(0), |v| v as i64),
            None => rows as i64,
        };
        last_step = step;
        let wall_time = time_col.and_then(number).unwrap_or(f64::NAN);
        for (i, name) in columns.iter().enumerate() {
            if Some(i) == step_col || Some(i) == time_col {
                continue;
            }
            if let Some(v) = number(i) {
                run.push_scalar(name, step, wall_time, v);
            }
        }
        rows += 1;
    }
    run.logs.push(LogTable {
        path: path.to_path_buf(),
        columns,
        rows,
    });
    Ok(())
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, f64)>, depth: usize) {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(v) = n.as_f64() {
                out.push((prefix.to_owned(), v));
            }
        }
        serde_json::Value::Object(map) if depth < 8 => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}/{k}")
                };
                flatten(&key, v, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Reads a JSONL log (one JSON object per line) into `run`.
pub fn read_jsonl(path: &Path, text: &str, run: &mut Run) -> Result<(), TrainingError> {
    let mut columns: Vec<String> = Vec::new();
    let mut rows = 0usize;
    let mut fields = Vec::new();
    for (offset, line) in complete_lines(text) {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                run.issues.push(Issue {
                    path: path.to_path_buf(),
                    offset,
                    what: format!("bad JSON ({e}); line skipped"),
                });
                continue;
            }
        };
        fields.clear();
        flatten("", &value, &mut fields, 0);
        for (k, _) in &fields {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
        let find = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| fields.iter().find(|(name, _)| name == k).map(|f| f.1))
        };
        let step = find(&STEP_KEYS).map_or(rows as i64, |v| v as i64);
        let wall_time = find(&TIME_KEYS).unwrap_or(f64::NAN);
        for (name, v) in &fields {
            if STEP_KEYS.contains(&name.as_str()) || TIME_KEYS.contains(&name.as_str()) {
                continue;
            }
            run.push_scalar(name, step, wall_time, *v);
        }
        rows += 1;
    }
    run.logs.push(LogTable {
        path: path.to_path_buf(),
        columns,
        rows,
    });
    Ok(())
}

/// (Re-)reads a CSV or JSONL file into `run`, first removing what an earlier read of it added.
pub fn reload_log(path: &Path, jsonl: bool, run: &mut Run) -> Result<(), TrainingError> {
    if let Some(i) = run.logs.iter().position(|l| l.path == path) {
        let old = run.logs.remove(i);
        for c in &old.columns {
            run.scalars.remove(c);
        }
        run.issues.retain(|issue| issue.path != path);
    }
    let bytes = std::fs::read(path).map_err(|source| TrainingError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    if jsonl {
        read_jsonl(path, &text, run)
    } else {
        read_csv(path, &text, run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lightning_sparse_csv() {
        let text = "epoch,step,train_loss,val_loss\n0,49,0.9,\n0,99,0.8,\n0,99,,0.85\n1,149,0.7,\n";
        let mut run = Run::new("x");
        read_csv(Path::new("m.csv"), text, &mut run).unwrap();
        assert_eq!(run.logs[0].rows, 4);
        let train = &run.scalars["train_loss"];
        assert_eq!(train.steps, vec![49, 99, 149]);
        assert_eq!(train.values, vec![0.9, 0.8, 0.7]);
        let val = &run.scalars["val_loss"];
        assert_eq!(
            (val.steps.clone(), val.values.clone()),
            (vec![99], vec![0.85])
        );
        assert_eq!(run.scalars["epoch"].values, vec![0.0, 0.0, 0.0, 1.0]);
        assert!(!run.scalars.contains_key("step"));
    }

    #[test]
    fn keras_csv_uses_epoch() {
        let text = "epoch,accuracy,loss\n0,0.5,1.2\n1,0.6,\"1.0\"\n";
        let mut run = Run::new("x");
        read_csv(Path::new("k.csv"), text, &mut run).unwrap();
        assert_eq!(run.scalars["loss"].steps, vec![0, 1]);
        assert_eq!(run.scalars["loss"].values, vec![1.2, 1.0]);
        assert!(!run.scalars.contains_key("epoch"));
    }

    #[test]
    fn partial_last_line_is_left_for_later() {
        let text = "step,loss\n1,0.5\n2,0.4\n3,0.3";
        let mut run = Run::new("x");
        read_csv(Path::new("p.csv"), text, &mut run).unwrap();
        assert_eq!(run.scalars["loss"].steps, vec![1, 2]);
    }

    #[test]
    fn jsonl_nested_and_bad_lines() {
        let text = "{\"step\": 10, \"loss\": 2.0, \"val\": {\"acc\": 0.1}}\nnot json\n{\"step\": 20, \"loss\": 1.5, \"note\": \"x\"}\n";
        let mut run = Run::new("x");
        read_jsonl(Path::new("l.jsonl"), text, &mut run).unwrap();
        assert_eq!(run.scalars["loss"].steps, vec![10, 20]);
        assert_eq!(run.scalars["loss"].values, vec![2.0, 1.5]);
        assert_eq!(run.scalars["val/acc"].values, vec![0.1]);
        assert_eq!(run.issues.len(), 1);
        assert_eq!(run.issues[0].offset, 47);
        assert_eq!(run.logs[0].rows, 2);
    }
}
