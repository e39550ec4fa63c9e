//! Training logs: TensorBoard event files, CSV and JSONL logs → runs of scalar, histogram and text
//! series; smoothing, decimation and distributions for drawing; headless curve plots.
//!
//! How it works: [`load_runs`] walks a folder (as TensorBoard's `--logdir` does); every folder that
//! holds event files (`*tfevents*`), W&B run files (`*.wandb`) or logs (`*.csv`, `*.jsonl`,
//! `*.ndjson`), and every MLflow run folder, is one [`Run`], named by its path relative to the root
//! (`.` for the root itself, the file name when the path is a file; a W&B or MLflow run by its
//! display name and id). Event files are read by `tfrecord.rs` (framing, both CRCs, resync after corruption,
//! partial trailing records) and `events.rs` (a zero-allocation wire walker for scalars, prost for
//! the rest); logs by `logs.rs`. [`RunsWatcher`] keeps each file's offset and re-reads only what
//! was appended (`--follow`, the window's live view). `wandb.rs` reads W&B's run files, `mlflow.rs` MLflow's file store. `series.rs` holds the pure series maths
//! (TensorBoard's debiased EMA, min/max decimation, percentile bands); `plot.rs` the PNG/JSON output.
//!
//! Alternatives rejected: depending on a TensorBoard reader crate (none is maintained outside
//! TensorBoard's own data server, which is a binary, not a library) and reading through
//! TensorBoard's Python `EventAccumulator` (100× slower, see `bench/tfevents.rs`).

pub mod events;
pub mod logs;
pub mod mlflow;
pub mod mlflow_db;
pub mod plot;
pub mod proto;
pub mod series;
pub mod tfrecord;
pub mod wandb;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use events::{EventFileReader, parse_event_bytes};
pub use plot::{
    CurvesArgs, PlotOptions, curves_json, render_curves_png, render_curves_rgba, run_curves,
};
pub use series::{
    NORMAL_HISTOGRAM_BPS, XAxis, compress_histogram, decimate, distribution, smooth_ema,
};

/// Errors of the training stage. Corrupt records are not errors: they are [`Issue`]s on the run.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Nothing that looks like a training log was found.
    #[error(
        "{path}: no TensorBoard event files, W&B run files, MLflow runs or stores, CSV or JSONL logs found"
    )]
    NoLogs {
        /// The folder or file given.
        path: PathBuf,
    },
    /// A log file cannot be used at all (e.g. a CSV without a header).
    #[error("{path}: {what}")]
    BadLog {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The plot could not be drawn or encoded.
    #[error("{path}: cannot write the plot: {what}")]
    Plot {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
}

/// One scalar time series, as parallel arrays in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScalarSeries {
    /// Training steps.
    pub steps: Vec<i64>,
    /// Wall times, seconds since the Unix epoch (NaN when the log has none).
    pub wall_times: Vec<f64>,
    /// Values (f32 summaries widened exactly to f64).
    pub values: Vec<f64>,
}

impl ScalarSeries {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Appends a point.
    pub fn push(&mut self, step: i64, wall_time: f64, value: f64) {
        self.steps.push(step);
        self.wall_times.push(wall_time);
        self.values.push(value);
    }

    /// The first `(step, value)`.
    pub fn first(&self) -> Option<(i64, f64)> {
        Some((*self.steps.first()?, *self.values.first()?))
    }

    /// The last `(step, value)`.
    pub fn last(&self) -> Option<(i64, f64)> {
        Some((*self.steps.last()?, *self.values.last()?))
    }
}

/// One histogram bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Left edge.
    pub left: f64,
    /// Right edge.
    pub right: f64,
    /// Count (may be fractional).
    pub count: f64,
}

/// One histogram at one step.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Training step.
    pub step: i64,
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Number of values.
    pub num: f64,
    /// Sum of values (approximate for tensor-encoded histograms).
    pub sum: f64,
    /// Sum of squares (NaN for tensor-encoded histograms).
    pub sum_squares: f64,
    /// Non-empty bucket range, left to right.
    pub buckets: Vec<Bucket>,
}

/// Histograms of one tag over time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSeries {
    /// In file order.
    pub points: Vec<Histogram>,
}

