//! Orbax checkpoints (`orbax.checkpoint`: how JAX trainers save — MaxText, T5X, Gemma's Flax
//! releases, PaliGemma, big_vision): a folder whose `_METADATA` lists the saved tree and whose
//! arrays are zarr arrays (version 2, or 3 with `use_zarr3`) written by TensorStore, by default
//! into an OCDBT key-value store (`manifest.ocdbt` and data files under `d/` and
//! `ocdbt.process_N/d/`), else into one folder of chunk files per array.
//!
//! A checkpoint folder opens from itself, its `_METADATA` or `manifest.ocdbt`, a step folder of a
//! `CheckpointManager` (`1000/`, holding one folder per item: `default`, `params`, `state`), or the
//! manager's folder of steps (the latest step opens; the others are listed in the metadata).
//! Opening reads the manifest, the B+tree and each array's zarr metadata, and no array data:
//! chunks are compressed (zstd), so each array is assembled from its chunks the first time
//! something reads it (statistics, a heatmap tile), in parallel, and kept.

mod ocdbt;
mod zarr;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::LoadError;
use crate::model::{DType, Format, LazyBytes, Model, Tensor, TensorData, TensorOrigin};
use ocdbt::ReadFile;

/// Most arrays read from one checkpoint.
const MAX_ARRAYS: usize = 1 << 20;
/// Largest zarr metadata document.
const MAX_DOC: usize = 1 << 20;
/// Largest scalar read for metadata (bytes).
const MAX_SCALAR: u64 = 64;
/// A step's (or item's) metadata file: the metrics saved with it.
const CHECKPOINT_METADATA: &str = "_CHECKPOINT_METADATA";

/// Decompresses one zstd frame, of `exact` bytes when known, and never more than `limit`.
pub(super) fn zstd(input: &[u8], exact: Option<usize>, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let damaged = |e: std::io::Error| format!("damaged zstd data ({e})");
    // The frame header's size, when it gives one (TensorStore's frames do), sizes the output.
    let declared = zstd::zstd_safe::get_frame_content_size(input)
        .ok()
        .flatten();
    if let Some(n) = declared.or(exact.map(|e| e as u64)) {
        if n > limit || exact.is_some_and(|e| e as u64 != n) {
            return Err(format!(
                "zstd data that decompresses to {n} bytes where {} were expected",
                exact.map_or(limit, |e| e as u64)
            ));
        }
        let n = usize::try_from(n).map_err(|_| "zstd data too large".to_string())?;
        return zstd::bulk::decompress(input, n).map_err(damaged);
    }
    let mut out = Vec::new();
    zstd::stream::read::Decoder::with_buffer(input)
        .map_err(damaged)?
        .single_frame()
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(damaged)?;
    if out.len() as u64 > limit {
        return Err(format!("zstd data that decompresses past {limit} bytes"));
    }
    Ok(out)
}

/// Whether `dir` is one saved item: an OCDBT manifest, Orbax's `_METADATA`, or zarr arrays in
/// folders.
fn is_item(dir: &Path) -> bool {
    if dir.join("manifest.ocdbt").is_file() {
        return true;
    }
    if dir.join("_METADATA").is_file() {
        // Its first bytes: the tree's description can run to megabytes.
        use std::io::Read;
        let mut head = Vec::with_capacity(64);
        return std::fs::File::open(dir.join("_METADATA"))
            .and_then(|f| f.take(64).read_to_end(&mut head))
            .is_ok_and(|_| head.trim_ascii_start().first() == Some(&b'{'));
    }
    // Orbax before `_METADATA` (2023 and earlier): the tree as a MessagePack map in `checkpoint`,
    // beside one zarr folder per array.
    let msgpack_map = |b: u8| (0x80..=0x8f).contains(&b) || b == 0xde || b == 0xdf;
    let mut head = [0u8; 1];
    let tree = std::fs::File::open(dir.join("checkpoint"))
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && msgpack_map(head[0]);
    tree && std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let p = e.path();
            p.join(".zarray").is_file() || p.join("zarr.json").is_file()
        })
}

