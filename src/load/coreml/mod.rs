//! Core ML ML programs: an `.mlpackage` (a folder: `Manifest.json`, the model's protobuf
//! `Data/com.apple.CoreML/model.mlmodel`, its weights in `…/weights/weight.bin`), or the
//! `.mlmodel` inside one, as `coremltools.convert(…, convert_to="mlprogram")` saves them.
//!
//! The program's `main` function is drawn: one node per MIL operation, typed by its op (`conv`,
//! `linear`, `layer_norm`), named by its `name` attribute or first output, its inputs bound by
//! name to the function's inputs and other operations' outputs; the block's outputs are the
//! model's. As Netron draws them, `const` operations are not nodes: a constant stored in a weight
//! file (`blobFileValue`: a 64-byte record at the offset, sentinel `0xDEADBEEF`, data type, size
//! and the data's offset, each checked against the file) or of more than 16 values is a weight,
//! its bytes a slice of the mapped file, owned by the first operation that reads it; a small
//! integer one or a scalar (strides, pads, an axis, an epsilon) is written as an attribute of each operation that reads it, under the
//! input's name. A `constexpr_affine_dequantize` (int8 weights, iOS 16) is its quantized data read
//! as `(q − zero point) × scale`, a `constexpr_blockwise_shift_scale` (iOS 18) per block, a
//! palettized `constexpr_lut_to_dense` through its palette ([`lut_weight`]), a pruned
//! `constexpr_sparse_to_dense` as its dense values ([`sparse_weight`]); the other `constexpr_*`
//! ops stand for their first constant input.
//! Nested blocks (a `cond`'s branches, a `while_loop`'s condition and body) are drawn inside their
//! operation, reading outer values by name, a loop's blocks taking its loop variables as inputs.
//! The older `neuralNetwork` model kind is read by [`nn`]. A pipeline (also a `pipelineClassifier`
//! or `pipelineRegressor`: Ultralytics' detectors with NMS, Create ML's classifiers) is one node
//! per model reading the features the models before it give, an ML program's or neuralNetwork's
//! ops as its body ([`pipeline_graph`]); the other kinds are one node of their kind, an NMS's
//! thresholds and a GLM classifier's weights on it ([`other_kind`]). Not read: functions other
//! than `main`, and the insides of the other kinds.

mod layers;
mod nn;
mod proto;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use prost::Message;

use super::LoadError;
use crate::model::{
    AttrValue, DType, Dim, Format, Graph, Model, Node, NodeKind, OpNames, Quant, Tensor,
    TensorData, TensorId, TensorOrigin, Value, ValueId,
};

/// Integer constants with at most this many values, stored inline, are attributes rather than
/// weights.
const MAX_ATTR_VALUES: usize = 16;
/// Most values expanded from an inline constant.
const MAX_INLINE: usize = 1 << 24;

/// Whether a folder is an `.mlpackage`.
pub(super) fn is_package(dir: &Path) -> bool {
    dir.join("Manifest.json").is_file()
        && (dir.extension().is_some_and(|e| e == "mlpackage") || dir.join("Data").is_dir())
}

/// Whether a file is a Core ML model (`.mlmodel`, a protobuf without a magic number).
pub(super) fn sniff(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "mlmodel")
}

/// Opens an `.mlpackage` folder: its manifest's root model.
pub(super) fn open_package(dir: &Path) -> Result<Model, LoadError> {
    let manifest = dir.join("Manifest.json");
    let text = std::fs::read(&manifest).map_err(|e| LoadError::io(&manifest, e))?;
    let json: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| LoadError::corrupt(&manifest, format!("invalid JSON: {e}")))?;
    let root = json["rootModelIdentifier"].as_str().unwrap_or("");
    let rel = json["itemInfoEntries"][root]["path"]
        .as_str()
        .unwrap_or("com.apple.CoreML/model.mlmodel");
    let rel = Path::new(rel);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(LoadError::corrupt(
            &manifest,
            format!("the root model {} lies outside the package", rel.display()),
        ));
    }
    let path = dir.join("Data").join(rel);
    if !path.is_file() {
        return Err(LoadError::corrupt(
            &manifest,
            format!("the root model {} is missing", path.display()),
        ));
    }
    load(&path, super::map_file(&path)?)
}

/// Opens a `model.mlmodel` already mapped; weight files are found beside it.
pub(super) fn load(path: &Path, data: Bytes) -> Result<Model, LoadError> {
    load_parts(path, data, None)
}

