//! Weights & Biases run files (`run-<id>.wandb`): what `wandb.init(mode="offline")` writes, and
//! what every online run also keeps on disk beside the upload (`wandb/run-…/run-<id>.wandb`), so a
//! run can be looked at without syncing it or signing in.
//!
//! The file is W&B's 7-byte header (`:W&B`, magic `0xBEE1`, version 0) followed by LevelDB's log
//! format: 32 KiB blocks of records, each `crc32 | length u16 | type u8 | data` with the type FULL,
//! or FIRST / MIDDLE… / LAST for a message split across blocks, and the CRC-32 (zlib's, unmasked)
//! taken over the type byte then the data. Each whole message is a protobuf `Record` of
//! `wandb_internal.proto`; the messages are declared here by hand with the spec's field numbers,
//! and prost skips every field we do not declare (summaries, telemetry, console output, files).
//!
//! What becomes of each record:
//! - `run`: the display name (the run's name here, with its id), and its config;
//! - `config`: hyperparameters, nested keys joined with `.` (`optimizer.name`), `_wandb` left out;
//! - `history`: one logged row. Its items carry a key path (`nested_key`) and a JSON value (or,
//!   from newer SDKs, a typed one); the paths are folded back into a JSON tree, then numbers and
//!   booleans become scalars (tags are the path joined with `.`, as W&B names them: `opt.lr`),
//!   strings text, `{"_type": "histogram"}` objects (`wandb.Histogram`, `wandb.watch`'s packed
//!   bins) histograms, and `wandb.Image`s (`image-file`, and `images/separated` for a list) images
//!   read from the run's `files/media/` when shown. `_step` is the step and `_timestamp` the wall
//!   time;
//! - `stats`: system metrics (`memory_percent`, `gpu.0.gpu` …) as scalars `system/<key>`, stepped
//!   by their sample number, so their natural axis is relative or wall time.
//!
//! A record whose CRC disagrees, or whose length runs past its block, is an [`Issue`] with its
//! offset, and the reader resumes at the next block, as LevelDB's reader does. A record not yet
//! complete at the end of the file is left for the next read (`--follow` on a live run).
//!
//! Rejected: reading through wandb's Python SDK (it no longer ships a reader: the Go core writes
//! these files) and `wandb sync` to a local server (needs a W&B server).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use prost::Message;

use std::sync::Arc;

use super::{Bucket, HParam, Histogram, ImageEntry, Issue, Run, TextEntry, TrainingError};

/// W&B's file header: ident, magic (little-endian), version.
const HEADER: [u8; 7] = [b':', b'W', b'&', b'B', 0xe1, 0xbe, 0];
/// LevelDB log block size.
const BLOCK: u64 = 32 * 1024;
/// Bytes of a record header.
const RECORD_HEADER: u64 = 7;
/// The largest message assembled from fragments; a history row holding a table can be several
/// MB, and nothing W&B writes comes near this.
const MAX_MESSAGE: usize = 256 << 20;

const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;

/// `wandb_internal.Record`: only the record kinds modelmap reads.
#[derive(Clone, PartialEq, Message)]
pub struct Record {
    /// A logged row.
    #[prost(message, optional, tag = "2")]
    pub history: Option<HistoryRecord>,
    /// Config updates after `init`.
    #[prost(message, optional, tag = "5")]
    pub config: Option<ConfigRecord>,
    /// System metrics.
    #[prost(message, optional, tag = "7")]
    pub stats: Option<StatsRecord>,
    /// The run itself (first record after the header record).
    #[prost(message, optional, tag = "17")]
    pub run: Option<RunRecord>,
    /// The run's end.
    #[prost(message, optional, tag = "18")]
    pub exit: Option<RunExitRecord>,
}

/// `wandb_internal.HistoryRecord`.
#[derive(Clone, PartialEq, Message)]
pub struct HistoryRecord {
    /// The row's values.
    #[prost(message, repeated, tag = "1")]
    pub item: Vec<HistoryItem>,
    /// The step, when the SDK sets it.
    #[prost(message, optional, tag = "2")]
    pub step: Option<HistoryStep>,
}