/// The items of a step folder (its subfolders that are items), sorted.
fn items_of(dir: &Path) -> Vec<String> {
    let mut items: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir() && is_item(&e.path()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    items.sort();
    items
}

/// The number a manager's step folder is named by (`1000`, `checkpoint_1000`).
fn step_number(name: &str) -> Option<u64> {
    let digits = name.rsplit('_').next().unwrap_or(name);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// A step folder: `_CHECKPOINT_METADATA` and items, or items alone.
fn is_step(dir: &Path) -> bool {
    // Items named by numbers are steps: their folder is a manager's (T5X's `checkpoint_1000`).
    !is_item(dir) && items_of(dir).iter().any(|item| step_number(item).is_none())
}

/// A manager's steps (number, folder), sorted.
fn steps_of(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut steps: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = step_number(e.file_name().to_str()?)?;
            let p = e.path();
            (p.is_dir() && (is_item(&p) || is_step(&p))).then_some((n, p))
        })
        .collect();
    steps.sort();
    steps
}

/// The Orbax folder `path` names, if it names one: an item, a step or a manager's folder, or an
/// item's `_METADATA`, `manifest.ocdbt` or a step's `_CHECKPOINT_METADATA`.
pub(super) fn folder_of(path: &Path) -> Option<PathBuf> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        let name = path.file_name()?.to_str()?;
        if !matches!(name, "_METADATA" | "manifest.ocdbt" | CHECKPOINT_METADATA) {
            return None;
        }
        path.parent()?.to_path_buf()
    };
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let dir_is = |d: &Path| is_item(d) || is_step(d);
    if dir_is(&dir) || dir.join(CHECKPOINT_METADATA).is_file() && !items_of(&dir).is_empty() {
        return Some(dir);
    }
    (!steps_of(&dir).is_empty()).then_some(dir)
}

/// Opens the checkpoint in `dir` (an item, a step, or a manager's folder of steps).
pub(super) fn load(dir: &Path) -> Result<Model, LoadError> {
    let mut model = Model::new(dir, Format::Orbax);
    model.metadata.producer = Some("Orbax".into());
    let mut step_dir = dir.to_path_buf();
    if !is_item(dir) && !is_step(dir) {
        let steps = steps_of(dir);
        let Some((latest, latest_dir)) = steps.last().cloned() else {
            return Err(LoadError::corrupt(
                dir,
                "no Orbax checkpoint in this folder",
            ));
        };
        let list: Vec<String> = steps.iter().map(|(n, _)| n.to_string()).collect();
        model
            .metadata
            .properties
            .push(("orbax.steps".into(), list.join(", ")));
        model
            .metadata
            .properties
            .push(("orbax.step".into(), latest.to_string()));
        step_dir = latest_dir;
    } else if let Some(n) = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(step_number)
        && is_step(dir)
    {
        model
            .metadata
            .properties
            .push(("orbax.step".into(), n.to_string()));
    }
    checkpoint_metadata(&mut model, &step_dir);
    if is_item(&step_dir) {
        load_item(&mut model, &step_dir, "", &open_dir(&step_dir))?;
    } else {
        let items = items_of(&step_dir);
        let prefix = items.len() > 1;
        for item in &items {
            let item_dir = step_dir.join(item);
            let p = if prefix {
                format!("{item}.")
            } else {
                String::new()
            };
            checkpoint_metadata(&mut model, &item_dir);
            load_item(&mut model, &item_dir, &p, &open_dir(&item_dir))?;
        }
    }
    if model.tensors.is_empty() {
        model
            .metadata
            .warnings
            .push(format!("{}: the checkpoint holds no arrays", dir.display()));
    }
    super::numpy::kernel_axes(&mut model);
    super::safetensors::finish(&mut model, Some(&step_dir));
    Ok(model)
}

/// Reads files of `dir` by relative path, each mapped once.
fn open_dir(dir: &Path) -> Arc<ReadFile> {
    let dir = dir.to_path_buf();
    let maps: Mutex<HashMap<String, Result<Bytes, String>>> = Mutex::new(HashMap::new());
    Arc::new(move |rel: &str| {
        if !ocdbt::safe_relative(rel) {
            return Err(format!("`{rel}` lies outside the checkpoint's folder"));
        }
        if let Some(r) = maps.lock().ok().and_then(|m| m.get(rel).cloned()) {
            return r;
        }
        let path = dir.join(rel);
        let r = super::map_file(&path).map_err(|e| e.to_string());
        if let Ok(mut m) = maps.lock() {
            m.insert(rel.to_string(), r.clone());
        }
        r
    })
}