/// [`load`], every weight file read from `weights` when given (fuzzing).
pub(super) fn load_parts(
    path: &Path,
    data: Bytes,
    weights: Option<Bytes>,
) -> Result<Model, LoadError> {
    let spec = proto::Model::decode(data.clone())
        .map_err(|e| LoadError::corrupt(path, format!("not a Core ML model: {e}")))?;
    let network = spec
        .neural_network
        .as_ref()
        .or(spec.neural_network_classifier.as_ref())
        .or(spec.neural_network_regressor.as_ref());
    let mut pipeline = pipeline_of(&spec).map_err(|e| LoadError::corrupt(path, e))?;
    if spec.ml_program.is_none() && network.is_none() && pipeline.is_none() {
        // A model of another kind (a GLM or tree-ensemble classifier, a feature print): drawn as
        // a pipeline of one, its node typed by its kind; a message of no known kind is no model.
        if kind_name(&data) == "model" {
            return Err(LoadError::UnknownFormat {
                path: path.to_path_buf(),
                why: "a Core ML protobuf that sets none of its model kinds (ML programs, \
                      neuralNetworks, pipelines and the other kinds are read)"
                    .into(),
            });
        }
        pipeline = Some(proto::Pipeline {
            models: vec![data],
            names: Vec::new(),
        });
    }
    let mut model = Model::new(path, Format::CoreMl);
    model.metadata.shards = 1;
    model.metadata.producer = Some("Core ML".into());
    model.metadata.ir_version = Some(i64::from(spec.specification_version));
    if let Some(md) = spec.description.as_ref().and_then(|d| d.metadata.as_ref()) {
        for (k, v) in [
            ("description", &md.short_description),
            ("version", &md.version_string),
            ("author", &md.author),
            ("license", &md.license),
        ] {
            if !v.is_empty() {
                model.metadata.properties.push((k.into(), v.clone()));
            }
        }
        for e in &md.user_defined {
            if e.key == "com.github.apple.coremltools.version" {
                model.metadata.producer_version = Some(format!("coremltools {}", e.value));
            }
            model
                .metadata
                .properties
                .push((e.key.clone(), e.value.clone()));
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut blobs = Blobs {
        dir: dir.to_path_buf(),
        files: HashMap::new(),
        fixed: weights,
    };
    match (&spec.ml_program, network, pipeline) {
        (Some(program), _, _) => build(&mut model, path, program, &mut blobs)?,
        (None, Some(network), _) => nn::build(&mut model, path, network, spec.description.as_ref())
            .map_err(|e| LoadError::corrupt(path, e))?,
        (None, None, Some(p)) => {
            let mut graph = pipeline_graph(
                &mut model,
                path,
                &mut blobs,
                &p,
                spec.description.as_ref(),
                0,
            )?;
            graph.connect_by_values();
            graph.inline_bodies(false);
            // Each model's box (and what is nested in it) below the pipeline's.
            model.hierarchy = crate::model::Hierarchy::new();
            model.graph = graph;
            let mut groups = Vec::new();
            model.box_subgraphs(&mut groups);
            for (node, &g) in model.graph.nodes.iter_mut().zip(&groups) {
                node.group = g;
            }
            model.finish_hierarchy(&groups);
        }
        (None, None, None) => {}
    }
    Ok(model)
}

/// Pipelines nested in pipelines deeper than this are an error.
const MAX_PIPELINE_DEPTH: usize = 8;

/// The pipeline a model is (`pipeline`, or the one a `pipelineClassifier` / `pipelineRegressor`
/// wraps), if it is one.
fn pipeline_of(spec: &proto::Model) -> Result<Option<proto::Pipeline>, String> {
    if let Some(b) = &spec.pipeline {
        return proto::Pipeline::decode(b.clone())
            .map(Some)
            .map_err(|e| format!("not a valid pipeline: {e}"));
    }
    match spec
        .pipeline_classifier
        .as_ref()
        .or(spec.pipeline_regressor.as_ref())
    {
        Some(b) => proto::PipelineWrapper::decode(b.clone())
            .map(|w| Some(w.pipeline.unwrap_or_default()))
            .map_err(|e| format!("not a valid pipeline: {e}")),
        None => Ok(None),
    }
}

/// The kind of Core ML model an encoded `Model` is, by the field it sets.
fn kind_name(model: &Bytes) -> &'static str {
    let Ok(fields) = nn::field_numbers(model) else {
        return "model";
    };
    fields
        .into_iter()
        .find_map(|n| {
            Some(match n {
                200 => "pipelineClassifier",
                201 => "pipelineRegressor",
                202 => "pipeline",
                300 => "glmRegressor",
                301 => "supportVectorRegressor",
                302 => "treeEnsembleRegressor",
                303 => "neuralNetworkRegressor",
                304 => "bayesianProbitRegressor",
                400 => "glmClassifier",
                401 => "supportVectorClassifier",
                402 => "treeEnsembleClassifier",
                403 => "neuralNetworkClassifier",
                404 => "kNearestNeighborsClassifier",
                500 => "neuralNetwork",
                501 => "itemSimilarityRecommender",
                502 => "mlProgram",
                555 => "customModel",
                556 => "linkedModel",
                560 => "classConfidenceThresholding",
                600 => "oneHotEncoder",
                601 => "imputer",
                602 => "featureVectorizer",
                603 => "dictVectorizer",
                604 => "scaler",
                606 => "categoricalMapping",
                607 => "normalizer",
                609 => "arrayFeatureExtractor",
                610 => "nonMaximumSuppression",
                900 => "identity",
                2000 => "textClassifier",
                2001 => "wordTagger",
                2002 => "visionFeaturePrint",
                2003 => "soundAnalysisPreprocessing",
                2004 => "gazetteer",
                2005 => "wordEmbedding",
                2006 => "audioFeaturePrint",
                3000 => "serializedModel",
                _ => return None,
            })
        })
        .unwrap_or("model")
}

/// What a model of a kind without ops says, on its node: a `nonMaximumSuppression`'s thresholds
/// and classes; a `glmClassifier`'s classes and its weights and offsets, as tensors the node owns
/// (a heatmap of classes × features).
fn other_kind(model: &mut Model, sub: &proto::Model, node: &mut Node) {
    let labels = |s: &Option<proto::StringVector>, i: &Option<proto::Int64Vector>| match (s, i) {
        (Some(s), _) if !s.vector.is_empty() => Some(AttrValue::Strings(s.vector.clone())),
        (_, Some(i)) if !i.vector.is_empty() => Some(AttrValue::Ints(i.vector.clone())),
        _ => None,
    };
    if let Some(nms) = &sub.non_maximum_suppression {
        let a = &mut node.attributes;
        a.push((
            "iouThreshold".into(),
            AttrValue::Float(nms.iou_threshold as f32),
        ));
        a.push((
            "confidenceThreshold".into(),
            AttrValue::Float(nms.confidence_threshold as f32),
        ));
        if let Some(p) = &nms.pick_top {
            a.push((
                "pickTop.perClass".into(),
                AttrValue::Other(p.per_class.to_string()),
            ));
        }
        if let Some(l) = labels(&nms.string_class_labels, &nms.int64_class_labels) {
            a.push(("classLabels".into(), l));
        }
    }
    if let Some(glm) = &sub.glm_classifier {
        let a = &mut node.attributes;
        let transform = if glm.post_evaluation_transform == 1 {
            "probit"
        } else {
            "logit"
        };
        a.push((
            "postEvaluationTransform".into(),
            AttrValue::String(transform.into()),
        ));
        let encoding = if glm.class_encoding == 1 {
            "one versus rest"
        } else {
            "reference class"
        };
        a.push(("classEncoding".into(), AttrValue::String(encoding.into())));
        if let Some(l) = labels(&glm.string_class_labels, &glm.int64_class_labels) {
            a.push(("classLabels".into(), l));
        }
        let f64s = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let rows = glm.weights.len() as u64;
        let cols = glm.weights.first().map_or(0, |r| r.value.len()) as u64;
        if rows > 0 && glm.weights.iter().all(|r| r.value.len() as u64 == cols) {
            let bytes: Vec<u8> = glm.weights.iter().flat_map(|r| f64s(&r.value)).collect();
            let name = format!("{}.weights", node.name);
            let t = Tensor::from_bytes(&name, DType::F64, &[rows, cols], bytes);
            node.tensors.push(model.add_tensor(t));
        }
        if !glm.offset.is_empty() {
            let name = format!("{}.offset", node.name);
            let t = Tensor::from_bytes(
                &name,
                DType::F64,
                &[glm.offset.len() as u64],
                f64s(&glm.offset),
            );
            node.tensors.push(model.add_tensor(t));
        }
    }
}

/// A pipeline as a graph: its inputs, one node per model (named by the pipeline's names, typed
/// by the model's kind) reading and giving features by name, and its outputs. An ML program, a
/// neuralNetwork or a nested pipeline is the body of its node; other kinds (Ultralytics'
/// `nonMaximumSuppression`, Create ML's `visionFeaturePrint`) are drawn as the node alone.
fn pipeline_graph(
    model: &mut Model,
    path: &Path,
    blobs: &mut Blobs,
    pipeline: &proto::Pipeline,
    description: Option<&proto::ModelDescription>,
    depth: usize,
) -> Result<Graph, LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    if depth > MAX_PIPELINE_DEPTH {
        return Err(corrupt(format!(
            "pipelines nested deeper than {MAX_PIPELINE_DEPTH}"
        )));
    }
    let mut graph = Graph::default();
    let mut ops = OpNames::default();
    let mut values: HashMap<String, ValueId> = HashMap::new();
    let value_of = |values: &mut HashMap<String, ValueId>, graph: &mut Graph, name: &str| {
        *values.entry(name.to_string()).or_insert_with(|| {
            graph.add_value(Value {
                name: name.to_string(),
                ..Value::default()
            })
        })
    };
    for input in description.map(|d| d.input.as_slice()).unwrap_or_default() {
        let v = value_of(&mut values, &mut graph, &input.name);
        add_input(&mut graph, &mut ops, &input.name, v);
    }
    for (k, bytes) in pipeline.models.iter().enumerate() {
        let sub = proto::Model::decode(bytes.clone())
            .map_err(|e| corrupt(format!("model {k} of the pipeline: {e}")))?;
        let kind = kind_name(bytes);
        let name = pipeline
            .names
            .get(k)
            .filter(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("{kind} {k}"));
        let mut node = Node::new(name, ops.get(kind), NodeKind::Op);
        let desc = sub.description.as_ref();
        let ins: Vec<&str> = desc
            .map(|d| d.input.iter().map(|f| f.name.as_str()).collect())
            .unwrap_or_default();
        for i in &ins {
            node.inputs.push(Some(value_of(&mut values, &mut graph, i)));
        }
        // Built on its own, then taken as this node's body.
        let network = sub
            .neural_network
            .as_ref()
            .or(sub.neural_network_classifier.as_ref())
            .or(sub.neural_network_regressor.as_ref());
        let nested = pipeline_of(&sub).map_err(|e| corrupt(format!("model {k}: {e}")))?;
        let body = match (&sub.ml_program, network, nested) {
            (Some(program), _, _) => {
                build(model, path, program, blobs)?;
                Some(std::mem::take(&mut model.graph))
            }
            (None, Some(network), _) => {
                nn::build(model, path, network, desc).map_err(&corrupt)?;
                Some(std::mem::take(&mut model.graph))
            }
            (None, None, Some(p)) => {
                let mut g = pipeline_graph(model, path, blobs, &p, desc, depth + 1)?;
                g.connect_by_values();
                Some(g)
            }
            (None, None, None) => {
                other_kind(model, &sub, &mut node);
                None
            }
        };
        let outs: Vec<String> = desc
            .map(|d| d.output.iter().map(|f| f.name.clone()).collect())
            .unwrap_or_default();
        for o in &outs {
            // A later model reads this one's output by name.
            values.remove(o.as_str());
            let v = value_of(&mut values, &mut graph, o);
            node.outputs.push(v);
        }
        let id = graph.nodes.len() as u32;
        if let Some(body) = body {
            // Each of the body's inputs is fed by the feature of its name.
            let fed_by = body
                .inputs
                .iter()
                .map(|&v| {
                    let n = body.values.get(v as usize).map_or("", |x| x.name.as_str());
                    ins.iter().position(|i| *i == n)
                })
                .collect();
            let index = graph.bodies.len();
            node.attributes
                .push(("model".into(), AttrValue::Graph(index)));
            graph.bodies.push(crate::model::Body {
                owner: id,
                attribute: "model".into(),
                graph: body,
                fed_by,
            });
        }
        graph.add_node(node);
    }
    for out in description.map(|d| d.output.as_slice()).unwrap_or_default() {
        let v = value_of(&mut values, &mut graph, &out.name);
        add_output(&mut graph, &mut ops, &out.name, v);
    }
    Ok(graph)
}

