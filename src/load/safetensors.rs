//! safetensors loader: single files, folders and sharded checkpoints (`model.safetensors.index.json`).
//! Folders and indexes of PyTorch checkpoints (`pytorch_model.bin.index.json`, whose shards are
//! [`super::torch`] archives) open here too: the index format is the same.
//!
//! Only headers are parsed (by the `safetensors` crate, which validates offsets against the file
//! size); tensor bytes are slices of each shard's memory map. A `config.json` beside the weights is
//! read into metadata; the module graph is built by [`super::family`].

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{LoadError, family};
use crate::model::{DType, Format, Model, Tensor, TensorData, TensorOrigin};

/// Opens a single `.safetensors` file already mapped.
pub(super) fn open_file(path: &Path, data: Bytes) -> Result<Model, LoadError> {
    let mut model = Model::new(path, Format::Safetensors);
    add_shard(&mut model, path, data)?;
    model.metadata.shards = 1;
    finish(&mut model, path.parent());
    Ok(model)
}

/// [`open_file`] with the text of the `config.json` beside it given rather than read (fuzzing).
pub(super) fn open_with_config(
    path: &Path,
    config: &[u8],
    data: Bytes,
) -> Result<Model, LoadError> {
    let mut model = Model::new(path, Format::Safetensors);
    add_shard(&mut model, path, data)?;
    model.metadata.shards = 1;
    let json = serde_json::from_slice::<serde_json::Value>(config).ok();
    if let Some(json) = &json {
        apply_config_json(&mut model, json);
    }
    super::hf_quant::read(
        &mut model,
        json.as_ref().map(|j| (j, Path::new("config.json"))),
    );
    family::build_checkpoint_graph(&mut model);
    Ok(model)
}

/// Whether a shard file is a PyTorch archive (by its extension; safetensors otherwise).
fn is_torch_shard(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "bin" || e == "pt" || e == "pth")
}

/// Opens a folder: its index file if present, else its `.safetensors` files, else its single
/// PyTorch checkpoint.
pub(super) fn open_dir(dir: &Path) -> Result<Model, LoadError> {
    for name in [
        "model.safetensors.index.json",
        "pytorch_model.bin.index.json",
        "flax_model.msgpack.index.json",
    ] {
        let index = dir.join(name);
        if index.exists() {
            let text = std::fs::read(&index).map_err(|e| LoadError::io(&index, e))?;
            let json: serde_json::Value = serde_json::from_slice(&text)
                .map_err(|e| LoadError::corrupt(&index, format!("invalid JSON: {e}")))?;
            return open_index(&index, &json);
        }
    }
    let listed: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LoadError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    let mut files: Vec<PathBuf> = listed
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .cloned()
        .collect();
    files.sort();
    if files.is_empty() {
        // An optimum-intel export: `openvino_model.xml` beside its tokenizer's IRs (its
        // `openvino_model.bin` is not a PyTorch checkpoint).
        let ov = dir.join("openvino_model.xml");
        if ov.is_file() {
            let mut model = super::openvino::load(&ov, super::map_file(&ov)?)?;
            read_hf_config(&mut model, &dir.join("config.json"));
            return Ok(model);
        }
        // Hugging Face's name first (a folder may also hold `training_args.bin`), else the only one.
        let mut torch: Vec<&PathBuf> = listed.iter().filter(|p| is_torch_shard(p)).collect();
        torch.sort();
        let hf = torch
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == "pytorch_model.bin"));
        if let Some(one) = hf.or(torch.first().filter(|_| torch.len() == 1)) {
            return super::torch::open_file(one, super::map_file(one)?);
        }
        // Hugging Face's Flax weights.
        let flax = dir.join("flax_model.msgpack");
        if flax.is_file() {
            return super::flax::load(&flax, super::map_file(&flax)?);
        }
    }
    match files.as_slice() {
        [] => Err(LoadError::UnknownFormat {
            path: dir.to_path_buf(),
            why: "a folder with no checkpoint index, no .safetensors file, not exactly one \
                  PyTorch checkpoint (.bin, .pt, .pth), no flax_model.msgpack and no \
                  openvino_model.xml"
                .into(),
        }),
        [one] => open_file(one, super::map_file(one)?),
        _ => {
            let mut model = Model::new(dir, Format::Safetensors);
            for f in &files {
                add_shard(&mut model, f, super::map_file(f)?)?;
            }
            model.metadata.shards = files.len();
            finish(&mut model, Some(dir));
            Ok(model)
        }
    }
}

