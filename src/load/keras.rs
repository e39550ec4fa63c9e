//! Keras 3 models (`.keras`): a zip of `config.json` (the architecture: every layer with its
//! class, configuration and the tensors it was called on), `metadata.json` and
//! `model.weights.h5` (each layer's variables, read by [`super::hdf5`]); and legacy `.h5` models
//! (Keras 2 and 3 `model.save("model.h5")`), the same config in an HDF5 attribute.
//!
//! The graph is the functional graph as Keras records it, one node per call of a layer (a shared
//! layer called twice is two nodes; the first owns the weights). A `Sequential` model is a chain.
//! A model used as a layer of another (a pretrained backbone) is laid out inline: its layers in a
//! group named after it, reading what the outer call passed (a second call of it is one node). Variables are named as
//! Keras names them (`conv/kernel`, `bn/moving_mean`) for the common layers; others by position
//! (`prelu/0`), as the weights file stores them. Conv kernels are `[kh, kw, in, out]` and drawn as
//! such.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use serde_json::Value as Json;

use super::LoadError;
use super::hdf5;
use super::torch::Entries;
use crate::model::{
    AttrValue, ConvAxes, DType, Dim, Format, Graph, Model, Node, NodeKind, OpNames, Tensor,
    TensorData, TensorId, TensorOrigin, Value, ValueId,
};

/// Models nested in models deeper than this are not expanded.
const MAX_DEPTH: u32 = 16;

/// Whether a zip's entries are a Keras model.
pub(super) fn is_keras(entries: &Entries) -> bool {
    entries.contains_key("config.json")
        && (entries.contains_key("model.weights.h5") || entries.contains_key("metadata.json"))
}

/// Opens a `.keras` archive.
pub(super) fn load_zip(path: &Path, data: &Bytes, entries: &Entries) -> Result<Model, LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    let entry = |name: &str| -> Result<Option<Bytes>, LoadError> {
        match entries.get(name) {
            None => Ok(None),
            Some(Ok(r)) => Ok(Some(data.slice(r.clone()))),
            Some(Err(e)) => Err(corrupt(format!("{name}: {e}"))),
        }
    };
    let config: Json = match entry("config.json")? {
        Some(b) => serde_json::from_slice(&b)
            .map_err(|e| corrupt(format!("config.json: invalid JSON: {e}")))?,
        None => return Err(corrupt("no config.json".into())),
    };
    let mut model = Model::new(path, Format::Keras);
    model.metadata.shards = 1;
    if let Some(meta) =
        entry("metadata.json")?.and_then(|b| serde_json::from_slice::<Json>(&b).ok())
    {
        let text = |k: &str| meta.get(k).and_then(Json::as_str).map(String::from);
        model.metadata.producer = Some("Keras".into());
        model.metadata.producer_version = text("keras_version");
        if let Some(d) = text("date_saved") {
            model
                .metadata
                .properties
                .push(("keras.date_saved".into(), d));
        }
    }
    let weights = match entry("model.weights.h5")? {
        Some(h5) => {
            read_weights(&mut model, &h5).map_err(|e| corrupt(format!("model.weights.h5: {e}")))?
        }
        None => {
            model
                .metadata
                .warnings
                .push("the archive has no model.weights.h5: the graph only".into());
            HashMap::new()
        }
    };
    build(&mut model, &config, weights).map_err(|e| corrupt(format!("config.json: {e}")))?;
    Ok(model)
}

/// A model from its JSON config alone (`model.to_json()`), as Keras's TensorBoard callback logs
/// it: the layer graph, no weights.
pub(super) fn from_config(path: &Path, json: &[u8]) -> Result<Model, LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    let config: Json = serde_json::from_slice(json)
        .map_err(|e| corrupt(format!("Keras model config: invalid JSON: {e}")))?;
    let mut model = Model::new(path, Format::Keras);
    model.metadata.producer = Some("Keras (TensorBoard callback)".into());
    model
        .metadata
        .warnings
        .push("a model config logged to TensorBoard: the graph only, no weights".into());
    build(&mut model, &config, HashMap::new())
        .map_err(|e| corrupt(format!("Keras model config: {e}")))?;
    Ok(model)
}