/// `wandb_internal.HistoryStep`.
#[derive(Clone, PartialEq, Message)]
pub struct HistoryStep {
    /// Step number.
    #[prost(int64, tag = "1")]
    pub num: i64,
}

/// `wandb_internal.HistoryItem`: a key path and one value, as JSON or (newer SDKs) typed.
#[derive(Clone, PartialEq, Message)]
pub struct HistoryItem {
    /// Flat key (older SDKs).
    #[prost(string, tag = "1")]
    pub key: String,
    /// Key path (`["opt", "lr"]`, `["weights", "bins"]`).
    #[prost(string, repeated, tag = "2")]
    pub nested_key: Vec<String>,
    /// Typed value: a boolean.
    #[prost(bool, optional, tag = "4")]
    pub boolean: Option<bool>,
    /// Typed value: an integer.
    #[prost(sint64, optional, tag = "5")]
    pub integer: Option<i64>,
    /// Typed value: a real.
    #[prost(double, optional, tag = "6")]
    pub number: Option<f64>,
    /// Typed value: a string.
    #[prost(string, optional, tag = "7")]
    pub text: Option<String>,
    /// Typed value: JSON.
    #[prost(string, optional, tag = "8")]
    pub json: Option<String>,
    /// The value as JSON (with `NaN`, `Infinity` and `-Infinity` as bare words).
    #[prost(string, tag = "16")]
    pub value_json: String,
}

/// `wandb_internal.ConfigRecord`.
#[derive(Clone, PartialEq, Message)]
pub struct ConfigRecord {
    /// Keys set.
    #[prost(message, repeated, tag = "1")]
    pub update: Vec<ConfigItem>,
}

/// `wandb_internal.ConfigItem` (also `SummaryItem` and `StatsItem`'s layout).
#[derive(Clone, PartialEq, Message)]
pub struct ConfigItem {
    /// Flat key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Key path.
    #[prost(string, repeated, tag = "2")]
    pub nested_key: Vec<String>,
    /// Value as JSON.
    #[prost(string, tag = "16")]
    pub value_json: String,
}

/// `wandb_internal.StatsRecord`.
#[derive(Clone, PartialEq, Message)]
pub struct StatsRecord {
    /// When the sample was taken.
    #[prost(message, optional, tag = "2")]
    pub timestamp: Option<Timestamp>,
    /// One value per metric.
    #[prost(message, repeated, tag = "3")]
    pub item: Vec<ConfigItem>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `wandb_internal.RunRecord`.
#[derive(Clone, PartialEq, Message)]
pub struct RunRecord {
    /// The run's id (`9zgmss6l`).
    #[prost(string, tag = "1")]
    pub run_id: String,
    /// User or team.
    #[prost(string, tag = "2")]
    pub entity: String,
    /// Project.
    #[prost(string, tag = "3")]
    pub project: String,
    /// `wandb.init(config=…)`.
    #[prost(message, optional, tag = "4")]
    pub config: Option<ConfigRecord>,
    /// Group.
    #[prost(string, tag = "6")]
    pub run_group: String,
    /// Job type.
    #[prost(string, tag = "7")]
    pub job_type: String,
    /// `wandb.init(name=…)`.
    #[prost(string, tag = "8")]
    pub display_name: String,
    /// Tags.
    #[prost(string, repeated, tag = "10")]
    pub tags: Vec<String>,
}

/// `wandb_internal.RunExitRecord`.
#[derive(Clone, PartialEq, Message)]
pub struct RunExitRecord {
    /// Process exit code.
    #[prost(int32, tag = "1")]
    pub exit_code: i32,
    /// Seconds the run took.
    #[prost(int32, tag = "2")]
    pub runtime: i32,
}

/// Whether `path` is a W&B run file (by its extension).
pub fn is_wandb_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wandb")
}