/// Opens a sharded checkpoint from its parsed index file.
pub(super) fn open_index(index: &Path, json: &serde_json::Value) -> Result<Model, LoadError> {
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| LoadError::corrupt(index, "no \"weight_map\" object"))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    // Shards in name order (model-00001-of-00003 …), each opened once.
    let mut shards = BTreeSet::new();
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| {
            LoadError::corrupt(
                index,
                format!("weight_map entry {tensor:?} is not a file name"),
            )
        })?;
        let rel = Path::new(file);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(LoadError::corrupt(
                index,
                format!("shard {file:?} lies outside the checkpoint folder"),
            ));
        }
        shards.insert(file.to_string());
    }
    let torch = shards.iter().any(|s| is_torch_shard(Path::new(s)));
    let flax = shards.iter().any(|s| is_flax_shard(Path::new(s)));
    let format = if torch {
        Format::Torch
    } else if flax {
        Format::Flax
    } else {
        Format::Safetensors
    };
    let mut model = Model::new(index, format);
    for shard in &shards {
        let p = dir.join(shard);
        if !p.exists() {
            return Err(LoadError::corrupt(
                index,
                format!(
                    "shard {shard:?} named by the index is missing ({})",
                    p.display()
                ),
            ));
        }
        if is_torch_shard(&p) {
            super::torch::add_archive(&mut model, &p, super::map_file(&p)?)?;
        } else if is_flax_shard(&p) {
            super::flax::add_shard(&mut model, &p, &super::map_file(&p)?)?;
        } else {
            add_shard(&mut model, &p, super::map_file(&p)?)?;
        }
    }
    for name in map.keys() {
        // Flax's index names tensors by their path joined with `/`; the reader joins with `.`.
        let flax_name = (format == Format::Flax).then(|| name.replace('/', "."));
        if model.tensor(flax_name.as_deref().unwrap_or(name)).is_none() {
            model.metadata.warnings.push(format!(
                "{}: tensor {name:?} is listed in the index but in none of the shards",
                index.display()
            ));
        }
    }
    if let Some(md) = json.get("metadata").and_then(|m| m.as_object()) {
        for (k, v) in md {
            model
                .metadata
                .properties
                .push((format!("index.{k}"), v.to_string()));
        }
    }
    model.metadata.shards = shards.len();
    if format == Format::Flax {
        super::flax::finish(&mut model, Some(dir));
    } else {
        finish(&mut model, Some(dir));
    }
    Ok(model)
}

fn is_flax_shard(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "msgpack")
}

/// The tensors of one safetensors file (a distributed checkpoint's rank written as safetensors),
/// slices of `data`.
pub(super) fn tensors_of(path: &Path, data: Bytes) -> Result<Vec<Tensor>, LoadError> {
    let mut scratch = Model::new(path, Format::Safetensors);
    add_shard(&mut scratch, path, data)?;
    Ok(scratch.tensors)
}

