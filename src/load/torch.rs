//! PyTorch checkpoints written by `torch.save` (1.6 and later): `.pt`, `.pth`, Hugging Face
//! `pytorch_model.bin` and its sharded `pytorch_model.bin.index.json`; and the weights of
//! TorchScript archives (`torch.jit.save`, the same layout with the scripted code beside it).
//!
//! The file is a zip archive (read with the `zip` crate: central directory, ZIP64, data
//! descriptors) of `<name>/data.pkl`, a pickle of the saved object, and one uncompressed entry per
//! storage, `<name>/data/<key>`. The pickle is read by [`super::pickle`], which runs no code; each
//! tensor found in it is a view `(storage, offset, size, stride)`, and a contiguous view becomes a
//! slice of the memory map, like a safetensors tensor: nothing is copied or read until a view needs
//! it.
//!
//! Tensors are named by their path through dicts, lists and pickled modules (`nn.Module` attributes
//! `_parameters`, `_buffers` and `_modules` add no name of their own, so a whole pickled model reads
//! like its `state_dict()`, and each module's class becomes its kind: `Conv1d`, `LayerNorm`). A training checkpoint's weights under `state_dict`, `model_state_dict`,
//! `model` or `module` are named without that prefix; the optimizer's tensors keep theirs, and
//! top-level numbers and strings (`epoch`, `best_acc`) become metadata. A view that is not
//! contiguous (a transposed weight saved as a view) is copied into row-major order when it has at
//! most 16 M elements, and is an error for its data beyond that. The legacy pre-1.6 format (a
//! stream of pickles followed by the storages) is read too ([`add_legacy`]), and an archive that a
//! zip tool re-packed with compression is inflated into memory ([`inflate_repacked`]).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

use bytes::Bytes;

use super::LoadError;
use super::pickle::{self, Id, Node, Pickle, QParams};
use crate::model::{DType, Format, Model, Quant, Tensor, TensorData, TensorOrigin};

/// How a pre-1.6 `torch.save` file starts: pickle protocol 2 and a LONG1 magic number.
pub(super) const LEGACY_MAGIC: [u8; 14] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

/// Keys of a training checkpoint that hold the model's weights.
pub(super) const WEIGHT_KEYS: [&str; 4] = ["state_dict", "model_state_dict", "model", "module"];

/// Deepest nesting of containers followed.
const MAX_DEPTH: u32 = 64;
/// Longest key used in a name (longer ones are cut), bytes.
const MAX_KEY: usize = 256;
/// Most dimensions of a tensor (more is not a tensor a checkpoint holds).
const MAX_RANK: usize = 32;

/// Opens a single checkpoint file already mapped.
/// A torch.export program (`.pt2`) is read by [`super::torch_export`], which builds its op graph.
pub(super) fn open_file(path: &Path, data: Bytes) -> Result<Model, LoadError> {
    if data.starts_with(&LEGACY_MAGIC) {
        let mut model = Model::new(path, Format::Torch);
        add_legacy(&mut model, path, &data)?;
        model.metadata.shards = 1;
        model.metadata.producer = Some("pytorch (legacy torch.save format)".into());
        super::safetensors::finish(&mut model, path.parent());
        return Ok(model);
    }
    let entries = read_entries(path, &data)?;
    let (data, entries, inflated) = inflate_repacked(path, data, entries)?;
    if let Some(program) = super::torch_export::find(&entries) {
        return super::torch_export::load(path, &data, &entries, &program);
    }
    if super::keras::is_keras(&entries) {
        return super::keras::load_zip(path, &data, &entries);
    }
    if super::numpy::is_npz(&entries) {
        return super::numpy::load_npz(path, &data, &entries);
    }
    let mut model = Model::new(path, Format::Torch);
    let (pickle, names) = add_pickled(&mut model, path, data.clone(), &entries)?;
    model.metadata.shards = 1;
    if inflated > 0 {
        model
            .metadata
            .warnings
            .push(repacked_warning(path, inflated));
    }
    if let Some(prefix) = super::torchscript::code_prefix(&entries) {
        model.format = Format::TorchScript;
        model.metadata.producer = Some("pytorch (TorchScript)".into());
        match super::torchscript::build(&mut model, path, &data, &entries, &prefix, &pickle, &names)
        {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    super::safetensors::read_hf_config(&mut model, &dir.join("config.json"));
                }
                return Ok(model);
            }
            Err(why) => model.metadata.warnings.push(format!(
                "{}: the TorchScript code was not read, so only the weights are shown: {why}",
                path.display()
            )),
        }
    }
    super::safetensors::finish(&mut model, path.parent());
    Ok(model)
}

/// Each entry of a zip archive by name: its bytes within the file, or why they cannot be used in
/// place (compressed, or running past the end).
pub(super) type Entries = HashMap<String, Result<Range<usize>, String>>;

