//! A TensorFlow checkpoint opened on its own (`model.ckpt-1000.index` and its
//! `.data-NNNNN-of-NNNNN` shards, as TF1's `Saver` and TF2's `tf.train.Checkpoint` write them:
//! Google's original BERT, ALBERT and T5 releases, TF Model Garden, Keras 2's `save_weights` in
//! the TensorFlow format), not inside a SavedModel.
//!
//! Every entry is a weight named by its key, less TF2's `/.ATTRIBUTES/VARIABLE_VALUE`
//! (`bert/encoder/layer_0/attention/self/query/kernel`, `model/layer_with_weights-0/kernel`), its
//! bytes a slice of the mapped shard, grouped by its `/` scopes as a checkpoint's weights are; the
//! bookkeeping entries (`_CHECKPOINTABLE_OBJECT_GRAPH`) and strings are left out, and integer
//! scalars (`global_step`, `save_counter`) are also metadata `checkpoint.*`. Where TF1's `Saver`
//! wrote its graph beside the checkpoint (`.meta`), its forward ops are drawn over the weights
//! instead ([`super::saved::load_meta_graph`]), the entries they do not read listed beside them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::bundle::Bundle;
use crate::load::LoadError;
use crate::model::{Format, Model, Tensor, TensorData, TensorOrigin};

/// `DataType::DT_STRING`.
const DT_STRING: i32 = 7;
/// What TF2's object-based checkpoints append to a variable's key.
const VALUE_SUFFIX: &str = "/.ATTRIBUTES/VARIABLE_VALUE";

/// The checkpoint prefix `path` names, if it names one: the `.index` (a table whose footer holds
/// the magic number), one of its `.data-…` shards or its TF1 `.meta` graph, or a folder whose
/// `checkpoint` file names the latest one (and that holds no SavedModel).
pub(in crate::load) fn prefix_of(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        if path.join("saved_model.pb").is_file() {
            return None;
        }
        return latest_in(path);
    }
    let name = path.file_name()?.to_str()?;
    let stem = if let Some(stem) = name.strip_suffix(".index") {
        stem
    } else if let Some(stem) = name.strip_suffix(".meta") {
        stem
    } else {
        // `prefix.data-00000-of-00001`
        let (stem, shard) = name.rsplit_once(".data-")?;
        let (i, n) = shard.split_once("-of-")?;
        if !(i.len() == 5
            && n.len() == 5
            && (i.chars().chain(n.chars())).all(|c| c.is_ascii_digit()))
        {
            return None;
        }
        stem
    };
    let prefix = path.with_file_name(stem);
    is_index(&index_of(&prefix)).then_some(prefix)
}

/// The checkpoint a folder holds: the one its `checkpoint` file names (`model_checkpoint_path:
/// "model.ckpt-3"`, relative to the folder, or absolute as TF1's `Saver` writes it: then looked
/// for in this folder first, since checkpoints are moved and downloaded), else its only index
/// (Google's BERT releases ship `bert_model.ckpt.*` without a `checkpoint` file).
fn latest_in(dir: &Path) -> Option<PathBuf> {
    let named = std::fs::read_to_string(dir.join("checkpoint"))
        .ok()
        .and_then(|text| {
            let line = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("model_checkpoint_path:"))?;
            let name = PathBuf::from(line.trim().trim_matches('"'));
            let here = name.file_name().map(|n| dir.join(n));
            here.into_iter()
                .chain([dir.join(&name)])
                .find(|p| is_index(&index_of(p)))
        });
    named.or_else(|| {
        let mut found = std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .take(4096)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "index") && is_index(p));
        let one = found.next()?;
        found.next().is_none().then(|| one.with_extension(""))
    })
}