/// The weight files a program names, each mapped once.
struct Blobs {
    dir: PathBuf,
    files: HashMap<String, Result<Bytes, String>>,
    /// The bytes of every weight file, when given rather than found.
    fixed: Option<Bytes>,
}

impl Blobs {
    fn file(&mut self, name: &str) -> Result<Bytes, String> {
        if let Some(f) = &self.fixed {
            return Ok(f.clone());
        }
        if let Some(f) = self.files.get(name) {
            return f.clone();
        }
        let rel = name.strip_prefix("@model_path/").unwrap_or(name);
        let relp = Path::new(rel);
        let f =
            if relp.is_absolute() || relp.components().any(|c| matches!(c, Component::ParentDir)) {
                Err(format!("weight file {name:?} lies outside the package"))
            } else {
                let p = self.dir.join(relp);
                super::map_file(&p).map_err(|e| format!("weight file {}: {e}", p.display()))
            };
        self.files.insert(name.to_string(), f.clone());
        f
    }
}

/// A MIL data type.
fn mil_dtype(t: i32) -> (DType, u64) {
    let d = match t {
        1 => DType::Bool,
        10 => DType::F16,
        11 => DType::F32,
        12 => DType::F64,
        13 => DType::BF16,
        21 => DType::I8,
        22 => DType::I16,
        23 => DType::I32,
        24 => DType::I64,
        25 => return (DType::I4, 4),
        31 => DType::U8,
        32 => DType::U16,
        33 => DType::U32,
        34 => DType::U64,
        35 => return (DType::U4, 4),
        // Packed low bits first, as coremltools' `pack_elements_into_bits` writes them.
        36 => return (DType::UBits(2), 2),
        37 => return (DType::UBits(1), 1),
        38 => return (DType::UBits(6), 6),
        39 => return (DType::UBits(3), 3),
        40 => DType::F8E4M3FN,
        41 => DType::F8E5M2,
        _ => return (DType::Unknown("MIL?"), 0),
    };
    (d, d.size_bytes().unwrap_or(0) * 8)
}