/// One text summary.
#[derive(Clone, Debug, PartialEq)]
pub struct TextEntry {
    /// Training step.
    pub step: i64,
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// The text (elements of a string tensor joined by newlines).
    pub text: String,
}

/// A hyperparameter value from the hparams plugin.
#[derive(Clone, Debug, PartialEq)]
pub enum HParam {
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
    /// A boolean.
    Bool(bool),
}

/// A problem in a file that was skipped over (corrupt record, malformed line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// The file.
    pub path: PathBuf,
    /// Byte offset of the bad record or line.
    pub offset: u64,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at byte {}: {}",
            self.path.display(),
            self.offset,
            self.what
        )
    }
}

/// One logged image: where its encoded bytes lie in the log (or beside it), read when it is
/// drawn, never kept in memory with the run (a run of a million steps logs a lot of pictures).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageEntry {
    /// Training step.
    pub step: i64,
    /// Seconds since the Unix epoch, as bits (so that the entry is `Eq`); see [`Self::wall_time`].
    pub wall_time_bits: u64,
    /// Which of the step's images (`tf.summary.image`'s `max_outputs`), from 0.
    pub sample: usize,
    /// Width and height as the log states them (0 when it does not).
    pub size: [u32; 2],
    /// The file holding the encoded image.
    pub file: std::sync::Arc<Path>,
    /// Where the encoded bytes start in it.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
}

/// The largest encoded image read, and the most pixels decoded (a 8192 × 8192 picture).
const MAX_IMAGE_BYTES: u64 = 256 << 20;
const MAX_IMAGE_PIXELS: u64 = 8192 * 8192;

impl ImageEntry {
    /// Seconds since the Unix epoch.
    pub fn wall_time(&self) -> f64 {
        f64::from_bits(self.wall_time_bits)
    }

    /// The encoded bytes (PNG, JPEG, GIF …), read from the file.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        use std::io::{Read as _, Seek as _};
        let name = self.file.display();
        if self.len > MAX_IMAGE_BYTES {
            return Err(format!(
                "{name}: image of {} bytes at {} is too large",
                self.len, self.offset
            ));
        }
        let mut f = std::fs::File::open(&self.file).map_err(|e| format!("{name}: {e}"))?;
        f.seek(std::io::SeekFrom::Start(self.offset))
            .map_err(|e| format!("{name}: {e}"))?;
        let mut bytes = Vec::new();
        f.take(self.len)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{name}: {e}"))?;
        if (bytes.len() as u64) < self.len {
            return Err(format!(
                "{name}: image at {} cut short by the file's end",
                self.offset
            ));
        }
        Ok(bytes)
    }

    /// The image as 8-bit RGBA, `(width, height, pixels)`. PNG only (what TensorBoard's and
    /// W&B's writers encode); other formats are an error that names them.
    pub fn decode_rgba(&self) -> Result<(u32, u32, Vec<u8>), String> {
        let bytes = self.read()?;
        let name = self.file.display();
        if !bytes.starts_with(b"\x89PNG") {
            let kind = if bytes.starts_with(&[0xff, 0xd8]) {
                "JPEG"
            } else if bytes.starts_with(b"GIF8") {
                "GIF"
            } else {
                "an unknown format"
            };
            return Err(format!(
                "{name}: image at {} is {kind}; only PNG is drawn",
                self.offset
            ));
        }
        let bad = |e: png::DecodingError| format!("{name}: image at {}: {e}", self.offset);
        let mut decoder = png::Decoder::new_with_limits(
            std::io::Cursor::new(bytes),
            png::Limits {
                bytes: usize::try_from(MAX_IMAGE_PIXELS * 4).unwrap_or(usize::MAX),
            },
        );
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().map_err(bad)?;
        let (width, height) = (reader.info().width, reader.info().height);
        if u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
            return Err(format!(
                "{name}: image at {} is {width} × {height}, too large",
                self.offset
            ));
        }
        let mut buf = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buf).map_err(bad)?;
        let pixels = (width * height) as usize;
        let data = &buf[..frame.buffer_size()];
        let rgba: Vec<u8> = match frame.color_type {
            png::ColorType::Rgba => data.to_vec(),
            png::ColorType::Rgb => data
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            png::ColorType::GrayscaleAlpha => data
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
            png::ColorType::Grayscale => data.iter().flat_map(|&g| [g, g, g, 255]).collect(),
            png::ColorType::Indexed => {
                return Err(format!(
                    "{name}: image at {}: palette not expanded",
                    self.offset
                ));
            }
        };
        if rgba.len() != pixels * 4 {
            return Err(format!(
                "{name}: image at {}: {} bytes of pixels for {width} × {height}",
                self.offset,
                rgba.len()
            ));
        }
        Ok((width, height, rgba))
    }
}

