//! TensorFlow SavedModels (`saved_model.pb` and its `variables/` checkpoint), TF2 and TF1.
//!
//! A TF2 SavedModel's main graph holds little more than placeholders, variable handles and a
//! `StatefulPartitionedCall` of a function; the ops live in the functions of its library, and the
//! weights in the checkpoint. What is drawn is what the serving signature (`serving_default`, else
//! the first signature by name) computes: the main graph is walked back from the signature's
//! outputs, and every call of a library function (`StatefulPartitionedCall`, `PartitionedCall`, or
//! an op named after a function) is inlined, its arguments bound to the caller's values, nested
//! calls too. Within a function, inputs are `node:output_arg:index`; ops are ordered by their
//! inputs before they are drawn. A variable handle (`VarHandleOp`) is a weight: its
//! `ReadVariableOp`s fold into the ops that read them, as `Const`s do in a frozen graph, and its
//! values come from the checkpoint, found through the object graphs: the SavedModel's names the
//! variable, the checkpoint's (node for node the same) names its checkpoint key. Groups are the
//! ops' name scopes (`sequential/conv2d/Conv2D`). A TF1 SavedModel (`simple_save`,
//! `SavedModelBuilder`) has its ops in the main graph and reference variables (`VariableV2`),
//! whose checkpoint keys are their names. A TF2 SavedModel with no signature shows its variables
//! only ([`variables_only`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use bytes::Bytes;
use prost::Message;

use super::bundle::Bundle;
use super::proto::{self, NodeDef};
use super::{attr, conv_axes, dtype_of, input_ref, scope_group, tensor_of, value_type};
use crate::model::{
    AttrValue, Body, Format, Graph, GroupId, Model, Node, NodeKind, OpNames, SubgraphBoxes, Tensor,
    TensorData, TensorId, TensorOrigin, Value, ValueId,
};

/// Deepest chain of inlined function calls.
const MAX_CALL_DEPTH: u32 = 32;
/// Most nodes drawn.
const MAX_NODES: usize = 2_000_000;

/// A value while the graph is walked.
#[derive(Clone, Copy, Debug)]
enum Val {
    Tensor(ValueId),
    /// A variable handle, as the weight it stands for (`None`: its values are not found).
    Resource(Option<TensorId>),
    Unknown,
}

/// What a walked node became.
enum Done {
    /// An op node of the graph (its outputs are made as they are read).
    Op(u32),
    /// A call: its returned values in order.
    Call(Vec<Val>),
    /// Folded into a value (a weight read, a variable handle, a placeholder).
    Value(Val),
}

/// Opens a SavedModel's serving graph. `Ok(None)`: no signature with outputs, so the plain
/// GraphDef reader draws the whole graph.
pub(super) fn load(path: &Path, data: &Bytes) -> Result<Option<Model>, String> {
    let sm = proto::FullSavedModel::decode(data.clone())
        .map_err(|e| format!("not a TensorFlow SavedModel: {e}"))?;
    let meta = sm
        .meta_graphs
        .into_iter()
        .next()
        .ok_or("a SavedModel with no meta graph")?;
    let graph = meta
        .graph_def
        .as_ref()
        .ok_or("a SavedModel meta graph with no graph")?;
    let library = functions_by_name(graph.library.as_ref());
    let mut names: Vec<&String> = meta
        .signature_def
        .iter()
        .filter(|(_, s)| !s.outputs.is_empty())
        .map(|(k, _)| k)
        .filter(|k| !k.starts_with("__"))
        .collect();
    names.sort_by_key(|k| (k.as_str() != "serving_default", k.as_str()));
    let Some(sig_name) = names.first() else {
        let calls = graph
            .node
            .iter()
            .any(|n| matches!(n.op.as_str(), "StatefulPartitionedCall" | "PartitionedCall"));
        if calls {
            // TF2 with no signature: its ops live in functions nothing names as the model's, but
            // its variables are in the checkpoint.
            return variables_only(path, &meta).map(Some);
        }
        return Ok(None);
    };
    let sig = &meta.signature_def[*sig_name];

    let mut model = new_model(path, &meta);
    model
        .metadata
        .properties
        .push(("tensorflow.signature".into(), sig_name.to_string()));

    // Variable name → checkpoint key, through the two object graphs.
    let dir = path.parent().unwrap_or(Path::new("."));
    let bundle = Bundle::open(&dir.join("variables").join("variables"));
    let var_keys = match &bundle {
        Ok(b) => variable_keys(b, &meta),
        Err(e) => {
            model.metadata.warnings.push(format!(
                "{}: the variables are not read ({e}), so no weights are shown",
                dir.display()
            ));
            HashMap::new()
        }
    };
    // Placeholders named by the signature's keys.
    let inputs: HashMap<String, String> = sig
        .inputs
        .iter()
        .filter_map(|(key, info)| Some((input_ref(&info.name)?.0.to_string(), key.clone())))
        .collect();
    let mut targets: Vec<(String, String)> = sig
        .outputs
        .iter()
        .map(|(k, info)| (k.clone(), info.name.clone()))
        .collect();
    targets.sort();
    walk_graph(
        model,
        path,
        graph,
        library,
        bundle.ok(),
        var_keys,
        inputs,
        &targets,
    )
    .map(Some)
}