/// A weight file record's data type, as the MIL type it stores.
fn blob_dtype(t: u32) -> Option<i32> {
    Some(match t {
        1 => 10,
        2 => 11,
        3 => 31,
        4 => 21,
        5 => 13,
        6 => 22,
        7 => 32,
        8 => 25,
        9 => 37,
        10 => 36,
        11 => 35,
        12 => 39,
        13 => 38,
        14 => 23,
        15 => 33,
        16 => 40,
        17 => 41,
        _ => return None,
    })
}

/// Data type and shape of a value type (unknown dimensions as `Dim::Unknown`).
fn value_type(t: Option<&proto::ValueType>) -> (Option<i32>, Option<Vec<Dim>>) {
    let Some(tt) = t.and_then(|t| t.tensor_type.as_ref()) else {
        return (None, None);
    };
    let dims = tt
        .dimensions
        .iter()
        .map(|d| match &d.constant {
            Some(c) => Dim::Fixed(i64::try_from(c.size).unwrap_or(i64::MAX)),
            None => Dim::Unknown,
        })
        .collect();
    (Some(tt.data_type), Some(dims))
}

/// What a constant's name stands for.
#[derive(Clone)]
enum Const {
    Weight(TensorId),
    Attr(AttrValue),
}

/// A `const` operation's value before it joins the model.
enum ConstValue {
    Tensor(Tensor),
    Attr(AttrValue),
}