/// The run's display name and id from the first records of a W&B file (a few KB into it), as
/// `name (id)`; `None` when the file holds no run record there yet.
pub fn display_name(path: &Path) -> Option<String> {
    let mut head = Vec::new();
    File::open(path)
        .ok()?
        .take(4 * BLOCK)
        .read_to_end(&mut head)
        .ok()?;
    let mut name = None;
    let mut state = ScanState::default();
    scan(&head, 0, &mut state, &mut |_, message| {
        if name.is_none()
            && let Ok(record) = Record::decode(message)
            && let Some(run) = record.run
        {
            let id = run.run_id;
            name = Some(match run.display_name.trim() {
                "" => id,
                shown => format!("{shown} ({id})"),
            });
        }
    });
    name
}

/// Framing state between reads.
#[derive(Debug, Default)]
struct ScanState {
    /// File offset up to which records were consumed.
    offset: u64,
    /// Fragments of a message not yet complete.
    pending: Vec<u8>,
    /// Whether a FIRST fragment began `pending`.
    in_message: bool,
    /// Problems found (offset, what).
    issues: Vec<(u64, String)>,
}

/// Walks the records of `buf` (the file's bytes from `base`, which is `state.offset`), calling
/// `message` with each whole message and its offset. Stops before an incomplete record.
fn scan(buf: &[u8], base: u64, state: &mut ScanState, message: &mut dyn FnMut(u64, &[u8])) {
    let end = base + buf.len() as u64;
    let mut pos = state.offset.max(base);
    if pos == 0 {
        if buf.len() < HEADER.len() {
            return;
        }
        if buf[..4] != HEADER[..4] {
            state
                .issues
                .push((0, "not a W&B run file: no `:W&B` header".to_owned()));
            state.offset = end;
            return;
        }
        if buf[4..7] != HEADER[4..7] {
            state.issues.push((
                0,
                format!(
                    "W&B header with magic {:#06x} version {}; read as version 0",
                    u16::from_le_bytes([buf[4], buf[5]]),
                    buf[6]
                ),
            ));
        }
        pos = HEADER.len() as u64;
    }
    let at = |p: u64| usize::try_from(p - base).unwrap_or(usize::MAX);
    loop {
        let left_in_block = BLOCK - pos % BLOCK;
        if left_in_block < RECORD_HEADER {
            // The block's trailer: zeros that no record starts in.
            if pos + left_in_block > end {
                break;
            }
            pos += left_in_block;
            continue;
        }
        if pos + RECORD_HEADER > end {
            break;
        }
        let h = &buf[at(pos)..at(pos + RECORD_HEADER)];
        let crc = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let len = u64::from(u16::from_le_bytes([h[4], h[5]]));
        let kind = h[6];
        if kind == 0 && len == 0 && crc == 0 {
            // Zero padding (a preallocated or block-padded file): skip the rest of the block.
            let next = pos + left_in_block;
            if next > end {
                break;
            }
            pos = next;
            continue;
        }
        if RECORD_HEADER + len > left_in_block {
            state.issues.push((
                pos,
                format!(
                    "record length {len} runs past its 32 KiB block; skipped to the next block"
                ),
            ));
            state.pending.clear();
            state.in_message = false;
            // May lie past what has been read; the next read starts there.
            pos += left_in_block;
            continue;
        }
        if pos + RECORD_HEADER + len > end {
            // Still being written.
            break;
        }
        let data = &buf[at(pos + RECORD_HEADER)..at(pos + RECORD_HEADER + len)];
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&[kind]);
        hasher.update(data);
        if hasher.finalize() != crc {
            state.issues.push((
                pos,
                "record CRC mismatch; skipped to the next block".to_owned(),
            ));
            state.pending.clear();
            state.in_message = false;
            pos += left_in_block;
            continue;
        }
        let record_at = pos;
        pos += RECORD_HEADER + len;
        match kind {
            FULL => {
                if state.in_message {
                    state
                        .issues
                        .push((record_at, "message cut short before a new one".to_owned()));
                }
                state.pending.clear();
                state.in_message = false;
                message(record_at, data);
            }
            FIRST => {
                if state.in_message {
                    state
                        .issues
                        .push((record_at, "message cut short before a new one".to_owned()));
                }
                state.pending.clear();
                state.pending.extend_from_slice(data);
                state.in_message = true;
            }
            MIDDLE | LAST if state.in_message => {
                if state.pending.len() + data.len() > MAX_MESSAGE {
                    state.issues.push((
                        record_at,
                        format!("message over {} MiB; skipped", MAX_MESSAGE >> 20),
                    ));
                    state.pending.clear();
                    state.in_message = false;
                    continue;
                }
                state.pending.extend_from_slice(data);
                if kind == LAST {
                    let whole = std::mem::take(&mut state.pending);
                    state.in_message = false;
                    message(record_at, &whole);
                }
            }
            MIDDLE | LAST => {
                // The rest of a message whose start was skipped (after a bad record).
            }
            other => state
                .issues
                .push((record_at, format!("unknown record type {other}; skipped"))),
        }
    }
    state.offset = pos;
}