/// A model graph logged into an event file (`Event.graph_def`: PyTorch's `add_graph`,
/// `tf.summary.graph`, TF1's `FileWriter(graph=…)`; or Keras's model config), by where it lies,
/// so that the structure view can open it (TensorBoard's Graphs tab).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphEntry {
    /// What the bytes are.
    pub kind: GraphKind,
    /// Step of the event that carried it.
    pub step: i64,
    /// The event file.
    pub file: std::sync::Arc<Path>,
    /// Where the `GraphDef` bytes start.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
}

/// One precision–recall curve at one step (TensorBoard's `pr_curves` plugin: `add_pr_curve`,
/// `tensorboard.summary.pr_curve`), one entry per threshold from 0 to 1.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrCurve {
    /// Training step.
    pub step: i64,
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// True positives at each threshold.
    pub tp: Vec<f64>,
    /// False positives.
    pub fp: Vec<f64>,
    /// True negatives.
    pub tn: Vec<f64>,
    /// False negatives.
    pub fn_: Vec<f64>,
    /// Precision.
    pub precision: Vec<f64>,
    /// Recall.
    pub recall: Vec<f64>,
}

/// What a logged model graph is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphKind {
    /// A serialized TensorFlow `GraphDef` (`Event.graph_def`).
    GraphDef,
    /// A Keras model's JSON config (the `keras` summary of Keras's TensorBoard callback, plugin
    /// `graph_keras_model`): the layer graph, without weights.
    KerasConfig,
}

/// What a CSV/JSONL log contained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogTable {
    /// The file.
    pub path: PathBuf,
    /// Column names (CSV header order; JSONL keys in first-seen order).
    pub columns: Vec<String>,
    /// Data rows read.
    pub rows: usize,
}

/// One run: everything logged in one folder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    /// Path relative to the root, `/`-separated (`.` for the root).
    pub name: String,
    /// Scalar series by tag.
    pub scalars: BTreeMap<String, ScalarSeries>,
    /// Histogram series by tag.
    pub histograms: BTreeMap<String, HistogramSeries>,
    /// Text summaries by tag.
    pub texts: BTreeMap<String, Vec<TextEntry>>,
    /// Images by tag, in log order.
    pub images: BTreeMap<String, Vec<ImageEntry>>,
    /// The last model graph logged, if any.
    pub graph: Option<GraphEntry>,
    /// Precision–recall curves by tag, in log order.
    pub pr_curves: BTreeMap<String, Vec<PrCurve>>,
    /// Hyperparameters (hparams plugin).
    pub hparams: BTreeMap<String, HParam>,
    /// CSV/JSONL logs read into this run.
    pub logs: Vec<LogTable>,
    /// Problems skipped over while reading.
    pub issues: Vec<Issue>,
}

impl Run {
    /// An empty run.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Appends a scalar point to `tag` (no allocation when the tag exists).
    #[inline]
    pub fn push_scalar(&mut self, tag: &str, step: i64, wall_time: f64, value: f64) {
        match self.scalars.get_mut(tag) {
            Some(series) => series.push(step, wall_time, value),
            None => {
                let mut series = ScalarSeries::default();
                series.push(step, wall_time, value);
                self.scalars.insert(tag.to_owned(), series);
            }
        }
    }
}

/// All runs under a root, sorted by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Runs {
    /// The folder (or file) given.
    pub root: PathBuf,
    /// The runs.
    pub runs: Vec<Run>,
}

impl Runs {
    /// The run called `name`.
    pub fn get(&self, name: &str) -> Option<&Run> {
        self.runs.iter().find(|r| r.name == name)
    }

