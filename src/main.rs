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
    /// Write synthetic models and scenes for benchmarks.
    Synth {
        #[command(subcommand)]
        what: modelmap::bench::synth_model::SynthCommand,
    },
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
        }
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