/// The variables of each layer, by layer name, in the order Keras stores them.
type Weights = HashMap<String, Vec<TensorId>>;

/// Variable names Keras gives the common layers, in storage order (used when the count matches).
fn var_names(class: &str) -> &'static [&'static str] {
    match class {
        "Dense" | "EinsumDense" | "Conv1D" | "Conv2D" | "Conv3D" | "Conv1DTranspose"
        | "Conv2DTranspose" | "Conv3DTranspose" | "DepthwiseConv2D" | "DepthwiseConv1D" => {
            &["kernel", "bias"]
        }
        "SeparableConv1D" | "SeparableConv2D" => &["depthwise_kernel", "pointwise_kernel", "bias"],
        "BatchNormalization" => &["gamma", "beta", "moving_mean", "moving_variance"],
        "LayerNormalization" | "GroupNormalization" => &["gamma", "beta"],
        "RMSNormalization" => &["scale"],
        "Embedding" => &["embeddings"],
        "PReLU" => &["alpha"],
        "LSTM" | "GRU" | "SimpleRNN" => &["kernel", "recurrent_kernel", "bias"],
        _ => &[],
    }
}

/// Reads `model.weights.h5`: groups `…/layers/<key>/vars` (attribute `name`: the layer's name)
/// holding datasets `0`, `1`, … Sub-layers' variables (`layers/<key>/<sub>/vars/0`) belong to
/// the layer too.
fn read_weights(model: &mut Model, h5: &Bytes) -> Result<Weights, String> {
    let file = hdf5::File::open(h5)?;
    let objects = file.walk()?;
    // Layer roots: `…/layers/<key>` → the layer's name.
    let mut roots: Vec<(String, String)> = Vec::new();
    for (path, obj) in &objects {
        let Some(root) = path.strip_suffix("/vars") else {
            continue;
        };
        let is_layer = root.rsplit('/').nth(1) == Some("layers");
        let name = obj.attrs.iter().find_map(|(k, v)| match v {
            hdf5::AttrValue::Strings(s) if k == "name" => s.first().cloned(),
            _ => None,
        });
        if let (true, Some(name)) = (is_layer, name) {
            roots.push((root.to_string(), name));
        }
    }
    // Every `…/vars` group's `name`: a sub-layer's variables are named by it (`mha/query/0`).
    let var_groups: HashMap<String, String> = objects
        .iter()
        .filter_map(|(path, obj)| {
            let name = obj.attrs.iter().find_map(|(k, v)| match v {
                hdf5::AttrValue::Strings(s) if k == "name" => s.first().cloned(),
                _ => None,
            })?;
            Some((path.strip_suffix("/vars")?.to_string(), name))
        })
        .collect();
    let roots: HashMap<String, String> = roots.into_iter().collect();
    let mut found: HashMap<String, Vec<(String, hdf5::Dataset)>> = HashMap::new();
    for (path, obj) in objects {
        let Some(ds) = obj.dataset else { continue };
        // The nearest enclosing layer root, found by walking up the path (so a nested model's
        // layers take their own variables), in time linear in the path's depth.
        let mut up = path.as_str();
        let found_root = loop {
            let Some((parent, _)) = up.rsplit_once('/') else {
                break None;
            };
            if let Some((root, name)) = roots.get_key_value(parent) {
                break Some((root, name));
            }
            up = parent;
        };
        let Some((root, name)) = found_root else {
            continue;
        };
        let rel = &path[root.len() + 1..];
        // `vars/0` → `0`; a sub-layer's `query_dense/vars/0` → `query/0`.
        let short = match rel.rsplit_once("/vars/") {
            Some((sub, leaf)) => {
                let full = format!("{root}/{sub}");
                let sub_name = var_groups.get(full.as_str()).map_or(sub, String::as_str);
                format!("{sub_name}/{leaf}")
            }
            None => rel.strip_prefix("vars/").unwrap_or(rel).to_string(),
        };
        found.entry(name.clone()).or_default().push((short, ds));
    }
    let mut out = Weights::new();
    let mut ordered: Vec<(String, Vec<(String, hdf5::Dataset)>)> = found.into_iter().collect();
    ordered.sort_by(|a, b| a.0.cmp(&b.0));
    for (layer, mut vars) in ordered {
        // Own variables (`N`) first, by N; then each sub-layer's, by name.
        vars.sort_by_key(|(rel, _)| {
            let (dir, leaf) = rel.rsplit_once('/').unwrap_or(("", rel));
            (
                !dir.is_empty(),
                dir.to_string(),
                leaf.parse::<u64>().unwrap_or(u64::MAX),
                leaf.to_string(),
            )
        });
        let mut ids = Vec::new();
        for (rel, ds) in vars {
            match dataset_tensor(h5, &file, format!("{layer}/{rel}"), &ds) {
                Ok(t) => ids.push(model.add_tensor(t)),
                Err(w) => model.metadata.warnings.push(w),
            }
        }
        out.insert(layer, ids);
    }
    Ok(out)
}

