//! Core ML `neuralNetwork` models (and their classifier and regressor forms): the kind before ML
//! programs, as Apple's model gallery and `convert_to="neuralnetwork"` write them.
//!
//! A list of layers, each with a name, input and output names, and one of 150-odd parameter
//! messages. The layer type and its parameters' fields come from a table generated from
//! coremltools' descriptors (`layers.rs`), so the messages are walked at the wire level: scalar
//! fields become attributes (`kernelSize [3, 3]`, `nGroups 1`), a `WeightParams` a weight whose
//! bytes are a slice of the mapped file (`floatValue` as f32, `float16Value` as f16,
//! `int8RawValue` as i8, `rawValue` as f32 when it is whole floats and as bytes when quantized),
//! shaped by the layer where it is known (a convolution's `[out, in, kh, kw]`, an inner product's
//! `[out, in]`, an embedding's `[out, vocabulary]`, a batch norm's `[channels]`), flat otherwise.
//! An `activation` layer is drawn as its function (`ReLU`, `sigmoid`).

use std::collections::HashMap;
use std::path::Path;

use bytes::{Buf, Bytes};

use super::layers::{Kind, layer};
use super::proto;
use crate::model::{
    AttrValue, DType, Graph, Model, Node, NodeKind, OpNames, Tensor, TensorData, TensorOrigin,
    Value, ValueId,
};

/// A field's value at the wire level.
enum Wire {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(Bytes),
}

/// The fields of a protobuf message, in order.
/// The field numbers an encoded message sets, in order.
pub(super) fn field_numbers(msg: &Bytes) -> Result<Vec<u32>, String> {
    Ok(fields(msg)?.into_iter().map(|(n, _)| n).collect())
}

fn fields(msg: &Bytes) -> Result<Vec<(u32, Wire)>, String> {
    let mut buf = msg.clone();
    let mut out = Vec::new();
    while buf.has_remaining() {
        let key = prost::encoding::decode_varint(&mut buf).map_err(|e| e.to_string())?;
        let (number, wire) = ((key >> 3) as u32, key & 7);
        let v = match wire {
            0 => Wire::Varint(prost::encoding::decode_varint(&mut buf).map_err(|e| e.to_string())?),
            1 if buf.remaining() >= 8 => Wire::Fixed64(buf.get_u64_le()),
            5 if buf.remaining() >= 4 => Wire::Fixed32(buf.get_u32_le()),
            2 => {
                let n = prost::encoding::decode_varint(&mut buf).map_err(|e| e.to_string())?;
                let n = usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= buf.remaining())
                    .ok_or("a field runs past its message")?;
                Wire::Bytes(buf.copy_to_bytes(n))
            }
            _ => return Err(format!("field {number}: wire type {wire} is not read")),
        };
        out.push((number, v));
    }
    Ok(out)
}

/// Packed varints.
fn varints(b: &Bytes) -> Option<Vec<i64>> {
    let mut buf = b.clone();
    let mut out = Vec::new();
    while buf.has_remaining() {
        out.push(prost::encoding::decode_varint(&mut buf).ok()? as i64);
    }
    Some(out)
}