/// The pickle of a `torch.save` archive that holds one object (a distributed checkpoint's item),
/// with the folder its storages are under and whether they are big-endian.
fn saved_object(path: &Path, data: &Bytes) -> Result<(Entries, Pickle, String, bool), String> {
    let entries = read_entries(path, data).map_err(|e| match e {
        LoadError::Corrupt { why, .. } => why,
        e => e.to_string(),
    })?;
    let pkl = entries
        .keys()
        .filter(|name| {
            name.strip_suffix("data.pkl")
                .is_some_and(|p| p.is_empty() || p.ends_with('/') && p.matches('/').count() == 1)
        })
        .min()
        .cloned()
        .ok_or("a zip archive without data.pkl, so not written by torch.save")?;
    let range = entries
        .get(&pkl)
        .cloned()
        .unwrap_or_else(|| Err("missing".into()))
        .map_err(|e| format!("{pkl}: {e}"))?;
    let pickle = pickle::unpickle(&data[range]).map_err(|e| format!("{pkl}: {e}"))?;
    let prefix = pkl.strip_suffix("data.pkl").unwrap_or("").to_string();
    let big_endian = matches!(
        entries.get(&format!("{prefix}byteorder")),
        Some(Ok(r)) if data.get(r.clone()) == Some(&b"big"[..])
    );
    Ok((entries, pickle, prefix, big_endian))
}

/// The tensor a `torch.save` archive of one tensor holds (a chunk of a distributed checkpoint),
/// its data a slice of `data`; `path` names the file in errors.
pub(super) fn saved_tensor(path: &Path, data: &Bytes) -> Result<Tensor, String> {
    let (entries, pickle, prefix, big_endian) = saved_object(path, data)?;
    pickled_tensor(
        &pickle,
        pickle.root,
        data,
        &entries,
        &prefix,
        "data",
        big_endian,
        path,
    )
    .ok_or_else(|| "the archive holds something other than a tensor".into())
}

/// The number, truth value or short string a `torch.save` archive of one object holds, as text
/// (a distributed checkpoint's `step` or learning rate); `None` for anything else.
pub(super) fn saved_scalar(path: &Path, data: &Bytes) -> Option<String> {
    let (_, pickle, ..) = saved_object(path, data).ok()?;
    scalar_text(&pickle, pickle.root)
}

/// A pickled number, truth value or string of up to 200 bytes, as metadata shows it.
fn scalar_text(pk: &Pickle, v: Id) -> Option<String> {
    match pk.get(v) {
        Node::Int(i) => Some(i.to_string()),
        Node::Float(f) => Some(f.to_string()),
        Node::Bool(b) => Some(b.to_string()),
        Node::Str(s) if s.len() <= 200 => Some(s.clone()),
        _ => None,
    }
}

/// Adds the tensors of one checkpoint archive (a file, or a shard of an index) to `model`.
pub(super) fn add_archive(model: &mut Model, path: &Path, data: Bytes) -> Result<(), LoadError> {
    if data.starts_with(&LEGACY_MAGIC) {
        return add_legacy(model, path, &data);
    }
    let entries = read_entries(path, &data)?;
    let (data, entries, inflated) = inflate_repacked(path, data, entries)?;
    if inflated > 0 {
        model
            .metadata
            .warnings
            .push(repacked_warning(path, inflated));
    }
    add_pickled(model, path, data, &entries).map(|_| ())
}

fn repacked_warning(path: &Path, inflated: u64) -> String {
    format!(
        "{}: the archive was re-packed with compression, so its pickle and storages were \
         inflated into memory ({:.1} MiB) instead of mapped; torch.save writes them uncompressed",
        path.display(),
        inflated as f64 / (1 << 20) as f64
    )
}

