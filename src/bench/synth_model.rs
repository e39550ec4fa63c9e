//! Synthetic checkpoints and ONNX models for benchmarks and the demo (`modelmap synth …`).
//!
//! Everything is deterministic given a seed. Checkpoints follow Hugging Face LLaMA naming and write
//! `config.json` and `model.safetensors.index.json` like `save_pretrained`; `--sparse` writes only the
//! headers and leaves the data as file holes, so a 140 GB checkpoint costs almost no disk.

use std::fs::File;
use std::io::{BufWriter, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use prost::Message as _;
use rayon::prelude::*;

use crate::load::onnx_proto as p;

/// What `modelmap synth` writes.
#[derive(Debug, clap::Subcommand)]
pub enum SynthCommand {
    /// A LLaMA-style sharded safetensors checkpoint.
    Llama(LlamaArgs),
    /// A LLaMA-style decoder exported as an ONNX op graph (~68 nodes a layer, weights inline).
    OnnxDecoder {
        /// Decoder layers (800 gives a ~54 k-node, ~160 MB file).
        #[arg(long, default_value_t = 800)]
        layers: usize,
        /// Hidden size.
        #[arg(long, default_value_t = 64)]
        hidden: usize,
        /// Output file.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// The small demo models shipped in `assets/`.
    Demo {
        /// Output folder.
        #[arg(short, long, default_value = "assets")]
        out: PathBuf,
    },
}

/// Shape of a LLaMA-style checkpoint.
#[derive(Clone, Debug, clap::Args)]
pub struct LlamaArgs {
    /// Preset: `1b` (≈1.28 B parameters, 26 layers, hidden 2048), `70b` (80 layers, hidden 8192,
    /// 29 shards), `tiny` (4 layers, hidden 64). Flags below override it.
    #[arg(long, default_value = "1b")]
    pub preset: String,
    /// Decoder layers.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Hidden size.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// MLP intermediate size.
    #[arg(long)]
    pub intermediate: Option<usize>,
    /// Vocabulary size.
    #[arg(long)]
    pub vocab: Option<usize>,
    /// Attention heads.
    #[arg(long)]
    pub heads: Option<usize>,
    /// Key/value heads (grouped-query attention).
    #[arg(long)]
    pub kv_heads: Option<usize>,
    /// Number of safetensors shards.
    #[arg(long)]
    pub shards: Option<usize>,
    /// Element type: bf16, f16 or f32.
    #[arg(long, default_value = "bf16")]
    pub dtype: String,
    /// Write headers only and leave the data as holes (sparse files).
    #[arg(long)]
    pub sparse: bool,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Plant anomalies: a NaN in layer 1's q_proj and a dead (all-zero) row 5 in the last layer's down_proj.
    #[arg(long)]
    pub plant_anomalies: bool,
    /// Output folder.
    #[arg(short, long)]
    pub out: PathBuf,
}

/// Errors while writing synthetic files.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Arguments make no sense.
    #[error("{0}")]
    Args(String),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs a synth command and returns a one-paragraph report.
pub fn run(cmd: &SynthCommand) -> Result<String, SynthError> {
    match cmd {
        SynthCommand::Llama(a) => {
            let cfg = LlamaConfig::from_args(a)?;
            let t0 = std::time::Instant::now();
            let params = write_llama(&cfg, &a.out)?;
            Ok(format!(
                "wrote {} ({} parameters, {} layers, hidden {}, {} shards{}) in {:.1} s",
                a.out.display(),
                crate::model::group_digits(params),
                cfg.layers,
                cfg.hidden,
                cfg.shards,
                if cfg.sparse { ", sparse" } else { "" },
                t0.elapsed().as_secs_f64()
            ))
        }
        SynthCommand::OnnxDecoder {
            layers,
            hidden,
            out,
        } => {
            let (nodes, bytes) = write_onnx_decoder(*layers, *hidden, out)?;
            Ok(format!(
                "wrote {} ({nodes} nodes, {})",
                out.display(),
                crate::model::human_bytes(bytes)
            ))
        }
        SynthCommand::Demo { out } => write_demo(out),
    }
}

/// A LLaMA-style configuration.
#[derive(Clone, Debug)]
pub struct LlamaConfig {
    /// Decoder layers.
    pub layers: usize,
    /// Hidden size.
    pub hidden: usize,
    /// MLP size.
    pub intermediate: usize,
    /// Vocabulary.
    pub vocab: usize,
    /// Attention heads.
    pub heads: usize,
    /// KV heads.
    pub kv_heads: usize,
    /// Shards.
    pub shards: usize,
    /// `BF16`, `F16` or `F32`.
    pub dtype: &'static str,
    /// Holes instead of data.
    pub sparse: bool,
    /// Seed.
    pub seed: u64,
    /// Plant a NaN and a dead row.
    pub plant_anomalies: bool,
}

impl LlamaConfig {
    /// The configuration a set of flags asks for.
    pub fn from_args(a: &LlamaArgs) -> Result<Self, SynthError> {
        let mut c = match a.preset.as_str() {
            "1b" => LlamaConfig::preset_1b(),
            "70b" => LlamaConfig {
                layers: 80,
                hidden: 8192,
                intermediate: 28672,
                vocab: 128_256,
                heads: 64,
                kv_heads: 8,
                shards: 29,
                ..LlamaConfig::preset_1b()
            },
            "tiny" => LlamaConfig::tiny(),
            other => {
                return Err(SynthError::Args(format!(
                    "unknown preset {other:?} (1b, 70b, tiny)"
                )));
            }
        };
        c.layers = a.layers.unwrap_or(c.layers);
        c.hidden = a.hidden.unwrap_or(c.hidden);
        c.intermediate = a.intermediate.unwrap_or(c.intermediate);
        c.vocab = a.vocab.unwrap_or(c.vocab);
        c.heads = a.heads.unwrap_or(c.heads);
        c.kv_heads = a.kv_heads.unwrap_or(c.kv_heads);
        c.shards = a.shards.unwrap_or(c.shards).max(1);
        c.dtype = match a.dtype.to_ascii_lowercase().as_str() {
            "bf16" => "BF16",
            "f16" => "F16",
            "f32" => "F32",
            other => {
                return Err(SynthError::Args(format!(
                    "unknown dtype {other:?} (bf16, f16, f32)"
                )));
            }
        };
        c.sparse = a.sparse;
        c.seed = a.seed;
        c.plant_anomalies = a.plant_anomalies;
        if c.heads == 0 || c.kv_heads == 0 || c.hidden % c.heads != 0 {
            return Err(SynthError::Args(
                "hidden must be a multiple of heads, heads and kv_heads > 0".into(),
            ));
        }
        Ok(c)
    }

    /// ≈1.28 B parameters: 26 layers, hidden 2048, MLP 5632, vocab 32000, 3 shards, bf16.
    pub fn preset_1b() -> Self {
        LlamaConfig {
            layers: 26,
            hidden: 2048,
            intermediate: 5632,
            vocab: 32000,
            heads: 32,
            kv_heads: 4,
            shards: 3,
            dtype: "BF16",
            sparse: false,
            seed: 1,
            plant_anomalies: false,
        }
    }

    /// 4 layers, hidden 64: the demo and test size.
    pub fn tiny() -> Self {
        LlamaConfig {
            layers: 4,
            hidden: 64,
            intermediate: 172,
            vocab: 1000,
            heads: 4,
            kv_heads: 2,
            shards: 1,
            dtype: "F32",
            ..Self::preset_1b()
        }
    }

    /// Every tensor as (name, shape), in the order `save_pretrained` writes them (sorted by name).
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let h = self.hidden;
        let kv = h / self.heads * self.kv_heads;
        let mut v = vec![
            ("model.embed_tokens.weight".to_string(), vec![self.vocab, h]),
            ("model.norm.weight".to_string(), vec![h]),
            ("lm_head.weight".to_string(), vec![self.vocab, h]),
        ];
        for l in 0..self.layers {
            let p = format!("model.layers.{l}");
            v.push((format!("{p}.input_layernorm.weight"), vec![h]));
            v.push((format!("{p}.self_attn.q_proj.weight"), vec![h, h]));
            v.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, h]));
            v.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, h]));
            v.push((format!("{p}.self_attn.o_proj.weight"), vec![h, h]));
            v.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
            v.push((
                format!("{p}.mlp.gate_proj.weight"),
                vec![self.intermediate, h],
            ));
            v.push((
                format!("{p}.mlp.up_proj.weight"),
                vec![self.intermediate, h],
            ));
            v.push((
                format!("{p}.mlp.down_proj.weight"),
                vec![h, self.intermediate],
            ));
        }
        v.sort_by_cached_key(|a| natural_key(&a.0));
        v
    }

    fn elem_size(&self) -> usize {
        if self.dtype == "F32" { 4 } else { 2 }
    }
}