/// A TF1 training graph (a `Saver`'s `.meta` file: a `MetaGraphDef`) over its checkpoint: the
/// forward graph drawn as a SavedModel's, from its outputs back, its variables' values from the
/// checkpoint (whose keys are their names). The outputs are the graph's ends once the training
/// machinery is set aside (gradients, the optimizer's updates and slots, the saver, initializers):
/// the loss, predictions, metrics.
pub(super) fn load_meta_graph(path: &Path, data: &Bytes, bundle: Bundle) -> Result<Model, String> {
    let meta = proto::FullMetaGraphDef::decode(data.clone())
        .map_err(|e| format!("not a TensorFlow MetaGraphDef: {e}"))?;
    let graph = meta
        .graph_def
        .as_ref()
        .ok_or("a meta graph with no graph")?;
    let library = functions_by_name(graph.library.as_ref());
    let training = |name: &str| {
        let first = name.split('/').next().unwrap_or(name);
        matches!(
            first,
            "gradients" | "save" | "init" | "report_uninitialized_variables"
        ) || first.starts_with("gradients_")
            || first.starts_with("save_")
            || first.starts_with("train")
            || first.starts_with("beta1_power")
            || first.starts_with("beta2_power")
            || first == "global_step"
            || name.split('/').any(|s| {
                matches!(
                    s,
                    "Adam"
                        | "Adam_1"
                        | "Momentum"
                        | "RMSProp"
                        | "RMSProp_1"
                        | "Adagrad"
                        | "GradientDescent"
                        | "AdamWeightDecayOptimizer"
                        | "IsInitialized"
                        | "Initializer"
                ) || s.starts_with("Assign")
                    || s.starts_with("clip_by_global_norm")
            })
    };
    let bookkeeping = |op: &str| {
        matches!(
            op,
            "NoOp"
                | "VarIsInitializedOp"
                | "IsVariableInitialized"
                | "Assign"
                | "AssignVariableOp"
                | "SaveV2"
                | "RestoreV2"
                | "MergeV2Checkpoints"
                | "Const"
                | "VarHandleOp"
                | "VariableV2"
                | "Variable"
                | "Placeholder"
                | "PlaceholderWithDefault"
                | "ReadVariableOp"
                | "Identity"
                | "Shape"
        )
    };
    let forward: Vec<&NodeDef> = graph.node.iter().filter(|n| !training(&n.name)).collect();
    let mut read: HashSet<&str> = HashSet::new();
    for n in &forward {
        for i in &n.input {
            if let Some((name, _)) = input_ref(i) {
                read.insert(name);
            }
        }
    }
    let mut targets: Vec<(String, String)> = forward
        .iter()
        .filter(|n| !read.contains(n.name.as_str()) && !bookkeeping(&n.op))
        .map(|n| (n.name.clone(), n.name.clone()))
        .collect();
    targets.sort();
    if targets.is_empty() {
        return Err("no forward graph found among its ops".into());
    }
    let mut model = new_model(path, &meta);
    model.metadata.producer = Some("TensorFlow (TF1 checkpoint and training graph)".into());
    walk_graph(
        model,
        path,
        graph,
        library,
        Some(bundle),
        HashMap::new(),
        HashMap::new(),
        &targets,
    )
}

/// Walks a main graph from `targets` (output key, tensor name) back and draws it, weights from
/// `bundle`; `inputs` names placeholders by the signature's keys.
#[allow(clippy::too_many_arguments)]
fn walk_graph(
    mut model: Model,
    path: &Path,
    graph: &proto::FullGraphDef,
    library: HashMap<&str, &proto::FullFunctionDef>,
    bundle: Option<Bundle>,
    var_keys: HashMap<String, String>,
    inputs: HashMap<String, String>,
    targets: &[(String, String)],
) -> Result<Model, String> {
    let mut w = Walker::new(&mut model, library, bundle, var_keys);
    w.inputs.extend(inputs);
    let targets: Vec<(&String, &str)> = targets.iter().map(|(k, t)| (k, t.as_str())).collect();
    // The main graph, from the outputs back.
    let main = &graph.node;
    let index: HashMap<&str, usize> = main
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut needed = vec![false; main.len()];
    let mut stack: Vec<usize> = targets
        .iter()
        .filter_map(|(_, t)| input_ref(t).and_then(|(n, _)| index.get(n).copied()))
        .collect();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut needed[i], true) {
            continue;
        }
        for s in &main[i].input {
            if let Some((n, _)) = input_ref(s)
                && let Some(&j) = index.get(n)
                && !needed[j]
            {
                stack.push(j);
            }
        }
    }
    let body: Vec<&NodeDef> = main
        .iter()
        .zip(&needed)
        .filter(|(_, k)| **k)
        .map(|(n, _)| n)
        .collect();
    let done = w.run(&body, &HashMap::new(), true);
    for (key, t) in targets {
        let v = w.resolve(&done, &HashMap::new(), t, true);
        let mut vals = Vec::new();
        if let Val::Tensor(v) = v {
            vals.push(v);
        }
        for v in vals {
            w.graph.outputs.push(v);
            let mut out = Node::new(key.clone(), "Output", NodeKind::Output);
            out.inputs.push(Some(v));
            w.graph.add_node(out);
            w.groups.push(0);
        }
    }
    if w.cut {
        w.model.metadata.warnings.push(format!(
            "{}: the graph is cut short (calls nested deeper than {MAX_CALL_DEPTH}, or more than \
             {MAX_NODES} ops)",
            path.display()
        ));
    }
    let cut = w.cut;
    let value_weight = std::mem::take(&mut w.value_weight);
    let mut owned = std::mem::take(&mut w.final_owned);
    let (mut graph, groups) = (w.graph, w.groups);
    finish(&mut graph, groups, &value_weight, &mut owned, cut);
    // Control flow's bodies, drawn inside their ops (their operands bound by position).
    graph.inline_bodies(false);
    let groups: Vec<GroupId> = graph.nodes.iter().map(|n| n.group).collect();
    model.graph = graph;
    model.finish_hierarchy(&groups);
    Ok(model)
}