/// Reads one W&B run file incrementally: each [`WandbReader::read_new`] decodes what was appended
/// since the last call.
#[derive(Debug)]
pub struct WandbReader {
    state: ScanState,
    decoder: Decoder,
}

/// What decoding needs to remember between messages.
#[derive(Debug)]
struct Decoder {
    path: PathBuf,
    records: u64,
    system_samples: i64,
    last_step: Option<i64>,
}

impl WandbReader {
    /// A reader at the start of `path` (nothing read yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            state: ScanState::default(),
            decoder: Decoder {
                path: path.into(),
                records: 0,
                system_samples: 0,
                last_step: None,
            },
        }
    }

    /// The file this reader follows.
    pub fn path(&self) -> &Path {
        &self.decoder.path
    }

    /// File offset up to which whole records have been read.
    pub fn offset(&self) -> u64 {
        self.state.offset
    }

    /// Messages decoded so far.
    pub fn records(&self) -> u64 {
        self.decoder.records
    }

    /// Reads and decodes everything appended since the last call into `run`; returns the number
    /// of new messages. A record not yet complete is left for the next call.
    pub fn read_new(&mut self, run: &mut Run) -> Result<u64, TrainingError> {
        let base = self.state.offset;
        let before = self.decoder.records;
        let path = self.decoder.path.clone();
        super::with_new_bytes(&path, base, |bytes| self.decode(bytes, base, run))?;
        Ok(self.decoder.records - before)
    }

    /// Decodes `buf`, the file's bytes from offset `base` (the reader's offset), into `run`.
    pub fn decode(&mut self, buf: &[u8], base: u64, run: &mut Run) {
        let decoder = &mut self.decoder;
        let mut bad = Vec::new();
        // Each message is decoded where it lies (or, split across blocks, where it was joined).
        scan(
            buf,
            base,
            &mut self.state,
            &mut |offset, m| match Record::decode(m) {
                Ok(record) => {
                    decoder.records += 1;
                    decoder.record(record, run);
                }
                Err(e) => bad.push((offset, format!("malformed Record protobuf ({e}); skipped"))),
            },
        );
        let mut issues: Vec<(u64, String)> = self.state.issues.drain(..).chain(bad).collect();
        issues.sort_by_key(|i| i.0);
        let path = &self.decoder.path;
        run.issues
            .extend(issues.into_iter().map(|(offset, what)| Issue {
                path: path.clone(),
                offset,
                what,
            }));
    }
}

