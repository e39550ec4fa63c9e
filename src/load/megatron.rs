//! Megatron-LM's (and NeMo 1's Megatron models') checkpoint folders: `latest_checkpointed_iteration.txt`
//! beside one folder per saved iteration (`iter_0001000/`, or `release/`), each holding one folder
//! per model-parallel rank (`mp_rank_00/`, with pipeline parallelism `mp_rank_00_000/`) of a
//! `torch.save` file (`model_optim_rng.pt`, `model_rng.pt` without the optimizer). The latest
//! iteration is read.
//!
//! With model parallelism the ranks are put back together, as Megatron's own
//! `tools/checkpoint/loader_megatron.py` does before converting: each tensor-parallel rank holds a
//! slice of the column-parallel weights (`linear_qkv` / `query_key_value`, `linear_fc1` /
//! `dense_h_to_4h`, `word_embeddings`, `output_layer`: by rows) and of the row-parallel ones
//! (`linear_proj` / `self_attention.dense`, `linear_fc2` / `dense_4h_to_h`: by columns), and a
//! whole copy of the rest (norms, row-parallel biases); a gated MLP's `linear_fc1` holds its
//! rank's gate rows then its up rows, so the gates of every rank come first, then the ups (told
//! from the shapes: such an fc1 has twice the rows fc2 has columns). Pipeline stages
//! (`mp_rank_TT_PPP`) number their layers from 0; each stage's layers follow the last stage's.
//! A whole tensor is made on first use from its slices, so opening reads only the pickles. What
//! cannot be reassembled (a missing rank, slices that disagree) falls back to the first rank's
//! slice, with a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::LoadError;
use crate::model::{LazyBytes, Model, Tensor, TensorData};

/// What Megatron names its iteration marker.
const TRACKER: &str = "latest_checkpointed_iteration.txt";

/// The rank folders of an iteration folder, sorted.
fn ranks(dir: &Path) -> Vec<PathBuf> {
    let mut ranks: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("mp_rank_"))
                && e.path().is_dir()
        })
        .map(|e| e.path())
        .collect();
    ranks.sort();
    ranks
}

/// Whether `dir` is a Megatron checkpoint folder or one of its iteration folders.
pub(super) fn is_checkpoint(dir: &Path) -> bool {
    dir.join(TRACKER).is_file() || !ranks(dir).is_empty()
}

/// Opens a Megatron checkpoint folder (its latest iteration) or an iteration folder.
pub(super) fn open(dir: &Path) -> Result<Model, LoadError> {
    let tracker = dir.join(TRACKER);
    let (iteration_dir, iteration) = if tracker.is_file() {
        let text = std::fs::read_to_string(&tracker).map_err(|e| LoadError::io(&tracker, e))?;
        let text = text.trim();
        let sub = if text == "release" {
            "release".to_string()
        } else {
            let n: u64 = text.parse().map_err(|_| {
                LoadError::corrupt(
                    &tracker,
                    format!("`{text}` is neither an iteration nor `release`"),
                )
            })?;
            format!("iter_{n:07}")
        };
        (dir.join(&sub), Some(text.to_string()))
    } else {
        (dir.to_path_buf(), None)
    };
    let ranks = ranks(&iteration_dir);
    if ranks.is_empty() {
        return Err(LoadError::corrupt(
            &iteration_dir,
            "no mp_rank_NN folder: not a Megatron checkpoint",
        ));
    }
    let mut model = open_ranks(&iteration_dir, &ranks)?;
    if let Some(i) = iteration {
        model
            .metadata
            .properties
            .push(("megatron.iteration".into(), i));
    }
    model.metadata.producer = Some("Megatron-LM".into());
    Ok(model)
}