/// Drops a walked graph's dead ops, gives each weight to the first op left that reads it (not one
/// `owned` already has), connects the edges and places the nodes in `groups`.
fn finish(
    graph: &mut Graph,
    mut groups: Vec<GroupId>,
    value_weight: &HashMap<ValueId, TensorId>,
    owned: &mut HashSet<TensorId>,
    cut: bool,
) {
    // Ops whose results reach no output (a `Shape` left over by tracing) are dropped, as
    // TensorFlow's own inlining drops them; a graph cut short keeps all it made.
    if !cut {
        super::super::prune::dead_ops(graph, &mut groups);
    }
    for node in &mut graph.nodes {
        node.tensors.clear();
        for v in node.inputs.iter().flatten() {
            if let Some(&t) = value_weight.get(v)
                && owned.insert(t)
            {
                node.tensors.push(t);
            }
        }
    }
    graph.connect_by_values();
    for (node, &g) in graph.nodes.iter_mut().zip(&groups) {
        node.group = g;
    }
}

/// A function library's functions by name.
pub(super) fn functions_by_name(
    library: Option<&proto::FullFunctionDefLibrary>,
) -> HashMap<&str, &proto::FullFunctionDef> {
    library
        .map(|l| {
            l.function
                .iter()
                .filter_map(|f| Some((f.signature.as_ref()?.name.as_str(), f)))
                .collect()
        })
        .unwrap_or_default()
}

/// Which of a loop body's arguments it returns unchanged (its result at the same place is the
/// argument itself, through `Identity` ops): loop invariants, as a frozen LSTM passes its kernels.
fn invariants(f: &proto::FullFunctionDef, sig: &proto::FullOpDef) -> Vec<bool> {
    let by_name: HashMap<&str, &NodeDef> =
        f.node_def.iter().map(|n| (n.name.as_str(), n)).collect();
    sig.input_arg
        .iter()
        .zip(&sig.output_arg)
        .map(|(arg, out)| {
            let Some(mut r) = f.ret.get(&out.name).map(String::as_str) else {
                return false;
            };
            for _ in 0..MAX_CALL_DEPTH {
                let Some((name, _)) = r.split_once(':') else {
                    return r == arg.name;
                };
                match by_name.get(name) {
                    Some(n) if n.op == "Identity" => {
                        match n.input.iter().find(|s| !s.starts_with('^')) {
                            Some(next) => r = next,
                            None => return false,
                        }
                    }
                    _ => return false,
                }
            }
            false
        })
        .collect()
}

/// The bodies of control-flow op `n` of a frozen graph (node `id`, about to be added, in
/// `group`), built from the graph's function library by a walker of their own; `operands`: each
/// data input's value and the weight it is. Returns the group the op goes in and the bodies, in
/// the order the op's `AttrValue::Graph`s (from 0) name them.
pub(super) fn frozen_bodies(
    model: &mut Model,
    library: &HashMap<&str, &proto::FullFunctionDef>,
    n: &NodeDef,
    node: &mut Node,
    id: u32,
    group: GroupId,
    operands: &[(ValueId, Option<TensorId>)],
) -> (GroupId, Vec<Body>) {
    let Some(how) = body_attrs(&n.op) else {
        return (group, Vec::new());
    };
    let mut w = Walker::new(model, library.clone(), None, HashMap::new());
    // The operands that are weights, for the bodies to bind.
    w.value_weight = operands
        .iter()
        .filter_map(|&(v, t)| Some((v, t?)))
        .collect();
    let vals: Vec<(Val, Option<usize>)> = operands
        .iter()
        .enumerate()
        .map(|(slot, &(v, _))| (Val::Tensor(v), Some(slot)))
        .collect();
    let group = w.bodies(n, node, id, group, &how, &vals);
    (group, std::mem::take(&mut w.graph.bodies))
}