/// A `torch.save` archive re-packed by a zip tool with compression: its pickles and storages
/// (`data.pkl`, `data/<key>`, `constants.pkl`, `constants/<key>` under the archive's folder) are
/// inflated into one buffer after a copy of the file, and their entries point there, so the rest
/// reads them as it reads mapped ones. Within what deflate can give: 1032 times the file. Returns
/// the bytes inflated (0, and the file untouched, when nothing was compressed).
fn inflate_repacked(
    path: &Path,
    data: Bytes,
    mut entries: Entries,
) -> Result<(Bytes, Entries, u64), LoadError> {
    let wanted = |name: &str| {
        let leaf = name.rsplit_once('/').map_or(name, |(_, l)| l);
        let folder = name
            .rsplit_once('/')
            .and_then(|(dir, _)| dir.rsplit_once('/').map_or(Some(dir), |(_, d)| Some(d)));
        matches!(leaf, "data.pkl" | "constants.pkl") || matches!(folder, Some("data" | "constants"))
    };
    let mut packed: Vec<String> = entries
        .iter()
        .filter(|(name, r)| {
            matches!(r, Err(e) if e.starts_with("compressed")) && wanted(name.as_str())
        })
        .map(|(name, _)| name.clone())
        .collect();
    if packed.is_empty() {
        return Ok((data, entries, 0));
    }
    packed.sort();
    let corrupt = |why: String| LoadError::corrupt(path, why);
    let mut zip = zip_of(&data).map_err(corrupt)?;
    let mut budget = (data.len() as u64).saturating_mul(1032);
    let mut buf = data.to_vec();
    let start_len = buf.len();
    for name in packed {
        let bytes = inflate(&mut zip, &name, &mut budget)
            .map_err(|e| corrupt(format!("{name}: {e} (inflating a re-packed archive)")))?;
        let start = buf.len();
        buf.extend_from_slice(&bytes);
        entries.insert(name, Ok(start..buf.len()));
    }
    let inflated = (buf.len() - start_len) as u64;
    Ok((Bytes::from(buf), entries, inflated))
}

/// A zip archive over mapped bytes, for entries that must be inflated.
pub(super) type Zip<'a> = zip::ZipArchive<std::io::Cursor<&'a [u8]>>;

/// Opens `data` as a zip archive for [`inflate`].
pub(super) fn zip_of(data: &[u8]) -> Result<Zip<'_>, String> {
    zip::ZipArchive::new(std::io::Cursor::new(data))
        .map_err(|e| format!("not a readable zip archive: {e}"))
}

/// Entry `name`, inflated if it is compressed, within the `budget` of bytes left, which it lowers.
/// Past the budget it is an error, which the caller completes with the entry and the limit.
pub(super) fn inflate(zip: &mut Zip<'_>, name: &str, budget: &mut u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = zip.by_name(name).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    file.take(*budget + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("inflating: {e}"))?;
    *budget = budget
        .checked_sub(out.len() as u64)
        .ok_or("more than the bytes allowed")?;
    Ok(out)
}

/// Reads the central directory of a zip archive.
fn read_entries(path: &Path, data: &Bytes) -> Result<Entries, LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&data[..]))
        .map_err(|e| corrupt(format!("not a readable zip archive: {e}")))?;
    let mut entries = Entries::new();
    for i in 0..archive.len() {
        let f = archive
            .by_index_raw(i)
            .map_err(|e| corrupt(format!("zip entry {i}: {e}")))?;
        let name = f
            .name()
            .map_err(|e| corrupt(format!("zip entry {i}: {e}")))?
            .into_owned();
        let range = if f.compression() != zip::CompressionMethod::Stored {
            Err(format!("compressed ({})", f.compression()))
        } else {
            let start = f.data_start().and_then(|s| usize::try_from(s).ok());
            let len = usize::try_from(f.size()).ok();
            match (start, len) {
                (Some(s), Some(n)) if s.checked_add(n).is_some_and(|e| e <= data.len()) => {
                    Ok(s..s + n)
                }
                _ => Err(format!(
                    "its {} bytes run past the end of the file",
                    f.size()
                )),
            }
        };
        entries.insert(name, range);
    }
    Ok(entries)
}

/// Adds the tensors named by the pickle (`data.pkl`) of a `torch.save` archive, and returns the
/// pickle (a TorchScript archive's module tree) with the name each of its tensors was given.
fn add_pickled(
    model: &mut Model,
    path: &Path,
    data: Bytes,
    entries: &Entries,
) -> Result<(Pickle, HashMap<Id, String>), LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    // The pickle at the top of the archive (`<name>/data.pkl`; the shortest if several).
    let pkl = entries
        .keys()
        .filter(|name| {
            *name == "data.pkl"
                || name
                    .strip_suffix("/data.pkl")
                    .is_some_and(|p| !p.contains('/'))
        })
        .min_by_key(|name| (name.len(), name.as_str()))
        .cloned();
    let pkl = pkl.ok_or_else(|| {
        if entries.keys().any(|k| k.contains("data/aotinductor/")) {
            corrupt(
                "an AOTInductor package (compiled code, with no graph or pickle to read); open \
                 the program written by torch.export.save instead"
                    .into(),
            )
        } else {
            corrupt(
                "a zip archive with neither data.pkl (torch.save) nor models/*.json \
                 (torch.export.save), so not a PyTorch file"
                    .into(),
            )
        }
    })?;
    let prefix = pkl.strip_suffix("data.pkl").unwrap_or("").to_string();
    let pkl_range = entries
        .get(&pkl)
        .cloned()
        .unwrap_or_else(|| Err("missing".into()))
        .map_err(|e| {
            corrupt(format!(
                "{pkl}: {e} (torch.save stores its entries uncompressed so that tensors can be \
                 mapped; this archive was re-packed: save it again with torch.save)"
            ))
        })?;
    let pickle_len = pkl_range.len();
    let pickle = pickle::unpickle(&data[pkl_range]).map_err(|e| corrupt(format!("{pkl}: {e}")))?;
    let big_endian = matches!(
        entries.get(&format!("{prefix}byteorder")),
        Some(Ok(r)) if data.get(r.clone()) == Some(&b"big"[..])
    );
    Ok(add_tensors(
        model, path, &data, entries, pickle, &prefix, pickle_len, big_endian,
    ))
}