/// Sort key that orders `layers.2` before `layers.10`.
fn natural_key(s: &str) -> Vec<(u64, String)> {
    s.split('.')
        .map(|p| {
            p.parse::<u64>()
                .map_or((u64::MAX, p.to_string()), |n| (n, String::new()))
        })
        .collect()
}

/// SplitMix64: small, fast, good enough for synthetic weights.
#[derive(Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Approximately standard-normal (sum of four uniforms, rescaled): cheap and bell-shaped.
    pub fn normal(&mut self) -> f32 {
        let r = self.next_u64();
        let s: u32 = (0..4).map(|i| ((r >> (i * 16)) & 0xFFFF) as u32).sum();
        // Sum of 4 U(0, 65535): mean 131070, variance 4 * 65536² / 12.
        (s as f32 - 131_070.0) / 37_837.2
    }
}

/// Fills `out` with values of a tensor: weights ~ N(0, std) with a per-row scale so heatmaps show
/// structure, norms ~ 1 + small noise.
fn fill_values(name: &str, shape: &[usize], seed: u64, out: &mut [f32]) {
    let is_norm = name.contains("norm");
    let cols = shape.last().copied().unwrap_or(1).max(1);
    let fan_in = if shape.len() >= 2 { cols } else { 1 } as f32;
    let std = if name.contains("embed") || name.contains("lm_head") {
        0.02
    } else {
        1.0 / fan_in.sqrt()
    };
    let name_seed = name
        .bytes()
        .fold(seed, |h, b| h.wrapping_mul(0x100_0000_01B3) ^ b as u64);
    out.par_chunks_mut(1 << 16)
        .enumerate()
        .for_each(|(chunk, xs)| {
            let mut rng = SplitMix(name_seed ^ (chunk as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
            let start = chunk << 16;
            for (i, x) in xs.iter_mut().enumerate() {
                let idx = start + i;
                let row = idx / cols;
                if is_norm {
                    *x = 1.0 + 0.05 * rng.normal();
                } else {
                    // Some rows run hotter than others, as trained weights do.
                    let row_scale = 0.6
                        + 0.8 * (((row as u64).wrapping_mul(2_654_435_761) >> 7) % 1000) as f32
                            / 1000.0;
                    *x = std * row_scale * rng.normal();
                }
            }
        });
}

fn encode(values: &[f32], dtype: &str, out: &mut Vec<u8>) {
    out.clear();
    match dtype {
        "F32" => out.extend(values.iter().flat_map(|v| v.to_le_bytes())),
        "F16" => out.extend(
            values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes()),
        ),
        _ => out.extend(
            values
                .iter()
                .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()),
        ),
    }
}