/// How a control-flow op's functions take its inputs.
struct BodyAttrs {
    /// The function attributes that are its bodies.
    attrs: &'static [&'static str],
    /// Inputs before the functions' arguments (an `If`'s condition, a `Case`'s index).
    skip: usize,
    /// Whether the arguments are carried from one iteration to the next (a `While`'s): then only
    /// variables stay the weights they are; a constant is just where a carried value starts.
    carried: bool,
}

fn body_attrs(op: &str) -> Option<BodyAttrs> {
    let (attrs, skip, carried): (&'static [&'static str], usize, bool) = match op {
        "While" | "StatelessWhile" => (&["cond", "body"], 0, true),
        "If" | "StatelessIf" => (&["then_branch", "else_branch"], 1, false),
        "Case" | "StatelessCase" => (&["branches"], 1, false),
        _ => return None,
    };
    Some(BodyAttrs {
        attrs,
        skip,
        carried,
    })
}

struct Walker<'a> {
    model: &'a mut Model,
    library: HashMap<&'a str, &'a proto::FullFunctionDef>,
    bundle: Option<Bundle>,
    var_keys: HashMap<String, String>,
    graph: Graph,
    groups: Vec<GroupId>,
    ops: OpNames,
    weight_values: HashMap<TensorId, ValueId>,
    value_weight: HashMap<ValueId, TensorId>,
    /// Weights an op already owns.
    owned: HashSet<TensorId>,
    /// The weight of each variable, by name.
    variables: HashMap<String, Option<TensorId>>,
    /// Placeholder name → the signature's name for it.
    inputs: HashMap<String, String>,
    depth: u32,
    cut: bool,
    /// The group names scope below: the root, or the box of the body being built.
    root: GroupId,
    /// What a body's op names start with that its box already says: its owner's name and `/`
    /// (the ops of an LSTM's `…/lstm/while` body are named `…/lstm/while/lstm_cell/MatMul`).
    scope_prefix: String,
    /// Nodes walked, bodies' too (each body starts a graph of its own).
    walked: usize,
    /// Weights an op owns once dead ops are gone, bodies' first.
    final_owned: HashSet<TensorId>,
}

impl<'a> Walker<'a> {
    fn new(
        model: &'a mut Model,
        library: HashMap<&'a str, &'a proto::FullFunctionDef>,
        bundle: Option<Bundle>,
        var_keys: HashMap<String, String>,
    ) -> Self {
        Walker {
            model,
            library,
            bundle,
            var_keys,
            graph: Graph::default(),
            groups: Vec::new(),
            ops: OpNames::default(),
            weight_values: HashMap::new(),
            value_weight: HashMap::new(),
            owned: HashSet::new(),
            variables: HashMap::new(),
            inputs: HashMap::new(),
            depth: 0,
            cut: false,
            root: 0,
            scope_prefix: String::new(),
            walked: 0,
            final_owned: HashSet::new(),
        }
    }