impl Decoder {
    fn record(&mut self, record: Record, run: &mut Run) {
        if let Some(info) = record.run {
            let mut put = |key: &str, value: &str| {
                if !value.is_empty() {
                    run.hparams
                        .insert(key.to_owned(), HParam::Text(value.to_owned()));
                }
            };
            put("wandb.project", &info.project);
            put("wandb.entity", &info.entity);
            put("wandb.group", &info.run_group);
            put("wandb.job_type", &info.job_type);
            put("wandb.tags", &info.tags.join(", "));
            if let Some(config) = info.config {
                apply_config(&config, run);
            }
        }
        if let Some(config) = record.config {
            apply_config(&config, run);
        }
        if let Some(history) = record.history {
            self.history(&history, run);
        }
        if let Some(stats) = record.stats {
            let wall_time = stats
                .timestamp
                .map_or(0.0, |t| t.seconds as f64 + f64::from(t.nanos) * 1e-9);
            for item in &stats.item {
                if let Some(v) = parse_json(&item.value_json).as_ref().and_then(number) {
                    let key = item_key(&item.key, &item.nested_key);
                    run.push_scalar(&format!("system/{key}"), self.system_samples, wall_time, v);
                }
            }
            self.system_samples += 1;
        }
        if let Some(exit) = record.exit {
            run.hparams.insert(
                "wandb.exit_code".to_owned(),
                HParam::Number(f64::from(exit.exit_code)),
            );
        }
    }

    fn history(&mut self, history: &HistoryRecord, run: &mut Run) {
        let mut row = serde_json::Map::new();
        for item in &history.item {
            let value = match (&item.number, &item.integer, &item.boolean, &item.text) {
                (Some(v), ..) => Some(json_number(*v)),
                (_, Some(v), ..) => Some(serde_json::Value::from(*v)),
                (_, _, Some(v), _) => Some(serde_json::Value::Bool(*v)),
                (.., Some(v)) => Some(serde_json::Value::String(v.clone())),
                _ => parse_json(item.json.as_deref().unwrap_or(&item.value_json)),
            };
            let Some(value) = value else { continue };
            let path: Vec<&str> = if item.nested_key.is_empty() {
                vec![item.key.as_str()]
            } else {
                item.nested_key.iter().map(String::as_str).collect()
            };
            insert_path(&mut row, &path, value);
        }
        let step = row
            .get("_step")
            .and_then(number)
            .map(|s| s as i64)
            .or(history.step.as_ref().map(|s| s.num))
            .unwrap_or_else(|| self.last_step.map_or(0, |s| s + 1));
        self.last_step = Some(step);
        let wall_time = row.get("_timestamp").and_then(number).unwrap_or(0.0);
        // Media files lie in the run folder's `files/`.
        let media = self
            .path
            .parent()
            .map_or_else(|| PathBuf::from("files"), |p| p.join("files"));
        let at = Point {
            step,
            wall_time,
            media: &media,
        };
        for (key, value) in &row {
            if key.starts_with('_') {
                continue;
            }
            walk(key, value, &at, run);
        }
    }
}

/// A history or config key: the path joined with `.`, as W&B names nested keys.
fn item_key(key: &str, nested: &[String]) -> String {
    if nested.is_empty() {
        key.to_owned()
    } else {
        nested.join(".")
    }
}

/// Puts `value` into `map` at `path`, making objects on the way (an existing non-object there
/// is replaced).
fn insert_path(
    map: &mut serde_json::Map<String, serde_json::Value>,
    path: &[&str],
    value: serde_json::Value,
) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        map.insert((*first).to_owned(), value);
        return;
    }
    let entry = map
        .entry((*first).to_owned())
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if !entry.is_object() {
        *entry = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(inner) = entry {
        insert_path(inner, rest, value);
    }
}

/// W&B's JSON, which writes non-finite reals as bare `NaN`, `Infinity` and `-Infinity`.
fn parse_json(text: &str) -> Option<serde_json::Value> {
    match text.trim() {
        "NaN" | "nan" => Some(json_number(f64::NAN)),
        "Infinity" | "inf" => Some(json_number(f64::INFINITY)),
        "-Infinity" | "-inf" => Some(json_number(f64::NEG_INFINITY)),
        t => serde_json::from_str(t).ok(),
    }
}

/// A real as JSON; non-finite ones as the strings `parse_json` reads, which [`number`] turns back.
fn json_number(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or_else(
        || serde_json::Value::String(format!("\u{0}{v}")),
        serde_json::Value::Number,
    )
}