/// Adds the tensors `pickle` names, their storages `<prefix>data/<key>` among `entries`, and
/// returns the pickle with the name each of its tensors was given.
#[allow(
    clippy::too_many_arguments,
    reason = "the archive's parts, passed through"
)]
fn add_tensors(
    model: &mut Model,
    path: &Path,
    data: &Bytes,
    entries: &Entries,
    pickle: Pickle,
    prefix: &str,
    pickle_len: usize,
    big_endian: bool,
) -> (Pickle, HashMap<Id, String>) {
    let mut walk = Walk {
        pk: &pickle,
        seen: HashSet::new(),
        tensors: Vec::new(),
        scalars: Vec::new(),
        classes: HashMap::new(),
        // Names may repeat memoized keys; their total is kept proportional to the pickle.
        name_budget: pickle_len.saturating_mul(16).saturating_add(1 << 20),
    };
    walk.root();
    if walk.name_budget == 0 {
        model.metadata.warnings.push(format!(
            "{}: the pickle names more tensors than it could hold; the rest are not shown",
            path.display()
        ));
    }
    for (path, class) in walk.classes {
        model.metadata.module_classes.entry(path).or_insert(class);
    }
    for (key, value) in walk.scalars {
        model
            .metadata
            .properties
            .push((format!("checkpoint.{key}"), value));
    }
    if walk.tensors.is_empty() {
        model.metadata.warnings.push(format!(
            "{}: the checkpoint holds no tensors",
            path.display()
        ));
    }
    let mut names = HashMap::new();
    for (name, id) in walk.tensors {
        names.entry(id).or_insert_with(|| name.clone());
        if model.tensor(&name).is_some() {
            model.metadata.warnings.push(format!(
                "{}: a second tensor named {name:?} is not shown",
                path.display()
            ));
            continue;
        }
        if let Some(t) =
            pickled_tensor(&pickle, id, data, entries, prefix, "data", big_endian, path)
        {
            model.add_tensor(Tensor { name, ..t });
        }
    }
    (pickle, names)
}