    /// The keys `keys` gives of every run, sorted and without repeats.
    fn tags<'a, K: Iterator<Item = &'a String>>(
        &'a self,
        keys: impl Fn(&'a Run) -> K,
    ) -> Vec<String> {
        let mut tags: Vec<String> = self.runs.iter().flat_map(keys).cloned().collect();
        tags.sort();
        tags.dedup();
        tags
    }

    /// Every scalar tag of any run, sorted, with W&B's system metrics (`system/…`) after the
    /// rest, as W&B shows them in their own section below the charts.
    pub fn scalar_tags(&self) -> Vec<String> {
        let mut tags = self.tags(|r| r.scalars.keys());
        // Stable: each part stays sorted.
        tags.sort_by_key(|t| t.starts_with("system/"));
        tags
    }

    /// Every histogram tag of any run, sorted.
    pub fn histogram_tags(&self) -> Vec<String> {
        self.tags(|r| r.histograms.keys())
    }

    /// Every precision–recall tag of any run, sorted.
    pub fn pr_tags(&self) -> Vec<String> {
        self.tags(|r| r.pr_curves.keys())
    }

    /// Every image tag of any run, sorted.
    pub fn image_tags(&self) -> Vec<String> {
        self.tags(|r| r.images.keys())
    }

    /// Every issue of every run.
    pub fn issues(&self) -> impl Iterator<Item = &Issue> {
        self.runs.iter().flat_map(|r| r.issues.iter())
    }
}

/// What kind of log a file is, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LogKind {
    Events,
    Csv,
    Jsonl,
    Wandb,
    /// An MLflow run folder, named by its `meta.yaml`.
    Mlflow,
    /// An MLflow SQLite store (`mlflow.db`): many runs in one file.
    MlflowDb,
}

fn log_kind(path: &Path) -> Option<LogKind> {
    let name = path.file_name()?.to_str()?;
    if name.contains("tfevents") {
        return Some(LogKind::Events);
    }
    if name == "meta.yaml" && path.parent().is_some_and(mlflow::is_run_folder) {
        return Some(LogKind::Mlflow);
    }
    if matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("db" | "sqlite" | "sqlite3")
    ) && mlflow_db::is_mlflow_db(path)
    {
        return Some(LogKind::MlflowDb);
    }
    match path.extension()?.to_str()? {
        "csv" => Some(LogKind::Csv),
        "wandb" => Some(LogKind::Wandb),
        "jsonl" | "ndjson" => Some(LogKind::Jsonl),
        _ => None,
    }
}

/// Whether `path` is a training log rather than a model: an event file, a CSV or JSONL log, or a
/// folder holding an event file within a few levels (`runs/exp1/events.out.tfevents…`, as
/// `tensorboard --logdir` takes). Looks at no more than a few thousand folder entries.
pub fn looks_like_logs(path: &Path) -> bool {
    fn find_events(dir: &Path, depth: usize, budget: &mut usize) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        let mut folders = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => folders.push(path),
                Ok(t)
                    if t.is_file()
                        && matches!(
                            log_kind(&path),
                            Some(
                                LogKind::Events
                                    | LogKind::Wandb
                                    | LogKind::Mlflow
                                    | LogKind::MlflowDb
                            )
                        ) =>
                {
                    return true;
                }
                _ => {}
            }
        }
        depth < 3 && folders.iter().any(|f| find_events(f, depth + 1, budget))
    }
    /// A model folder that also keeps its training logs (a Hugging Face repository with `runs/`)
    /// opens as the model.
    fn holds_a_model(dir: &Path) -> bool {
        const MODEL_FILES: [&str; 21] = [
            "distcp",
            "ocdbt",
            "nemo",
            "pte",
            "mlmodel",
            "mlpackage",
            "msgpack",
            "xml",
            "pt2",
            "safetensors",
            "bin",
            "pt",
            "pth",
            "onnx",
            "gguf",
            "pb",
            "h5",
            "keras",
            "tflite",
            "npz",
            "ptl",
        ];
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.filter_map(Result::ok).take(4096).any(|e| {
                e.path()
                    .extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| MODEL_FILES.contains(&x))
            })
        })
    }
    if path.is_file() {
        return log_kind(path).is_some();
    }
    path.is_dir() && !holds_a_model(path) && find_events(path, 0, &mut 4096)
}