/// The checkpoint's file `prefix` + `suffix` (`.index`, `.meta`).
fn suffixed(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn index_of(prefix: &Path) -> PathBuf {
    suffixed(prefix, ".index")
}

/// Whether `path` is a table ending in a checkpoint index's magic number.
fn is_index(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut magic = [0u8; 8];
    f.seek(SeekFrom::End(-8)).is_ok()
        && f.read_exact(&mut magic).is_ok()
        && u64::from_le_bytes(magic) == super::bundle::MAGIC
}

/// Opens the checkpoint whose files start with `prefix`.
pub(in crate::load) fn load(prefix: &Path) -> Result<Model, LoadError> {
    let bundle = Bundle::open(prefix).map_err(|why| LoadError::corrupt(&index_of(prefix), why))?;
    let meta = suffixed(prefix, ".meta");
    if !meta.is_file() {
        return Ok(from_bundle(prefix, &bundle));
    }
    // A TF1 `Saver` wrote its graph beside the checkpoint: draw its forward ops over the weights.
    let graph = crate::load::map_file(&meta)
        .map_err(|e| e.to_string())
        .and_then(|data| {
            let weights = Bundle::open(prefix)?;
            super::saved::load_meta_graph(&meta, &data, weights)
        });
    match graph {
        Ok(mut model) => {
            let index = index_of(prefix);
            model.source = index.clone();
            model.metadata.shards = bundle.shard_count();
            // The entries the forward graph does not read (the optimizer's slots, the step).
            let drawn: HashSet<String> = model.tensors.iter().map(|t| t.name.clone()).collect();
            add_entries(&mut model, prefix, &bundle, &drawn);
            Ok(model)
        }
        Err(why) => {
            let mut model = from_bundle(prefix, &bundle);
            model.metadata.warnings.push(format!(
                "{}: its TF1 training graph is not drawn ({why}); the weights are shown as a \
                 checkpoint's",
                meta.display()
            ));
            Ok(model)
        }
    }
}

/// Opens a checkpoint from its index's bytes and one data shard standing for all of them, as if
/// they were the files of `prefix` (fuzzing; checkpoints open through [`load`]).
pub(in crate::load) fn load_parts(
    prefix: &Path,
    index: &[u8],
    shard: bytes::Bytes,
) -> Result<Model, LoadError> {
    let bundle = Bundle::from_parts(&index_of(prefix), index, &|_, _| Ok(shard.clone()))
        .map_err(|why| LoadError::corrupt(&index_of(prefix), why))?;
    Ok(from_bundle(prefix, &bundle))
}

/// The model of a checkpoint read.
fn from_bundle(prefix: &Path, bundle: &Bundle) -> Model {
    let index = index_of(prefix);
    let mut model = Model::new(&index, Format::TensorFlow);
    model.metadata.producer = Some("TensorFlow (checkpoint)".into());
    model.metadata.shards = bundle.shard_count();
    add_entries(&mut model, prefix, bundle, &HashSet::new());
    if model.tensors.is_empty() {
        model.metadata.warnings.push(format!(
            "{}: the checkpoint holds no tensors",
            index.display()
        ));
    }
    crate::load::family::build_checkpoint_graph(&mut model);
    model
}

/// Adds the checkpoint's entries (but those named in `skip`) as tensors, and its integer scalars
/// as metadata `checkpoint.*`.
fn add_entries(model: &mut Model, prefix: &Path, bundle: &Bundle, skip: &HashSet<String>) {
    let index = index_of(prefix);
    let mut keys: Vec<&String> = bundle
        .entries
        .iter()
        .filter(|(k, e)| !k.starts_with('_') && e.dtype != DT_STRING)
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    let dir = prefix.parent().unwrap_or(Path::new("."));
    for key in keys {
        let name = key.strip_suffix(VALUE_SUFFIX).unwrap_or(key);
        if skip.contains(name) {
            continue;
        }
        let tensor =
            super::saved::checkpoint_tensor(bundle, key, name, dir).unwrap_or_else(|why| Tensor {
                name: name.to_string(),
                dtype: crate::model::DType::Unknown("variable"),
                shape: Vec::new(),
                data: TensorData::Error(format!("{}: {why}", index.display())),
                origin: TensorOrigin::Checkpoint,
                conv_axes: None,
                quant: None,
            });
        if tensor.shape.is_empty()
            && !tensor.dtype.is_float()
            && let Some(v) = tensor.small_numbers().and_then(|v| v.first().copied())
        {
            model
                .metadata
                .properties
                .push((format!("checkpoint.{name}"), v.to_string()));
        }
        model.add_tensor(tensor);
    }
}
