//! PyTorch distributed checkpoints (`torch.distributed.checkpoint`, `dcp.save`: how FSDP,
//! torchtitan and torchtune save large models): a folder holding `.metadata`, a pickle of DCP's
//! `Metadata` (each state-dict item: a tensor's dtype, global shape and chunks, or pickled bytes;
//! and where each chunk is stored: file, offset, length), and one `__<rank>_<n>.distcp` file per
//! writer holding its chunks back to back, each a whole `torch.save` archive of that chunk (or,
//! written with `serialization_format=SAFETENSORS`, one safetensors file per writer).
//!
//! The metadata is read by [`super::pickle`], which runs no code. A tensor stored as one chunk is
//! a slice of the mapped file, as a `torch.save` tensor is. One sharded into chunks (FSDP's rows,
//! tensor parallelism's columns) is assembled into memory, in parallel, within
//! [`ASSEMBLE_BUDGET`] bytes for the whole checkpoint, the model's weights first; past it a tensor
//! keeps its name, dtype and shape, and its data is an error that says why. The model's weights,
//! saved under `model` (or another of [`super::torch::WEIGHT_KEYS`]), are named without that
//! prefix, as in a `torch.save` training checkpoint; numbers and short strings saved beside them
//! (`step`, the optimizer's `lr`) become metadata `checkpoint.*`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rayon::prelude::*;

use super::LoadError;
use super::pickle::{self, Id, Node, Pickle};
use crate::model::{DType, Format, Model, Tensor, TensorData, TensorOrigin};

/// The checkpoint's metadata file, in its folder.
const METADATA: &str = ".metadata";
/// Bytes of sharded tensors assembled into memory, for the whole checkpoint.
const ASSEMBLE_BUDGET: u64 = 4 << 30;
/// Largest pickled non-tensor item read for a number or string (bytes).
const MAX_SCALAR_ITEM: u64 = 1 << 16;
/// Most non-tensor items read for numbers and strings.
const MAX_SCALARS: usize = 4096;
/// Most chunks of one tensor checked pairwise for overlaps (more: only counted).
const MAX_OVERLAP_CHECK: usize = 1024;

/// Whether `dir` holds a distributed checkpoint: a `.metadata` that starts as a pickle does.
fn is_checkpoint(dir: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 1];
    std::fs::File::open(dir.join(METADATA))
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head[0] == 0x80
}