fn add_shard(model: &mut Model, path: &Path, data: Bytes) -> Result<(), LoadError> {
    let (header_len, meta) = safetensors::SafeTensors::read_metadata(&data)
        .map_err(|e| LoadError::corrupt(path, format!("invalid safetensors header: {e}")))?;
    let base = 8 + header_len;
    if let Some(md) = meta.metadata() {
        let mut kv: Vec<_> = md.iter().collect();
        kv.sort();
        for (k, v) in kv {
            if !model
                .metadata
                .properties
                .iter()
                .any(|(a, b)| a == k && b == v)
            {
                model.metadata.properties.push((k.clone(), v.clone()));
            }
        }
    }
    let infos = meta.tensors();
    for name in meta.offset_keys() {
        let Some(info) = infos.get(&name) else {
            continue;
        };
        let (start, end) = info.data_offsets;
        let (Some(s), Some(e)) = (base.checked_add(start), base.checked_add(end)) else {
            return Err(LoadError::corrupt(
                path,
                format!("tensor {name:?}: offsets overflow"),
            ));
        };
        if e > data.len() || s > e {
            return Err(LoadError::corrupt(
                path,
                format!("tensor {name:?}: bytes {s}..{e} lie beyond the file"),
            ));
        }
        let dtype = DType::from_safetensors(&format!("{:?}", info.dtype));
        if model.tensor(&name).is_some() {
            return Err(LoadError::corrupt(
                path,
                format!("tensor {name:?} appears in two shards"),
            ));
        }
        model.add_tensor(Tensor {
            name: name.clone(),
            dtype,
            shape: info.shape.iter().map(|&d| d as u64).collect(),
            data: TensorData::Bytes(data.slice(s..e)),
            origin: TensorOrigin::Checkpoint,
            conv_axes: None,
            quant: None,
        });
    }
    Ok(())
}

/// Reads `config.json` beside the weights (HF transformers) and builds the module graph.
pub(super) fn finish(model: &mut Model, dir: Option<&Path>) {
    let path = dir.map(|d| d.join("config.json"));
    let json = path.as_deref().and_then(|p| config_json(model, p));
    if let Some(json) = &json {
        apply_config_json(model, json);
    }
    super::hf_quant::read(model, json.as_ref().zip(path.as_deref()));
    family::build_checkpoint_graph(model);
}

/// Copies the interesting fields of a Hugging Face `config.json` into metadata.
pub(super) fn read_hf_config(model: &mut Model, path: &Path) {
    if let Some(json) = config_json(model, path) {
        apply_config_json(model, &json);
    }
}

/// [`read_hf_config`] on text already read.
pub(super) fn apply_hf_config_text(model: &mut Model, text: &str) {
    if let Some(json) = parse_config(model, text, "config.json") {
        apply_config_json(model, &json);
    }
}

/// `config.json` parsed, if the file is there; invalid JSON is a warning.
fn config_json(model: &mut Model, path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    parse_config(model, &text, &path.display().to_string())
}

fn parse_config(model: &mut Model, text: &str, origin: &str) -> Option<serde_json::Value> {
    match serde_json::from_str(text) {
        Ok(j) => Some(j),
        Err(e) => {
            model
                .metadata
                .warnings
                .push(format!("{origin}: ignored, invalid JSON: {e}"));
            None
        }
    }
}

fn apply_config_json(model: &mut Model, json: &serde_json::Value) {
    let Some(obj) = json.as_object() else { return };
    let mut fields: HashMap<&str, &serde_json::Value> =
        obj.iter().map(|(k, v)| (k.as_str(), v)).collect();
    if let Some(arch) = fields
        .remove("architectures")
        .and_then(|a| a.as_array()?.first()?.as_str().map(String::from))
    {
        model.metadata.architecture = Some(arch);
    } else if let Some(mt) = fields.get("model_type").and_then(|v| v.as_str()) {
        model.metadata.architecture = Some(mt.to_string());
    } else if let Some(class) = fields.remove("_class_name").and_then(|v| v.as_str()) {
        // diffusers names a model's class (`UNet2DConditionModel`, `FluxTransformer2DModel`).
        model.metadata.architecture = Some(class.to_string());
    }
    let mut keys: Vec<_> = fields
        .into_iter()
        .filter(|(_, v)| !v.is_object() && !v.is_array())
        .collect();
    keys.sort_by_key(|(k, _)| *k);
    for (k, v) in keys {
        let v = v.as_str().map_or_else(|| v.to_string(), String::from);
        model.metadata.properties.push((format!("config.{k}"), v));
    }
}