/// The number a JSON value stands for (booleans as 0 / 1).
fn number(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
        serde_json::Value::String(s) => s.strip_prefix('\u{0}').and_then(|v| v.parse().ok()),
        _ => None,
    }
}

/// Where a history row's values belong.
struct Point<'a> {
    step: i64,
    wall_time: f64,
    /// The run's `files/` folder, where media paths lead.
    media: &'a Path,
}

/// A media file's entry: `rel` must stay inside `media` (no `..`, not absolute). A file that is
/// missing still gets its entry, whose reading then says so.
fn media_image(rel: &str, sample: usize, size: [u32; 2], at: &Point<'_>) -> Option<ImageEntry> {
    let rel = Path::new(rel);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return None;
    }
    let file = at.media.join(rel);
    let len = std::fs::metadata(&file).map_or(0, |m| m.len());
    Some(ImageEntry {
        step: at.step,
        wall_time_bits: at.wall_time.to_bits(),
        sample,
        size,
        file: Arc::from(file.as_path()),
        offset: 0,
        len,
    })
}

/// One value of a history row under `tag`.
fn walk(tag: &str, value: &serde_json::Value, at: &Point<'_>, run: &mut Run) {
    let (step, wall_time) = (at.step, at.wall_time);
    match value {
        serde_json::Value::Object(map) => match map.get("_type").and_then(|t| t.as_str()) {
            Some(kind @ ("image-file" | "images/separated")) => {
                let dim = |k: &str| {
                    map.get(k)
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|v| u32::try_from(v).ok())
                        .unwrap_or(0)
                };
                let size = [dim("width"), dim("height")];
                let paths: Vec<&str> = if kind == "image-file" {
                    map.get("path")
                        .and_then(|p| p.as_str())
                        .into_iter()
                        .collect()
                } else {
                    map.get("filenames")
                        .and_then(|f| f.as_array())
                        .map(|f| f.iter().filter_map(|p| p.as_str()).collect())
                        .unwrap_or_default()
                };
                let entries: Vec<ImageEntry> = paths
                    .iter()
                    .enumerate()
                    .filter_map(|(k, p)| media_image(p, k, size, at))
                    .collect();
                if !entries.is_empty() {
                    run.images
                        .entry(tag.to_owned())
                        .or_default()
                        .extend(entries);
                }
            }
            Some("histogram") => {
                if let Some(h) = histogram(map, step, wall_time) {
                    run.histograms
                        .entry(tag.to_owned())
                        .or_default()
                        .points
                        .push(h);
                }
            }
            Some(_) => {} // tables, audio, video …: media modelmap does not draw.
            None => {
                for (key, inner) in map {
                    walk(&format!("{tag}.{key}"), inner, at, run);
                }
            }
        },
        serde_json::Value::String(s) if !s.starts_with('\u{0}') => {
            run.texts
                .entry(tag.to_owned())
                .or_default()
                .push(TextEntry {
                    step,
                    wall_time,
                    text: s.clone(),
                });
        }
        other => {
            if let Some(v) = number(other) {
                run.push_scalar(tag, step, wall_time, v);
            }
        }
    }
}