    /// Walks a graph's or a function body's nodes in input order; `args`: a function's arguments.
    fn run<'n>(
        &mut self,
        nodes: &[&'n NodeDef],
        args: &HashMap<String, Val>,
        main: bool,
    ) -> HashMap<&'n str, Done> {
        let mut done: HashMap<&str, Done> = HashMap::new();
        for n in topo_order(nodes, main) {
            if self.walked >= MAX_NODES {
                self.cut = true;
                break;
            }
            self.walked += 1;
            let result = self.node(n, &done, args, main);
            done.insert(n.name.as_str(), result);
        }
        done
    }

    /// The value an input reference names.
    fn resolve(
        &mut self,
        done: &HashMap<&str, Done>,
        args: &HashMap<String, Val>,
        s: &str,
        main: bool,
    ) -> Val {
        if s.starts_with('^') {
            return Val::Unknown;
        }
        // Main graph: `node` or `node:k`. Function body: an argument, or `node:arg:k`.
        let (name, suffix, index) = if main {
            match input_ref(s) {
                Some((n, k)) => (n, k.to_string(), k),
                None => return Val::Unknown,
            }
        } else {
            match s.split_once(':') {
                None => return args.get(s).copied().unwrap_or(Val::Unknown),
                Some((n, rest)) => {
                    let k = rest
                        .rsplit_once(':')
                        .and_then(|(_, k)| k.parse().ok())
                        .unwrap_or(0);
                    (n, rest.to_string(), k)
                }
            }
        };
        match done.get(name) {
            Some(Done::Value(v)) => *v,
            Some(Done::Call(rets)) => rets.get(index).copied().unwrap_or(Val::Unknown),
            Some(Done::Op(id)) => {
                let id = *id;
                // Outputs are made as they are first read, named `node:suffix`.
                let want = format!("{}:{suffix}", self.graph.nodes[id as usize].name);
                if let Some(&v) = self.graph.nodes[id as usize]
                    .outputs
                    .iter()
                    .find(|&&v| self.graph.values[v as usize].name == want)
                {
                    return Val::Tensor(v);
                }
                let v = self.graph.add_value(Value {
                    name: want,
                    ..Value::default()
                });
                self.graph.nodes[id as usize].outputs.push(v);
                Val::Tensor(v)
            }
            None => Val::Unknown,
        }
    }

    fn node(
        &mut self,
        n: &NodeDef,
        done: &HashMap<&str, Done>,
        args: &HashMap<String, Val>,
        main: bool,
    ) -> Done {
        let data_inputs: Vec<&String> = n.input.iter().filter(|s| !s.starts_with('^')).collect();
        match n.op.as_str() {
            "NoOp" => return Done::Value(Val::Unknown),
            // TF1 reference variables: the variable is its own value, read through an Identity.
            "VariableV2" | "Variable" => {
                return Done::Value(match self.variable(&n.name, n) {
                    Some(t) => Val::Tensor(self.weight_value(t)),
                    None => Val::Unknown,
                });
            }
            "VarHandleOp" => {
                let name = match n.attr.get("shared_name").and_then(|a| a.value.as_ref()) {
                    Some(proto::attr_value::Value::S(s)) if !s.is_empty() => {
                        String::from_utf8_lossy(s).into_owned()
                    }
                    _ => n.name.clone(),
                };
                return Done::Value(Val::Resource(self.variable(&name, n)));
            }
            "ReadVariableOp" | "Identity" | "IdentityN" | "Snapshot" if !data_inputs.is_empty() => {
                match self.resolve(done, args, data_inputs[0], main) {
                    Val::Resource(r) => {
                        return Done::Value(match (n.op.as_str(), r) {
                            ("ReadVariableOp", Some(t)) => Val::Tensor(self.weight_value(t)),
                            ("ReadVariableOp", None) => Val::Unknown,
                            _ => Val::Resource(r),
                        });
                    }
                    // A TF1 variable's `…/read`: the weight itself.
                    Val::Tensor(v)
                        if self.value_weight.contains_key(&v) && n.op != "ReadVariableOp" =>
                    {
                        return Done::Value(Val::Tensor(v));
                    }
                    _ => {}
                }
            }
            "Placeholder" if main => {
                let label = self
                    .inputs
                    .get(&n.name)
                    .cloned()
                    .unwrap_or_else(|| n.name.clone());
                let (dtype, shape) = value_type(n, 0);
                let v = self.graph.add_value(Value {
                    name: label.clone(),
                    dtype,
                    shape,
                });
                let mut node = Node::new(label, "Input", NodeKind::Input);
                node.outputs.push(v);
                self.graph.inputs.push(v);
                self.graph.add_node(node);
                self.groups.push(0);
                return Done::Value(Val::Tensor(v));
            }
            "Const" => {
                if let Some(proto::attr_value::Value::Tensor(t)) =
                    n.attr.get("value").and_then(|a| a.value.as_ref())
                {
                    let tensor = tensor_of(&n.name, t, &self.model.source.clone());
                    let id = self.model.add_tensor(tensor);
                    return Done::Value(Val::Tensor(self.weight_value(id)));
                }
            }
            _ => {}
        }
        // A call of a library function.
        let callee = match n.op.as_str() {
            "StatefulPartitionedCall" | "PartitionedCall" => {
                match n.attr.get("f").and_then(|a| a.value.as_ref()) {
                    Some(proto::attr_value::Value::Func(f)) => Some(f.name.as_str()),
                    _ => None,
                }
            }
            op => Some(op),
        }
        .and_then(|f| self.library.get(f).copied());
        if let Some(f) = callee
            && self.depth < MAX_CALL_DEPTH
        {
            let vals: Vec<Val> = data_inputs
                .iter()
                .map(|s| self.resolve(done, args, s, main))
                .collect();
            return Done::Call(self.call(f, vals));
        }
        if callee.is_some() {
            self.cut = true;
        }
        // An op.
        let mut node = Node::new(n.name.clone(), self.ops.get(&n.op), NodeKind::Op);
        let mut keys: Vec<&String> = n.attr.keys().collect();
        keys.sort();
        for k in keys {
            if k == "value" || k == "_output_shapes" || k.starts_with("_") {
                continue;
            }
            if let Some(v) = attr(&n.attr[k]) {
                node.attributes.push((k.clone(), v));
            }
        }
        // Each data input as resolved, and where it went in the node's inputs.
        let mut operands: Vec<(Val, Option<usize>)> = Vec::new();
        for (slot, s) in data_inputs.iter().enumerate() {
            let val = self.resolve(done, args, s, main);
            operands.push((val, Some(node.inputs.len())));
            let v = match val {
                Val::Tensor(v) => v,
                Val::Resource(Some(t)) => self.weight_value(t),
                _ => {
                    if let Some(last) = operands.last_mut() {
                        last.1 = None;
                    }
                    continue;
                }
            };
            // A weight belongs to the first op that reads it.
            if let Some(&t) = self.value_weight.get(&v)
                && self.owned.insert(t)
            {
                node.tensors.push(t);
                if let Some(axes) = conv_axes(&n.op, slot)
                    && let Some(w) = self.model.tensors.get_mut(t as usize)
                    && w.shape.len() == 4
                {
                    w.conv_axes = Some(axes);
                }
            }
            node.inputs.push(Some(v));
        }
        let scoped = n.name.strip_prefix(&self.scope_prefix).unwrap_or(&n.name);
        let mut group = scope_group(self.model, self.root, scoped);
        let id = self.graph.nodes.len() as u32;
        if let Some(how) = body_attrs(&n.op) {
            group = self.bodies(n, &mut node, id, group, &how, &operands);
        }
        let id = self.graph.add_node(node);
        self.groups.push(group);
        Done::Op(id)
    }

    /// Builds the functions of control-flow op `n` (node `id`, about to be added) named by
    /// `attrs` as its bodies, each in a box inside the op's own box; returns that box, where the
    /// op goes.
    #[allow(clippy::too_many_arguments)]
    fn bodies(
        &mut self,
        n: &NodeDef,
        node: &mut Node,
        id: u32,
        group: GroupId,
        how: &BodyAttrs,
        operands: &[(Val, Option<usize>)],
    ) -> GroupId {
        let mut boxes = SubgraphBoxes::default();
        let mut owner_box = group;
        for &key in how.attrs {
            let funcs: Vec<&str> = match n.attr.get(key).and_then(|a| a.value.as_ref()) {
                Some(proto::attr_value::Value::Func(f)) => vec![f.name.as_str()],
                Some(proto::attr_value::Value::List(l)) => {
                    l.func.iter().map(|f| f.name.as_str()).collect()
                }
                _ => continue,
            };
            for (k, name) in funcs.iter().enumerate() {
                let Some(f) = self.library.get(name).copied() else {
                    continue;
                };
                let label = if funcs.len() > 1 {
                    format!("{key}[{k}]")
                } else {
                    key.to_string()
                };
                let (b, root) = boxes.boxes(&mut self.model.hierarchy, group, id, &n.name, &label);
                owner_box = b;
                let prefix = format!("{}/", n.name);
                let Some((mut graph, fed_by)) = self.function_body(f, operands, how, root, prefix)
                else {
                    continue;
                };
                graph.name = name.to_string();
                let index = self.graph.bodies.len();
                self.graph.bodies.push(Body {
                    owner: id,
                    attribute: label.clone(),
                    graph,
                    fed_by,
                });
                // The attribute names the subgraph, not just the function.
                match node.attributes.iter_mut().find(|(k, _)| *k == label) {
                    Some(slot) => slot.1 = AttrValue::Graph(index),
                    None => node.attributes.push((label, AttrValue::Graph(index))),
                }
            }
        }
        owner_box
    }

    /// A function as a body of its own: its arguments bound to the operands after `how.skip` (a
    /// variable stays the weight it is, and so does a constant unless carried; a tensor comes in
    /// through an input node), its results outputs. Also which operand feeds each input node.
    fn function_body(
        &mut self,
        f: &proto::FullFunctionDef,
        operands: &[(Val, Option<usize>)],
        how: &BodyAttrs,
        root: GroupId,
        prefix: String,
    ) -> Option<(Graph, Vec<Option<usize>>)> {
        let sig = f.signature.as_ref()?;
        if self.depth >= MAX_CALL_DEPTH {
            self.cut = true;
            return None;
        }
        // Operands that are weights stay weights inside, unless carried and changed.
        let skip = how.skip;
        let invariant = invariants(f, sig);
        let weights: Vec<Option<TensorId>> = operands
            .iter()
            .enumerate()
            .map(|(i, (v, _))| match v {
                Val::Tensor(v)
                    if !how.carried
                        || i.checked_sub(skip)
                            .is_some_and(|j| invariant.get(j) == Some(&true)) =>
                {
                    self.value_weight.get(v).copied()
                }
                _ => None,
            })
            .collect();
        let outer = (
            std::mem::take(&mut self.graph),
            std::mem::take(&mut self.groups),
            std::mem::take(&mut self.weight_values),
            std::mem::take(&mut self.value_weight),
            std::mem::replace(&mut self.root, root),
            std::mem::replace(&mut self.scope_prefix, prefix),
        );
        let mut fed_by = Vec::new();
        let mut args: HashMap<String, Val> = HashMap::new();
        for (j, a) in sig.input_arg.iter().enumerate() {
            let (val, slot) = operands
                .get(skip + j)
                .copied()
                .unwrap_or((Val::Unknown, None));
            let bound = match (val, weights.get(skip + j).copied().flatten()) {
                (Val::Resource(r), _) => Val::Resource(r),
                (_, Some(t)) => Val::Tensor(self.weight_value(t)),
                _ => {
                    let v = self.graph.add_value(Value {
                        name: a.name.clone(),
                        dtype: (a.r#type != 0).then(|| dtype_of(a.r#type)),
                        shape: None,
                    });
                    let mut input = Node::new(a.name.clone(), "Input", NodeKind::Input);
                    input.outputs.push(v);
                    self.graph.inputs.push(v);
                    self.graph.add_node(input);
                    self.groups.push(root);
                    fed_by.push(slot);
                    Val::Tensor(v)
                }
            };
            args.insert(a.name.clone(), bound);
        }
        let body: Vec<&NodeDef> = f.node_def.iter().collect();
        self.depth += 1;
        let done = self.run(&body, &args, false);
        for a in &sig.output_arg {
            let Some(r) = f.ret.get(&a.name) else {
                continue;
            };
            if let Val::Tensor(v) = self.resolve(&done, &args, r, false) {
                self.graph.outputs.push(v);
                let mut out = Node::new(a.name.clone(), "Output", NodeKind::Output);
                out.inputs.push(Some(v));
                self.graph.add_node(out);
                self.groups.push(root);
            }
        }
        self.depth -= 1;
        let mut graph = std::mem::replace(&mut self.graph, outer.0);
        let groups = std::mem::replace(&mut self.groups, outer.1);
        self.weight_values = outer.2;
        let value_weight = std::mem::replace(&mut self.value_weight, outer.3);
        self.root = outer.4;
        self.scope_prefix = outer.5;
        let cut = self.cut;
        finish(
            &mut graph,
            groups,
            &value_weight,
            &mut self.final_owned,
            cut,
        );
        Some((graph, fed_by))
    }

    /// Inlines a function with its arguments bound; returns its outputs in order.
    fn call(&mut self, f: &proto::FullFunctionDef, vals: Vec<Val>) -> Vec<Val> {
        let Some(sig) = &f.signature else {
            return Vec::new();
        };
        let args: HashMap<String, Val> = sig
            .input_arg
            .iter()
            .zip(vals.iter().copied().chain(std::iter::repeat(Val::Unknown)))
            .map(|(a, v)| (a.name.clone(), v))
            .collect();
        let body: Vec<&NodeDef> = f.node_def.iter().collect();
        self.depth += 1;
        let done = self.run(&body, &args, false);
        let rets = sig
            .output_arg
            .iter()
            .map(|a| match f.ret.get(&a.name) {
                Some(r) => self.resolve(&done, &args, r, false),
                None => Val::Unknown,
            })
            .collect();
        self.depth -= 1;
        rets
    }

    /// The weight of variable `name` (made on first use), its values from the checkpoint.
    fn variable(&mut self, name: &str, n: &NodeDef) -> Option<TensorId> {
        if let Some(&t) = self.variables.get(name) {
            return t;
        }
        let source = self.model.source.clone();
        let (dtype_attr, shape_attr) = (
            match n.attr.get("dtype").and_then(|a| a.value.as_ref()) {
                Some(proto::attr_value::Value::Type(t)) => Some(dtype_of(*t)),
                _ => None,
            },
            match n.attr.get("shape").and_then(|a| a.value.as_ref()) {
                Some(proto::attr_value::Value::Shape(s)) => Some(
                    s.dim
                        .iter()
                        .map(|d| d.size.max(0) as u64)
                        .collect::<Vec<u64>>(),
                ),
                _ => None,
            },
        );
        // TF2: the key the object graphs give; TF1: the variable's own name.
        let key = self.var_keys.get(name).cloned().or_else(|| {
            self.bundle
                .as_ref()
                .filter(|b| b.entries.contains_key(name))
                .map(|_| name.to_string())
        });
        let found = match (&self.bundle, key.as_ref()) {
            (Some(b), Some(key)) => checkpoint_tensor(b, key, name, &source),
            (Some(_), None) => Err(format!("variable {name} has no checkpoint key")),
            (None, _) => Err("the checkpoint is not read".into()),
        };
        let tensor = match found {
            Ok(t) => t,
            Err(why) => Tensor {
                name: name.to_string(),
                dtype: dtype_attr.unwrap_or(crate::model::DType::Unknown("variable")),
                shape: shape_attr.unwrap_or_default(),
                data: TensorData::Error(format!("{}: {why}", source.display())),
                origin: TensorOrigin::Checkpoint,
                conv_axes: None,
                quant: None,
            },
        };
        let id = self.model.add_tensor(tensor);
        self.variables.insert(name.to_string(), Some(id));
        Some(id)
    }

    fn weight_value(&mut self, t: TensorId) -> ValueId {
        if let Some(&v) = self.weight_values.get(&t) {
            return v;
        }
        let v = self
            .graph
            .add_value(Value::of_tensor(&self.model.tensors[t as usize]));
        self.weight_values.insert(t, v);
        self.value_weight.insert(v, t);
        v
    }
}
/// An empty model of a SavedModel, its producer and TensorFlow version from the meta graph.
fn new_model(path: &Path, meta: &proto::FullMetaGraphDef) -> Model {
    let mut model = Model::new(path, Format::TensorFlow);
    model.metadata.shards = 1;
    model.metadata.producer = Some("TensorFlow (SavedModel)".into());
    model.metadata.producer_version = meta
        .meta_info_def
        .as_ref()
        .map(|m| m.tensorflow_version.clone())
        .filter(|v| !v.is_empty());
    model
}

