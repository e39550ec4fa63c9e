//! Loaders: one module per format, sniffed from content, all producing a [`Model`].
//!
//! Files are memory-mapped and tensors borrow from the map; every size read from a file is checked
//! against the file before anything is allocated by it.

mod coreml;
mod dcp;
mod diffusion;
mod executorch;
mod family;
mod flatbuf;
mod flax;
mod gguf;
mod hdf5;
mod hf_quant;
mod json_layers;
mod keras;
mod megatron;
mod nemo;
mod numpy;
mod onnx;
mod openvino;
mod orbax;
mod peft;
mod pickle;
mod prune;
mod safetensors;
mod tensorflow;
mod tflite;
mod torch;
mod torch_export;
mod torchscript;

#[doc(hidden)]
pub use torchscript::fuzz_code as fuzz_torchscript_code;

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::model::{Format, Model};

pub use family::chain_checkpoint_modules;
pub use onnx::proto as onnx_proto;

/// Why a file could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened, read or mapped.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The content is not a model this build can read.
    #[error("{path}: not a model file modelmap can read ({why})")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// What was seen.
        why: String,
    },
    /// The file is of a known format but malformed (truncated, out-of-range offsets, bad header…).
    #[error("{path}: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with offsets where useful.
        why: String,
    },
    /// The caller cancelled the load ([`open_with`]).
    #[error("{path}: loading cancelled")]
    Cancelled {
        /// The file.
        path: PathBuf,
    },
}