/// A `wandb.Histogram` (`values` with `bins`, its edges) or a packed one (`packedBins`: `min`,
/// `size`, `count`) as buckets, empty ones at both ends dropped.
fn histogram(
    map: &serde_json::Map<String, serde_json::Value>,
    step: i64,
    wall_time: f64,
) -> Option<Histogram> {
    let reals =
        |v: &serde_json::Value| -> Option<Vec<f64>> { v.as_array()?.iter().map(number).collect() };
    let counts = reals(map.get("values")?)?;
    let edges = match (map.get("bins"), map.get("packedBins")) {
        (Some(bins), _) => reals(bins)?,
        (None, Some(packed)) => {
            let min = packed.get("min").and_then(number)?;
            let size = packed.get("size").and_then(number)?;
            let n = packed.get("count").and_then(number)? as usize;
            if n != counts.len() {
                return None;
            }
            (0..=n).map(|i| min + size * i as f64).collect()
        }
        _ => return None,
    };
    if edges.len() != counts.len() + 1 {
        return None;
    }
    let start = counts.iter().position(|&c| c > 0.0);
    let end = counts.iter().rposition(|&c| c > 0.0);
    let buckets: Vec<Bucket> = match (start, end) {
        (Some(s), Some(e)) => (s..=e)
            .map(|i| Bucket {
                left: edges[i],
                right: edges[i + 1],
                count: counts[i],
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(Histogram {
        step,
        wall_time,
        min: buckets.first().map_or(f64::NAN, |b| b.left),
        max: buckets.last().map_or(f64::NAN, |b| b.right),
        num: counts.iter().sum(),
        sum: buckets
            .iter()
            .map(|b| b.count * 0.5 * (b.left + b.right))
            .sum(),
        sum_squares: f64::NAN,
        buckets,
    })
}

/// Config items as hyperparameters: nested objects flattened with `.`, W&B's own `_wandb` left out.
fn apply_config(config: &ConfigRecord, run: &mut Run) {
    fn put(key: String, value: &serde_json::Value, out: &mut BTreeMap<String, HParam>) {
        match value {
            serde_json::Value::Object(map) => {
                // `{"value": v, "desc": …}`: the legacy config-defaults.yaml form.
                if let Some(v) = map.get("value").filter(|_| map.len() <= 2) {
                    put(key, v, out);
                    return;
                }
                for (k, v) in map {
                    put(format!("{key}.{k}"), v, out);
                }
            }
            serde_json::Value::Bool(b) => {
                out.insert(key, HParam::Bool(*b));
            }
            serde_json::Value::String(s) => {
                out.insert(key, HParam::Text(s.clone()));
            }
            serde_json::Value::Null => {}
            other => match number(other) {
                Some(v) => {
                    out.insert(key, HParam::Number(v));
                }
                None => {
                    out.insert(key, HParam::Text(other.to_string()));
                }
            },
        }
    }
    for item in &config.update {
        let key = item_key(&item.key, &item.nested_key);
        if key.starts_with('_') {
            continue;
        }
        if let Some(value) = parse_json(&item.value_json) {
            put(key, &value, &mut run.hparams);
        }
    }
}

/// Frames `messages` the way W&B's writer does: the header, then records split at block ends
/// (the tests and the fuzzer write files with it).
pub fn frame(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    for m in messages {
        let mut rest = m.as_slice();
        let mut first = true;
        loop {
            let left = BLOCK as usize - out.len() % BLOCK as usize;
            if left < RECORD_HEADER as usize {
                out.resize(out.len() + left, 0);
                continue;
            }
            let room = left - RECORD_HEADER as usize;
            let take = room.min(rest.len());
            let last = take == rest.len();
            let kind = match (first, last) {
                (true, true) => FULL,
                (true, false) => FIRST,
                (false, true) => LAST,
                (false, false) => MIDDLE,
            };
            let mut h = crc32fast::Hasher::new();
            h.update(&[kind]);
            h.update(&rest[..take]);
            out.extend_from_slice(&h.finalize().to_le_bytes());
            out.extend_from_slice(&(take as u16).to_le_bytes());
            out.push(kind);
            out.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            first = false;
            if last {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: i64, items: &[(&[&str], &str)]) -> Vec<u8> {
        let mut item: Vec<HistoryItem> = items
            .iter()
            .map(|(path, json)| HistoryItem {
                nested_key: path.iter().map(|s| (*s).to_owned()).collect(),
                value_json: (*json).to_owned(),
                ..HistoryItem::default()
            })
            .collect();
        item.push(HistoryItem {
            nested_key: vec!["_step".to_owned()],
            value_json: step.to_string(),
            ..HistoryItem::default()
        });
        Record {
            history: Some(HistoryRecord { item, step: None }),
            ..Record::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn messages_across_blocks_and_partial_tail() {
        // A row with a 70 000-value table spans three blocks (FIRST, MIDDLE, LAST).
        let big = format!("\"{}\"", "x".repeat(70_000));
        let messages = vec![
            row(0, &[(&["loss"], "1.5")]),
            row(1, &[(&["loss"], "NaN"), (&["note"], &big)]),
            row(2, &[(&["loss"], "0.5"), (&["opt", "lr"], "0.001")]),
        ];
        let bytes = frame(&messages);
        let mut run = Run::new("r");
        let mut reader = WandbReader::new("r.wandb");
        // Fed in pieces, as a live run's file grows.
        let mut fed = 0;
        for cut in [5, 20, 40_000, 70_000, bytes.len()] {
            let cut = cut.min(bytes.len());
            let from = usize::try_from(reader.offset()).unwrap();
            reader.decode(&bytes[from..cut], reader.offset(), &mut run);
            fed = cut;
        }
        assert_eq!(fed, bytes.len());
        assert_eq!(reader.records(), 3, "{:?}", run.issues);
        assert!(run.issues.is_empty(), "{:?}", run.issues);
        let loss = &run.scalars["loss"];
        assert_eq!(loss.steps, vec![0, 1, 2]);
        assert_eq!(loss.values[0], 1.5);
        assert!(loss.values[1].is_nan());
        assert_eq!(run.scalars["opt.lr"].values, vec![0.001]);
        assert_eq!(run.texts["note"][0].text.len(), 70_000);
    }

    #[test]
    fn corrupt_record_resyncs_at_next_block() {
        let filler = format!("\"{}\"", "y".repeat(40_000));
        let messages = vec![
            row(0, &[(&["loss"], "3")]),
            row(1, &[(&["loss"], "2")]),
            row(2, &[(&["pad"], &filler)]),
            row(3, &[(&["loss"], "1")]),
        ];
        let mut bytes = frame(&messages);
        // Flip a byte inside the second record's data.
        let second = HEADER.len() + RECORD_HEADER as usize + messages[0].len();
        bytes[second + RECORD_HEADER as usize + 2] ^= 0xff;
        let mut run = Run::new("r");
        let mut reader = WandbReader::new("r.wandb");
        reader.decode(&bytes, 0, &mut run);
        // Row 1 and the rest of its block (row 2's start) are lost; row 3 is in the next block.
        assert_eq!(run.scalars["loss"].steps, vec![0, 3]);
        assert_eq!(run.issues.len(), 1, "{:?}", run.issues);
        assert_eq!(run.issues[0].offset, second as u64);
        assert!(run.issues[0].what.contains("CRC"), "{}", run.issues[0].what);
    }

    #[test]
    fn not_a_wandb_file() {
        let mut run = Run::new("r");
        let mut reader = WandbReader::new("x.wandb");
        reader.decode(b"PK\x03\x04 something else", 0, &mut run);
        assert_eq!(run.issues.len(), 1);
        assert!(run.issues[0].what.contains("header"));
        assert!(run.scalars.is_empty());
    }

    #[test]
    fn histograms_plain_and_packed() {
        let plain = r#"{"_type":"histogram","values":[0,2,3,0],"bins":[0,1,2,3,4]}"#;
        let packed = r#"{"_type":"histogram","values":[1,0,4],"packedBins":{"min":-1.0,"size":0.5,"count":3}}"#;
        let bytes = frame(&[row(5, &[(&["w"], plain), (&["g"], packed)])]);
        let mut run = Run::new("r");
        WandbReader::new("r.wandb").decode(&bytes, 0, &mut run);
        let w = &run.histograms["w"].points[0];
        assert_eq!(w.step, 5);
        assert_eq!(w.num, 5.0);
        assert_eq!(
            w.buckets,
            vec![
                Bucket {
                    left: 1.0,
                    right: 2.0,
                    count: 2.0
                },
                Bucket {
                    left: 2.0,
                    right: 3.0,
                    count: 3.0
                }
            ]
        );
        let g = &run.histograms["g"].points[0];
        assert_eq!((g.min, g.max, g.buckets.len()), (-1.0, 0.5, 3));
    }
}