/// Draws a `neuralNetwork`'s layers into `model`.
pub(super) fn build(
    model: &mut Model,
    path: &Path,
    network: &Bytes,
    description: Option<&proto::ModelDescription>,
) -> Result<(), String> {
    let mut graph = Graph::default();
    let mut ops = OpNames::default();
    let mut values: HashMap<String, ValueId> = HashMap::new();
    let mut value = |graph: &mut Graph, name: &str| -> ValueId {
        *values.entry(name.to_string()).or_insert_with(|| {
            graph.add_value(Value {
                name: name.to_string(),
                ..Value::default()
            })
        })
    };
    for input in description.map(|d| d.input.as_slice()).unwrap_or_default() {
        let v = value(&mut graph, &input.name);
        super::add_input(&mut graph, &mut ops, &input.name, v);
    }
    let mut unknown = 0usize;
    for (number, f) in fields(network)? {
        let (1, Wire::Bytes(layer_msg)) = (number, f) else {
            continue;
        };
        let mut name = String::new();
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        let mut params = None;
        for (n, f) in fields(&layer_msg)? {
            match (n, f) {
                (1, Wire::Bytes(b)) => name = String::from_utf8_lossy(&b).into_owned(),
                (2, Wire::Bytes(b)) => inputs.push(String::from_utf8_lossy(&b).into_owned()),
                (3, Wire::Bytes(b)) => outputs.push(String::from_utf8_lossy(&b).into_owned()),
                (n, Wire::Bytes(b)) if n >= 100 => params = Some((n, b)),
                _ => {}
            }
        }
        let mut node = Node::new(name.clone(), "", NodeKind::Op);
        let mut op = "layer".to_string();
        if let Some((n, b)) = params {
            match layer(n) {
                Some((kind, table)) => {
                    op = kind.to_string();
                    read_params(model, &mut node, &mut op, path, &name, n, &b, table)?;
                }
                None => {
                    unknown += 1;
                    op = format!("layer {n}");
                }
            }
        }
        node.op = ops.get(&op);
        for i in &inputs {
            let v = value(&mut graph, i);
            node.inputs.push(Some(v));
        }
        for o in &outputs {
            let v = value(&mut graph, o);
            node.outputs.push(v);
        }
        graph.add_node(node);
    }
    for output in description.map(|d| d.output.as_slice()).unwrap_or_default() {
        let v = value(&mut graph, &output.name);
        super::add_output(&mut graph, &mut ops, &output.name, v);
    }
    if unknown > 0 {
        model.metadata.warnings.push(format!(
            "{}: {unknown} layer(s) of types this build does not know",
            path.display()
        ));
    }
    super::finish_flat(model, graph);
    Ok(())
}