/// Writes a safetensors file from (name, dtype, shape, bytes-producer) entries; returns its size.
fn write_safetensors(
    path: &Path,
    entries: &[(String, &str, Vec<usize>)],
    sparse: bool,
    mut data: impl FnMut(usize, &mut dyn std::io::Write) -> std::io::Result<()>,
    elem_size: impl Fn(&str) -> usize,
) -> Result<u64, SynthError> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut offset = 0usize;
    for (name, dtype, shape) in entries {
        let n: usize = shape.iter().product::<usize>() * elem_size(dtype);
        header.insert(name.clone(), serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}));
        offset += n;
    }
    let mut h = serde_json::to_vec(&header).map_err(|e| SynthError::Args(e.to_string()))?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let file = File::create(path).map_err(io_err(path))?;
    let mut w = BufWriter::with_capacity(8 << 20, file);
    w.write_all(&(h.len() as u64).to_le_bytes())
        .map_err(io_err(path))?;
    w.write_all(&h).map_err(io_err(path))?;
    let total = 8 + h.len() as u64 + offset as u64;
    if sparse {
        let mut file = w.into_inner().map_err(|e| SynthError::Io {
            path: path.to_path_buf(),
            source: e.into_error(),
        })?;
        file.set_len(total).map_err(io_err(path))?;
        file.seek(SeekFrom::End(0)).map_err(io_err(path))?;
    } else {
        for i in 0..entries.len() {
            data(i, &mut w).map_err(io_err(path))?;
        }
        w.flush().map_err(io_err(path))?;
    }
    Ok(total)
}

