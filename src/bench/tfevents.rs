//! `modelmap bench tfevents`: how fast the training stage reads TensorBoard event files, against
//! TensorBoard's own Python `EventAccumulator` on the same file in the same run.
//!
//! It writes a synthetic scalar event file (default 150 MB: four tags, one `simple_value` per
//! event, as tensorboardX and PyTorch's `SummaryWriter` write them) with our own TFRecord writer,
//! times [`load_runs`] on it (read + both CRCs of every record + decode; the best of `--repeat`
//! runs, page cache warm), then, when `python3 -c "import tensorboard"` works, times
//! `EventAccumulator(path, size_guidance={…: 0}).Reload()` (sampling off, so it keeps every point)
//! in a subprocess and prints the ratio. Point counts of both readers are compared, so a reader that
//! skipped work would show. Rejected: timing only in criterion (`benches/tfevents.rs` covers the
//! in-memory parse; this measures the file end to end and needs the Python side).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use prost::Message as _;

use crate::training::proto::{Event, Summary, SummaryValue};
use crate::training::tfrecord::write_record;
use crate::training::{TrainingError, load_runs};

/// Errors of the tfevents bench.
#[derive(Debug, thiserror::Error)]
pub enum TfeventsBenchError {
    /// Writing the synthetic file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Our reader failed.
    #[error(transparent)]
    Training(#[from] TrainingError),
    /// TensorBoard ran but its output could not be understood.
    #[error("TensorBoard's EventAccumulator: {0}")]
    Python(String),
}

/// Arguments of `modelmap bench tfevents`.
#[derive(Clone, Debug, clap::Args)]
pub struct TfeventsBenchArgs {
    /// Size of the synthetic event file, in MB.
    #[arg(long, default_value_t = 150)]
    pub size_mb: u64,
    /// Where to write it (default: a file in the system temp folder, removed afterwards).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Runs of our reader; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Skip the TensorBoard comparison.
    #[arg(long)]
    pub no_python: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What the bench measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TfeventsBenchReport {
    /// Bytes in the event file.
    pub bytes: u64,
    /// Records in it.
    pub records: u64,
    /// Scalar points our reader found.
    pub points: u64,
    /// Best time of our reader, seconds.
    pub ours_s: f64,
    /// Our throughput, MB/s (10^6 bytes).
    pub ours_mb_s: f64,
    /// CPU time of the best run, seconds (Linux; `None` elsewhere). On a shared, oversubscribed
    /// machine wall time mostly measures the neighbours; CPU time measures the reader.
    pub ours_cpu_s: Option<f64>,
    /// Throughput per CPU second, MB/s.
    pub ours_cpu_mb_s: Option<f64>,
    /// TensorBoard's `EventAccumulator.Reload()` time, seconds (None: not installed or skipped).
    pub tensorboard_s: Option<f64>,
    /// TensorBoard's CPU time (`time.process_time()`), seconds.
    pub tensorboard_cpu_s: Option<f64>,
    /// Scalar points TensorBoard found.
    pub tensorboard_points: Option<u64>,
    /// TensorBoard wall time / our wall time (same file, same run).
    pub ratio: Option<f64>,
    /// TensorBoard CPU time / our CPU time.
    pub cpu_ratio: Option<f64>,
}

const TAGS: [&str; 4] = [
    "train/loss",
    "train/accuracy",
    "train/learning_rate",
    "grad/global_norm",
];

/// Writes a deterministic scalar event file of about `size_bytes`; returns the record count.
pub fn write_synthetic(path: &Path, size_bytes: u64, seed: u64) -> Result<u64, TfeventsBenchError> {
    let io = |source| TfeventsBenchError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut buf = Vec::with_capacity(1 << 20);
    let version = Event {
        wall_time: 1.7e9,
        file_version: Some("brain.Event:2".to_owned()),
        ..Event::default()
    };
    write_record(&mut buf, &version.encode_to_vec());
    let mut written = 0u64;
    let mut records = 1u64;
    let mut state = seed | 1;
    let mut step = 0i64;
    while written + (buf.len() as u64) < size_bytes {
        for (i, tag) in TAGS.iter().enumerate() {
            // xorshift64*: deterministic noise.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let noise =
                (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32;
            let trend = 1.0 / (1.0 + step as f32 * 1e-4);
            let event = Event {
                wall_time: 1.7e9 + step as f64 * 0.05,
                step,
                file_version: None,
                summary: Some(Summary {
                    value: vec![SummaryValue {
                        tag: (*tag).to_owned(),
                        simple_value: Some(trend * (1.0 + i as f32) + 0.1 * noise),
                        ..SummaryValue::default()
                    }],
                }),
            };
            write_record(&mut buf, &event.encode_to_vec());
            records += 1;
        }
        step += 1;
        if buf.len() >= 1 << 20 {
            out.write_all(&buf).map_err(io)?;
            written += buf.len() as u64;
            buf.clear();
        }
    }
    out.write_all(&buf).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(records)
}

const PYTHON: &str = r#"
import sys, time
from tensorboard.backend.event_processing import event_accumulator as ea
g = {k: 0 for k in ('scalars', 'histograms', 'tensors', 'images', 'audio', 'compressedHistograms')}
t, c = time.perf_counter(), time.process_time()
acc = ea.EventAccumulator(sys.argv[1], size_guidance=g)
acc.Reload()
dt, dc = time.perf_counter() - t, time.process_time() - c
print(dt, dc, sum(len(acc.Scalars(tag)) for tag in acc.Tags()['scalars']))
"#;

fn python_has_tensorboard() -> bool {
    Command::new("python3")
        .args(["-c", "import tensorboard"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// CPU time of the calling thread, seconds (Linux: `/proc/thread-self/schedstat`).
fn thread_cpu_s() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// TensorBoard's `(wall s, CPU s, points)`.
fn time_tensorboard(path: &Path) -> Result<(f64, f64, u64), TfeventsBenchError> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(PYTHON)
        .arg(path)
        .output()
        .map_err(|source| TfeventsBenchError::Io {
            path: PathBuf::from("python3"),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    match (
        words.next().and_then(|w| w.parse().ok()),
        words.next().and_then(|w| w.parse().ok()),
        words.next().and_then(|w| w.parse().ok()),
    ) {
        (Some(s), Some(c), Some(n)) if out.status.success() => Ok((s, c, n)),
        _ => Err(TfeventsBenchError::Python(format!(
            "unexpected output {text:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        ))),
    }
}

/// Runs the bench and prints the report (text, or JSON with `--json`).
pub fn run(args: &TfeventsBenchArgs) -> Result<TfeventsBenchReport, TfeventsBenchError> {
    let (path, temporary) = match &args.file {
        Some(p) => (p.clone(), false),
        None => (
            std::env::temp_dir().join(format!("modelmap-bench.{}.tfevents", std::process::id())),
            true,
        ),
    };
    let records = write_synthetic(&path, args.size_mb.saturating_mul(1_000_000), 42)?;
    let bytes = std::fs::metadata(&path)
        .map_err(|source| TfeventsBenchError::Io {
            path: path.clone(),
            source,
        })?
        .len();
    let mut best = f64::INFINITY;
    let mut best_cpu: Option<f64> = None;
    let mut points = 0u64;
    for _ in 0..args.repeat.max(1) {
        let cpu_start = thread_cpu_s();
        let start = Instant::now();
        let runs = load_runs(&path)?;
        best = best.min(start.elapsed().as_secs_f64());
        if let (Some(a), Some(b)) = (cpu_start, thread_cpu_s()) {
            best_cpu = Some(best_cpu.map_or(b - a, |c: f64| c.min(b - a)));
        }
        points = runs
            .runs
            .iter()
            .flat_map(|r| r.scalars.values())
            .map(|s| s.len() as u64)
            .sum();
    }
    let python = if args.no_python || !python_has_tensorboard() {
        None
    } else {
        Some(time_tensorboard(&path)?)
    };
    if temporary {
        // Best effort: a leftover temp file is harmless.
        let _removed = std::fs::remove_file(&path);
    }
    let report = TfeventsBenchReport {
        bytes,
        records,
        points,
        ours_s: best,
        ours_mb_s: bytes as f64 / 1e6 / best,
        ours_cpu_s: best_cpu,
        ours_cpu_mb_s: best_cpu.map(|c| bytes as f64 / 1e6 / c),
        tensorboard_s: python.map(|p| p.0),
        tensorboard_cpu_s: python.map(|p| p.1),
        tensorboard_points: python.map(|p| p.2),
        ratio: python.map(|p| p.0 / best),
        cpu_ratio: python.and_then(|p| Some(p.1 / best_cpu?)),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        println!(
            "tfevents_scalars_{}mb: {} records, {} points, ours {:.3} s = {:.0} MB/s \
             (CPU {:.3} s = {:.0} MB/s)",
            args.size_mb,
            report.records,
            report.points,
            report.ours_s,
            report.ours_mb_s,
            report.ours_cpu_s.unwrap_or(f64::NAN),
            report.ours_cpu_mb_s.unwrap_or(f64::NAN),
        );
        match (
            report.tensorboard_s,
            report.tensorboard_points,
            report.ratio,
        ) {
            (Some(s), Some(n), Some(r)) => println!(
                "tensorboard EventAccumulator (sampling off): {s:.2} s, {n} points; \
                 ratio {r:.0}x (CPU {:.0}x)",
                report.cpu_ratio.unwrap_or(f64::NAN)
            ),
            _ => println!("tensorboard not available (pip install tensorboard) or skipped"),
        }
    }
    Ok(report)
}