/// Reads a layer's parameters: attributes, weights (added to the model, owned by `node`).
#[allow(clippy::too_many_arguments)]
fn read_params(
    model: &mut Model,
    node: &mut Node,
    op: &mut String,
    path: &Path,
    layer_name: &str,
    layer_number: u32,
    params: &Bytes,
    table: &[super::layers::Field],
) -> Result<(), String> {
    let mut ints: HashMap<&str, Vec<i64>> = HashMap::new();
    let mut weights = Vec::new();
    for (n, f) in fields(params)? {
        let Some(&(_, fname, kind, _)) = table.iter().find(|e| e.0 == n) else {
            continue;
        };
        let attr = match (kind, f) {
            (Kind::Int, Wire::Varint(v)) => {
                ints.entry(fname).or_default().push(v as i64);
                None
            }
            (Kind::Int, Wire::Bytes(b)) => {
                let v = varints(&b).ok_or_else(|| format!("{fname}: bad packed integers"))?;
                ints.entry(fname).or_default().extend(v);
                None
            }
            (Kind::Bool, Wire::Varint(v)) => Some(AttrValue::String((v != 0).to_string())),
            (Kind::Float, Wire::Fixed32(v)) => Some(AttrValue::Float(f32::from_bits(v))),
            (Kind::Float, Wire::Bytes(b)) => Some(AttrValue::Floats(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )),
            (Kind::Double, Wire::Fixed64(v)) => Some(AttrValue::Float(f64::from_bits(v) as f32)),
            (Kind::String, Wire::Bytes(b)) => {
                Some(AttrValue::String(String::from_utf8_lossy(&b).into_owned()))
            }
            (Kind::Weights, Wire::Bytes(b)) => {
                weights.push((fname, b));
                None
            }
            (Kind::Message, _) => {
                if layer_number == 130 {
                    // An activation layer is its function.
                    *op = fname.to_string();
                    None
                } else {
                    Some(AttrValue::Other("{…}".into()))
                }
            }
            _ => None,
        };
        if let Some(a) = attr {
            node.attributes.push((fname.to_string(), a));
        }
    }
    let int = |k: &str| ints.get(k).and_then(|v| v.first()).copied();
    for (k, v) in &ints {
        node.attributes.push((
            (*k).to_string(),
            if v.len() == 1 {
                AttrValue::Int(v[0])
            } else {
                AttrValue::Ints(v.clone())
            },
        ));
    }
    node.attributes.sort_by(|a, b| a.0.cmp(&b.0));
    for (fname, b) in weights {
        let (dtype, data) = weight_bytes(&b)?;
        let Some(data) = data else { continue };
        let numel = dtype
            .size_bytes()
            .map_or(data.len() as u64, |s| data.len() as u64 / s.max(1));
        // The layer's shape for it, where known and consistent.
        let dims: Option<Vec<u64>> = match (layer_number, fname) {
            (100, "weights") => {
                let (out, kc) = (int("outputChannels"), int("kernelChannels"));
                let ks = ints.get("kernelSize").cloned().unwrap_or_default();
                let deconv = node.attributes.iter().any(|(k, v)| {
                    k == "isDeconvolution" && matches!(v, AttrValue::String(s) if s == "true")
                });
                let groups = int("nGroups").unwrap_or(1).max(1);
                match (out, kc) {
                    (Some(o), Some(c)) if deconv => Some(
                        [c, o / groups]
                            .into_iter()
                            .chain(ks)
                            .map(|d| d as u64)
                            .collect(),
                    ),
                    (Some(o), Some(c)) => {
                        Some([o, c].into_iter().chain(ks).map(|d| d as u64).collect())
                    }
                    _ => None,
                }
            }
            (140, "weights") => Some(vec![
                int("outputChannels").unwrap_or(0) as u64,
                int("inputChannels").unwrap_or(0) as u64,
            ]),
            (150, "weights") => Some(vec![
                int("outputChannels").unwrap_or(0) as u64,
                int("inputDim").unwrap_or(0) as u64,
            ]),
            (100 | 140 | 150, "bias") => Some(vec![int("outputChannels").unwrap_or(0) as u64]),
            (160, _) => int("channels").map(|c| vec![c as u64]),
            _ => None,
        };
        let shape = dims
            .filter(|d| d.iter().try_fold(1u64, |a, &x| a.checked_mul(x)) == Some(numel))
            .unwrap_or_else(|| vec![numel]);
        let tensor = Tensor {
            name: format!("{layer_name}.{fname}"),
            dtype,
            shape,
            data: TensorData::Bytes(data),
            origin: TensorOrigin::Initializer,
            conv_axes: None,
            quant: None,
        };
        if model.tensor(&tensor.name).is_some() {
            model.metadata.warnings.push(format!(
                "{}: two weights named {:?}; the second is not shown",
                path.display(),
                tensor.name
            ));
            continue;
        }
        let t = model.add_tensor(tensor);
        node.tensors.push(t);
    }
    Ok(())
}

/// A `WeightParams`' values: its type and bytes (a slice of the message), `None` when empty.
fn weight_bytes(b: &Bytes) -> Result<(DType, Option<Bytes>), String> {
    let mut quantized = false;
    let mut found = None;
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Wire::Bytes(d)) => found = Some((DType::F32, d)),
            (2, Wire::Bytes(d)) => found = Some((DType::F16, d)),
            (30, Wire::Bytes(d)) => found = Some((DType::Unknown("raw"), d)),
            (31, Wire::Bytes(d)) => found = Some((DType::I8, d)),
            (40, Wire::Bytes(_)) => quantized = true,
            _ => {}
        }
    }
    Ok(match found {
        None => (DType::F32, None),
        Some((DType::Unknown(_), d)) if !quantized && d.len() % 4 == 0 => (DType::F32, Some(d)),
        Some((DType::Unknown(_), d)) => (DType::U8, Some(d)),
        Some((t, d)) => (t, Some(d)),
    })
}