/// A dataset as a tensor named `name`; for element types modelmap has no dtype for, a warning.
fn dataset_tensor(
    file: &Bytes,
    h5: &hdf5::File<'_>,
    name: String,
    ds: &hdf5::Dataset,
) -> Result<Tensor, String> {
    let Some(dtype) = ds.dtype else {
        return Err(format!("{name}: {} values are not read", ds.type_text));
    };
    let data = match &ds.storage {
        hdf5::Storage::Bytes(r) if ds.big_endian => {
            TensorData::Bytes(swapped(&file[r.clone()], ds.elem_size))
        }
        hdf5::Storage::Bytes(r) => TensorData::Bytes(file.slice(r.clone())),
        hdf5::Storage::Unallocated => TensorData::Missing,
        hdf5::Storage::Chunked(c) => match h5.read_chunked(&ds.dims, ds.elem_size, c) {
            Ok(bytes) if ds.big_endian => TensorData::Bytes(swapped(&bytes, ds.elem_size)),
            Ok(bytes) => TensorData::Bytes(Bytes::from(bytes)),
            Err(why) => TensorData::Error(why.clone()),
        },
        hdf5::Storage::Unsupported(why) => TensorData::Error(why.clone()),
    };
    Ok(Tensor {
        name,
        dtype,
        shape: ds.dims.clone(),
        data,
        origin: TensorOrigin::Initializer,
        conv_axes: None,
        quant: None,
    })
}
/// Big-endian numbers of `size` bytes as little-endian ones (a copy; HDF5 files written on or for
/// big-endian machines).
fn swapped(bytes: &[u8], size: u64) -> Bytes {
    let size = usize::try_from(size).unwrap_or(1).max(1);
    let mut out = bytes.to_vec();
    for element in out.chunks_exact_mut(size) {
        element.reverse();
    }
    Bytes::from(out)
}

/// The first string of attribute `key`.
fn attr_text(attrs: &[(String, hdf5::AttrValue)], key: &str) -> Option<String> {
    attrs.iter().find_map(|(k, v)| match v {
        hdf5::AttrValue::Strings(s) if k == key => s.first().cloned(),
        _ => None,
    })
}

/// An HDF5 file with no architecture: weights saved by `model.save_weights` (Keras 2's `.h5`,
/// Keras 3's `.weights.h5`), or any HDF5 file of numbers. Every dataset is a tensor named by its
/// path (Keras 2's doubled layer group, `dense/dense/kernel:0`, read once: `dense/kernel:0`),
/// grouped as a checkpoint's weights are, with a warning that no architecture was saved.
fn weights_only(
    path: &Path,
    data: &Bytes,
    file: &hdf5::File<'_>,
    objects: &[(String, hdf5::Object)],
) -> Result<Model, LoadError> {
    let mut model = Model::new(path, Format::Keras);
    model.metadata.shards = 1;
    model.metadata.producer = Some("Keras (weights only)".into());
    let root = objects
        .iter()
        .find(|(p, _)| p.is_empty())
        .map(|(_, o)| o.attrs.as_slice())
        .unwrap_or_default();
    model.metadata.producer_version = attr_text(root, "keras_version");
    let mut found = 0;
    for (p, obj) in objects {
        let Some(ds) = &obj.dataset else { continue };
        found += 1;
        let p = p.strip_prefix("model_weights/").unwrap_or(p);
        let name = match p.split_once('/') {
            Some((layer, rest)) if rest.starts_with(&format!("{layer}/")) => rest.to_string(),
            _ => p.to_string(),
        };
        match dataset_tensor(data, file, name, ds) {
            Ok(t) => {
                model.add_tensor(t);
            }
            Err(w) => model.metadata.warnings.push(w),
        }
    }
    if found == 0 {
        return Err(LoadError::corrupt(
            path,
            "an HDF5 file with neither a Keras model_config attribute nor any dataset: not a \
             Keras model or weights file",
        ));
    }
    model.metadata.warnings.push(format!(
        "{}: weights saved without their architecture (no model_config; save_weights), shown as \
         a checkpoint's weights",
        path.display()
    ));
    super::family::build_checkpoint_graph(&mut model);
    Ok(model)
}