/// Deepest folder nesting followed (symlinked folders are never followed, so no loops).
const MAX_DEPTH: usize = 32;

fn collect_files(
    dir: &Path,
    depth: usize,
    out: &mut Vec<(PathBuf, LogKind)>,
) -> Result<(), TrainingError> {
    let io = |source| TrainingError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    // An MLflow run: its metrics, params and tags are files of values, not logs to find.
    let mlflow_run = mlflow::is_run_folder(dir);
    if mlflow_run && !mlflow::is_deleted(dir) {
        out.push((dir.join("meta.yaml"), LogKind::Mlflow));
    }
    for entry in entries {
        let path = entry.path();
        if mlflow_run
            && (entry.file_name() == "meta.yaml"
                || ["metrics", "params", "tags"]
                    .iter()
                    .any(|d| entry.file_name() == *d))
        {
            continue;
        }
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            if depth < MAX_DEPTH {
                collect_files(&path, depth + 1, out)?;
            }
        } else if let Some(kind) = log_kind(&path) {
            out.push((path, kind));
        }
    }
    Ok(())
}

fn run_name(root: &Path, file: &Path) -> String {
    if root.is_file() {
        return file
            .file_name()
            .map_or_else(|| ".".to_owned(), |n| n.to_string_lossy().into_owned());
    }
    let parent = file.parent().unwrap_or(root);
    let rel = parent.strip_prefix(root).unwrap_or(parent);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// A source file being followed.
#[derive(Debug)]
enum Source {
    Events(EventFileReader),
    Wandb(wandb::WandbReader),
    Mlflow(mlflow::MlflowReader),
    MlflowDb(mlflow_db::MlflowDbReader),
    Log {
        path: PathBuf,
        kind: LogKind,
        len: u64,
    },
}

/// Keeps every file of a log folder open for incremental re-reading (`--follow`).
#[derive(Debug)]
pub struct RunsWatcher {
    root: PathBuf,
    sources: Vec<(String, Source)>,
}

impl RunsWatcher {
    /// Watches `root` (a folder or a single file); nothing is read until [`Self::poll`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            sources: Vec::new(),
        }
    }

    /// Picks up new files and new records; returns whether anything changed. Runs stay sorted.
    pub fn poll(&mut self, runs: &mut Runs) -> Result<bool, TrainingError> {
        runs.root.clone_from(&self.root);
        let mut files = Vec::new();
        if self.root.is_file() {
            // A file named on its own: a SQLite file is taken for an MLflow store even when it
            // cannot be read as one, so that the reader says why.
            let kind = log_kind(&self.root).unwrap_or(if mlflow_db::is_sqlite(&self.root) {
                LogKind::MlflowDb
            } else {
                LogKind::Events
            });
            files.push((self.root.clone(), kind));
        } else {
            collect_files(&self.root, 0, &mut files)?;
        }
        for (path, kind) in files {
            let known = self.sources.iter().any(|(_, s)| match s {
                Source::Events(r) => r.path() == path,
                Source::Wandb(r) => r.path() == path,
                Source::Mlflow(r) => Some(r.path()) == path.parent(),
                Source::MlflowDb(r) => r.path() == path,
                Source::Log { path: p, .. } => *p == path,
            });
            if !known {
                let mut name = run_name(&self.root, &path);
                if kind == LogKind::Wandb
                    && let Some(shown) = wandb::display_name(&path)
                {
                    // `wandb/offline-run-20261129_212602-9zgmss6l` → `wandb/lr-3e-4 (9zgmss6l)`.
                    name = match name.rsplit_once('/') {
                        Some((parent, _)) => format!("{parent}/{shown}"),
                        None => shown,
                    };
                }
                let run_dir = path.parent().unwrap_or(&path).to_path_buf();
                if kind == LogKind::Mlflow
                    && let Some(shown) = mlflow::display_name(&run_dir)
                {
                    // `mlruns/4211…/24e3…` → `mlruns/lm-sweep/baseline (24e30b5e)`: names repeat
                    // (every rerun of `baseline`), ids do not.
                    let id: String = run_dir
                        .file_name()
                        .map(|n| n.to_string_lossy().chars().take(8).collect())
                        .unwrap_or_default();
                    let parts: Vec<&str> = name.split('/').collect();
                    let above = parts.len().saturating_sub(2);
                    name = parts[..above]
                        .iter()
                        .copied()
                        .chain([format!("{shown} ({id})").as_str()])
                        .collect::<Vec<_>>()
                        .join("/");
                }
                let source = match kind {
                    LogKind::Events => Source::Events(EventFileReader::new(path)),
                    LogKind::Wandb => Source::Wandb(wandb::WandbReader::new(path)),
                    LogKind::Mlflow => Source::Mlflow(mlflow::MlflowReader::new(run_dir)),
                    LogKind::MlflowDb => {
                        // Its runs are named inside it, under the store's folder.
                        let prefix = if name == "." || self.root.is_file() {
                            String::new()
                        } else {
                            name.clone()
                        };
                        Source::MlflowDb(mlflow_db::MlflowDbReader::new(path, prefix))
                    }
                    LogKind::Csv | LogKind::Jsonl => Source::Log { path, kind, len: 0 },
                };
                self.sources.push((name, source));
            }
        }
        let mut changed = false;
        for (name, source) in &mut self.sources {
            if let Source::MlflowDb(reader) = source {
                changed |= reader.read_new(&mut runs.runs)?;
                continue;
            }
            let index = match runs
                .runs
                .binary_search_by(|r| r.name.as_str().cmp(name.as_str()))
            {
                Ok(i) => i,
                Err(i) => {
                    runs.runs.insert(i, Run::new(name.clone()));
                    i
                }
            };
            let Some(run) = runs.runs.get_mut(index) else {
                continue;
            };
            match source {
                Source::Events(reader) => changed |= reader.read_new(run)? > 0,
                Source::Wandb(reader) => changed |= reader.read_new(run)? > 0,
                Source::Mlflow(reader) => changed |= reader.read_new(run)?,
                // Read above: a store holds many runs.
                Source::MlflowDb(_) => {}
                Source::Log { path, kind, len } => {
                    let now = std::fs::metadata(&*path)
                        .map_err(|source| TrainingError::Io {
                            path: path.clone(),
                            source,
                        })?
                        .len();
                    if now != *len {
                        // Text logs are small: re-read the whole file and replace its series.
                        logs::reload_log(path, *kind == LogKind::Jsonl, run)?;
                        *len = now;
                        changed = true;
                    }
                }
            }
        }
        Ok(changed)
    }
}