/// Writes a LLaMA-style checkpoint into `dir`; returns the parameter count.
pub fn write_llama(cfg: &LlamaConfig, dir: &Path) -> Result<u64, SynthError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tensors = cfg.tensors();
    let total: u64 = tensors
        .iter()
        .map(|(_, s)| s.iter().product::<usize>() as u64)
        .sum();
    // Split into shards of about equal bytes, keeping file order.
    let per_shard = total.div_ceil(cfg.shards as u64);
    let mut shards: Vec<Vec<(String, Vec<usize>)>> = vec![Vec::new()];
    let mut acc = 0u64;
    for t in tensors {
        let n = t.1.iter().product::<usize>() as u64;
        if acc >= per_shard && shards.len() < cfg.shards {
            shards.push(Vec::new());
            acc = 0;
        }
        acc += n;
        if let Some(last) = shards.last_mut() {
            last.push(t);
        }
    }
    let n_shards = shards.len();
    let mut weight_map = serde_json::Map::new();
    let mut total_size = 0u64;
    let mut values: Vec<f32> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    for (si, shard) in shards.iter().enumerate() {
        let file_name = if n_shards == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{:05}.safetensors", si + 1, n_shards)
        };
        let entries: Vec<(String, &str, Vec<usize>)> = shard
            .iter()
            .map(|(n, s)| (n.clone(), cfg.dtype, s.clone()))
            .collect();
        for (n, _) in shard {
            weight_map.insert(n.clone(), serde_json::json!(file_name));
        }
        let path = dir.join(&file_name);
        let size = write_safetensors(
            &path,
            &entries,
            cfg.sparse,
            |i, w| {
                let (name, shape) = &shard[i];
                let n: usize = shape.iter().product();
                // Large tensors are generated a block of rows at a time so memory stays bounded.
                let cols = shape.last().copied().unwrap_or(1).max(1);
                let rows_per_block = ((16 << 20) / cols).max(1);
                let rows = n / cols;
                let mut r0 = 0;
                while r0 < rows {
                    let r1 = (r0 + rows_per_block).min(rows);
                    values.resize((r1 - r0) * cols, 0.0);
                    fill_values(
                        name,
                        &[r1 - r0, cols],
                        cfg.seed ^ (r0 as u64) << 20,
                        &mut values,
                    );
                    if cfg.plant_anomalies {
                        plant(cfg, name, r0, cols, &mut values);
                    }
                    encode(&values, cfg.dtype, &mut bytes);
                    w.write_all(&bytes)?;
                    r0 = r1;
                }
                Ok(())
            },
            |_| cfg.elem_size(),
        )?;
        total_size += size;
    }
    if n_shards > 1 {
        let index = serde_json::json!({"metadata": {"total_size": total * cfg.elem_size() as u64}, "weight_map": weight_map});
        let p = dir.join("model.safetensors.index.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&index).unwrap_or_default())
            .map_err(io_err(&p))?;
    }
    let _ = total_size;
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": cfg.hidden,
        "intermediate_size": cfg.intermediate,
        "num_hidden_layers": cfg.layers,
        "num_attention_heads": cfg.heads,
        "num_key_value_heads": cfg.kv_heads,
        "vocab_size": cfg.vocab,
        "rms_norm_eps": 1e-5,
        "torch_dtype": match cfg.dtype { "F32" => "float32", "F16" => "float16", _ => "bfloat16" },
        "tie_word_embeddings": false,
    });
    let p = dir.join("config.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&config).unwrap_or_default())
        .map_err(io_err(&p))?;
    Ok(total)
}