/// `(tensor rank, pipeline stage)` of a rank folder's name: Megatron's `mp_rank_01`,
/// `mp_rank_01_002`, and NeMo's `tp_rank_01_pp_rank_002`.
pub(super) fn parallel_rank(name: &str) -> Option<(usize, usize)> {
    if let Some(rest) = name.strip_prefix("tp_rank_") {
        let (tp, pp) = rest.split_once("_pp_rank_")?;
        return Some((tp.parse().ok()?, pp.parse().ok()?));
    }
    let name = name.strip_prefix("mp_rank_")?;
    let mut parts = name.split('_');
    let tp = parts.next()?.parse().ok()?;
    let pp = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    parts.next().is_none().then_some((tp, pp))
}

fn rank_of(dir: &Path) -> Option<(usize, usize)> {
    parallel_rank(dir.file_name()?.to_str()?)
}

/// `(pipeline stages, tensor ranks)` when `keys` (each `(stage, tensor rank)`) are every cell of a
/// grid with more than one cell.
pub(super) fn grid_of<'a>(
    keys: impl Iterator<Item = &'a (usize, usize)> + Clone,
) -> Option<(usize, usize)> {
    let n = keys.clone().count();
    let stages = keys.clone().map(|k| k.0).max()? + 1;
    let tps = keys.map(|k| k.1).max()? + 1;
    (stages * tps == n && n > 1).then_some((stages, tps))
}

/// The checkpoint file of a rank folder.
fn rank_file(dir: &Path) -> Result<PathBuf, LoadError> {
    ["model_optim_rng.pt", "model_rng.pt"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| LoadError::corrupt(dir, "no model_optim_rng.pt or model_rng.pt in it"))
}

/// How the tensor-parallel slices of a tensor make the whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Split {
    /// Every rank holds all of it.
    Whole,
    /// Stacked by rows (dimension 0).
    Rows,
    /// Side by side by columns (dimension 1 of a matrix).
    Columns,
    /// Each rank's first half of rows (a gated MLP's gates), then each rank's second half.
    GatedRows,
}

/// The split of a Megatron (Core or legacy) parameter, by its name.
fn split_of(name: &str) -> Split {
    let (stem, leaf) = name.rsplit_once('.').unwrap_or((name, ""));
    let part = stem.rsplit('.').next().unwrap_or(stem);
    let is_weight = leaf == "weight";
    match part {
        "linear_qkv" | "query_key_value" if matches!(leaf, "weight" | "bias") => Split::Rows,
        // Cross-attention's separate projections, under Megatron's `*attention` modules only
        // (a Conformer's `self_attn.linear_q` is not split).
        "linear_q" | "linear_kv" | "query" | "key_value"
            if matches!(leaf, "weight" | "bias") && stem.contains("attention.") =>
        {
            Split::Rows
        }
        "linear_fc1" | "dense_h_to_4h" if matches!(leaf, "weight" | "bias") => Split::Rows,
        "word_embeddings" | "output_layer" if is_weight => Split::Rows,
        "linear_proj" | "linear_fc2" | "dense_4h_to_h" if is_weight => Split::Columns,
        "dense" if is_weight && stem.ends_with("attention.dense") => Split::Columns,
        _ => Split::Whole,
    }
}

/// A layer-numbered name moved by `offset` layers (`decoder.layers.3.x` → `decoder.layers.7.x`).
fn renumber(name: &str, offset: usize) -> String {
    if offset == 0 {
        return name.to_string();
    }
    for marker in [".layers.", "layers."] {
        if let Some(at) = name
            .find(marker)
            .filter(|&a| marker.starts_with('.') || a == 0)
        {
            let start = at + marker.len();
            let digits = name[start..].bytes().take_while(u8::is_ascii_digit).count();
            if let Ok(n) = name[start..start + digits].parse::<usize>() {
                return format!(
                    "{}{}{}",
                    &name[..start],
                    n + offset,
                    &name[start + digits..]
                );
            }
        }
    }
    name.to_string()
}