/// Where an item's keys are: an OCDBT store, or files in its folder.
enum Store {
    Ocdbt(ocdbt::Store),
    Files(PathBuf, Arc<ReadFile>),
}

impl Store {
    fn get(&self, key: &str) -> Result<Option<Bytes>, String> {
        match self {
            Store::Ocdbt(s) => s.get(key.as_bytes()),
            Store::Files(dir, read) => {
                if ocdbt::safe_relative(key) && !dir.join(key).exists() {
                    return Ok(None);
                }
                read(key).map(Some)
            }
        }
    }
}

/// Reads one item's arrays into `model`, named with `prefix`.
fn load_item(
    model: &mut Model,
    dir: &Path,
    prefix: &str,
    read: &Arc<ReadFile>,
) -> Result<(), LoadError> {
    let corrupt = |why: String| LoadError::corrupt(dir, why);
    // Each array's name and whether its metadata is zarr 3's.
    let mut arrays: Vec<(String, bool)> = Vec::new();
    let store = if read("manifest.ocdbt").is_ok() {
        let numbered: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.starts_with("manifest.") && n != "manifest.ocdbt")
            .collect();
        let s = ocdbt::Store::open(read.clone(), &numbered).map_err(corrupt)?;
        for key in s.keys() {
            let Ok(key) = std::str::from_utf8(key) else {
                continue;
            };
            if let Some(name) = key.strip_suffix("/.zarray") {
                arrays.push((name.to_string(), false));
            } else if let Some(name) = key.strip_suffix("/zarr.json") {
                arrays.push((name.to_string(), true));
            }
        }
        model
            .metadata
            .properties
            .push(("orbax.storage".into(), "ocdbt".into()));
        Store::Ocdbt(s)
    } else {
        let mut names: Vec<(String, bool)> = std::fs::read_dir(dir)
            .map_err(|e| LoadError::io(dir, e))?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                let p = e.path();
                if p.join(".zarray").is_file() {
                    Some((name, false))
                } else if p.join("zarr.json").is_file() {
                    Some((name, true))
                } else {
                    None
                }
            })
            .collect();
        names.sort();
        arrays = names;
        model
            .metadata
            .properties
            .push(("orbax.storage".into(), "zarr folders".into()));
        Store::Files(dir.to_path_buf(), read.clone())
    };
    if arrays.len() > MAX_ARRAYS {
        return Err(corrupt(format!(
            "{} arrays, more than {MAX_ARRAYS}",
            arrays.len()
        )));
    }
    if let Some(&(_, v3)) = arrays.first() {
        model
            .metadata
            .properties
            .push(("orbax.zarr".into(), if v3 { "3" } else { "2" }.into()));
    }
    let scalars = scalar_names(dir);
    let store = Arc::new(store);
    let dir_text = dir.display().to_string();
    for (name, v3) in arrays {
        let doc_key = format!("{name}/{}", if v3 { "zarr.json" } else { ".zarray" });
        let meta = store.get(&doc_key).and_then(|doc| {
            let doc = doc.ok_or_else(|| format!("`{doc_key}` is missing"))?;
            if doc.len() > MAX_DOC {
                return Err(format!("`{doc_key}` is {} bytes", doc.len()));
            }
            if v3 {
                zarr::Array::v3(&doc)
            } else {
                zarr::Array::v2(&doc)
            }
        });
        let full = format!("{prefix}{name}");
        let array = match meta {
            Ok(a) => a,
            Err(e) => {
                model.add_tensor(Tensor {
                    name: full,
                    dtype: DType::Unknown("zarr"),
                    shape: Vec::new(),
                    data: TensorData::Error(format!("{dir_text}: array `{name}`: {e}")),
                    origin: TensorOrigin::Checkpoint,
                    conv_axes: None,
                    quant: None,
                });
                continue;
            }
        };
        let data = match array.byte_len() {
            None => TensorData::Error(format!("{dir_text}: array `{name}`: its size overflows")),
            Some(len) => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                dir_text.hash(&mut h);
                name.hash(&mut h);
                // Where the first chunks lie (OCDBT data files have random names, so a new save
                // differs), or their files' sizes and times.
                for k in array.keys(&name).iter().take(4) {
                    match &*store {
                        Store::Ocdbt(s) => format!("{:?}", s.value(k.as_bytes())).hash(&mut h),
                        Store::Files(d, _) => {
                            if let Ok(m) = std::fs::metadata(d.join(k)) {
                                m.len().hash(&mut h);
                                m.modified().ok().hash(&mut h);
                            }
                        }
                    }
                }
                let (store, array, name2, dir2) =
                    (store.clone(), array.clone(), name.clone(), dir_text.clone());
                TensorData::Lazy(Arc::new(LazyBytes::new(len, h.finish(), move || {
                    array
                        .read(&name2, &|k| store.get(k))
                        .map_err(|e| format!("{dir2}: array `{name2}`: {e}"))
                })))
            }
        };
        let t = Tensor {
            name: full.clone(),
            dtype: array.dtype,
            shape: array.shape.clone(),
            data,
            origin: TensorOrigin::Checkpoint,
            conv_axes: None,
            quant: None,
        };
        if array.shape.is_empty()
            && scalars.contains(&name)
            && array.byte_len().is_some_and(|n| n <= MAX_SCALAR)
            && let Some(v) = t.small_numbers().and_then(|v| v.first().copied())
        {
            let text = if matches!(t.dtype, DType::F16 | DType::BF16 | DType::F32 | DType::F64) {
                v.to_string()
            } else {
                format!("{}", v as i64)
            };
            model
                .metadata
                .properties
                .push((format!("checkpoint.{full}"), text));
        }
        model.add_tensor(t);
    }
    Ok(())
}