/// Adds the tensors of a pre-1.6 `torch.save` file (`_use_new_zipfile_serialization=False`, as
/// checkpoints from before mid-2020 are): five pickles in a row (a magic number, the protocol
/// version 1001, system information, the saved object, the sorted storage keys), then each storage
/// as a little-endian element count and its bytes, in the keys' order. Each storage's element
/// size comes from its class in the object's persistent ids; a storage shared as a view
/// (`view_metadata`) is a slice of its root's bytes. Tensors are slices of the map, as in an
/// archive.
fn add_legacy(model: &mut Model, path: &Path, data: &Bytes) -> Result<(), LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    let mut pos = 0usize;
    let mut next = |what: &str| -> Result<(Pickle, usize), LoadError> {
        let rest = data.get(pos..).unwrap_or_default();
        let (pk, n) = pickle::unpickle_prefix(rest)
            .map_err(|e| corrupt(format!("a legacy torch.save file, its {what}: {e}")))?;
        pos += n;
        Ok((pk, n))
    };
    next("magic number")?;
    let (version, _) = next("protocol version")?;
    if *version.get(version.root) != Node::Int(1001) {
        return Err(corrupt(format!(
            "a legacy torch.save file of protocol {:?}, not 1001",
            version.get(version.root)
        )));
    }
    let (info, _) = next("system information")?;
    let little_endian = match info.get(info.root) {
        Node::Dict(items) => items
            .iter()
            .find(|&&(k, _)| info.str(k) == Some("little_endian"))
            .is_none_or(|&(_, v)| *info.get(v) != Node::Bool(false)),
        _ => true,
    };
    let (object, object_len) = next("saved object")?;
    let (keys, _) = next("storage keys")?;
    let keys: Vec<&str> = keys
        .items(keys.root)
        .ok_or_else(|| {
            corrupt("a legacy torch.save file whose storage keys are not a list".into())
        })?
        .iter()
        .filter_map(|&k| keys.str(k))
        .collect();

    // Element size of each root storage, and the views of one: (view key, root key, offset,
    // elements).
    let mut elem = HashMap::new();
    let mut views = Vec::new();
    for node in &object.nodes {
        let Node::PersId(pid) = node else { continue };
        let items = object.items(*pid).unwrap_or_default();
        let class = match items.get(1).map(|&c| object.get(c)) {
            Some(Node::Global(_, name)) => name.as_str(),
            _ => continue,
        };
        let (Some(key), Some(es)) = (
            items.get(2).and_then(|&k| object.str(k)),
            dtype_of(class.trim_end_matches("Storage")).size_bytes(),
        ) else {
            continue;
        };
        elem.insert(key.to_string(), es);
        let view = items.get(5).and_then(|&v| object.items(v)).and_then(|v| {
            let int = |i: usize| match v.get(i).map(|&x| object.get(x)) {
                Some(Node::Int(n)) => u64::try_from(*n).ok(),
                _ => None,
            };
            Some((v.first().and_then(|&k| object.str(k))?, int(1)?, int(2)?))
        });
        if let Some((view_key, offset, size)) = view {
            views.push((view_key.to_string(), key.to_string(), offset, size, es));
        }
    }
    let mut entries = Entries::new();
    for key in keys {
        let Some(&es) = elem.get(key) else {
            // Its size is unknown, so where the next storages start is too.
            entries.insert(
                format!("data/{key}"),
                Err("a storage no tensor names, after which none can be placed".into()),
            );
            break;
        };
        let count = data
            .get(pos..pos + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
        let range = count
            .and_then(|n| n.checked_mul(es))
            .and_then(|len| usize::try_from(len).ok())
            .and_then(|len| (pos + 8).checked_add(len))
            .filter(|&end| end <= data.len())
            .map(|end| pos + 8..end);
        let Some(range) = range else {
            entries.insert(
                format!("data/{key}"),
                Err("its bytes run past the end of the file".into()),
            );
            break;
        };
        pos = range.end;
        entries.insert(format!("data/{key}"), Ok(range));
    }
    for (view_key, root, offset, size, es) in views {
        let sub = match entries.get(&format!("data/{root}")) {
            Some(Ok(r)) => offset
                .checked_mul(es)
                .zip(size.checked_mul(es))
                .and_then(|(o, n)| {
                    let start = r.start.checked_add(usize::try_from(o).ok()?)?;
                    let end = start.checked_add(usize::try_from(n).ok()?)?;
                    (end <= r.end).then_some(start..end)
                })
                .ok_or_else(|| format!("a view of storage {root} beyond its end")),
            _ => Err(format!("a view of storage {root}, which is not readable")),
        };
        entries.insert(format!("data/{view_key}"), sub);
    }
    add_tensors(
        model,
        path,
        data,
        &entries,
        object,
        "",
        object_len,
        !little_endian,
    );
    Ok(())
}

/// The tensor that pickle node `id` rebuilds (unnamed), its bytes from `<prefix><folder>/<key>`:
/// `data` for a checkpoint's storages, `constants` for a TorchScript archive's constants.
#[allow(
    clippy::too_many_arguments,
    reason = "the archive's parts, passed through"
)]
pub(super) fn pickled_tensor(
    pickle: &Pickle,
    id: Id,
    data: &Bytes,
    entries: &Entries,
    prefix: &str,
    folder: &str,
    big_endian: bool,
    path: &Path,
) -> Option<Tensor> {
    let Node::Tensor {
        storage,
        offset,
        size,
        stride,
        dtype,
        quant,
    } = pickle.get(id)
    else {
        return None;
    };
    let (class, key) = storage_of(pickle, *storage);
    let dtype = match dtype {
        Some(d) => dtype_of(d.as_str()),
        None => dtype_of(class.trim_end_matches("Storage")),
    };
    let bytes = tensor_bytes(
        data,
        entries,
        &format!("{prefix}{folder}/"),
        key,
        dtype,
        *offset,
        size,
        stride,
        big_endian,
    )
    .unwrap_or_else(|why| TensorData::Error(format!("{}: {why}", path.display())));
    Some(Tensor {
        name: String::new(),
        dtype,
        shape: size.clone(),
        data: bytes,
        origin: TensorOrigin::Checkpoint,
        conv_axes: None,
        quant: quant.as_ref().filter(|_| !dtype.is_float()).and_then(|q| {
            let (scales, zeros, axis) = match *q {
                QParams::PerTensor(s, z) => (vec![s], vec![z], 0),
                QParams::PerChannel {
                    scales,
                    zeros,
                    axis,
                } => {
                    // Small float64 / int64 tensors of the same archive.
                    let numbers = |id: Id| {
                        let t = pickled_tensor(
                            pickle, id, data, entries, prefix, folder, big_endian, path,
                        )?;
                        t.small_numbers()
                    };
                    (
                        numbers(scales)?,
                        numbers(zeros)?,
                        usize::try_from(axis).ok()?,
                    )
                }
            };
            Quant::new(scales, zeros, axis, size)
        }),
    })
}

