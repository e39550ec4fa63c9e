//! The `modelmap` command line.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use modelmap::load;
use modelmap::model::Summary;

// Loading a 50 k-node ONNX graph is dominated by small allocations and frees; mimalloc halves that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A GPU-accelerated viewer for very large neural-network models.
#[derive(Parser)]
#[command(
    name = "modelmap",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Model files to open in the viewer (the embedded demo model when none is given).
    files: Vec<PathBuf>,
    /// Compare the first file with this checkpoint: a tab shows what changed (B − A), nodes
    /// coloured by how much.
    #[arg(long, requires = "files")]
    diff: Option<PathBuf>,
    /// Colour the first file's graph by a Model Explorer node data JSON (per-node values such as
    /// latencies: `{"results": {NODE: {"value": 1.5}}}`).
    #[arg(long, requires = "files")]
    node_data: Option<PathBuf>,
    /// Print the time from process start to the first presented frame showing the model, and exit.
    #[arg(long)]
    bench_startup: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Print a summary of a model: format, counts, op types, inputs/outputs, parameters, hierarchy.
    Info {
        /// The model file (ONNX, safetensors or PyTorch checkpoint or its index/folder, a
        /// TorchScript archive, a torch.export `.pt2`, TFLite, Keras `.keras` / `.h5`, a
        /// TensorFlow `.pb` or SavedModel folder, NumPy `.npy` / `.npz`, GGUF, JSON layer list).
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Render a model's structure to a PNG, headless, with the same renderer as the window.
    Render {
        /// The model file.
        file: PathBuf,
        /// Output PNG.
        #[arg(short, long)]
        out: PathBuf,
        /// Width in pixels (larger than the GPU's texture limit is rendered in tiles).
        #[arg(long, default_value_t = 1600)]
        width: u32,
        /// Height in pixels.
        #[arg(long, default_value_t = 1000)]
        height: u32,
        /// Layout algorithm.
        #[arg(long, value_enum, default_value_t = modelmap::scene::LayoutChoice::Auto)]
        layout: modelmap::scene::LayoutChoice,
        /// Fit to this group path, node or tensor instead of the whole model.
        #[arg(long)]
        focus: Option<String>,
        /// Replace names with stable hashes so the picture can be shared.
        #[arg(long)]
        redact: bool,
        /// Render this tensor's heatmap instead of the structure.
        #[arg(long)]
        tensor: Option<String>,
        /// With --tensor on a conv weight [out, in, kh, kw]: draw it as a grid of kh×kw kernels
        /// (out rows of in kernels; a depthwise conv's kernels wrap into a near-square grid) instead
        /// of out × in·kh·kw.
        #[arg(long, requires = "tensor")]
        kernels: bool,
        /// What to draw: the model's structure, or a chain of dense layers as neurons and weights.
        #[arg(long, value_enum, default_value_t = RenderView::Structure)]
        view: RenderView,
        /// Compare with this checkpoint: nodes coloured by how much their weights changed
        /// (‖B − A‖ / ‖A‖, blue little, red most), weights and --tensor heatmaps showing B − A.
        #[arg(long)]
        diff: Option<PathBuf>,
        /// Colour nodes by a Model Explorer node data JSON (`{"results": {NODE: {"value": …}}}`).
        #[arg(long, conflicts_with = "diff")]
        node_data: Option<PathBuf>,
        /// With --view neurons: the dense chain to draw, by name (e.g. model.layers.3.mlp) or index
        /// (default: the chain with the most weights).
        #[arg(long)]
        chain: Option<String>,
    },
    /// Per-tensor statistics: mean, std, min, max, abs-max, L2, sparsity, NaN/Inf, histogram.
    Stats(modelmap::stats::cli::StatsArgs),
    /// What changed between two checkpoints: per tensor ‖B − A‖ / ‖A‖, cosine, largest change and
    /// where, values changed; tensors only one side has and shapes that disagree.
    Diff(modelmap::stats::cli::DiffArgs),
    /// Training curves from TensorBoard event files and CSV/JSONL logs, to PNG or JSON.
    Curves(modelmap::training::CurvesArgs),
    /// Benchmarks (numbers for README).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Write synthetic models and scenes for benchmarks.
    Synth {
        #[command(subcommand)]
        what: modelmap::bench::synth_model::SynthCommand,
    },
}