/// The checkpoint folder `path` names, if it names one: the folder, its `.metadata` or one of
/// its `.distcp` files. A `.distcp` file whose folder has no metadata is an error (each holds
/// chunks that only the metadata places).
pub(super) fn folder_of(path: &Path) -> Result<Option<PathBuf>, LoadError> {
    if path.is_dir() {
        return Ok(is_checkpoint(path).then(|| path.to_path_buf()));
    }
    let metadata = path.file_name().is_some_and(|n| n == METADATA);
    let chunks = path.extension().is_some_and(|e| e == "distcp");
    if !metadata && !chunks {
        return Ok(None);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if is_checkpoint(dir) {
        Ok(Some(dir.to_path_buf()))
    } else if chunks {
        Err(LoadError::corrupt(
            path,
            "a chunk file of a PyTorch distributed checkpoint, but its folder has no .metadata, \
             which says what the chunks are; open the folder the checkpoint was saved to",
        ))
    } else {
        Ok(None)
    }
}

/// A tensor's piece, as the metadata lists it.
struct Chunk {
    offsets: Vec<u64>,
    sizes: Vec<u64>,
}

/// A state-dict item.
enum Item {
    Tensor {
        dtype: DType,
        size: Vec<u64>,
        chunks: Vec<Chunk>,
    },
    /// Pickled bytes (`torch.save` of a Python object).
    Bytes,
}

/// Where an item or chunk is stored.
struct Stored {
    file: String,
    offset: u64,
    length: u64,
    transforms: Vec<String>,
}

/// A chunk file, mapped and, written as safetensors, indexed.
enum Source {
    /// Chunks back to back, each a `torch.save` archive.
    Archives(Bytes),
    /// One safetensors file: the writer's chunks by name.
    Safetensors(HashMap<String, Tensor>),
}

/// Opens the distributed checkpoint in `dir`.
pub(super) fn load(dir: &Path) -> Result<Model, LoadError> {
    let bytes = super::map_file(&dir.join(METADATA))?;
    load_parts(dir, &bytes, &|name| {
        super::map_file(&dir.join(name)).map_err(|e| e.to_string())
    })
}

/// A chunk file's bytes by its name in the checkpoint's folder, or why they cannot be had.
pub(super) type Opener<'a> = dyn Fn(&str) -> Result<Bytes, String> + Sync + 'a;

/// Opens a distributed checkpoint from its metadata's bytes, reading the chunk files it names
/// through `open`; `dir` names the folder in errors.
pub(super) fn load_parts(dir: &Path, bytes: &[u8], open: &Opener<'_>) -> Result<Model, LoadError> {
    let meta_path = dir.join(METADATA);
    let corrupt = |why: &str| LoadError::corrupt(&meta_path, why);
    let pk = pickle::unpickle(bytes).map_err(|e| corrupt(&e))?;
    if class_name(&pk, pk.root) != Some("Metadata") {
        return Err(corrupt(
            "not the Metadata of a PyTorch distributed checkpoint (torch.distributed.checkpoint)",
        ));
    }
    let Some(Node::Dict(pairs)) = field(&pk, pk.root, "state_dict_metadata").map(|i| pk.get(i))
    else {
        return Err(corrupt("its Metadata has no state_dict_metadata"));
    };
    let mut items: Vec<(String, Item)> = Vec::new();
    let mut unread = 0usize;
    for &(k, v) in pairs {
        let Some(fqn) = pk.str(k) else { continue };
        match item_of(&pk, v) {
            Some(item) => items.push((fqn.to_string(), item)),
            None => unread += 1,
        }
    }
    let storage = storage_index(&pk);
    let names = display_names(&pk, &items);

    let mut model = Model::new(dir, Format::Torch);
    model.metadata.producer = Some("pytorch (torch.distributed.checkpoint)".into());
    if let Some(v) = field(&pk, pk.root, "version").and_then(|v| pk.str(v)) {
        model
            .metadata
            .properties
            .push(("dcp.version".into(), v.to_string()));
    }
    if unread > 0 {
        model.metadata.warnings.push(format!(
            "{}: {unread} items of a kind this reader does not know are not shown",
            meta_path.display()
        ));
    }

    // Every file a chunk names, mapped once.
    let mut files: HashMap<String, Result<Source, String>> = HashMap::new();
    for s in storage.values() {
        if !files.contains_key(&s.file) {
            let source = open_source(dir, &s.file, open);
            files.insert(s.file.clone(), source);
        }
    }
    model.metadata.shards = files.values().filter(|f| f.is_ok()).count();

    // Which sharded tensors are assembled, in order, within the budget.
    let mut budget = ASSEMBLE_BUDGET;
    let mut over_budget = 0usize;
    let plans: Vec<(usize, bool)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, (_, item))| {
            let Item::Tensor {
                dtype,
                size,
                chunks,
            } = item
            else {
                return None;
            };
            let Some(es) = dtype.size_bytes() else {
                // Not assembled: its chunks' reading says why.
                return Some((i, true));
            };
            if is_whole(chunks, size) {
                return Some((i, true));
            }
            let need = size
                .iter()
                .try_fold(es, |a, &d| a.checked_mul(d))
                .unwrap_or(u64::MAX);
            let fits = need <= budget;
            if fits {
                budget -= need;
            } else {
                over_budget += 1;
            }
            Some((i, fits))
        })
        .collect();
    if over_budget > 0 {
        model.metadata.warnings.push(format!(
            "{}: {over_budget} sharded tensors were not assembled: assembling them would pass \
             the {} GiB that modelmap copies out of a distributed checkpoint",
            dir.display(),
            ASSEMBLE_BUDGET >> 30
        ));
    }
    let resolved: Vec<(usize, TensorData)> = plans
        .par_iter()
        .map(|&(i, allowed)| {
            let (fqn, item) = &items[i];
            let data = match item {
                Item::Tensor {
                    dtype,
                    size,
                    chunks,
                } if allowed => tensor_data(dir, fqn, *dtype, size, chunks, &storage, &files),
                Item::Tensor { chunks, .. } => TensorData::Error(format!(
                    "{}: sharded in {} chunks, not assembled: the checkpoint's sharded tensors \
                     pass the {} GiB modelmap copies into memory",
                    dir.display(),
                    chunks.len(),
                    ASSEMBLE_BUDGET >> 30
                )),
                Item::Bytes => TensorData::Missing,
            };
            (i, data)
        })
        .collect();
    for (i, data) in resolved {
        let Item::Tensor { dtype, size, .. } = &items[i].1 else {
            continue;
        };
        model.add_tensor(Tensor {
            name: names[i].clone(),
            dtype: *dtype,
            shape: size.clone(),
            data,
            origin: TensorOrigin::Checkpoint,
            conv_axes: None,
            quant: None,
        });
    }
    if model.tensors.is_empty() {
        model.metadata.warnings.push(format!(
            "{}: the checkpoint holds no tensors",
            dir.display()
        ));
    }

    // Numbers and short strings saved beside the tensors.
    let mut scalars = 0;
    for (i, (fqn, item)) in items.iter().enumerate() {
        if !matches!(item, Item::Bytes) || scalars >= MAX_SCALARS {
            continue;
        }
        let Some(s) = storage.get(&(fqn.clone(), None)) else {
            continue;
        };
        if s.length > MAX_SCALAR_ITEM || !s.transforms.is_empty() {
            continue;
        }
        let Some(Ok(Source::Archives(data))) = files.get(&s.file) else {
            continue;
        };
        let Some(range) = span(s, data.len()) else {
            continue;
        };
        if let Some(text) = super::torch::saved_scalar(&dir.join(&s.file), &data.slice(range)) {
            scalars += 1;
            model
                .metadata
                .properties
                .push((format!("checkpoint.{}", names[i]), text));
        }
    }
    super::safetensors::finish(&mut model, Some(dir));
    Ok(model)
}