/// Opens a legacy Keras `.h5` model (`model.save("model.h5")`, Keras 2 and 3): the architecture
/// in the root's `model_config` attribute, each layer's weights under `model_weights/<layer>/`
/// named by the layer group's `weight_names` (`conv/kernel:0` in Keras 2).
pub(super) fn load_h5(path: &Path, data: &Bytes) -> Result<Model, LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    let file = hdf5::File::open(data).map_err(|e| corrupt(format!("HDF5: {e}")))?;
    let objects = file.walk().map_err(|e| corrupt(format!("HDF5: {e}")))?;
    let root = objects
        .iter()
        .find(|(p, _)| p.is_empty())
        .map(|(_, o)| o.attrs.as_slice())
        .unwrap_or_default();
    let Some(text) = attr_text(root, "model_config") else {
        return weights_only(path, data, &file, &objects);
    };
    let config: Json = serde_json::from_str(&text)
        .map_err(|e| corrupt(format!("model_config: invalid JSON: {e}")))?;
    let mut model = Model::new(path, Format::Keras);
    model.metadata.shards = 1;
    model.metadata.producer = Some("Keras".into());
    model.metadata.producer_version = attr_text(root, "keras_version");
    if let Some(b) = attr_text(root, "backend") {
        model.metadata.properties.push(("keras.backend".into(), b));
    }
    let training =
        attr_text(root, "training_config").and_then(|t| serde_json::from_str::<Json>(&t).ok());
    let datasets: HashMap<&str, &hdf5::Dataset> = objects
        .iter()
        .filter_map(|(p, o)| Some((p.as_str(), o.dataset.as_ref()?)))
        .collect();
    let mut weights = Weights::new();
    for (p, obj) in &objects {
        let Some(layer) = p
            .strip_prefix("model_weights/")
            .filter(|l| !l.contains('/'))
        else {
            continue;
        };
        let names: &[String] = obj
            .attrs
            .iter()
            .find_map(|(k, v)| match v {
                hdf5::AttrValue::Strings(s) if k == "weight_names" => Some(s.as_slice()),
                _ => None,
            })
            .unwrap_or_default();
        let mut ids = Vec::new();
        for wn in names {
            let Some(ds) = datasets.get(format!("model_weights/{layer}/{wn}").as_str()) else {
                model
                    .metadata
                    .warnings
                    .push(format!("{layer}: weight {wn} is named but not stored"));
                continue;
            };
            let name = wn.strip_suffix(":0").unwrap_or(wn).to_string();
            match dataset_tensor(data, &file, name, ds) {
                Ok(t) => ids.push(model.add_tensor(t)),
                Err(w) => model.metadata.warnings.push(w),
            }
        }
        weights.insert(layer.to_string(), ids);
    }
    let mut config = config;
    if let (Some(t), Some(obj)) = (training, config.as_object_mut()) {
        obj.insert("compile_config".into(), t);
    }
    build(&mut model, &config, weights).map_err(|e| corrupt(format!("model_config: {e}")))?;
    Ok(model)
}

struct Builder<'a> {
    model: &'a mut Model,
    weights: Weights,
    ops: OpNames,
}

