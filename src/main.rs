//! The `modelmap` command line.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use modelmap::load;
use modelmap::model::Summary;

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
}

#[derive(Subcommand)]
enum Command {
    /// Print a summary of a model: format, counts, op types, inputs/outputs, parameters, hierarchy.
    Info {
        /// The model file (ONNX, safetensors or its index/folder, GGUF, JSON layer list).
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
    },
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

#[derive(Subcommand)]
enum BenchCommand {
    /// Open a 1.26 B-parameter sharded checkpoint and a 54 k-node ONNX file, against Python's onnx.load.
    Load(modelmap::bench::load::LoadBenchArgs),
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Info { file, json }) => {
            let model =
                load::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
            let summary = Summary::of(&model);
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", summary.to_text());
            }
            if std::env::var_os("MODELMAP_REPORT_PEAK_RSS").is_some() {
                eprintln!(
                    "peak_rss_bytes={}",
                    modelmap::bench::load::peak_rss_bytes().unwrap_or(0)
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
        }) => {
            let model =
                load::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
            let opts = modelmap::scene::RenderOptions {
                width,
                height,
                layout,
                focus,
                redact,
            };
            let msg = modelmap::scene::render_model_png(std::sync::Arc::new(model), &opts, &out)?;
            println!("{msg}");
        }
        Some(Command::Bench { what }) => match what {
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
            if cli.files.is_empty() {
                let model = modelmap::assets::demo_model()?;
                print!("{}", Summary::of(&model).to_text());
            } else {
                for f in &cli.files {
                    let model =
                        load::open(f).with_context(|| format!("cannot open {}", f.display()))?;
                    print!("{}", Summary::of(&model).to_text());
                }
            }
        }
    }
    Ok(())
}