/// Checkpoint entry `key` as the weight `name`: its dtype and shape from the entry, its bytes a
/// slice of the shard (an error for the data when their count does not fit the shape).
pub(super) fn checkpoint_tensor(
    b: &Bundle,
    key: &str,
    name: &str,
    source: &Path,
) -> Result<Tensor, String> {
    let (e, bytes) = b.bytes(key)?;
    let shape: Vec<u64> = e
        .shape
        .as_ref()
        .map(|s| s.dim.iter().map(|d| d.size.max(0) as u64).collect())
        .unwrap_or_default();
    let dtype = dtype_of(e.dtype);
    let expect = dtype
        .size_bytes()
        .and_then(|es| shape.iter().try_fold(es, |a, &d| a.checked_mul(d)));
    let data = if expect == Some(bytes.len() as u64) {
        TensorData::Bytes(bytes)
    } else {
        TensorData::Error(format!(
            "{}: {name}: {} bytes in the checkpoint for shape {shape:?}",
            source.display(),
            bytes.len()
        ))
    };
    Ok(Tensor {
        name: name.to_string(),
        dtype,
        shape,
        data,
        origin: TensorOrigin::Checkpoint,
        conv_axes: None,
        quant: None,
    })
}

/// Variable name → checkpoint key, through the SavedModel's object graph and the checkpoint's
/// (node for node the same). Empty for a TF1 checkpoint, whose keys are the variables' names.
fn variable_keys(b: &Bundle, meta: &proto::FullMetaGraphDef) -> HashMap<String, String> {
    let mut var_keys = HashMap::new();
    let trackable = b
        .string_scalar("_CHECKPOINTABLE_OBJECT_GRAPH")
        .and_then(|s| proto::TrackableObjectGraph::decode(s).map_err(|e| e.to_string()));
    if let (Ok(t), Some(objects)) = (trackable, meta.object_graph_def.as_ref()) {
        for (o, tr) in objects.nodes.iter().zip(&t.nodes) {
            let Some(var) = &o.variable else { continue };
            if let Some(a) = tr.attributes.iter().find(|a| a.name == "VARIABLE_VALUE") {
                var_keys.insert(var.name.clone(), a.checkpoint_key.clone());
            }
        }
    }
    var_keys
}