/// Builds the model's graph from its config.
fn build(model: &mut Model, config: &Json, weights: Weights) -> Result<(), String> {
    let name = config
        .get("config")
        .and_then(|c| c.get("name"))
        .and_then(Json::as_str)
        .unwrap_or("model")
        .to_string();
    model.metadata.architecture = config
        .get("class_name")
        .and_then(Json::as_str)
        .map(|c| format!("{c} {name}"));
    if let Some(loss) = config
        .get("compile_config")
        .and_then(|c| c.get("loss"))
        .filter(|l| !l.is_null())
    {
        model
            .metadata
            .properties
            .push(("keras.loss".into(), compact(loss)));
    }
    let mut b = Builder {
        model,
        weights,
        ops: OpNames::default(),
    };
    let (mut graph, groups) = b.graph(config)?;
    graph.name = name;
    // Variables no layer of the config claimed (a custom model's own weights) stay listed.
    model_finish(b.model, graph, &groups);
    Ok(())
}

fn model_finish(model: &mut Model, graph: Graph, groups: &[crate::model::GroupId]) {
    // Variables were renamed by their layers' classes: index them by their final names.
    model.tensor_index.clear();
    for (i, t) in model.tensors.iter().enumerate() {
        model
            .tensor_index
            .entry(t.name.clone())
            .or_insert(i as TensorId);
    }
    model.graph = graph;
    for (node, &g) in model.graph.nodes.iter_mut().zip(groups) {
        node.group = g;
    }
    model.finish_hierarchy(groups);
}

/// A JSON value as short text.
fn compact(v: &Json) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        format!("{}…", &s[..s.floor_char_boundary(200)])
    } else {
        s
    }
}

