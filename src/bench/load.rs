//! `modelmap bench load`: opening a 1.26 B-parameter sharded checkpoint (headers only) and a 54 k-node
//! ONNX decoder, timed in-process, with peak memory from a child `modelmap info` and, side by side,
//! Python's `onnx.load` on the same file when the `onnx` package is importable.
//!
//! The ONNX file is compared two ways, both reported:
//! - **as commands**, which is how the issue states the target: wall time of a fresh
//!   `modelmap info FILE` process against a fresh `python3 -c "import onnx; onnx.load(FILE)"`,
//!   alternating, median of each (both include their start-up: the interpreter and `import onnx`
//!   on one side, the binary's on the other);
//! - **the load call alone**, the stricter figure: open + summary timed inside this process against
//!   `onnx.load` timed inside one Python process after its import.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Serialize;

use super::synth_model::{LlamaConfig, write_llama, write_onnx_decoder};
use crate::model::Summary;

/// Options of `bench load`.
#[derive(Clone, Debug, clap::Args)]
pub struct LoadBenchArgs {
    /// Where the synthetic files are written (kept between runs).
    #[arg(long, default_value = "target/bench-data")]
    pub data: PathBuf,
    /// Timed runs per file (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// Do not run the Python comparison.
    #[arg(long)]
    pub no_python: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One measured file.
#[derive(Clone, Debug, Serialize)]
pub struct LoadResult {
    /// What it is.
    pub name: String,
    /// Path.
    pub file: String,
    /// Bytes on disk (apparent).
    pub bytes: u64,
    /// Nodes.
    pub nodes: usize,
    /// Parameters.
    pub parameters: u64,
    /// Median open + summary, milliseconds.
    pub median_ms: f64,
    /// Peak resident memory of `modelmap info` on it, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Python `onnx.load` median, milliseconds.
    pub python_onnx_load_ms: Option<f64>,
    /// Peak resident memory of the Python process, bytes.
    pub python_peak_rss_bytes: Option<u64>,
    /// python / modelmap (the load call alone).
    pub speedup: Option<f64>,
    /// Median wall time of a fresh `modelmap info FILE` process, milliseconds (ONNX only).
    pub command_ms: Option<f64>,
    /// Median wall time of a fresh `python3 -c "import onnx; onnx.load(FILE)"`, milliseconds.
    pub python_command_ms: Option<f64>,
    /// python command / modelmap command: the comparison.
    pub command_speedup: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn dir_size(p: &Path) -> u64 {
    if p.is_dir() {
        std::fs::read_dir(p)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
    }
}

/// Runs the benchmark; errors are reported as text (this is a CLI tool).
pub fn run(args: &LoadBenchArgs) -> Result<Vec<LoadResult>, String> {
    std::fs::create_dir_all(&args.data).map_err(|e| format!("{}: {e}", args.data.display()))?;
    let ckpt = args.data.join("llama-1b");
    if !ckpt.join("model.safetensors.index.json").exists() {
        eprintln!(
            "writing {} (1.28 B parameters, bf16, 3 shards)…",
            ckpt.display()
        );
        write_llama(&LlamaConfig::preset_1b(), &ckpt).map_err(|e| e.to_string())?;
    }
    let onnx = args.data.join("decoder-800.onnx");
    if !onnx.exists() {
        eprintln!("writing {} (800 layers)…", onnx.display());
        write_onnx_decoder(800, 64, &onnx).map_err(|e| e.to_string())?;
    }
    let mut results = Vec::new();
    for (name, path) in [
        (
            "llama-1.28B safetensors, 3 shards (headers only)",
            ckpt.clone(),
        ),
        ("decoder-800 ONNX", onnx.clone()),
    ] {
        let mut times = Vec::new();
        let mut nodes = 0;
        let mut parameters = 0;
        for _ in 0..args.runs.max(1) {
            let t = Instant::now();
            let model = crate::load::open(&path).map_err(|e| e.to_string())?;
            let s = Summary::of(&model);
            let text = s.to_text();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            nodes = s.nodes;
            parameters = s.parameters;
            std::hint::black_box(text);
        }
        let median_ms = median(times);
        let peak_rss_bytes = child_peak_rss(&path);
        let onnx_vs_python = path.extension().is_some_and(|e| e == "onnx") && !args.no_python;
        let (python_onnx_load_ms, python_peak_rss_bytes) = if onnx_vs_python {
            python_onnx_load(&path, args.runs)
        } else {
            (None, None)
        };
        let (command_ms, python_command_ms) = if onnx_vs_python && python_onnx_load_ms.is_some() {
            commands_side_by_side(&path, args.runs)
        } else {
            (None, None)
        };
        results.push(LoadResult {
            name: name.into(),
            file: path.display().to_string(),
            bytes: dir_size(&path),
            nodes,
            parameters,
            median_ms,
            peak_rss_bytes,
            speedup: python_onnx_load_ms.map(|p| p / median_ms),
            command_speedup: python_command_ms.zip(command_ms).map(|(p, m)| p / m),
            command_ms,
            python_command_ms,
            python_onnx_load_ms,
            python_peak_rss_bytes,
        });
    }
    Ok(results)
}

/// Wall time of `runs` fresh `modelmap info FILE` and `python3 -c "import onnx; onnx.load(FILE)"`
/// processes, alternating; the medians, milliseconds (`None` where a command failed).
fn commands_side_by_side(path: &Path, runs: usize) -> (Option<f64>, Option<f64>) {
    let Ok(exe) = std::env::current_exe() else {
        return (None, None);
    };
    let time = |cmd: &mut Command| -> Option<f64> {
        let t = Instant::now();
        let out = cmd.output().ok()?;
        out.status
            .success()
            .then(|| t.elapsed().as_secs_f64() * 1e3)
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        ours.extend(time(Command::new(&exe).arg("info").arg(path)));
        theirs.extend(time(
            Command::new("python3")
                .arg("-c")
                .arg("import sys, onnx; onnx.load(sys.argv[1])")
                .arg(path),
        ));
    }
    let med = |v: Vec<f64>| (!v.is_empty()).then(|| median(v));
    (med(ours), med(theirs))
}

/// Runs `modelmap info FILE` as a child and reads the peak RSS it reports.
fn child_peak_rss(path: &Path) -> Option<u64> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .arg("info")
        .arg(path)
        .env("MODELMAP_REPORT_PEAK_RSS", "1")
        .output()
        .ok()?;
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .find_map(|l| l.strip_prefix("peak_rss_bytes=")?.trim().parse().ok())
}

fn python_onnx_load(path: &Path, runs: usize) -> (Option<f64>, Option<u64>) {
    let script = format!(
        "import sys, time, resource\nimport onnx\nts=[]\nfor _ in range({runs}):\n    t=time.perf_counter(); m=onnx.load(sys.argv[1]); ts.append((time.perf_counter()-t)*1e3); del m\nts.sort()\nprint(ts[len(ts)//2], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss*1024)\n",
        runs = runs.max(1)
    );
    let Ok(out) = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
    else {
        return (None, None);
    };
    if !out.status.success() {
        eprintln!(
            "python onnx.load skipped: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return (None, None);
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let mut it = s.split_whitespace();
    (
        it.next().and_then(|v| v.parse().ok()),
        it.next().and_then(|v| v.parse().ok()),
    )
}

/// Human-readable table of results.
pub fn report(results: &[LoadResult]) -> String {
    let mut s = String::new();
    for r in results {
        s.push_str(&format!(
            "{}\n  {} ({}), {} nodes, {} parameters\n  modelmap open+info: median {:.1} ms, peak RSS {}\n",
            r.name,
            r.file,
            crate::model::human_bytes(r.bytes),
            r.nodes,
            crate::model::group_digits(r.parameters),
            r.median_ms,
            r.peak_rss_bytes.map_or("?".into(), crate::model::human_bytes),
        ));
        if let Some(p) = r.python_onnx_load_ms {
            s.push_str(&format!(
                "  python onnx.load: median {:.1} ms, peak RSS {} → modelmap is {:.1}× faster\n",
                p,
                r.python_peak_rss_bytes
                    .map_or("?".into(), crate::model::human_bytes),
                r.speedup.unwrap_or(f64::NAN)
            ));
        }
        if let (Some(m), Some(p)) = (r.command_ms, r.python_command_ms) {
            s.push_str(&format!(
                "  as commands: `modelmap info` {:.1} ms vs `python3 -c \"import onnx; onnx.load(F)\"` {:.1} ms → {:.1}× (the issue's comparison)\n",
                m,
                p,
                r.command_speedup.unwrap_or(f64::NAN)
            ));
        }
    }
    s
}