/// A `const` operation's value: a weight, or a small inline value as an attribute.
fn const_value(
    name: &str,
    out: Option<&proto::NamedValueType>,
    val: &proto::Value,
    blobs: &mut Blobs,
    path: &Path,
) -> ConstValue {
    let (code, dims) = value_type(out.and_then(|o| o.r#type.as_ref()).or(val.r#type.as_ref()));
    let shape: Vec<u64> = dims
        .unwrap_or_default()
        .iter()
        .map(|d| match d {
            Dim::Fixed(v) => u64::try_from(*v).unwrap_or(0),
            _ => 0,
        })
        .collect();
    let (dtype, bits) = mil_dtype(code.unwrap_or(0));
    let mut t = Tensor {
        name: name.to_string(),
        dtype,
        shape,
        data: TensorData::Missing,
        origin: TensorOrigin::Initializer,
        conv_axes: None,
        quant: None,
    };
    let err = |why: String| TensorData::Error(format!("{}: {name}: {why}", path.display()));
    if let Some(b) = &val.blob_file_value {
        t.data = match blobs.file(&b.file_name) {
            Ok(file) => match blob(&file, b.offset, code, &t.shape, bits) {
                Ok(bytes) => TensorData::Bytes(bytes),
                Err(why) => err(format!("{}: {why}", b.file_name)),
            },
            Err(why) => err(why),
        };
        return ConstValue::Tensor(t);
    }
    let Some(tv) = val.immediate_value.as_ref().and_then(|v| v.tensor.as_ref()) else {
        return ConstValue::Attr(AttrValue::Other("a non-tensor constant".into()));
    };
    let n = t.elements();
    // Parameters (strides, pads, an axis, an epsilon) are attributes; a float tensor (a bias) is
    // a weight however small.
    let parameter = !dtype.is_float() || t.shape.is_empty();
    if parameter && let Some(attr) = small_attr(tv, n) {
        return ConstValue::Attr(attr);
    }
    t.data = match inline_bytes(tv, dtype) {
        Some(b) if Some(b.len() as u64) == t.dtype.bytes_for(n) => TensorData::Bytes(b),
        Some(b) => err(format!(
            "{} bytes inline, its shape and type need {:?}",
            b.len(),
            t.dtype.bytes_for(n)
        )),
        None => err("its inline values are not read".into()),
    };
    ConstValue::Tensor(t)
}

/// A small inline constant as an attribute value (at most [`MAX_ATTR_VALUES`] values).
fn small_attr(tv: &proto::TensorValue, n: u64) -> Option<AttrValue> {
    if n > MAX_ATTR_VALUES as u64 {
        return None;
    }
    let one = n == 1;
    if let Some(v) = &tv.ints {
        let v: Vec<i64> = v.values.iter().map(|&x| i64::from(x)).collect();
        return Some(if one && v.len() == 1 {
            AttrValue::Int(v[0])
        } else {
            AttrValue::Ints(v)
        });
    }
    if let Some(v) = &tv.long_ints {
        return Some(if one && v.values.len() == 1 {
            AttrValue::Int(v.values[0])
        } else {
            AttrValue::Ints(v.values.clone())
        });
    }
    if let Some(v) = &tv.floats {
        return Some(if one && v.values.len() == 1 {
            AttrValue::Float(v.values[0])
        } else {
            AttrValue::Floats(v.values.clone())
        });
    }
    if let Some(v) = &tv.doubles {
        let f: Vec<f32> = v.values.iter().map(|&x| x as f32).collect();
        return Some(if one && f.len() == 1 {
            AttrValue::Float(f[0])
        } else {
            AttrValue::Floats(f)
        });
    }
    if let Some(v) = &tv.bools {
        let v: Vec<String> = v
            .values
            .iter()
            .map(|&b| if b { "true" } else { "false" }.to_string())
            .collect();
        return Some(if one && v.len() == 1 {
            AttrValue::String(v[0].clone())
        } else {
            AttrValue::Strings(v)
        });
    }
    if let Some(v) = &tv.strings {
        return Some(if v.values.len() == 1 {
            AttrValue::String(v.values[0].clone())
        } else {
            AttrValue::Strings(v.values.clone())
        });
    }
    None
}

/// An inline constant's values as little-endian bytes of `dtype`.
fn inline_bytes(tv: &proto::TensorValue, dtype: DType) -> Option<Bytes> {
    if let Some(b) = &tv.bytes {
        return Some(b.values.clone());
    }
    let mut out = Vec::new();
    if let Some(v) = &tv.floats {
        if v.values.len() > MAX_INLINE {
            return None;
        }
        match dtype {
            DType::F16 => v
                .values
                .iter()
                .for_each(|&x| out.extend(half::f16::from_f32(x).to_le_bytes())),
            _ => v.values.iter().for_each(|&x| out.extend(x.to_le_bytes())),
        }
    } else if let Some(v) = &tv.ints {
        if v.values.len() > MAX_INLINE {
            return None;
        }
        let width = dtype.size_bytes().unwrap_or(4).min(4) as usize;
        v.values
            .iter()
            .for_each(|&x| out.extend_from_slice(&x.to_le_bytes()[..width]));
    } else if let Some(v) = &tv.long_ints {
        v.values.iter().for_each(|&x| out.extend(x.to_le_bytes()));
    } else if let Some(v) = &tv.doubles {
        v.values.iter().for_each(|&x| out.extend(x.to_le_bytes()));
    } else if let Some(v) = &tv.bools {
        v.values.iter().for_each(|&x| out.push(u8::from(x)));
    } else {
        return None;
    }
    Some(Bytes::from(out))
}

/// The data of the weight-file record at `offset`, checked against the file and the value's type.
fn blob(
    file: &Bytes,
    offset: u64,
    code: Option<i32>,
    shape: &[u64],
    bits: u64,
) -> Result<Bytes, String> {
    let at = usize::try_from(offset).map_err(|_| "offset overflows".to_string())?;
    let rec = file
        .get(at..at.saturating_add(24))
        .filter(|r| r.len() == 24)
        .ok_or_else(|| {
            format!(
                "no record at offset {offset} (the file has {} bytes)",
                file.len()
            )
        })?;
    let u32_at = |i: usize| u32::from_le_bytes([rec[i], rec[i + 1], rec[i + 2], rec[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&rec[i..i + 8]);
        u64::from_le_bytes(b)
    };
    if u32_at(0) != 0xDEAD_BEEF {
        return Err(format!(
            "no record at offset {offset} (sentinel {:#x})",
            u32_at(0)
        ));
    }
    let stored = blob_dtype(u32_at(4));
    if stored.is_none() || (code.is_some() && stored != code) {
        return Err(format!(
            "the record's data type {} is not the value's ({code:?})",
            u32_at(4)
        ));
    }
    let (size, data) = (u64_at(8), u64_at(16));
    let end = data
        .checked_add(size)
        .filter(|&e| e <= file.len() as u64)
        .ok_or_else(|| {
            format!(
                "data {data}..+{size} lies beyond the file ({} bytes)",
                file.len()
            )
        })?;
    let need = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .and_then(|n| n.checked_mul(bits))
        .map(|b| b.div_ceil(8));
    if bits == 0 || need != Some(size) {
        return Err(format!(
            "{size} bytes stored, its shape and type need {need:?}"
        ));
    }
    Ok(file.slice(data as usize..end as usize))
}

fn build(
    model: &mut Model,
    path: &Path,
    program: &proto::Program,
    blobs: &mut Blobs,
) -> Result<(), LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    let entry = program
        .functions
        .iter()
        .find(|f| f.key == "main")
        .or(program.functions.first())
        .ok_or_else(|| corrupt("an ML program with no function".into()))?;
    if program.functions.len() > 1 {
        model.metadata.warnings.push(format!(
            "{}: {} functions; only {:?} is drawn",
            path.display(),
            program.functions.len(),
            entry.key
        ));
    }
    let func = entry
        .value
        .as_ref()
        .ok_or_else(|| corrupt(format!("function {:?} is empty", entry.key)))?;
    model
        .metadata
        .opsets
        .push((func.opset.clone(), program.version));
    let block = func
        .block_specializations
        .iter()
        .find(|b| b.key == func.opset)
        .or(func.block_specializations.first())
        .and_then(|b| b.value.as_ref())
        .ok_or_else(|| corrupt(format!("function {:?} has no block", entry.key)))?;

    let mut consts: HashMap<&str, Const> = HashMap::new();
    let mut cx = BlockCx {
        model,
        path,
        blobs,
        companions: HashMap::new(),
        ops: OpNames::default(),
        too_deep: 0,
    };
    let mut graph = cx.block(block, &func.inputs, &mut consts, 0);
    if cx.too_deep > 0 {
        let too_deep = cx.too_deep;
        model.metadata.warnings.push(format!(
            "{}: {too_deep} block(s) nested deeper than {MAX_BLOCK_DEPTH} are not drawn",
            path.display()
        ));
    }
    // A nested block (a `cond`'s branches, a `while_loop`'s cond and body) reads outer values by
    // name; a loop's body takes its loop variables as inputs.
    graph.connect_by_values();
    graph.inline_bodies(true);
    let mut groups = Vec::new();
    model.graph = graph;
    model.box_subgraphs(&mut groups);
    for (node, &g) in model.graph.nodes.iter_mut().zip(&groups) {
        node.group = g;
    }
    model.finish_hierarchy(&groups);
    Ok(())
}

/// Blocks nested in blocks deeper than this are not drawn (a warning counts them).
const MAX_BLOCK_DEPTH: usize = 16;

/// What building an ML program's blocks shares.
struct BlockCx<'m> {
    model: &'m mut Model,
    path: &'m Path,
    blobs: &'m mut Blobs,
    companions: HashMap<TensorId, TensorId>,
    ops: OpNames,
    /// Blocks not drawn for their depth.
    too_deep: usize,
}

impl BlockCx<'_> {
    /// The graph of a block, its `inputs` input nodes, its nested blocks bodies of the ops that
    /// hold them. `consts`: the constants seen so far (a nested block reads its outer blocks').
    fn block<'p>(
        &mut self,
        block: &'p proto::Block,
        inputs: &'p [proto::NamedValueType],
        consts: &mut HashMap<&'p str, Const>,
        depth: usize,
    ) -> Graph {
        let path = self.path;
        let mut graph = Graph::default();
        let mut values: HashMap<&str, ValueId> = HashMap::new();
        let mut weights = super::WeightReaders::default();
        let new_value = |graph: &mut Graph, nv: &proto::NamedValueType| {
            let (code, shape) = value_type(nv.r#type.as_ref());
            graph.add_value(Value {
                name: nv.name.clone(),
                dtype: code.map(|c| mil_dtype(c).0),
                shape,
            })
        };
        for input in inputs {
            let v = new_value(&mut graph, input);
            values.insert(&input.name, v);
            add_input(&mut graph, &mut self.ops, &input.name, v);
        }
        for op in &block.operations {
            let attr = |k: &str| {
                op.attributes
                    .iter()
                    .find(|a| a.key == k)
                    .and_then(|a| a.value.as_ref())
            };
            if op.r#type == "const" {
                let (Some(out), Some(val)) = (op.outputs.first(), attr("val")) else {
                    continue;
                };
                let c = match const_value(&out.name, Some(out), val, self.blobs, path) {
                    ConstValue::Tensor(t) => Const::Weight(self.model.add_tensor(t)),
                    ConstValue::Attr(a) => Const::Attr(a),
                };
                consts.insert(&out.name, c);
                continue;
            }
            if op.r#type.starts_with("constexpr_")
                && let Some(out) = op.outputs.first()
                && let Some(w) = constexpr_weight(
                    self.model,
                    op,
                    consts,
                    self.blobs,
                    path,
                    &mut self.companions,
                )
            {
                consts.insert(&out.name, Const::Weight(w));
                continue;
            }
            let name = attr("name")
                .and_then(|v| {
                    v.immediate_value
                        .as_ref()?
                        .tensor
                        .as_ref()?
                        .strings
                        .as_ref()
                })
                .and_then(|s| s.values.first().cloned())
                .or_else(|| op.outputs.first().map(|o| o.name.clone()))
                .unwrap_or_else(|| op.r#type.clone());
            let mut node = Node::new(name, self.ops.get(&op.r#type), NodeKind::Op);
            for arg in &op.inputs {
                let Some(a) = &arg.value else { continue };
                for b in &a.arguments {
                    match (&b.name, &b.value) {
                        (Some(n), _) => match consts.get(n.as_str()) {
                            Some(Const::Weight(t)) => {
                                weights.read(&mut graph, &self.model.tensors, &mut node, *t);
                                if let Some(&c) = self.companions.get(t) {
                                    weights.read(&mut graph, &self.model.tensors, &mut node, c);
                                }
                            }
                            Some(Const::Attr(a)) => {
                                node.attributes.push((arg.key.clone(), a.clone()))
                            }
                            None => {
                                let v = match values.get(n.as_str()) {
                                    Some(&v) => v,
                                    None => graph.add_value(Value {
                                        name: n.clone(),
                                        ..Value::default()
                                    }),
                                };
                                node.inputs.push(Some(v));
                            }
                        },
                        (None, Some(val)) => {
                            let a = val
                                .immediate_value
                                .as_ref()
                                .and_then(|i| i.tensor.as_ref())
                                .and_then(|t| small_attr(t, 1))
                                .unwrap_or(AttrValue::Other("a value".into()));
                            node.attributes.push((arg.key.clone(), a));
                        }
                        (None, None) => {}
                    }
                }
            }
            for out in &op.outputs {
                let v = new_value(&mut graph, out);
                values.insert(&out.name, v);
                node.outputs.push(v);
            }
            // `cond`: the branches taken when the predicate holds and when not; `while_loop`: the
            // condition and the body, both taking the loop variables.
            let id = graph.nodes.len() as u32;
            for (j, b) in op.blocks.iter().enumerate() {
                if depth + 1 > MAX_BLOCK_DEPTH {
                    self.too_deep += 1;
                    continue;
                }
                let label = match (op.r#type.as_str(), j) {
                    ("cond", 0) => "then".to_string(),
                    ("cond", 1) => "else".to_string(),
                    ("while_loop", 0) => "cond".to_string(),
                    ("while_loop", 1) => "body".to_string(),
                    _ => format!("block {j}"),
                };
                let mut inner = self.block(b, &b.inputs, consts, depth + 1);
                inner.connect_by_values();
                let index = graph.bodies.len();
                node.attributes
                    .push((label.clone(), AttrValue::Graph(index)));
                graph.bodies.push(crate::model::Body {
                    owner: id,
                    attribute: label,
                    graph: inner,
                    fed_by: Vec::new(),
                });
            }
            graph.add_node(node);
        }
        for out in &block.outputs {
            if let Some(&v) = values.get(out.as_str()) {
                add_output(&mut graph, &mut self.ops, out, v);
            }
        }
        graph
    }
}

/// A model input `v` named `name`, as a node.
fn add_input(graph: &mut Graph, ops: &mut OpNames, name: &str, v: ValueId) {
    graph.inputs.push(v);
    let mut node = Node::new(name.to_string(), ops.get("Input"), NodeKind::Input);
    node.outputs.push(v);
    graph.add_node(node);
}

/// A model output `v` named `name`, as a node.
fn add_output(graph: &mut Graph, ops: &mut OpNames, name: &str, v: ValueId) {
    graph.outputs.push(v);
    let mut node = Node::new(name.to_string(), ops.get("Output"), NodeKind::Output);
    node.inputs.push(Some(v));
    graph.add_node(node);
}

/// Connects `graph` by its values and gives it to `model`, every node at the top level (Core ML
/// names carry no module path).
fn finish_flat(model: &mut Model, mut graph: Graph) {
    graph.connect_by_values();
    let groups = vec![0; graph.nodes.len()];
    model.graph = graph;
    model.finish_hierarchy(&groups);
}

/// An operand of a `constexpr_*` operation: an attribute (iOS 16) or an input bound to a value in
/// place (iOS 18).
fn operand<'a>(op: &'a proto::Operation, k: &str) -> Option<&'a proto::Value> {
    op.attributes
        .iter()
        .find(|a| a.key == k)
        .and_then(|a| a.value.as_ref())
        .or_else(|| {
            op.inputs
                .iter()
                .find(|a| a.key == k)?
                .value
                .as_ref()?
                .arguments
                .first()?
                .value
                .as_ref()
        })
}