/// What `modelmap render` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum RenderView {
    /// The model's structure (graph and groups).
    Structure,
    /// A chain of dense layers: one circle per neuron, one edge per weight (top-k per neuron when
    /// zoomed out).
    Neurons,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Open a 1.26 B-parameter sharded checkpoint and a 54 k-node ONNX file, against Python's onnx.load.
    Load(modelmap::bench::load::LoadBenchArgs),
    /// Lay out a synthetic graph and print time and readability metrics.
    Layout {
        #[command(flatten)]
        args: modelmap::bench::layout::LayoutBenchArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Draw a scripted camera path over a synthetic scene; frame times, GPU time, memory.
    Render {
        #[command(flatten)]
        args: modelmap::bench::render::RenderBenchArgs,
        /// Draw through the LOD cut over a laid-out graph (a random graph of --nodes/--edges with the
        /// force layout, or --model) instead of a fixed synthetic draw list.
        #[arg(long)]
        lod: bool,
        /// With --lod: open every cluster (draw everything), for the LOD speed-up comparison.
        #[arg(long)]
        no_lod: bool,
        /// With --lod: a model file to lay out instead of a random graph.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Statistics throughput over a bf16 checkpoint against the memory-read ceiling (and torch).
    Stats {
        #[command(flatten)]
        args: modelmap::bench::stats::StatsBenchArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// TensorBoard event parsing throughput against TensorBoard's EventAccumulator.
    Tfevents(modelmap::bench::tfevents::TfeventsBenchArgs),
    /// Fly from the whole model down to one weight value with the window's per-frame work.
    Zoom(modelmap::bench::zoom::ZoomBenchArgs),
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let started = std::time::Instant::now();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Info { file, json }) => {
            // A short command that reads headers: 2 MB transparent huge pages, which the allocator
            // asks for, round its heap up by a third (47 -> 33 MiB on a 51 k-node ONNX file) for
            // ~4 ms of page faults saved. The window and the benchmarks keep them.
            #[cfg(target_os = "linux")]
            // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag of this process.
            unsafe {
                libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
            }
            let model = open_model(&file)?;
            let summary = Summary::of(&model);
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", summary.to_text());
            }
            if std::env::var_os("MODELMAP_REPORT_PEAK_RSS").is_some() {
                eprintln!(
                    "peak_rss_bytes={}",
                    modelmap::diag::peak_rss_bytes().unwrap_or(0)
                );
            }
        }
        Some(Command::Render {
            file,
            out,
            width,
            height,
            layout,
            focus,
            redact,
            tensor,
            kernels,
            view,
            diff,
            node_data,
            chain,
        }) => {
            if chain.is_some() && view != RenderView::Neurons {
                anyhow::bail!("--chain picks a dense chain for --view neurons");
            }
            let mut model = open_model(&file)?;
            let mut overlay = None;
            if let Some(path) = node_data {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let d =
                    modelmap::stats::node_data::parse(&text, &path.display().to_string(), &model)
                        .map_err(anyhow::Error::msg)?;
                println!(
                    "{} of the file's keys matched nodes ({} values on {} nodes)",
                    d.matched,
                    d.values.iter().flatten().count(),
                    d.values.len()
                );
                for n in &d.notes {
                    println!("note: {n}");
                }
                overlay = Some(std::sync::Arc::new(d.overlay()));
            }
            if let Some(other) = diff {
                let b = open_model(&other)?;
                let b =
                    modelmap::stats::diff::counterpart(&model, b).map_err(anyhow::Error::msg)?;
                let d = modelmap::stats::diff::diff_models(&model, &b, &|_, _| {}, &|| false);
                println!(
                    "{} of {} compared tensors changed ({} only in A, {} only in B)",
                    d.tensors.len() - d.identical(),
                    d.tensors.len(),
                    d.only_a.len(),
                    d.only_b.len()
                );
                overlay = Some(std::sync::Arc::new(
                    modelmap::stats::diff::change_overlay(&model, &d).into(),
                ));
                model = modelmap::stats::diff::delta_model(&model, &b, &d);
            }
            if view == RenderView::Neurons {
                let msg = modelmap::neuron_view::render_neurons_png(
                    std::sync::Arc::new(model),
                    chain.as_deref(),
                    width,
                    height,
                    &out,
                )?;
                println!("{msg}");
                return Ok(());
            }
            if let Some(name) = tensor {
                let msg = modelmap::scene::render_tensor_png(
                    &model, &name, width, height, &out, kernels,
                )?;
                println!("{msg}");
                return Ok(());
            }
            let opts = modelmap::scene::RenderOptions {
                width,
                height,
                layout,
                focus,
                redact,
                overlay,
            };
            let msg = modelmap::scene::render_model_png(std::sync::Arc::new(model), &opts, &out)?;
            println!("{msg}");
        }
        Some(Command::Stats(args)) => {
            let model = open_model(&args.file)?;
            print!("{}", modelmap::stats::cli::run(&model, &args)?);
        }
        Some(Command::Diff(args)) => {
            let (a, b) = rayon::join(|| open_model(&args.a), || open_model(&args.b));
            let a = a?;
            let b = modelmap::stats::diff::counterpart(&a, b?).map_err(anyhow::Error::msg)?;
            let (text, failures) = modelmap::stats::cli::diff_report(&a, &b, &args)?;
            print!("{text}");
            if !failures.is_empty() {
                for f in &failures {
                    eprintln!("diff: {f}");
                }
                std::process::exit(1);
            }
        }
        Some(Command::Curves(args)) => modelmap::training::run_curves(&args)?,
        Some(Command::Bench { what }) => match what {
            BenchCommand::Layout { args, json } => {
                let report = modelmap::bench::layout::run(&args)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    println!("{}", report.summary());
                }
            }
            BenchCommand::Render {
                args,
                lod,
                no_lod,
                model,
            } => {
                let r = if lod || no_lod || model.is_some() {
                    let t = std::time::Instant::now();
                    let mut source = match &model {
                        Some(f) => {
                            let m = open_model(f)?;
                            let scene = modelmap::scene::Scene::build(
                                std::sync::Arc::new(m),
                                modelmap::scene::LayoutChoice::Auto,
                                &modelmap::layout::Progress::new(),
                            )?;
                            modelmap::scene::LodSceneSource::new(scene, no_lod)
                        }
                        None => {
                            let edges = args.edges.unwrap_or(args.nodes * 2);
                            let mut s = modelmap::scene::LodSceneSource::synthetic(
                                args.nodes, edges, args.seed,
                            )?;
                            s.scene.lod.options.no_lod = no_lod;
                            s
                        }
                    };
                    eprintln!(
                        "scene ready in {:.1} s ({} clusters)",
                        t.elapsed().as_secs_f64(),
                        source.scene.layout.clusters.clusters.len()
                    );
                    let ctx = modelmap::render::RenderContext::headless()?;
                    modelmap::bench::render::run_with(&ctx, &args, &mut source)?
                } else {
                    modelmap::bench::render::run(&args)?
                };
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    print!("{}", modelmap::bench::render::report(&r));
                }
            }
            BenchCommand::Stats { args, json } => {
                let r = modelmap::bench::stats::run(&args)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    println!("{r}");
                }
            }
            BenchCommand::Zoom(args) => {
                let r = modelmap::bench::zoom::run(&args)
                    .with_context(|| format!("bench zoom on {}", args.model.display()))?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    println!("{r}");
                }
            }
            BenchCommand::Tfevents(args) => {
                // Prints its own report (text, or JSON with --json).
                modelmap::bench::tfevents::run(&args)?;
            }
            BenchCommand::Load(args) => {
                let results = modelmap::bench::load::run(&args).map_err(anyhow::Error::msg)?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&results)?);
                } else {
                    print!("{}", modelmap::bench::load::report(&results));
                }
            }
        },
        Some(Command::Synth { what }) => {
            let report = modelmap::bench::synth_model::run(&what)?;
            println!("{report}");
        }
        None => {
            modelmap::app::run_with(modelmap::app::RunOptions {
                files: cli.files,
                diff: cli.diff,
                node_data: cli.node_data,
                bench_startup: cli.bench_startup,
                started,
            })?;
        }
    }
    Ok(())
}

/// Opens a model for a command, with the file named in the error; a training log (event files,
/// a W&B or MLflow run, a CSV/JSONL log) is told apart and pointed to `modelmap curves`.
fn open_model(path: &std::path::Path) -> anyhow::Result<modelmap::model::Model> {
    if modelmap::training::looks_like_logs(path) {
        anyhow::bail!(
            "{} is a training log, not a model: `modelmap curves {}` plots it, and `modelmap {}` \
             opens it in the Training window",
            path.display(),
            path.display(),
            path.display()
        );
    }
    load::open(path).with_context(|| format!("cannot open {}", path.display()))
}