fn plant(cfg: &LlamaConfig, name: &str, row0: usize, cols: usize, values: &mut [f32]) {
    if name == "model.layers.1.self_attn.q_proj.weight"
        && row0 == 0
        && let Some(v) = values.get_mut(3 * cols + 7)
    {
        *v = f32::NAN;
    }
    let last = format!(
        "model.layers.{}.mlp.down_proj.weight",
        cfg.layers.saturating_sub(1)
    );
    if name == last && row0 <= 5 {
        let start = (5 - row0) * cols;
        if let Some(row) = values.get_mut(start..start + cols) {
            row.fill(0.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ONNX decoder graphs

struct OnnxBuilder {
    nodes: Vec<p::NodeProto>,
    inits: Vec<p::TensorProto>,
    rng: SplitMix,
}

impl OnnxBuilder {
    fn node(&mut self, op: &str, name: &str, inputs: &[&str], outputs: &[&str]) {
        self.nodes.push(p::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: name.to_string(),
            op_type: op.to_string(),
            ..Default::default()
        });
    }

    /// A node whose single output is named after the node (as tracing exporters do).
    fn op(&mut self, op: &str, name: &str, inputs: &[&str]) -> String {
        let out = format!("{name}_output_0");
        self.node(op, name, inputs, &[&out]);
        out
    }

    fn weight(&mut self, name: &str, dims: &[usize]) -> String {
        let n: usize = dims.iter().product();
        let std = 1.0 / (dims.first().copied().unwrap_or(1) as f32).sqrt();
        let raw: Vec<u8> = (0..n)
            .flat_map(|_| (std * self.rng.normal()).to_le_bytes())
            .collect();
        self.inits.push(p::TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: 1,
            name: name.to_string(),
            raw_data: raw.into(),
            ..Default::default()
        });
        name.to_string()
    }
}

fn value_info(name: &str, elem: i32, dims: &[Result<i64, &str>]) -> p::ValueInfoProto {
    use p::tensor_shape_proto::{Dimension, dimension::Value as D};
    p::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(p::TypeProto {
            value: Some(p::type_proto::Value::TensorType(p::type_proto::Tensor {
                elem_type: elem,
                shape: Some(p::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Ok(v) => D::DimValue(*v),
                                Err(s) => D::DimParam(s.to_string()),
                            }),
                            denotation: String::new(),
                        })
                        .collect(),
                }),
            })),
            denotation: String::new(),
        }),
        doc_string: String::new(),
    }
}