/// The class name of an unpickled object (`Metadata`, `TensorStorageMetadata`).
fn class_name(pk: &Pickle, obj: Id) -> Option<&str> {
    let Node::Object { class, .. } = pk.get(obj) else {
        return None;
    };
    match pk.get(*class) {
        Node::Global(_, name) => Some(name),
        _ => None,
    }
}

/// A dataclass's field: `name` in the state its `BUILD` gave it.
fn field(pk: &Pickle, obj: Id, name: &str) -> Option<Id> {
    let Node::Object {
        state: Some(state), ..
    } = pk.get(obj)
    else {
        return None;
    };
    let Node::Dict(pairs) = pk.get(*state) else {
        return None;
    };
    pairs
        .iter()
        .find(|(k, _)| pk.str(*k) == Some(name))
        .map(|&(_, v)| v)
}

/// A non-negative integer.
fn uint(pk: &Pickle, id: Id) -> Option<u64> {
    match pk.get(id) {
        Node::Int(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

/// A `torch.Size` (unpickled as a tuple of integers).
fn dims(pk: &Pickle, id: Id) -> Option<Vec<u64>> {
    pk.items(id)?.iter().map(|&d| uint(pk, d)).collect()
}

/// A `TensorStorageMetadata` or `BytesStorageMetadata`.
fn item_of(pk: &Pickle, v: Id) -> Option<Item> {
    match class_name(pk, v)? {
        "BytesStorageMetadata" => Some(Item::Bytes),
        "TensorStorageMetadata" => {
            // TensorProperties pickles its state as (dtype, layout, requires_grad, …).
            let props = field(pk, v, "properties")?;
            let Node::Object {
                state: Some(state), ..
            } = pk.get(props)
            else {
                return None;
            };
            let dtype = match pk.items(*state)?.first().map(|&d| pk.get(d)) {
                Some(Node::Global(_, name)) => super::torch::dtype_of(name),
                _ => return None,
            };
            let size = dims(pk, field(pk, v, "size")?)?;
            let chunks = pk
                .items(field(pk, v, "chunks")?)?
                .iter()
                .map(|&c| {
                    Some(Chunk {
                        offsets: dims(pk, field(pk, c, "offsets")?)?,
                        sizes: dims(pk, field(pk, c, "sizes")?)?,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Item::Tensor {
                dtype,
                size,
                chunks,
            })
        }
        _ => None,
    }
}

/// `storage_data`: each chunk's (or item's) place, by its name and offsets.
fn storage_index(pk: &Pickle) -> HashMap<(String, Option<Vec<u64>>), Stored> {
    let mut index = HashMap::new();
    let Some(Node::Dict(pairs)) = field(pk, pk.root, "storage_data").map(|i| pk.get(i)) else {
        return index;
    };
    for &(k, v) in pairs {
        let Some(fqn) = field(pk, k, "fqn").and_then(|f| pk.str(f)) else {
            continue;
        };
        let offsets = field(pk, k, "offset").and_then(|o| dims(pk, o));
        let stored = (|| {
            Some(Stored {
                file: pk.str(field(pk, v, "relative_path")?)?.to_string(),
                offset: uint(pk, field(pk, v, "offset")?)?,
                length: uint(pk, field(pk, v, "length")?)?,
                transforms: field(pk, v, "transform_descriptors")
                    .and_then(|t| pk.items(t))
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|&t| pk.str(t).map(str::to_string))
                    .collect(),
            })
        })();
        if let Some(stored) = stored {
            index.insert((fqn.to_string(), offsets), stored);
        }
    }
    index
}

/// Each item's name: its flattened key, without the weights' key (`model.`) when the state dict
/// held the weights under one (the planner data records each key's path).
fn display_names(pk: &Pickle, items: &[(String, Item)]) -> Vec<String> {
    let mut first: HashMap<&str, &str> = HashMap::new();
    if let Some(Node::Dict(pairs)) = field(pk, pk.root, "planner_data").map(|i| pk.get(i)) {
        for &(k, v) in pairs {
            let path = pk.items(v).unwrap_or_default();
            if let (Some(fqn), [head, _, ..]) = (pk.str(k), path)
                && let Some(head) = pk.str(*head)
            {
                first.insert(fqn, head);
            }
        }
    }
    let weights = super::torch::WEIGHT_KEYS
        .iter()
        .find(|w| first.values().any(|h| h == *w));
    let all: HashSet<&str> = items.iter().map(|(f, _)| f.as_str()).collect();
    items
        .iter()
        .map(|(fqn, _)| {
            let stripped = weights
                .filter(|w| first.get(fqn.as_str()) == Some(w))
                .and_then(|w| fqn.strip_prefix(*w))
                .and_then(|rest| rest.strip_prefix('.'))
                .filter(|rest| !all.contains(rest));
            stripped.unwrap_or(fqn).to_string()
        })
        .collect()
}

/// Chunk file `name` of the checkpoint in `dir` (a plain file name: the metadata cannot point
/// outside its folder), through `open`.
fn open_source(dir: &Path, name: &str, open: &Opener<'_>) -> Result<Source, String> {
    if name.is_empty() || name == ".." || name.contains(['/', '\\']) {
        return Err(format!(
            "the metadata names {name:?} as a chunk file, which is not a file in its folder"
        ));
    }
    let path = dir.join(name);
    let data = open(name)?;
    let safetensors = data.len() >= 9
        && data[8] == b'{'
        && u64::from_le_bytes(data[..8].try_into().unwrap_or_default()) < data.len() as u64;
    if safetensors {
        let tensors = super::safetensors::tensors_of(&path, data).map_err(|e| e.to_string())?;
        return Ok(Source::Safetensors(
            tensors.into_iter().map(|t| (t.name.clone(), t)).collect(),
        ));
    }
    Ok(Source::Archives(data))
}

/// Whether `chunks` is one chunk holding the whole tensor.
fn is_whole(chunks: &[Chunk], size: &[u64]) -> bool {
    matches!(chunks, [c] if c.sizes == size && c.offsets.iter().all(|&o| o == 0))
}

/// The bytes `s` names within a file of `len` bytes.
fn span(s: &Stored, len: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(s.offset).ok()?;
    let end = start.checked_add(usize::try_from(s.length).ok()?)?;
    (end <= len).then_some(start..end)
}

/// A tensor's data: its one chunk in place, or its chunks assembled.
fn tensor_data(
    dir: &Path,
    fqn: &str,
    dtype: DType,
    size: &[u64],
    chunks: &[Chunk],
    storage: &HashMap<(String, Option<Vec<u64>>), Stored>,
    files: &HashMap<String, Result<Source, String>>,
) -> TensorData {
    let mut pieces = Vec::with_capacity(chunks.len());
    for c in chunks {
        match chunk_bytes(dir, fqn, dtype, c, storage, files) {
            Ok(b) => pieces.push(b),
            Err(why) => return TensorData::Error(why),
        }
    }
    if let [one] = pieces.as_slice()
        && is_whole(chunks, size)
    {
        return TensorData::Bytes(one.clone());
    }
    let Some(es) = dtype.size_bytes().and_then(|e| usize::try_from(e).ok()) else {
        return TensorData::Error(format!(
            "{}: a sharded tensor of a type this reader cannot assemble",
            dir.display()
        ));
    };
    let parts: Vec<(&[u64], &[u64], &[u8])> = chunks
        .iter()
        .zip(&pieces)
        .map(|(c, b)| (c.offsets.as_slice(), c.sizes.as_slice(), &b[..]))
        .collect();
    match assemble(size, es, &parts) {
        Ok(v) => TensorData::Bytes(Bytes::from(v)),
        Err(why) => TensorData::Error(format!("{}: {fqn}: {why}", dir.display())),
    }
}

/// One chunk's bytes, checked against what the metadata says of it.
fn chunk_bytes(
    dir: &Path,
    fqn: &str,
    dtype: DType,
    c: &Chunk,
    storage: &HashMap<(String, Option<Vec<u64>>), Stored>,
    files: &HashMap<String, Result<Source, String>>,
) -> Result<Bytes, String> {
    let Some(s) = storage.get(&(fqn.to_string(), Some(c.offsets.clone()))) else {
        return Err(format!(
            "{}: the chunk of {fqn} at {:?} is not in the metadata's storage data",
            dir.join(METADATA).display(),
            c.offsets
        ));
    };
    let path = dir.join(&s.file);
    let at = |why: String| format!("{}: {fqn} at {:?}: {why}", path.display(), c.offsets);
    if !s.transforms.is_empty() {
        return Err(at(format!(
            "stored through {:?}, a DCP extension this reader does not decode",
            s.transforms
        )));
    }
    let t = match files.get(&s.file) {
        None => return Err(at("its file is not listed".into())),
        Some(Err(why)) => return Err(why.clone()),
        Some(Ok(Source::Safetensors(map))) => map
            .get(fqn)
            .cloned()
            .ok_or_else(|| at("not in the rank's safetensors file".into()))?,
        Some(Ok(Source::Archives(data))) => {
            let range = span(s, data.len()).ok_or_else(|| {
                at(format!(
                    "bytes {}..+{} lie beyond the file's {} bytes",
                    s.offset,
                    s.length,
                    data.len()
                ))
            })?;
            super::torch::saved_tensor(&path, &data.slice(range)).map_err(at)?
        }
    };
    if t.dtype != dtype || t.shape != c.sizes {
        return Err(at(format!(
            "the stored chunk is {} {:?} where the metadata says {} {:?}",
            t.dtype, t.shape, dtype, c.sizes
        )));
    }
    match t.data {
        TensorData::Bytes(b) => Ok(b),
        TensorData::Lazy(l) => l.get(),
        TensorData::Error(why) => Err(why),
        TensorData::Missing => Err(at("no data".into())),
    }
}

/// Copies chunks (offsets, sizes, row-major bytes) into one row-major buffer of `shape`. The
/// chunks must tile it: each inside it, none overlapping, all of it covered.
fn assemble(
    shape: &[u64],
    es: usize,
    chunks: &[(&[u64], &[u64], &[u8])],
) -> Result<Vec<u8>, String> {
    let numel = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or("its element count overflows")?;
    let total = usize::try_from(numel)
        .ok()
        .and_then(|n| n.checked_mul(es))
        .ok_or("its byte count overflows")?;
    let rank = shape.len();
    // Elements per step of each dimension.
    let mut stride = vec![1u64; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        stride[d] = stride[d + 1] * shape[d + 1];
    }
    let mut out = vec![0u8; total];
    let mut covered = 0u64;
    for (offsets, sizes, bytes) in chunks {
        if offsets.len() != rank || sizes.len() != rank {
            return Err(format!(
                "a chunk at {offsets:?} of size {sizes:?} has another rank than {shape:?}"
            ));
        }
        let inside = offsets
            .iter()
            .zip(*sizes)
            .zip(shape)
            .all(|((&o, &s), &d)| o.checked_add(s).is_some_and(|e| e <= d));
        if !inside {
            return Err(format!(
                "a chunk at {offsets:?} of size {sizes:?} runs past the shape {shape:?}"
            ));
        }
        // Inside the shape, so its element count fits in the shape's.
        let n: u64 = sizes.iter().product();
        if bytes.len() as u64 != n * es as u64 {
            return Err(format!(
                "the chunk at {offsets:?} holds {} bytes for {n} elements",
                bytes.len()
            ));
        }
        covered += n;
        if n == 0 {
            continue;
        }
        // Dimensions k.. are whole in the chunk, so each run of it is contiguous in the output:
        // `sizes[k - 1]` steps of dimension k - 1 at once.
        let mut k = rank;
        while k > 0 && sizes[k - 1] == shape[k - 1] {
            k -= 1;
        }
        let outer = k.saturating_sub(1);
        let run = if k == 0 {
            n
        } else {
            sizes[k - 1] * stride[k - 1]
        } as usize
            * es;
        let mut index = vec![0u64; outer];
        for src in bytes.chunks_exact(run) {
            let mut at = if k == 0 {
                0
            } else {
                offsets[k - 1] * stride[k - 1]
            };
            for d in 0..outer {
                at += (offsets[d] + index[d]) * stride[d];
            }
            let at = at as usize * es;
            out[at..at + run].copy_from_slice(src);
            // Odometer over the outer dimensions, last fastest.
            for d in (0..outer).rev() {
                index[d] += 1;
                if index[d] < sizes[d] {
                    break;
                }
                index[d] = 0;
            }
        }
    }
    if chunks.len() <= MAX_OVERLAP_CHECK {
        for (i, (oa, sa, _)) in chunks.iter().enumerate() {
            for (ob, sb, _) in &chunks[i + 1..] {
                let overlap = (0..rank).all(|d| oa[d] < ob[d] + sb[d] && ob[d] < oa[d] + sa[d]);
                if overlap && sa.iter().chain(*sb).all(|&s| s > 0) {
                    return Err(format!("chunks at {oa:?} and {ob:?} overlap"));
                }
            }
        }
    }
    if covered != numel {
        return Err(format!("its chunks hold {covered} of its {numel} elements"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_by_rows_and_by_columns_assemble_in_row_major_order() {
        // A 3 × 4 tensor of bytes 0..12, as two row chunks (FSDP) and as two column chunks
        // (tensor parallelism), uneven.
        let whole: Vec<u8> = (0..12).collect();
        let rows = assemble(
            &[3, 4],
            1,
            &[
                (&[2, 0], &[1, 4], &whole[8..]),
                (&[0, 0], &[2, 4], &whole[..8]),
            ],
        )
        .unwrap();
        assert_eq!(rows, whole);
        let left = [0, 1, 2, 4, 5, 6, 8, 9, 10];
        let right = [3, 7, 11];
        let cols = assemble(
            &[3, 4],
            1,
            &[(&[0, 0], &[3, 3], &left), (&[0, 3], &[3, 1], &right)],
        )
        .unwrap();
        assert_eq!(cols, whole);
        // Two-byte elements, a 3-D tensor split in its middle dimension.
        let wide: Vec<u8> = (0..16).collect();
        let a = [0, 1, 2, 3, 8, 9, 10, 11];
        let b = [4, 5, 6, 7, 12, 13, 14, 15];
        let t = assemble(
            &[2, 2, 2],
            2,
            &[(&[0, 1, 0], &[2, 1, 2], &b), (&[0, 0, 0], &[2, 1, 2], &a)],
        )
        .unwrap();
        assert_eq!(t, wide);
        // A scalar is its one chunk.
        assert_eq!(
            assemble(&[], 4, &[(&[], &[], &[1, 2, 3, 4])]).unwrap(),
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn chunks_that_do_not_tile_the_tensor_are_errors() {
        let row = [0u8; 4];
        // A gap.
        let e = assemble(&[3, 4], 1, &[(&[0, 0], &[1, 4], &row)]).unwrap_err();
        assert!(e.contains("4 of its 12"), "{e}");
        // An overlap that still counts twelve elements.
        let e = assemble(
            &[3, 4],
            1,
            &[
                (&[0, 0], &[1, 4], &row),
                (&[0, 0], &[1, 4], &row),
                (&[2, 0], &[1, 4], &row),
            ],
        )
        .unwrap_err();
        assert!(e.contains("overlap"), "{e}");
        // Past the shape, the wrong rank, the wrong byte count, an overflowing offset.
        assert!(
            assemble(&[3, 4], 1, &[(&[3, 0], &[1, 4], &row)])
                .unwrap_err()
                .contains("past")
        );
        assert!(
            assemble(&[3, 4], 1, &[(&[0], &[4], &row)])
                .unwrap_err()
                .contains("rank")
        );
        assert!(
            assemble(&[3, 4], 2, &[(&[0, 0], &[1, 4], &row)])
                .unwrap_err()
                .contains("bytes")
        );
        assert!(assemble(&[3, 4], 1, &[(&[u64::MAX, 0], &[1, 4], &row)]).is_err());
        assert!(assemble(&[u64::MAX, 4], 1, &[]).is_err());
    }
}