impl LoadError {
    pub(crate) fn corrupt(path: &Path, why: impl Into<String>) -> Self {
        LoadError::Corrupt {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        LoadError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Memory-maps a file as `Bytes` (zero-copy slices share the map).
pub fn map_file(path: &Path) -> Result<Bytes, LoadError> {
    let file = std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?;
    let len = file.metadata().map_err(|e| LoadError::io(path, e))?.len();
    if len == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the map is read-only; modelmap never writes the file. Another process truncating it
    // while mapped is the usual mmap hazard (SIGBUS), accepted by every mmap-based viewer.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| LoadError::io(path, e))?;
    #[cfg(unix)]
    {
        // Weights are read on demand, in no particular order.
        let _ = map.advise(memmap2::Advice::Random);
    }
    Ok(Bytes::from_owner(Mapped::new(map)))
}

use crate::model::mapped::Mapped;
pub use crate::model::mapped::{is_file_mapped, release_mapped};

/// Weights read by op nodes in graphs whose constants are not drawn (TensorFlow, OpenVINO,
/// Core ML): each weight is one value, and the first node to read it owns it.
#[derive(Default)]
pub(super) struct WeightReaders {
    values: std::collections::HashMap<crate::model::TensorId, crate::model::ValueId>,
    owned: std::collections::HashSet<crate::model::TensorId>,
}

impl WeightReaders {
    /// `node` reads weight `t` as its next input; returns whether it is the first to, and so
    /// its owner.
    pub(super) fn read(
        &mut self,
        graph: &mut crate::model::Graph,
        tensors: &[crate::model::Tensor],
        node: &mut crate::model::Node,
        t: crate::model::TensorId,
    ) -> bool {
        let v = *self.values.entry(t).or_insert_with(|| {
            graph.add_value(
                tensors
                    .get(t as usize)
                    .map(crate::model::Value::of_tensor)
                    .unwrap_or_default(),
            )
        });
        node.inputs.push(Some(v));
        let first = self.owned.insert(t);
        if first {
            node.tensors.push(t);
        }
        first
    }
}

/// The signature of an HDF5 file.
const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// What a file's content says it is.
pub fn sniff(path: &Path, head: &[u8]) -> Option<Format> {
    // A NeMo archive: a tar (no magic at its start), or a gzip of one, known by its extension.
    if nemo::sniff(path) {
        return Some(Format::Nemo);
    }
    if head.starts_with(b"GGUF") {
        return Some(Format::Gguf);
    }
    if head.starts_with(HDF5_MAGIC) {
        return Some(Format::Keras);
    }
    if head.starts_with(numpy::MAGIC) {
        return Some(Format::Numpy);
    }
    // A flatbuffer's root offset comes first, then the file identifier.
    if head.get(4..8) == Some(&tflite::IDENT[..]) {
        return Some(Format::Tflite);
    }
    if executorch::sniff(head) {
        return Some(Format::ExecuTorch);
    }
    // A Core ML model: a protobuf known by its extension, before the ONNX test.
    if coreml::sniff(path) {
        return Some(Format::CoreMl);
    }
    // OpenVINO IR: XML whose root is <net>.
    if openvino::sniff(path, head) {
        return Some(Format::OpenVino);
    }
    // A Flax checkpoint: a MessagePack map (whose first byte an ONNX tag can share).
    if flax::sniff(path, head) {
        return Some(Format::Flax);
    }
    // A zip archive (torch.save since 1.6) or the legacy pickle stream: before the ONNX test,
    // whose "plausible protobuf tag" both would pass.
    if head.starts_with(b"PK\x03\x04") || head.starts_with(&torch::LEGACY_MAGIC) {
        return Some(Format::Torch);
    }
    if head.len() >= 9 {
        let n = u64::from_le_bytes(head[..8].try_into().ok()?);
        if head[8] == b'{' && n > 1 && n < (1 << 32) {
            return Some(Format::Safetensors);
        }
    }
    // A TensorFlow graph is a protobuf with no magic of its own: known by its extension, before
    // the ONNX test that any protobuf passes.
    if path.extension().is_some_and(|e| e == "pb" || e == "pbtxt") {
        return Some(Format::TensorFlow);
    }
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        // A safetensors index or a layer list: decided by the loader once parsed.
        return Some(Format::JsonLayers);
    }
    // ONNX ModelProto starts with a protobuf tag: ir_version (field 1, varint) = 0x08, or another
    // field's tag. Accept any plausible tag and let the decoder judge.
    if let Some(&b) = head.first() {
        let field = b >> 3;
        let wire = b & 7;
        if (1..=25).contains(&field) && matches!(wire, 0 | 2) {
            return Some(Format::Onnx);
        }
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "onnx" => Some(Format::Onnx),
        _ => None,
    }
}

/// Opens a model file (or a folder holding a checkpoint) of any supported format.
pub fn open(path: &Path) -> Result<Model, LoadError> {
    open_with(path, &|| false)
}

/// [`open`], polling `cancelled` between stages and while converting a large ONNX graph (every
/// few thousand nodes); once it returns true the load stops with [`LoadError::Cancelled`]. The
/// other formats open from their headers alone and are checked before and after.
pub fn open_with(path: &Path, cancelled: &dyn Fn() -> bool) -> Result<Model, LoadError> {
    let stop = || LoadError::Cancelled {
        path: path.to_path_buf(),
    };
    if cancelled() {
        return Err(stop());
    }
    let meta = std::fs::metadata(path).map_err(|e| LoadError::io(path, e))?;
    let model = if let Some(dir) = dcp::folder_of(path)? {
        dcp::load(&dir)?
    } else if let Some(dir) = orbax::folder_of(path) {
        orbax::load(&dir)?
    } else if let Some(prefix) = tensorflow::checkpoint::prefix_of(path) {
        tensorflow::checkpoint::load(&prefix)?
    } else if meta.is_dir() && coreml::is_package(path) {
        coreml::open_package(path)?
    } else if meta.is_dir() && path.join("saved_model.pb").is_file() {
        let file = path.join("saved_model.pb");
        tensorflow::load(&file, map_file(&file)?)?
    } else if meta.is_dir() && megatron::is_checkpoint(path) {
        megatron::open(path)?
    } else if meta.is_dir() {
        safetensors::open_dir(path)?
    } else {
        let data = map_file(path)?;
        let head = &data[..data.len().min(64)];
        if sniff(path, head) == Some(Format::Onnx) {
            onnx::load_with(path, data, cancelled)?
        } else {
            open_bytes(path, data)?
        }
    };
    if cancelled() {
        return Err(stop());
    }
    let mut model = model;
    peft::apply_config(&mut model, path);
    Ok(model)
}

/// Opens the TensorFlow `GraphDef` serialized at `offset..offset + len` of `path`: a model graph
/// logged into a TensorBoard event file (the training stage finds where), read in place.
pub fn open_graph_in(path: &Path, offset: u64, len: u64) -> Result<Model, LoadError> {
    let mut model = tensorflow::load(path, mapped_part(path, offset, len, "graph")?)?;
    // PyTorch's `add_graph` writes a GraphDef of TorchScript ops: say who made it.
    if model
        .graph
        .nodes
        .iter()
        .any(|n| n.op.starts_with("aten::") || n.op.starts_with("prim::"))
    {
        model.metadata.producer = Some("PyTorch (SummaryWriter.add_graph)".into());
        model.metadata.producer_version = None;
    }
    Ok(model)
}

/// Opens the Keras model config (JSON, as `model.to_json()` writes it) at `offset..offset + len`
/// of `path`: the `keras` summary Keras's TensorBoard callback logs. The layer graph, no weights.
pub fn open_keras_config_in(path: &Path, offset: u64, len: u64) -> Result<Model, LoadError> {
    keras::from_config(path, &mapped_part(path, offset, len, "model config")?)
}

/// Bytes `offset..offset + len` of `path`, mapped; an error naming `what` when the file is shorter.
fn mapped_part(path: &Path, offset: u64, len: u64, what: &str) -> Result<Bytes, LoadError> {
    let data = map_file(path)?;
    let range = usize::try_from(offset)
        .ok()
        .zip(usize::try_from(len).ok())
        .and_then(|(start, len)| Some(start..start.checked_add(len)?))
        .filter(|r| r.end <= data.len())
        .ok_or_else(|| {
            LoadError::corrupt(
                path,
                format!("no {what} of {len} bytes at offset {offset}: the file is shorter"),
            )
        })?;
    Ok(data.slice(range))
}

/// Reads the fields of a Hugging Face `config.json` (given as text) into a model's metadata.
pub fn apply_hf_config(model: &mut Model, json: &str) {
    safetensors::apply_hf_config_text(model, json);
}

/// Opens a model from bytes already in memory (or mapped); `path` names it in errors. Sibling
/// files (ONNX external data, `config.json`) are looked up beside `path`.
pub fn open_bytes(path: impl AsRef<Path>, data: Bytes) -> Result<Model, LoadError> {
    let path = path.as_ref();
    if data.is_empty() {
        return Err(LoadError::UnknownFormat {
            path: path.to_path_buf(),
            why: "the file is empty".into(),
        });
    }
    let head = &data[..data.len().min(64)];
    match sniff(path, head) {
        Some(format) => open_bytes_as(path, data, format),
        // OpenVINO's weights, opened instead of their model: the `.xml` beside them.
        None if path.extension().is_some_and(|e| e == "bin")
            && path.with_extension("xml").is_file() =>
        {
            let xml = path.with_extension("xml");
            openvino::load(&xml, map_file(&xml)?)
        }
        None => Err(LoadError::UnknownFormat {
            path: path.to_path_buf(),
            why: format!(
                "unrecognised leading bytes {:02x?}",
                &head[..head.len().min(8)]
            ),
        }),
    }
}

/// Opens OpenVINO IR from its XML and its weights already in memory, as if `path` and the `.bin`
/// beside it held them (fuzzing; files open through [`open`]).
#[doc(hidden)]
pub fn open_openvino_parts(
    path: impl AsRef<Path>,
    xml: Bytes,
    bin: Bytes,
) -> Result<Model, LoadError> {
    openvino::load_parts(path.as_ref(), xml, Some(bin))
}

/// Opens a safetensors file already in memory with the text of the `config.json` beside it, as
/// if both were files (fuzzing the quantized-checkpoint readers; files open through [`open`]).
#[doc(hidden)]
pub fn open_safetensors_with_config(
    path: impl AsRef<Path>,
    config: &[u8],
    data: Bytes,
) -> Result<Model, LoadError> {
    safetensors::open_with_config(path.as_ref(), config, data)
}

/// Opens a Core ML model from its protobuf and its weight file already in memory (fuzzing; files
/// and packages open through [`open`]).
#[doc(hidden)]
pub fn open_coreml_parts(
    path: impl AsRef<Path>,
    spec: Bytes,
    weights: Bytes,
) -> Result<Model, LoadError> {
    coreml::load_parts(path.as_ref(), spec, Some(weights))
}

/// Opens a PyTorch distributed checkpoint from its `.metadata` and one chunk file already in
/// memory, the chunk file standing for every file the metadata names (fuzzing; folders open
/// through [`open`]).
#[doc(hidden)]
pub fn open_dcp_parts(
    dir: impl AsRef<Path>,
    metadata: &[u8],
    chunks: Bytes,
) -> Result<Model, LoadError> {
    dcp::load_parts(dir.as_ref(), metadata, &|_| Ok(chunks.clone()))
}

/// Opens an Orbax checkpoint item from its files already in memory, by their paths relative to
/// its folder (`manifest.ocdbt`, `d/…`, `ocdbt.process_0/d/…`), (fuzzing; folders open through
/// [`open`]).
#[doc(hidden)]
pub fn open_orbax_files(
    dir: impl AsRef<Path>,
    files: Vec<(String, Bytes)>,
) -> Result<Model, LoadError> {
    orbax::load_parts(dir.as_ref(), files)
}

/// Opens a TensorFlow checkpoint from its `.index` and one data shard already in memory, the
/// shard standing for every shard the index names (fuzzing; checkpoints open through [`open`]).
#[doc(hidden)]
pub fn open_tf_checkpoint_parts(
    prefix: impl AsRef<Path>,
    index: &[u8],
    shard: Bytes,
) -> Result<Model, LoadError> {
    tensorflow::checkpoint::load_parts(prefix.as_ref(), index, shard)
}

/// Opens bytes as a given format, skipping content sniffing (fuzzing, or a user's explicit choice).
pub fn open_bytes_as(
    path: impl AsRef<Path>,
    data: Bytes,
    format: Format,
) -> Result<Model, LoadError> {
    let path = path.as_ref();
    match format {
        Format::Gguf => gguf::load(path, data),
        Format::Safetensors => safetensors::open_file(path, data),
        Format::JsonLayers => {
            let json: serde_json::Value = serde_json::from_slice(&data)
                .map_err(|e| LoadError::corrupt(path, format!("invalid JSON: {e}")))?;
            if json.get("weight_map").is_some() {
                safetensors::open_index(path, &json)
            } else {
                json_layers::load(path, &json)
            }
        }
        Format::Onnx => onnx::load(path, data),
        Format::TensorFlow => tensorflow::load(path, data),
        Format::Numpy if data.starts_with(numpy::MAGIC) => numpy::load_npy(path, data),
        Format::Numpy => torch::open_file(path, data),
        Format::Keras if data.starts_with(HDF5_MAGIC) => keras::load_h5(path, &data),
        Format::Torch | Format::TorchScript | Format::TorchExport | Format::Keras => {
            torch::open_file(path, data)
        }
        Format::Tflite => tflite::load(path, data),
        Format::Flax => flax::load(path, data),
        Format::OpenVino => openvino::load(path, data),
        Format::CoreMl => coreml::load(path, data),
        Format::ExecuTorch => executorch::load(path, data),
        Format::Nemo => nemo::load(path, data),
        Format::Orbax => Err(LoadError::UnknownFormat {
            path: path.to_path_buf(),
            why: "an Orbax checkpoint is a folder, not one file".into(),
        }),
    }
}