/// `(storage class, key)` of a persistent id `("storage", torch.FloatStorage, "0", "cpu", n)`.
fn storage_of(pk: &Pickle, storage: Id) -> (&str, Option<&str>) {
    let Node::PersId(pid) = pk.get(storage) else {
        return ("", None);
    };
    let items = pk.items(*pid).unwrap_or(&[]);
    let class = match items.get(1).map(|&c| pk.get(c)) {
        Some(Node::Global(_, name)) => name.as_str(),
        _ => "",
    };
    // A legacy file's view of a storage (`view_metadata`: its own key, offset and size) has its
    // own entry.
    let view_key = items
        .get(5)
        .and_then(|&v| pk.items(v))
        .and_then(|v| v.first())
        .and_then(|&k| pk.str(k));
    (
        class,
        view_key.or_else(|| items.get(2).and_then(|&k| pk.str(k))),
    )
}

/// The dtype of a storage class (`Float`, `BFloat16`, …) or a `torch.<dtype>` name.
pub(super) fn dtype_of(name: &str) -> DType {
    match name {
        "Double" | "float64" | "double" => DType::F64,
        "Float" | "float32" | "float" => DType::F32,
        "Half" | "float16" | "half" => DType::F16,
        "BFloat16" | "bfloat16" => DType::BF16,
        "Long" | "int64" | "long" => DType::I64,
        "Int" | "int32" | "int" | "QInt32" | "qint32" => DType::I32,
        "Short" | "int16" | "short" => DType::I16,
        "Char" | "int8" | "QInt8" | "qint8" => DType::I8,
        "Byte" | "uint8" | "QUInt8" | "quint8" => DType::U8,
        "UInt16" | "uint16" => DType::U16,
        "UInt32" | "uint32" => DType::U32,
        "UInt64" | "uint64" => DType::U64,
        "Bool" | "bool" => DType::Bool,
        "ComplexFloat" | "complex64" => DType::Complex64,
        "ComplexDouble" | "complex128" => DType::Complex128,
        "Float8_e4m3fn" | "float8_e4m3fn" => DType::F8E4M3FN,
        "Float8_e5m2" | "float8_e5m2" => DType::F8E5M2,
        "Float8_e4m3fnuz" | "float8_e4m3fnuz" => DType::F8E4M3FNUZ,
        "Float8_e5m2fnuz" | "float8_e5m2fnuz" => DType::F8E5M2FNUZ,
        _ => DType::Unknown("torch storage"),
    }
}

/// The bytes of a tensor view, when it is a contiguous run of its storage.
#[allow(clippy::too_many_arguments, reason = "one call site; the view's parts")]
pub(super) fn tensor_bytes(
    data: &Bytes,
    entries: &Entries,
    folder: &str,
    key: Option<&str>,
    dtype: DType,
    offset: u64,
    size: &[u64],
    stride: &[u64],
    big_endian: bool,
) -> Result<TensorData, String> {
    let key = key.ok_or("its storage is not one this reader knows")?;
    let es = dtype
        .size_bytes()
        .ok_or("its storage type is not one this reader knows")?;
    let storage = match entries.get(&format!("{folder}{key}")) {
        None => return Err(format!("storage {key} is missing from the archive")),
        Some(Err(e)) => return Err(format!("storage {key}: {e}")),
        Some(Ok(r)) => r.clone(),
    };
    if size.len() != stride.len() {
        return Err(format!("size {size:?} and stride {stride:?} disagree"));
    }
    let numel = size
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or("its element count overflows")?;
    if numel == 0 {
        return Ok(TensorData::Bytes(Bytes::new()));
    }
    if big_endian && es > 1 {
        return Err("the archive's storages are big-endian".into());
    }
    // Row-major strides, ignoring dimensions of size 1 (their stride is arbitrary).
    let mut expect = 1u64;
    let mut contiguous = true;
    for (&d, &s) in size.iter().zip(stride).rev() {
        contiguous &= d == 1 || s == expect;
        expect = expect.saturating_mul(d);
    }
    let bytes = data
        .get(storage.clone())
        .ok_or("its storage lies beyond the file")?;
    if !contiguous {
        return gather(bytes, es, offset, size, stride, numel)
            .map(|v| TensorData::Bytes(Bytes::from(v)))
            .map_err(|why| format!("a strided view of storage {key}: {why}"));
    }
    let span = |n: u64| n.checked_mul(es).and_then(|b| usize::try_from(b).ok());
    let (start, len) = (span(offset), span(numel));
    let (Some(start), Some(len)) = (start, len) else {
        return Err("its byte range overflows".into());
    };
    let end = start.checked_add(len).ok_or("its byte range overflows")?;
    if end > storage.len() {
        return Err(format!(
            "bytes {start}..{end} of storage {key}, which holds {}",
            storage.len()
        ));
    }
    Ok(TensorData::Bytes(
        data.slice(storage.start + start..storage.start + end),
    ))
}