/// A TF2 SavedModel with no signature (a `tf.Module` saved without one, whose functions take
/// whatever their callers pass): its variables from the checkpoint, named as the SavedModel names
/// them and grouped by those names as a checkpoint's weights are, with a warning that its ops are
/// not drawn.
fn variables_only(path: &Path, meta: &proto::FullMetaGraphDef) -> Result<Model, String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let bundle = Bundle::open(&dir.join("variables").join("variables")).map_err(|e| {
        format!("a TensorFlow 2 SavedModel with no serving signature, whose variables are not read either: {e}")
    })?;
    let mut model = new_model(path, meta);
    model.metadata.warnings.push(format!(
        "{}: no serving signature, so no op graph is drawn (its ops live in functions that no \
         signature calls); the variables are shown as a checkpoint's weights",
        path.display()
    ));
    let mut vars: Vec<(String, String)> = variable_keys(&bundle, meta).into_iter().collect();
    if vars.is_empty() {
        // No object graph: every entry but the bookkeeping ones, named by its key.
        vars = bundle
            .entries
            .keys()
            .filter(|k| !k.starts_with('_') && !k.contains("OPTIMIZER_SLOT"))
            .map(|k| (k.clone(), k.clone()))
            .collect();
    }
    vars.sort();
    for (name, key) in vars {
        let tensor = checkpoint_tensor(&bundle, &key, &name, dir).unwrap_or_else(|why| Tensor {
            name: name.clone(),
            dtype: crate::model::DType::Unknown("variable"),
            shape: Vec::new(),
            data: TensorData::Error(format!("{}: {why}", dir.display())),
            origin: TensorOrigin::Checkpoint,
            conv_axes: None,
            quant: None,
        });
        model.add_tensor(tensor);
    }
    super::super::family::build_checkpoint_graph(&mut model);
    Ok(model)
}

/// `nodes` ordered so that each comes after what it reads (Kahn's algorithm over data and control
/// inputs within the list); nodes on a cycle keep their order at the end.
fn topo_order<'n>(nodes: &[&'n NodeDef], main: bool) -> Vec<&'n NodeDef> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut indeg = vec![0u32; nodes.len()];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let mut seen = HashSet::new();
        for s in &n.input {
            let s = s.trim_start_matches('^');
            let name = if main {
                input_ref(s).map_or(s, |(n, _)| n)
            } else {
                s.split(':').next().unwrap_or(s)
            };
            if let Some(&j) = index.get(name)
                && j != i
                && seen.insert(j)
            {
                indeg[i] += 1;
                users[j].push(i);
            }
        }
    }
    let mut queue: VecDeque<usize> = (0..nodes.len()).filter(|&i| indeg[i] == 0).collect();
    let mut out = Vec::with_capacity(nodes.len());
    let mut placed = vec![false; nodes.len()];
    while let Some(i) = queue.pop_front() {
        placed[i] = true;
        out.push(nodes[i]);
        for &u in &users[i] {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                queue.push_back(u);
            }
        }
    }
    out.extend((0..nodes.len()).filter(|&i| !placed[i]).map(|i| nodes[i]));
    out
}