/// The weight a palettized `constexpr_lut_to_dense` stands for: its indices read through its
/// palette (`lut`). iOS 16's hold one palette of `2^n` values and the indices packed `n` bits
/// each, low bits first, into `uint8`s, with the weight's shape beside them; iOS 18's hold the
/// indices as a `uint1`..`uint8` tensor of the weight's shape and a palette per block,
/// `[blocks along each dimension…, 2^n, 1]`, in place or as another constexpr's output (a
/// palette with per-channel scales: that tensor then goes into `companions`). Vector palettes
/// (a last dimension above 1) and blocks along a third dimension are not read: the indices are
/// shown as they are stored.
fn lut_weight(
    model: &mut Model,
    op: &proto::Operation,
    consts: &HashMap<&str, Const>,
    blobs: &mut Blobs,
    path: &Path,
    companions: &mut HashMap<TensorId, TensorId>,
) -> Option<TensorId> {
    let out = op.outputs.first()?;
    let mut value = |k: &str| operand(op, k).map(|v| const_value(&out.name, None, v, blobs, path));
    let ConstValue::Tensor(mut q) = value("indices")? else {
        return None;
    };
    let dense_shape = value("shape").and_then(shape_of);
    let named = op
        .inputs
        .iter()
        .find(|a| a.key == "lut")
        .and_then(|a| a.value.as_ref()?.arguments.first()?.name.as_deref())
        .and_then(|n| match consts.get(n) {
            Some(Const::Weight(t)) => Some(*t),
            _ => None,
        });
    let lut = match (value("lut"), named) {
        (Some(ConstValue::Tensor(t)), _) => {
            let v = t.small_numbers();
            v.map(|v| (v, t.shape))
        }
        (_, Some(id)) => {
            let t = model.tensors.get(id as usize)?;
            let mut v = t.small_numbers();
            if let (Some(v), Some(quant)) = (v.as_mut(), &t.quant) {
                quant.apply(0, v);
            }
            v.map(|v| (v, t.shape.clone()))
        }
        _ => None,
    };
    if let Some((lut, lut_shape)) = lut
        && let Some((dtype, shape, quant)) = palette(&q, lut, &lut_shape, dense_shape)
    {
        q.dtype = dtype;
        q.shape = shape;
        q.quant = Some(quant);
    }
    let id = model.add_tensor(q);
    if let Some(lut) = named {
        companions.insert(id, lut);
    }
    Some(id)
}