/// Largest strided view copied into row-major order (elements); larger ones are an error.
const MAX_GATHER: u64 = 1 << 24;

/// Copies a strided view (a transposed or sliced weight saved as a view) out of its storage into
/// row-major order. Views are rare and small in checkpoints; the copy is capped at
/// [`MAX_GATHER`] elements so that a huge one cannot take the memory the map saves.
fn gather(
    storage: &[u8],
    es: u64,
    offset: u64,
    size: &[u64],
    stride: &[u64],
    numel: u64,
) -> Result<Vec<u8>, String> {
    if numel > MAX_GATHER {
        return Err(format!(
            "{numel} elements, more than the {MAX_GATHER} copied into row-major order"
        ));
    }
    // The farthest element the view reads must lie inside the storage.
    let last = size
        .iter()
        .zip(stride)
        .try_fold(offset, |acc, (&d, &s)| {
            acc.checked_add(d.saturating_sub(1).checked_mul(s)?)
        })
        .ok_or("its offsets overflow")?;
    let held = storage.len() as u64 / es;
    if last >= held {
        return Err(format!(
            "it reads element {last} of a storage of {held} elements"
        ));
    }
    let es = es as usize;
    let mut out = Vec::with_capacity(numel as usize * es);
    let mut index = vec![0u64; size.len()];
    for _ in 0..numel {
        let at = index
            .iter()
            .zip(stride)
            .fold(offset, |acc, (&i, &s)| acc + i * s) as usize
            * es;
        out.extend_from_slice(storage.get(at..at + es).unwrap_or(&[]));
        // Odometer over the indices, last dimension fastest.
        for (i, &d) in index.iter_mut().zip(size).rev() {
            *i += 1;
            if *i < d {
                break;
            }
            *i = 0;
        }
    }
    Ok(out)
}

/// Finds the tensors of an unpickled checkpoint and names them.
struct Walk<'a> {
    pk: &'a Pickle,
    /// Containers already walked (a shared one is named once; a cycle ends).
    seen: HashSet<Id>,
    tensors: Vec<(String, Id)>,
    scalars: Vec<(String, String)>,
    /// Module path → class name, for pickled modules.
    classes: HashMap<String, String>,
    /// Bytes of names the walk may still build (0: it stopped).
    name_budget: usize,
}