/// The layer index a name holds, if any.
fn layer_of(name: &str) -> Option<usize> {
    let at = name
        .find(".layers.")
        .map(|a| a + 8)
        .or_else(|| name.starts_with("layers.").then_some(7))?;
    let digits: String = name[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A slice's bytes, if it has them in memory or can make them.
fn bytes_of(t: &Tensor) -> Result<bytes::Bytes, String> {
    match &t.data {
        TensorData::Bytes(b) => Ok(b.clone()),
        TensorData::Lazy(l) => l.get(),
        TensorData::Missing => Err(format!("{}: no data in the file", t.name)),
        TensorData::Error(e) => Err(e.clone()),
    }
}

/// The whole tensor from its slices (one per tensor-parallel rank, in rank order).
fn join(slices: &[Tensor], split: Split) -> Result<bytes::Bytes, String> {
    let parts = slices.iter().map(bytes_of).collect::<Result<Vec<_>, _>>()?;
    let total: usize = parts.iter().map(bytes::Bytes::len).sum();
    let mut out = Vec::with_capacity(total);
    match split {
        Split::Whole => return Ok(parts[0].clone()),
        Split::Rows => parts.iter().for_each(|p| out.extend_from_slice(p)),
        Split::GatedRows => {
            for half in 0..2 {
                for p in &parts {
                    let h = p.len() / 2;
                    out.extend_from_slice(if half == 0 { &p[..h] } else { &p[h..] });
                }
            }
        }
        Split::Columns => {
            let rows = slices[0].shape[0] as usize;
            let row_bytes: Vec<usize> = parts.iter().map(|p| p.len() / rows.max(1)).collect();
            for r in 0..rows {
                for (p, &n) in parts.iter().zip(&row_bytes) {
                    out.extend_from_slice(&p[r * n..(r + 1) * n]);
                }
            }
        }
    }
    Ok(bytes::Bytes::from(out))
}

/// The whole tensor's shape, when the slices fit together that way.
fn joined_shape(slices: &[Tensor], split: Split) -> Option<Vec<u64>> {
    let first = &slices[0];
    let same = |t: &Tensor| t.dtype == first.dtype && t.shape.len() == first.shape.len();
    if !slices.iter().all(same) {
        return None;
    }
    let axis = match split {
        Split::Whole => return Some(first.shape.clone()),
        Split::Rows | Split::GatedRows => 0,
        Split::Columns => 1,
    };
    if first.shape.len() <= axis || (split == Split::Columns && first.shape.len() != 2) {
        return None;
    }
    let others_agree = slices.iter().all(|t| {
        t.shape
            .iter()
            .enumerate()
            .all(|(d, &n)| d == axis || n == first.shape[d])
    });
    let gated_even = split != Split::GatedRows || slices.iter().all(|t| t.shape[0] % 2 == 0);
    if !others_agree
        || !gated_even
        || !slices
            .iter()
            .all(|t| matches!(t.data, TensorData::Bytes(_) | TensorData::Lazy(_)))
    {
        return None;
    }
    let mut shape = first.shape.clone();
    shape[axis] = slices.iter().map(|t| t.shape[axis]).sum();
    Some(shape)
}

/// Every rank of an iteration folder, put back together into one model (see the module docs).
fn open_ranks(iteration_dir: &Path, ranks: &[PathBuf]) -> Result<Model, LoadError> {
    let mut grid: BTreeMap<(usize, usize), &PathBuf> = BTreeMap::new();
    for r in ranks {
        if let Some(k) = rank_of(r) {
            grid.insert((k.1, k.0), r);
        }
    }
    if grid.len() != ranks.len() || grid_of(grid.keys()).is_none() {
        // One rank, or a grid with holes: the first rank alone.
        let first = &ranks[0];
        let file = rank_file(first)?;
        let mut model = super::torch::open_file(&file, super::map_file(&file)?)?;
        if ranks.len() > 1 {
            model.metadata.warnings.push(format!(
                "{}: {} rank folders that do not make a whole tensor × pipeline grid; the weights \
                 shown are {}'s",
                iteration_dir.display(),
                ranks.len(),
                first
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("the first")
            ));
        }
        return Ok(model);
    }
    let mut models: BTreeMap<(usize, usize), Model> = BTreeMap::new();
    for (&k, dir) in &grid {
        let file = rank_file(dir)?;
        models.insert(k, super::torch::open_file(&file, super::map_file(&file)?)?);
    }
    let mut model = assemble(iteration_dir, &models);
    super::family::build_checkpoint_graph(&mut model);
    Ok(model)
}

/// One model from the models of every rank of a complete grid (keyed `(pipeline stage, tensor
/// rank)`, see [`grid_of`]): rank `(0, 0)`'s metadata, every stage's tensors under their global
/// layer numbers, split tensors made whole on first use. `source` names it. The caller builds its
/// graph.
pub(super) fn assemble(source: &Path, models: &BTreeMap<(usize, usize), Model>) -> Model {
    let (stages, tps) = grid_of(models.keys()).unwrap_or((1, 1));
    let mut model = Model::new(source, crate::model::Format::Torch);
    if let Some(first) = models.get(&(0, 0)) {
        model.metadata.properties = first.metadata.properties.clone();
        model.format = first.format;
    }
    model.metadata.shards = models.len();
    let mut warnings = Vec::new();
    let mut offset = 0usize;
    for stage in 0..stages {
        let slices_of = |name: &str| -> Vec<Tensor> {
            (0..tps)
                .filter_map(|tp| {
                    let m = models.get(&(stage, tp))?;
                    m.tensor(name).cloned()
                })
                .collect()
        };
        let Some(lead) = models.get(&(stage, 0)) else {
            continue;
        };
        let mut layers = 0usize;
        for t in &lead.tensors {
            if let Some(l) = layer_of(&t.name) {
                layers = layers.max(l + 1);
            }
            let name = renumber(&t.name, offset);
            if model.tensor_index.contains_key(&name) {
                // Every stage saves its own `rng_state`; the first stage's is kept.
                continue;
            }
            let slices = slices_of(&t.name);
            let mut split = if tps > 1 {
                split_of(&t.name)
            } else {
                Split::Whole
            };
            if split == Split::Rows
                && (t.name.contains("linear_fc1.") || t.name.contains("dense_h_to_4h."))
            {
                // A gated MLP's fc1 has twice as many rows as its fc2 has columns.
                let fc2 = t
                    .name
                    .replace("linear_fc1.bias", "linear_fc2.weight")
                    .replace("linear_fc1.", "linear_fc2.")
                    .replace("dense_h_to_4h.bias", "dense_4h_to_h.weight")
                    .replace("dense_h_to_4h.", "dense_4h_to_h.");
                let cols = lead.tensor(&fc2).and_then(|f| f.shape.get(1).copied());
                if cols.is_some_and(|c| t.shape.first() == Some(&(2 * c))) {
                    split = Split::GatedRows;
                }
            }
            let mut whole = t.clone();
            whole.name = name;
            match (slices.len() == tps)
                .then(|| joined_shape(&slices, split))
                .flatten()
            {
                Some(shape) if split != Split::Whole => {
                    whole.shape = shape;
                    let len = whole.dtype.bytes_for(whole.elements()).unwrap_or(0);
                    let addrs: Vec<usize> = slices.iter().map(Tensor::data_addr).collect();
                    let key = crate::model::key_of(&(source, &whole.name, addrs));
                    whole.data = TensorData::Lazy(Arc::new(LazyBytes::new(len, key, move || {
                        join(&slices, split)
                    })));
                }
                Some(_) => {}
                None => warnings.push(format!(
                    "{}: {}: its {} slices do not fit together; the first rank's is shown",
                    source.display(),
                    t.name,
                    slices.len()
                )),
            }
            model.add_tensor(whole);
        }
        offset += layers;
    }
    model.metadata.properties.push((
        "megatron.parallel".into(),
        format!(
            "tensor {tps} × pipeline {stages} ({} ranks, put back together)",
            models.len()
        ),
    ));
    model.metadata.warnings.extend(warnings);
    model
}