/// The dense shape an iOS 16 `constexpr_*` holds beside its packed data: `uint32` values, as
/// an integer list or inline bytes.
fn shape_of(v: ConstValue) -> Option<Vec<u64>> {
    match v {
        ConstValue::Attr(AttrValue::Ints(v)) => v.iter().map(|&d| u64::try_from(d).ok()).collect(),
        // A one-dimensional weight's shape is a single integer.
        ConstValue::Attr(AttrValue::Int(d)) => Some(vec![u64::try_from(d).ok()?]),
        ConstValue::Tensor(t) => t
            .small_numbers()?
            .iter()
            .map(|&d| (d >= 0.0 && d.fract() == 0.0).then_some(d as u64))
            .collect(),
        _ => None,
    }
}

/// Largest pruned weight expanded to its dense values, bytes.
const MAX_DENSE: u64 = 256 << 20;

/// The weight a pruned `constexpr_sparse_to_dense` stands for (coremltools' `prune_weights`): its
/// `nonzero_data` put where `mask` has a one bit, zeros elsewhere. iOS 16's mask is bits packed
/// low first into `uint8`s with the weight's `shape` beside it; iOS 18's a `uint1` tensor of the
/// weight's shape. The non-zeros are in the file in no order a slice could read, so the dense
/// values are built once, up to [`MAX_DENSE`] bytes; `None` (the non-zeros shown as stored) for a
/// larger weight, non-zeros that are another constexpr's output, or a mask that does not count
/// them.
fn sparse_weight(
    model: &mut Model,
    op: &proto::Operation,
    blobs: &mut Blobs,
    path: &Path,
) -> Option<TensorId> {
    let out = op.outputs.first()?;
    let mut value = |k: &str| operand(op, k).map(|v| const_value(&out.name, None, v, blobs, path));
    let ConstValue::Tensor(nz) = value("nonzero_data")? else {
        return None;
    };
    let ConstValue::Tensor(mask) = value("mask")? else {
        return None;
    };
    let shape = match value("shape") {
        Some(v) => shape_of(v)?,
        None => mask.shape.clone(),
    };
    let n = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
    let width = nz.dtype.size_bytes()?;
    if n.checked_mul(width)? > MAX_DENSE {
        return None;
    }
    let (bits, values) = (mask.bytes()?, nz.bytes()?);
    let set = |i: u64| {
        let b = bits.get(usize::try_from(i / 8).ok()?)?;
        Some((b >> (i % 8)) & 1 == 1)
    };
    let w = usize::try_from(width).ok()?;
    let mut dense = vec![0u8; usize::try_from(n).ok()? * w];
    let mut next = values.chunks_exact(w);
    for (i, slot) in (0..n).zip(dense.chunks_exact_mut(w)) {
        if set(i)? {
            slot.copy_from_slice(next.next()?);
        }
    }
    if next.next().is_some() {
        return None;
    }
    let t = Tensor {
        shape,
        data: TensorData::Bytes(Bytes::from(dense)),
        ..nz
    };
    Some(model.add_tensor(t))
}