/// The names (`.`-joined paths) of the tree's leaves that `_METADATA` says were saved as Python
/// scalars (`step`).
fn scalar_names(dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read(dir.join("_METADATA")) else {
        return Vec::new();
    };
    let Ok(j) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let Some(tree) = j["tree_metadata"].as_object() else {
        return Vec::new();
    };
    tree.values()
        .filter(|v| v["value_metadata"]["value_type"].as_str() == Some("scalar"))
        .filter_map(|v| {
            let keys = v["key_metadata"].as_array()?;
            let parts: Option<Vec<String>> = keys
                .iter()
                .map(|k| match &k["key"] {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect();
            Some(parts?.join("."))
        })
        .collect()
}

/// A step's or item's `_CHECKPOINT_METADATA`: the metrics saved with it.
fn checkpoint_metadata(model: &mut Model, dir: &Path) {
    let Ok(text) = std::fs::read(dir.join(CHECKPOINT_METADATA)) else {
        return;
    };
    let Ok(j) = serde_json::from_slice::<serde_json::Value>(&text) else {
        model.metadata.warnings.push(format!(
            "{}: not JSON",
            dir.join(CHECKPOINT_METADATA).display()
        ));
        return;
    };
    if let Some(metrics) = j["metrics"].as_object() {
        for (k, v) in metrics.iter().take(64) {
            if v.is_number() || v.is_string() {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                model
                    .metadata
                    .properties
                    .push((format!("orbax.metrics.{k}"), v));
            }
        }
    }
}

/// Opens an Orbax item from its files already in memory (relative path, bytes); every array is
/// read (fuzzing).
pub(super) fn load_parts(dir: &Path, files: Vec<(String, Bytes)>) -> Result<Model, LoadError> {
    let files: HashMap<String, Bytes> = files.into_iter().collect();
    let read: Arc<ReadFile> = Arc::new(move |rel: &str| {
        files
            .get(rel)
            .cloned()
            .ok_or_else(|| format!("{rel}: not found"))
    });
    let mut model = Model::new(dir, Format::Orbax);
    load_item(&mut model, dir, "", &read)?;
    super::safetensors::finish(&mut model, None);
    Ok(model)
}