/// Builds a LLaMA-style decoder ONNX model of `layers` layers; returns (node count, bytes written).
pub fn build_onnx_decoder(layers: usize, hidden: usize) -> p::ModelProto {
    let mut b = OnnxBuilder {
        nodes: Vec::new(),
        inits: Vec::new(),
        rng: SplitMix(7),
    };
    let vocab = 1000;
    let inter = hidden * 43 / 16;
    let embed = b.weight("model.embed_tokens.weight", &[vocab, hidden]);
    let mut x = b.op(
        "Gather",
        "/model/embed_tokens/Gather",
        &[&embed, "input_ids"],
    );
    let rms = |b: &mut OnnxBuilder, prefix: &str, x: &str| -> String {
        let w = b.weight(
            &format!(
                "{}.weight",
                prefix.trim_start_matches('/').replace('/', ".")
            ),
            &[hidden],
        );
        let p2 = b.op("Pow", &format!("{prefix}/Pow"), &[x, "two"]);
        let m = b.op("ReduceMean", &format!("{prefix}/ReduceMean"), &[&p2]);
        let a = b.op("Add", &format!("{prefix}/Add"), &[&m, "eps"]);
        let s = b.op("Sqrt", &format!("{prefix}/Sqrt"), &[&a]);
        let d = b.op("Div", &format!("{prefix}/Div"), &[x, &s]);
        b.op("Mul", &format!("{prefix}/Mul"), &[&d, &w])
    };
    for l in 0..layers {
        let p = format!("/model/layers.{l}");
        let h = rms(&mut b, &format!("{p}/input_layernorm"), &x);
        let mut heads = Vec::new();
        for proj in ["q_proj", "k_proj", "v_proj"] {
            let w = b.weight(&format!("onnx::MatMul_{l}_{proj}"), &[hidden, hidden]);
            let mm = b.op("MatMul", &format!("{p}/self_attn/{proj}/MatMul"), &[&h, &w]);
            let sh = b.op("Shape", &format!("{p}/self_attn/{proj}/Shape"), &[&h]);
            let g = b.op(
                "Gather",
                &format!("{p}/self_attn/{proj}/Gather"),
                &[&sh, "zero"],
            );
            let c = b.op(
                "Concat",
                &format!("{p}/self_attn/{proj}/Concat"),
                &[&g, "heads_shape"],
            );
            let r = b.op(
                "Reshape",
                &format!("{p}/self_attn/{proj}/Reshape"),
                &[&mm, &c],
            );
            let t = b.op(
                "Transpose",
                &format!("{p}/self_attn/{proj}/Transpose"),
                &[&r],
            );
            heads.push(t);
        }
        // Rotary embedding on q and k.
        let mut rotated = Vec::new();
        for (i, which) in ["q", "k"].iter().enumerate() {
            let src = heads[i].clone();
            let rp = format!("{p}/self_attn/rotary_{which}");
            let m1 = b.op("Mul", &format!("{rp}/Mul"), &[&src, "cos_cached"]);
            let s1 = b.op("Slice", &format!("{rp}/Slice"), &[&src]);
            let s2 = b.op("Slice", &format!("{rp}/Slice_1"), &[&src]);
            let n = b.op("Neg", &format!("{rp}/Neg"), &[&s2]);
            let c = b.op("Concat", &format!("{rp}/Concat"), &[&n, &s1]);
            let m2 = b.op("Mul", &format!("{rp}/Mul_1"), &[&c, "sin_cached"]);
            rotated.push(b.op("Add", &format!("{rp}/Add"), &[&m1, &m2]));
        }
        let kt = b.op(
            "Transpose",
            &format!("{p}/self_attn/Transpose"),
            &[&rotated[1]],
        );
        let sc = b.op(
            "MatMul",
            &format!("{p}/self_attn/MatMul"),
            &[&rotated[0], &kt],
        );
        let dv = b.op("Div", &format!("{p}/self_attn/Div"), &[&sc, "scale"]);
        let mk = b.op(
            "Add",
            &format!("{p}/self_attn/Add"),
            &[&dv, "attention_mask_4d"],
        );
        let sm = b.op("Softmax", &format!("{p}/self_attn/Softmax"), &[&mk]);
        let av = b.op(
            "MatMul",
            &format!("{p}/self_attn/MatMul_1"),
            &[&sm, &heads[2]],
        );
        let tr = b.op("Transpose", &format!("{p}/self_attn/Transpose_1"), &[&av]);
        let sh = b.op("Shape", &format!("{p}/self_attn/Shape"), &[&tr]);
        let g = b.op("Gather", &format!("{p}/self_attn/Gather"), &[&sh, "zero"]);
        let c = b.op(
            "Concat",
            &format!("{p}/self_attn/Concat"),
            &[&g, "hidden_shape"],
        );
        let rs = b.op("Reshape", &format!("{p}/self_attn/Reshape"), &[&tr, &c]);
        let wo = b.weight(&format!("onnx::MatMul_{l}_o_proj"), &[hidden, hidden]);
        let o = b.op(
            "MatMul",
            &format!("{p}/self_attn/o_proj/MatMul"),
            &[&rs, &wo],
        );
        let r1 = b.op("Add", &format!("{p}/Add"), &[&x, &o]);
        let h2 = rms(&mut b, &format!("{p}/post_attention_layernorm"), &r1);
        let wg = b.weight(&format!("onnx::MatMul_{l}_gate"), &[hidden, inter]);
        let wu = b.weight(&format!("onnx::MatMul_{l}_up"), &[hidden, inter]);
        let wd = b.weight(&format!("onnx::MatMul_{l}_down"), &[inter, hidden]);
        let gt = b.op("MatMul", &format!("{p}/mlp/gate_proj/MatMul"), &[&h2, &wg]);
        let sg = b.op("Sigmoid", &format!("{p}/mlp/act_fn/Sigmoid"), &[&gt]);
        let si = b.op("Mul", &format!("{p}/mlp/act_fn/Mul"), &[&gt, &sg]);
        let up = b.op("MatMul", &format!("{p}/mlp/up_proj/MatMul"), &[&h2, &wu]);
        let gu = b.op("Mul", &format!("{p}/mlp/Mul"), &[&si, &up]);
        let dn = b.op("MatMul", &format!("{p}/mlp/down_proj/MatMul"), &[&gu, &wd]);
        x = b.op("Add", &format!("{p}/Add_1"), &[&r1, &dn]);
    }
    let n = rms(&mut b, "/model/norm", &x);
    let head = b.weight("onnx::MatMul_lm_head", &[hidden, vocab]);
    b.node("MatMul", "/lm_head/MatMul", &[&n, &head], &["logits"]);
    let (batch, seq) = (Err("batch_size"), Err("sequence_length"));
    let graph = p::GraphProto {
        node: b.nodes,
        name: "main_graph".into(),
        initializer: b.inits,
        input: vec![
            value_info("input_ids", 7, &[batch, seq]),
            value_info("attention_mask_4d", 1, &[batch, Ok(1), seq, seq]),
            value_info("cos_cached", 1, &[seq, Ok(16)]),
            value_info("sin_cached", 1, &[seq, Ok(16)]),
        ],
        output: vec![value_info("logits", 1, &[batch, seq, Ok(vocab as i64)])],
        ..Default::default()
    };
    p::ModelProto {
        ir_version: 8,
        opset_import: vec![p::OperatorSetIdProto {
            domain: String::new(),
            version: 18,
        }],
        producer_name: "modelmap-synth".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        ..Default::default()
    }
}

/// Writes [`build_onnx_decoder`] to a file; returns (node count, bytes).
pub fn write_onnx_decoder(
    layers: usize,
    hidden: usize,
    out: &Path,
) -> Result<(usize, u64), SynthError> {
    let model = build_onnx_decoder(layers, hidden);
    let nodes = model.graph.as_ref().map_or(0, |g| g.node.len());
    let bytes = model.encode_to_vec();
    std::fs::write(out, &bytes).map_err(io_err(out))?;
    Ok((nodes, bytes.len() as u64))
}

/// Writes the demo assets: a small LLaMA checkpoint and a small decoder ONNX.
pub fn write_demo(out: &Path) -> Result<String, SynthError> {
    let dir = out.join("demo");
    let cfg = LlamaConfig {
        plant_anomalies: true,
        ..LlamaConfig::tiny()
    };
    let params = write_llama(&cfg, &dir)?;
    let onnx = out.join("demo_decoder.onnx");
    let (nodes, bytes) = write_onnx_decoder(2, 32, &onnx)?;
    Ok(format!(
        "wrote {} ({} parameters) and {} ({nodes} nodes, {})",
        dir.display(),
        crate::model::group_digits(params),
        onnx.display(),
        crate::model::human_bytes(bytes)
    ))
}