/// Calls `decode` with the bytes of `path` from `base` to its end, when there are any: mapped
/// (event files and W&B run files are only ever appended to), or read where the file system
/// cannot map.
fn with_new_bytes(path: &Path, base: u64, decode: impl FnOnce(&[u8])) -> Result<(), TrainingError> {
    use std::io::{Read as _, Seek as _};
    let io = |source| TrainingError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len <= base {
        return Ok(());
    }
    let new_len = usize::try_from(len - base).unwrap_or(usize::MAX);
    // SAFETY: the map is read-only and dropped before returning; these logs are only appended
    // to. A writer truncating the file while we read would fault (SIGBUS), the same trade every
    // memory-mapped reader in modelmap makes (DESIGN.md: files are mmapped).
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(base)
            .len(new_len)
            .map(&file)
    };
    match map {
        Ok(map) => decode(&map),
        Err(_) => {
            file.seek(std::io::SeekFrom::Start(base)).map_err(io)?;
            let mut buf = Vec::new();
            file.take(len - base).read_to_end(&mut buf).map_err(io)?;
            decode(&buf);
        }
    }
    Ok(())
}

/// Reads every run under `path` (a log folder, an event file, or a CSV/JSONL file).
pub fn load_runs(path: impl AsRef<Path>) -> Result<Runs, TrainingError> {
    let path = path.as_ref();
    let mut runs = Runs::default();
    let mut watcher = RunsWatcher::new(path);
    watcher.poll(&mut runs)?;
    if runs.runs.is_empty() {
        return Err(TrainingError::NoLogs {
            path: path.to_path_buf(),
        });
    }
    Ok(runs)
}