impl Walk<'_> {
    fn root(&mut self) {
        let pk = self.pk;
        let root = pk.root;
        if let Node::Dict(pairs) = pk.get(root) {
            // A training checkpoint: the weights first, unprefixed; then the rest.
            let weights = WEIGHT_KEYS.iter().find_map(|w| {
                pairs.iter().find(|(k, v)| {
                    pk.str(*k) == Some(w)
                        && matches!(pk.get(*v), Node::Dict(_) | Node::Object { .. })
                })
            });
            if let Some(&(wk, wv)) = weights {
                self.seen.insert(root);
                self.node(wv, "", 1);
                for &(k, v) in pairs {
                    if k == wk && v == wv {
                        continue;
                    }
                    let Some(key) = self.key(k) else { continue };
                    match pk.get(v) {
                        Node::Int(_) | Node::Float(_) | Node::Str(_) | Node::Bool(_) => {
                            self.scalar(&key, v);
                        }
                        _ => self.node(v, &key, 1),
                    }
                }
                return;
            }
        }
        if let Node::Tensor { .. } = pk.get(root) {
            self.tensors.push(("tensor".into(), root));
            return;
        }
        self.node(root, "", 0);
    }

    fn key(&self, k: Id) -> Option<String> {
        match self.pk.get(k) {
            Node::Str(s) => {
                let mut end = s.len().min(MAX_KEY);
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                Some(s[..end].to_string())
            }
            Node::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }

    fn class(&mut self, path: &str, name: &str) {
        if !path.is_empty() && name.len() <= MAX_KEY {
            self.classes
                .entry(path.to_string())
                .or_insert_with(|| name.to_string());
        }
    }

    fn scalar(&mut self, key: &str, v: Id) {
        if let Some(text) = scalar_text(self.pk, v) {
            self.scalars.push((key.to_string(), text));
        }
    }

    fn node(&mut self, id: Id, prefix: &str, depth: u32) {
        if depth > MAX_DEPTH || self.name_budget == 0 {
            return;
        }
        // Every visit builds or copies its name: the walk's work is bounded by the budget.
        self.name_budget = self.name_budget.saturating_sub(prefix.len() + 1);
        let pk = self.pk;
        let join = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        match pk.get(id) {
            Node::Tensor { size, .. } if size.len() <= MAX_RANK => {
                self.tensors.push((prefix.to_string(), id));
            }
            Node::Dict(pairs) => {
                if !self.seen.insert(id) {
                    return;
                }
                for &(k, v) in pairs {
                    if let Some(key) = self.key(k) {
                        if depth == 0 {
                            self.scalar(&key, v);
                        }
                        self.node(v, &join(&key), depth + 1);
                    }
                }
            }
            Node::List(items) | Node::Tuple(items) => {
                if !self.seen.insert(id) {
                    return;
                }
                for (i, &v) in items.iter().enumerate() {
                    self.node(v, &join(&i.to_string()), depth + 1);
                }
            }
            Node::Object {
                class,
                state: Some(state),
                ..
            } => {
                if !self.seen.insert(id) {
                    return;
                }
                let class = match pk.get(*class) {
                    Node::Global(module, name) => Some((module.as_str(), name.as_str())),
                    // The legacy format pickles a module's class as a persistent id
                    // `("module", class, source file, source)`.
                    Node::PersId(pid) => match pk.items(*pid).unwrap_or_default() {
                        [kind, class, ..] if pk.str(*kind) == Some("module") => {
                            match pk.get(*class) {
                                Node::Global(module, name) => {
                                    Some((module.as_str(), name.as_str()))
                                }
                                _ => None,
                            }
                        }
                        _ => None,
                    },
                    _ => None,
                };
                // A pickled nn.Module: its parameters, buffers and submodules, named as in its
                // state_dict().
                if let Node::Dict(pairs) = pk.get(*state) {
                    let module: Vec<Id> = pairs
                        .iter()
                        .filter(|(k, _)| {
                            matches!(pk.str(*k), Some("_parameters" | "_buffers" | "_modules"))
                        })
                        .map(|&(_, v)| v)
                        .collect();
                    if !module.is_empty() {
                        if let Some((_, name)) = class {
                            self.class(prefix, name);
                        }
                        for v in module {
                            self.node(v, prefix, depth + 1);
                        }
                        return;
                    }
                }
                // A TorchScript module: its attributes are its state.
                if let Some((module, name)) = class
                    && module.starts_with("__torch__.")
                {
                    self.class(prefix, name);
                }
                self.node(*state, prefix, depth + 1);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_views_are_gathered_in_row_major_order_within_bounds() {
        // A 3 × 2 storage of u8 0..6; its transpose [2, 3] with stride [1, 2].
        let storage: Vec<u8> = (0..6).collect();
        let t = gather(&storage, 1, 0, &[2, 3], &[1, 2], 6).unwrap();
        assert_eq!(t, [0, 2, 4, 1, 3, 5]);
        // An expanded (stride 0) row, at an offset.
        assert_eq!(
            gather(&storage, 1, 4, &[2, 2], &[0, 1], 4).unwrap(),
            [4, 5, 4, 5]
        );
        // Two-byte elements move whole.
        let wide: Vec<u8> = (0..8).collect();
        assert_eq!(gather(&wide, 2, 1, &[2], &[2], 2).unwrap(), [2, 3, 6, 7]);
        // A view that reads past its storage, or overflows, is an error, not a panic.
        assert!(
            gather(&storage, 1, 1, &[2, 3], &[1, 2], 6)
                .unwrap_err()
                .contains("element 6")
        );
        assert!(gather(&storage, 1, 0, &[2, 2], &[u64::MAX, 1], 4).is_err());
        assert!(gather(&storage, 1, 0, &[1 << 13, 1 << 12], &[1, 0], 1 << 25).is_err());
    }

    #[test]
    fn names_built_from_one_repeated_key_stay_bounded() {
        // A hostile pickle: 200 000 dict entries, each the same memoized 1 MB key and the same
        // tensor (a few bytes each in the file). Keys are cut to MAX_KEY and the walk stops at
        // its name budget instead of building 200 GB of names.
        let mut nodes = vec![
            Node::Str("k".repeat(1 << 20)),
            Node::Tensor {
                storage: 0,
                offset: 0,
                size: vec![2],
                stride: vec![1],
                dtype: None,
                quant: None,
            },
        ];
        nodes.push(Node::Dict(vec![(0, 1); 200_000]));
        let pk = Pickle { nodes, root: 2 };
        let mut walk = Walk {
            pk: &pk,
            seen: HashSet::new(),
            tensors: Vec::new(),
            scalars: Vec::new(),
            classes: HashMap::new(),
            name_budget: 400_000 * 16 + (1 << 20),
        };
        walk.root();
        assert_eq!(walk.name_budget, 0);
        assert!(walk.tensors.len() < 40_000, "{}", walk.tensors.len());
        assert!(walk.tensors.iter().all(|(n, _)| n.len() == MAX_KEY));
    }
}