/// The element type, shape and quantization of palette indices `q` read through `lut` (of
/// `lut_shape`); `dense_shape`: the weight's shape when the indices are packed bytes (iOS 16).
fn palette(
    q: &Tensor,
    lut: Vec<f64>,
    lut_shape: &[u64],
    dense_shape: Option<Vec<u64>>,
) -> Option<(DType, Vec<u64>, Quant)> {
    use crate::model::{GroupOffset, ScaleBiasGroups};
    let bits_of = |k: u64| (1..=8u8).find(|&b| 1u64 << b == k);
    let (dtype, shape, k, blocks) = match dense_shape {
        // iOS 16: one palette, the indices packed into bytes.
        Some(shape) => {
            let k = *lut_shape.first()?;
            if lut_shape.len() != 1 || q.dtype != DType::U8 {
                return None;
            }
            let dtype = match bits_of(k)? {
                8 => DType::U8,
                4 => DType::U4,
                b => DType::UBits(b),
            };
            let blocks = vec![1; shape.len()];
            (dtype, shape, k, blocks)
        }
        None => {
            let r = q.shape.len();
            let (&[k, v], blocks) = (lut_shape.get(r..)?, lut_shape.get(..r)?) else {
                return None;
            };
            let bits = match q.dtype {
                DType::U8 => 8,
                DType::U4 => 4,
                DType::UBits(b) => b,
                _ => return None,
            };
            if v != 1 || lut_shape.len() != r + 2 || k > 1u64 << bits {
                return None;
            }
            (q.dtype, q.shape.clone(), k, blocks.to_vec())
        }
    };
    let n = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
    if q.bytes().map(|b| b.len() as u64) != dtype.bytes_for(n)
        || blocks.len() != shape.len()
        || shape
            .iter()
            .zip(&blocks)
            .any(|(&d, &b)| b == 0 || !d.is_multiple_of(b))
        || blocks.iter().skip(2).any(|&b| b != 1)
    {
        return None;
    }
    let groups = blocks.iter().try_fold(1u64, |a, &b| a.checked_mul(b))?;
    if lut.len() as u64 != groups.checked_mul(k)? {
        return None;
    }
    let ones: Vec<u8> = (0..groups).flat_map(|_| 1f32.to_le_bytes()).collect();
    let (b0, b1) = (
        blocks.first().copied().unwrap_or(1),
        blocks.get(1).copied().unwrap_or(1),
    );
    let rows = shape.first().copied().unwrap_or(1) / b0.max(1);
    let cols = n / shape.first().copied().unwrap_or(1).max(1);
    let plain = if b1 == 1 {
        // Runs of whole rows (or the whole tensor).
        ScaleBiasGroups::runs(
            rows.checked_mul(cols)?,
            DType::F32,
            ones.into(),
            GroupOffset::Zero(0.0),
        )
    } else {
        ScaleBiasGroups::tiles(
            cols / b1,
            rows,
            cols,
            DType::F32,
            ones.into(),
            GroupOffset::Zero(0.0),
        )
    };
    let groups = ScaleBiasGroups {
        codebook: Some(lut.into()),
        book_stride: k,
        ..plain
    };
    Some((dtype, shape, Quant::scale_bias_groups(groups)?))
}

/// The weight a `constexpr_*` operation stands for, named by its output. iOS 16's hold their
/// operands as attributes: `constexpr_affine_dequantize`'s `quantized_data`, read as
/// `(q − zero_point) × scale` along `axis`. iOS 18's bind them as inputs, in place or by name:
/// `constexpr_blockwise_shift_scale`'s `data`, read as `(data − offset) × scale` per block.
/// `constexpr_lut_to_dense` is read by [`lut_weight`]. Others stand for their first stored
/// operand. A stored operand that is another constexpr's output and not read by this one's
/// reading goes into `companions`, to be owned with it.
fn constexpr_weight(
    model: &mut Model,
    op: &proto::Operation,
    consts: &HashMap<&str, Const>,
    blobs: &mut Blobs,
    path: &Path,
    companions: &mut HashMap<TensorId, TensorId>,
) -> Option<TensorId> {
    if op.r#type == "constexpr_lut_to_dense" {
        return lut_weight(model, op, consts, blobs, path, companions);
    }
    if op.r#type == "constexpr_sparse_to_dense"
        && let Some(id) = sparse_weight(model, op, blobs, path)
    {
        return Some(id);
    }
    let from_input = op.inputs.iter().find_map(|a| {
        let n = a.value.as_ref()?.arguments.first()?.name.as_deref()?;
        match consts.get(n) {
            Some(Const::Weight(t)) => Some(*t),
            _ => None,
        }
    });
    if from_input.is_some() {
        return from_input;
    }
    let out = op.outputs.first()?;
    let mut value = |k: &str| operand(op, k).map(|v| const_value(&out.name, None, v, blobs, path));
    if op.r#type == "constexpr_affine_dequantize" {
        let ConstValue::Tensor(mut q) = value("quantized_data")? else {
            return None;
        };
        let numbers = |c: Option<ConstValue>| -> Option<Vec<f64>> {
            match c? {
                ConstValue::Tensor(t) => t.small_numbers(),
                ConstValue::Attr(AttrValue::Int(i)) => Some(vec![i as f64]),
                ConstValue::Attr(AttrValue::Float(f)) => Some(vec![f64::from(f)]),
                ConstValue::Attr(AttrValue::Ints(v)) => Some(v.iter().map(|&i| i as f64).collect()),
                ConstValue::Attr(AttrValue::Floats(v)) => {
                    Some(v.iter().map(|&f| f64::from(f)).collect())
                }
                _ => None,
            }
        };
        let axis = match value("axis") {
            Some(ConstValue::Attr(AttrValue::Int(a))) => usize::try_from(a).ok(),
            _ => None,
        };
        let (scale, zero) = (numbers(value("scale")), numbers(value("zero_point")));
        if let (Some(scale), Some(zero), Some(axis)) = (scale, zero, axis) {
            q.quant = Quant::new(scale, zero, axis, &q.shape);
        }
        return Some(model.add_tensor(q));
    }
    if op.r#type == "constexpr_blockwise_shift_scale" {
        // `(data − offset) × scale`, a scale per block (iOS 18: int4 / int8 weights).
        let ConstValue::Tensor(mut q) = value("data")? else {
            return None;
        };
        let scale = match value("scale") {
            Some(ConstValue::Tensor(t)) => t,
            _ => return Some(model.add_tensor(q)),
        };
        let offset = match value("offset") {
            Some(ConstValue::Tensor(t)) => t.small_numbers(),
            _ => Some(Vec::new()),
        };
        if let (Some(s), Some(z)) = (scale.small_numbers(), offset) {
            q.quant = Quant::blocks(s, z, &q.shape, &scale.shape);
        }
        return Some(model.add_tensor(q));
    }
    let keys: Vec<&str> = op
        .attributes
        .iter()
        .map(|a| a.key.as_str())
        .chain(op.inputs.iter().map(|a| a.key.as_str()))
        .collect();
    for k in keys {
        if k != "name"
            && let Some(ConstValue::Tensor(t)) = value(k)
        {
            return Some(model.add_tensor(t));
        }
    }
    None
}