/// The tensors an inbound node reads: `[layer, node index, tensor index]` of each, from Keras 3's
/// `{"args": [...], "kwargs": {...}}` (keras tensors anywhere inside) or Keras 2's
/// `[[layer, node, tensor, kwargs], ...]`.
fn history(v: &Json, out: &mut Vec<(String, u64, u64)>, depth: u32) {
    if depth > 32 {
        return;
    }
    match v {
        Json::Object(o) => {
            if let Some(h) = o
                .get("config")
                .and_then(|c| c.get("keras_history"))
                .and_then(Json::as_array)
            {
                if let (Some(l), Some(n), Some(t)) = (
                    h.first().and_then(Json::as_str),
                    h.get(1).and_then(Json::as_u64),
                    h.get(2).and_then(Json::as_u64),
                ) {
                    out.push((l.to_string(), n, t));
                }
                return;
            }
            for x in o.values() {
                history(x, out, depth + 1);
            }
        }
        Json::Array(a) => {
            // Keras 2: [layer, node, tensor, {kwargs}].
            if let (Some(l), Some(n), Some(t)) = (
                a.first().and_then(Json::as_str),
                a.get(1).and_then(Json::as_u64),
                a.get(2).and_then(Json::as_u64),
            ) {
                out.push((l.to_string(), n, t));
                return;
            }
            for x in a {
                history(x, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// A keras tensor: `(layer, node index, tensor index)`.
type TensorKey = (String, u64, u64);
/// Shapes and dtypes of keras tensors as recorded where they are consumed.
type Shapes = HashMap<TensorKey, (Vec<Dim>, Option<DType>)>;

/// Shapes of keras tensors as recorded where they are consumed: `(layer, node, tensor)` → shape.
fn shapes(v: &Json, out: &mut Shapes, depth: u32) {
    if depth > 32 {
        return;
    }
    match v {
        Json::Object(o) => {
            if let Some(c) = o.get("config")
                && let (Some(h), Some(s)) = (
                    c.get("keras_history").and_then(Json::as_array),
                    c.get("shape").and_then(Json::as_array),
                )
            {
                if let (Some(l), Some(n), Some(t)) = (
                    h.first().and_then(Json::as_str),
                    h.get(1).and_then(Json::as_u64),
                    h.get(2).and_then(Json::as_u64),
                ) {
                    let dims = s
                        .iter()
                        .map(|d| d.as_i64().map_or(Dim::Unknown, Dim::Fixed))
                        .collect();
                    let dtype = c
                        .get("dtype")
                        .and_then(Json::as_str)
                        .and_then(DType::from_numpy_name);
                    out.insert((l.to_string(), n, t), (dims, dtype));
                }
                return;
            }
            for x in o.values() {
                shapes(x, out, depth + 1);
            }
        }
        Json::Array(a) => {
            for x in a {
                shapes(x, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// A layer's configuration as attributes: numbers, strings and lists of them.
fn attributes(cfg: Option<&Json>) -> Vec<(String, AttrValue)> {
    let mut out = Vec::new();
    let Some(obj) = cfg.and_then(Json::as_object) else {
        return out;
    };
    for (k, v) in obj {
        if k == "name" || k == "trainable" {
            continue;
        }
        let value = match v {
            Json::Bool(b) => AttrValue::String(b.to_string()),
            Json::Number(n) => match n.as_i64() {
                Some(i) => AttrValue::Int(i),
                None => AttrValue::Float(n.as_f64().unwrap_or(f64::NAN) as f32),
            },
            Json::String(s) => AttrValue::String(s.clone()),
            Json::Array(a) if a.iter().all(Json::is_i64) => {
                AttrValue::Ints(a.iter().filter_map(Json::as_i64).collect())
            }
            Json::Array(a) if a.iter().all(|x| x.is_i64() || x.is_null()) => {
                AttrValue::String(compact(v))
            }
            // The dtype policy, initializers and regularizers: their class names.
            Json::Object(o) => match o.get("class_name").and_then(Json::as_str) {
                Some(c) if k == "dtype" => AttrValue::String(
                    o.get("config")
                        .and_then(|c| c.get("name"))
                        .and_then(Json::as_str)
                        .unwrap_or(c)
                        .to_string(),
                ),
                Some(c) => AttrValue::String(c.to_string()),
                None => continue,
            },
            _ => continue,
        };
        out.push((k.clone(), value));
    }
    out
}

fn is_model(class: &str) -> bool {
    matches!(class, "Functional" | "Sequential" | "Model")
}

/// A keras tensor's key within a model: its scope (the path of the models holding it) and
/// `(layer, node index, tensor index)`.
type Key = (String, TensorKey);

/// The values of one graph under construction, and each node's group.
struct Scratch {
    graph: Graph,
    values: HashMap<Key, ValueId>,
    groups: Vec<crate::model::GroupId>,
}

impl Scratch {
    fn value(&mut self, scope: &str, key: &TensorKey, known: &Shapes) -> ValueId {
        let full = (scope.to_string(), key.clone());
        if let Some(&v) = self.values.get(&full) {
            return v;
        }
        let (l, n, t) = key;
        let name = if (*n, *t) == (0, 0) {
            format!("{scope}{l}")
        } else {
            format!("{scope}{l}:{n}:{t}")
        };
        let k = known.get(key);
        let v = self.graph.add_value(Value {
            name,
            dtype: k.and_then(|k| k.1),
            shape: k.map(|k| k.0.clone()),
        });
        self.values.insert(full, v);
        v
    }

    fn add(&mut self, node: Node, group: crate::model::GroupId) {
        self.graph.add_node(node);
        self.groups.push(group);
    }
}

fn dims_of(shape: &[Json]) -> Vec<Dim> {
    shape
        .iter()
        .map(|d| d.as_i64().map_or(Dim::Unknown, Dim::Fixed))
        .collect()
}

impl Builder<'_> {
    /// The graph of a model config (`{"class_name", "config": {"layers", …}}`), with each node's
    /// group: a model used as a layer is laid out inline, its layers in a group named after it.
    fn graph(&mut self, config: &Json) -> Result<(Graph, Vec<crate::model::GroupId>), String> {
        let mut s = Scratch {
            graph: Graph::default(),
            values: HashMap::new(),
            groups: Vec::new(),
        };
        let outs = self.model_into(&mut s, config, "", None, 0, 0)?;
        for v in outs {
            s.graph.outputs.push(v);
            let label = s.graph.values[v as usize].name.clone();
            let mut node = Node::new(label, "Output", NodeKind::Output);
            node.inputs.push(Some(v));
            s.add(node, 0);
        }
        s.graph.connect_by_values();
        Ok((s.graph, s.groups))
    }

    /// Adds a model's layers to `s`: at the top (`inputs` = `None`) its input layers are graph
    /// inputs; nested, they stand for the values the outer call passed. Returns its outputs.
    fn model_into(
        &mut self,
        s: &mut Scratch,
        config: &Json,
        scope: &str,
        inputs: Option<&[ValueId]>,
        depth: u32,
        group: crate::model::GroupId,
    ) -> Result<Vec<ValueId>, String> {
        if depth > MAX_DEPTH {
            return Err(format!("models nested deeper than {MAX_DEPTH}"));
        }
        let class = config
            .get("class_name")
            .and_then(Json::as_str)
            .unwrap_or("");
        let inner = config.get("config").ok_or("a model with no config")?;
        let layers = inner
            .get("layers")
            .and_then(Json::as_array)
            .ok_or("a model with no layer list")?;
        let mut known = Shapes::new();
        shapes(inner, &mut known, 0);
        // The input layers, in the order the model's inputs are given.
        let mut input_order = Vec::new();
        if let Some(i) = inner.get("input_layers") {
            history(i, &mut input_order, 0);
        }
        let sequential =
            class == "Sequential" || layers.iter().all(|l| l.get("inbound_nodes").is_none());
        let mut previous: Option<TensorKey> = None;
        let mut next_input = 0usize;
        // An input of this model: a graph input at the top, else the outer value passed in.
        let mut bind_input = |s: &mut Scratch,
                              key: TensorKey,
                              lname: &str,
                              shape: Option<Vec<Dim>>,
                              dtype: Option<DType>| {
            let k = input_order
                .iter()
                .position(|(l, _, _)| l == lname)
                .unwrap_or(next_input);
            next_input += 1;
            match inputs {
                Some(outer) => {
                    if let Some(&v) = outer.get(k).or(outer.last()) {
                        s.values.insert((scope.to_string(), key), v);
                    }
                }
                None => {
                    let v = s.value(scope, &key, &known);
                    let value = &mut s.graph.values[v as usize];
                    if shape.is_some() {
                        value.shape = shape;
                    }
                    if dtype.is_some() {
                        value.dtype = dtype;
                    }
                    s.graph.inputs.push(v);
                    let mut node = Node::new(value.name.clone(), "Input", NodeKind::Input);
                    node.outputs.push(v);
                    s.add(node, group);
                }
            }
        };
        for (i, layer) in layers.iter().enumerate() {
            let lclass = layer
                .get("class_name")
                .and_then(Json::as_str)
                .unwrap_or("?");
            let lcfg = layer.get("config");
            let lname = layer
                .get("name")
                .or_else(|| lcfg.and_then(|c| c.get("name")))
                .and_then(Json::as_str)
                .map_or_else(|| format!("layer_{i}"), String::from);
            let batch_shape = lcfg
                .and_then(|c| c.get("batch_shape").or_else(|| c.get("batch_input_shape")))
                .and_then(Json::as_array)
                .map(|d| dims_of(d));
            if lclass == "InputLayer" {
                let dtype = lcfg
                    .and_then(|c| c.get("dtype"))
                    .and_then(Json::as_str)
                    .and_then(DType::from_numpy_name);
                let key = (lname.clone(), 0, 0);
                bind_input(s, key.clone(), &lname, batch_shape, dtype);
                previous = Some(key);
                continue;
            }
            // Keras 2's Sequential has no InputLayer: the first layer says its input's shape.
            if sequential && previous.is_none() && (batch_shape.is_some() || inputs.is_some()) {
                let key = ("input".to_string(), 0, 0);
                bind_input(s, key.clone(), "input", batch_shape, None);
                previous = Some(key);
            }
            // Each call of the layer: the tensors it read.
            let calls: Vec<Vec<TensorKey>> = if sequential {
                vec![previous.iter().cloned().collect()]
            } else {
                layer
                    .get("inbound_nodes")
                    .and_then(Json::as_array)
                    .map(|nodes| {
                        nodes
                            .iter()
                            .map(|n| {
                                let mut h = Vec::new();
                                history(n, &mut h, 0);
                                h
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            for (call, reads) in calls.iter().enumerate() {
                let read: Vec<ValueId> = reads.iter().map(|k| s.value(scope, k, &known)).collect();
                if is_model(lclass) && call == 0 {
                    // Inline: the nested model's layers in a group named after it; its outputs
                    // are this call's outputs. Weights stored under the nested model (a legacy
                    // .h5 lists them there) go to its layers by their names' first segment.
                    if let Some(ids) = self.weights.remove(&lname) {
                        for t in ids {
                            let Some(owner) = self
                                .model
                                .tensors
                                .get(t as usize)
                                .and_then(|w| w.name.split('/').next())
                                .map(String::from)
                            else {
                                continue;
                            };
                            self.weights.entry(owner).or_default().push(t);
                        }
                    }
                    let g = self.model.hierarchy.child(group, &lname, '/');
                    let inner_scope = format!("{scope}{lname}/");
                    let outs =
                        self.model_into(s, layer, &inner_scope, Some(&read), depth + 1, g)?;
                    for (t, v) in outs.into_iter().enumerate() {
                        s.values
                            .insert((scope.to_string(), (lname.clone(), 0, t as u64)), v);
                    }
                    self.model.metadata.module_classes.insert(
                        self.model
                            .hierarchy
                            .get(g)
                            .map_or(lname.clone(), |x| x.path.clone()),
                        lclass.to_string(),
                    );
                    previous = Some((lname.clone(), 0, 0));
                    continue;
                }
                let name = if call == 0 {
                    format!("{scope}{lname}")
                } else {
                    format!("{scope}{lname} (call {call})")
                };
                let mut node = Node::new(name, self.ops.get(lclass), NodeKind::Op);
                node.attributes = attributes(lcfg);
                node.inputs = read.into_iter().map(Some).collect();
                let out_key = (lname.clone(), call as u64, 0);
                node.outputs.push(s.value(scope, &out_key, &known));
                if call == 0
                    && let Some(ids) = self.weights.remove(&lname)
                {
                    self.own(&mut node, lclass, &lname, lcfg, &ids);
                }
                s.add(node, group);
                previous = Some(out_key);
            }
        }
        // Outputs: `output_layers` ([layer, node, tensor] or a list of them), else the last.
        let mut outs = Vec::new();
        if let Some(o) = inner.get("output_layers") {
            history(o, &mut outs, 0);
        } else if let Some(p) = previous {
            outs.push(p);
        }
        Ok(outs.iter().map(|k| s.value(scope, k, &known)).collect())
    }

    /// Gives a layer's variables to its node, named as Keras names them, conv kernels with their
    /// axes.
    fn own(
        &mut self,
        node: &mut Node,
        class: &str,
        layer: &str,
        config: Option<&Json>,
        ids: &[TensorId],
    ) {
        // Variables a layer's options leave out (`use_bias: false`, `center: false`, …).
        let off = |key: &str| {
            config
                .and_then(|c| c.get(key))
                .and_then(Json::as_bool)
                .is_some_and(|b| !b)
        };
        let names: Vec<&str> = var_names(class)
            .iter()
            .copied()
            .filter(|n| match *n {
                "bias" => !off("use_bias"),
                "beta" => !off("center"),
                "gamma" => !off("scale"),
                _ => true,
            })
            .collect();
        for (k, &t) in ids.iter().enumerate() {
            if let Some(w) = self.model.tensors.get_mut(t as usize) {
                if names.len() == ids.len()
                    && let Some(n) = names.get(k)
                {
                    w.name = format!("{layer}/{n}");
                }
                if k == 0 && w.shape.len() == 4 {
                    w.conv_axes = match class {
                        "Conv2D" | "DepthwiseConv2D" => Some(ConvAxes {
                            kh: 0,
                            kw: 1,
                            input: if class == "Conv2D" { 2 } else { 3 },
                            out: if class == "Conv2D" { 3 } else { 2 },
                        }),
                        "Conv2DTranspose" => Some(ConvAxes {
                            kh: 0,
                            kw: 1,
                            out: 2,
                            input: 3,
                        }),
                        _ => None,
                    };
                }
            }
            node.tensors.push(t);
        }
    }
}
