//! The op graph of a TorchScript archive (`torch.jit.save` of a traced or scripted module).
//!
//! The archive holds the module tree in `data.pkl` (each submodule a pickled `__torch__.…` object
//! with its weights) and each class's code in `code/__torch__/…/*.py`, as TorchScript prints it.
//! The graph is what that code does when the root's `forward` runs, found without running it:
//! [`parse`] reads the code, and the evaluator here steps through `forward` symbolically, as
//! Netron does:
//! - a call of a submodule's method (`(self.conv).forward(x, )`) is inlined, and the ops it makes
//!   are grouped under that submodule's path (`layer1.0.conv1`), so the module tree is the
//!   hierarchy;
//! - every `torch.*` / `ops.*` call that involves a tensor is an op node (`aten::_convolution`
//!   shown as `_convolution`), with its non-tensor arguments as attributes, named by the op's schema
//!   for the common ops;
//! - a submodule attribute that is a weight (`self.weight`) is that weight, owned by the first op
//!   that reads it;
//! - scalars are folded where they are known: module constants (`Final`), the pickled module
//!   attributes (`self.use_norm`), literals and defaults. A branch whose condition is known runs
//!   alone; otherwise both run and each value they assign differently meets in an `If` node. A
//!   loop body runs once, as TorchScript's own graph holds it; a loop over a constant list unrolls.
//! - functions compiled into the archive (`torch.nn.functional.relu` as scripted) are inlined too.
//!
//! Budgets bound the work on any input: inlining depth, statements stepped and nodes made. Past
//! them the graph is cut short and says so in a warning.

mod parse;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;

use super::pickle::{Id, Node as PNode, Pickle};
use super::torch::Entries;
use crate::model::{
    AttrValue, Graph, GroupId, Model, Node, NodeKind, OpNames, TensorId, Value, ValueId,
    hierarchy_split,
};
use parse::{Code, Def, Expr, Stmt};

/// Deepest chain of inlined calls.
const MAX_INLINE: u32 = 64;
/// Most statements and calls stepped through.
const MAX_STEPS: u64 = 4_000_000;
/// Most nodes made (a traced 100-layer transformer makes about 10 000).
const MAX_NODES: usize = 500_000;
/// Most items a constant list may unroll a loop into.
const MAX_UNROLL: usize = 4096;
/// Most iterations of `range(n)` unrolled (a longer loop runs its body once).
const MAX_UNROLL_RANGE: i64 = 64;
/// Total source read from the archive's code, bytes.
const MAX_CODE: usize = 256 << 20;

/// The prefix of an archive's code folder (`<name>/code/`), when the archive is TorchScript.
pub(super) fn code_prefix(entries: &Entries) -> Option<String> {
    entries
        .keys()
        .filter_map(|k| {
            let i = k.find("code/__torch__")?;
            let prefix = &k[..i];
            (!prefix.trim_end_matches('/').contains('/')).then(|| prefix.to_string())
        })
        .min_by_key(String::len)
}

/// Replaces `model`'s graph with the op graph of the archive's code. On code it cannot read the
/// model keeps its weights-only graph and gains a warning, so the weights are still shown.
pub(super) fn build(
    model: &mut Model,
    path: &Path,
    data: &Bytes,
    entries: &Entries,
    prefix: &str,
    pickle: &Pickle,
    tensor_names: &HashMap<Id, String>,
) -> Result<(), String> {
    let code = read_code(data, entries, prefix)?;
    add_constants(model, path, data, entries, prefix)?;
    let modules = module_tree(pickle);
    evaluate(model, path, &code, modules, pickle, tensor_names)
}

/// The tensors of `constants.pkl` (what the code calls `CONSTANTS.c0`, …), as constant tensors:
/// a traced model's literal tensors, masks and position ids.
fn add_constants(
    model: &mut Model,
    path: &Path,
    data: &Bytes,
    entries: &Entries,
    prefix: &str,
) -> Result<(), String> {
    let name = format!("{prefix}constants.pkl");
    if !entries.contains_key(&name) {
        return Ok(());
    }
    let mut zip = super::torch::zip_of(data)?;
    let bytes = super::torch::inflate(&mut zip, &name, &mut (64 << 20))
        .map_err(|e| format!("constants.pkl: {e}"))?;
    let pk = super::pickle::unpickle(&bytes).map_err(|e| format!("constants.pkl: {e}"))?;
    let big_endian = matches!(
        entries.get(&format!("{prefix}byteorder")),
        Some(Ok(r)) if data.get(r.clone()) == Some(&b"big"[..])
    );
    let items = pk.items(pk.root).unwrap_or_default();
    for (i, &id) in items.iter().enumerate() {
        let t = super::torch::pickled_tensor(
            &pk,
            id,
            data,
            entries,
            prefix,
            "constants",
            big_endian,
            path,
        );
        if let Some(t) = t {
            model.add_tensor(crate::model::Tensor {
                name: format!("CONSTANTS.c{i}"),
                origin: crate::model::TensorOrigin::ConstantNode,
                ..t
            });
        }
    }
    Ok(())
}

/// Runs the root module's `forward` (`modules[0]`) and makes the model's graph of it.
fn evaluate(
    model: &mut Model,
    path: &Path,
    code: &Code,
    modules: Vec<Module>,
    pickle: &Pickle,
    tensor_names: &HashMap<Id, String>,
) -> Result<(), String> {
    let root = modules
        .first()
        .ok_or("data.pkl holds no TorchScript module")?;
    let class = code
        .classes
        .get(&root.class)
        .ok_or_else(|| format!("the code defines no class {}", root.class))?;
    // An overloaded forward (`nn.LSTM`) is printed as `forward__0`, `forward__1`: the first is
    // the plain tensor one.
    let forward = class
        .methods
        .get("forward")
        .or_else(|| {
            let mut overloads: Vec<_> = class
                .methods
                .iter()
                .filter(|(k, _)| k.starts_with("forward__"))
                .collect();
            overloads.sort_by_key(|(k, _)| (k.len(), k.as_str()));
            overloads.first().map(|(_, d)| *d)
        })
        .cloned()
        .ok_or_else(|| format!("{} has no forward method", root.class))?;

    let mut ev = Eval {
        code,
        modules,
        pickle,
        tensor_names,
        tensors: model
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i as TensorId))
            .collect(),
        model,
        graph: Graph::default(),
        groups: Vec::new(),
        ops: OpNames::default(),
        counters: HashMap::new(),
        weight_values: HashMap::new(),
        tensor_of_value: HashMap::new(),
        value_node: HashMap::new(),
        scalar_nodes: HashSet::new(),
        group: 0,
        depth: 0,
        steps: 0,
        cut: None,
    };
    // The root's inputs.
    let mut env = Env::new();
    let mut inputs = Vec::new();
    for (i, p) in forward.params.iter().enumerate() {
        if i == 0 {
            env.insert(p.name.clone(), V::Module(0));
            continue;
        }
        let v = ev.graph.add_value(Value {
            name: p.name.to_string(),
            ..Value::default()
        });
        let mut node = Node::new(p.name.to_string(), "Input", NodeKind::Input);
        node.outputs.push(v);
        ev.graph.inputs.push(v);
        ev.push_node(node);
        inputs.push(v);
        env.insert(p.name.clone(), V::Tensor(v));
    }
    let mut rets = Vec::new();
    ev.block(&forward.body, &mut env, &mut rets);
    let result = ev.merge_returns(rets);
    let mut outs = Vec::new();
    ev.flatten_tensors(&result, &mut outs);
    let many = outs.len() > 1;
    for (i, v) in outs.into_iter().enumerate() {
        ev.graph.outputs.push(v);
        let name = if many {
            format!("output.{i}")
        } else {
            "output".into()
        };
        let mut node = Node::new(name, "Output", NodeKind::Output);
        node.inputs.push(Some(v));
        ev.push_node(node);
    }
    let cut = ev.cut;
    let (mut graph, mut groups) = (ev.graph, ev.groups);
    // A graph cut short keeps everything it made: its outputs may not be reached yet.
    if cut.is_none() {
        super::prune::dead_ops(&mut graph, &mut groups);
    }
    // Each weight belongs to the first op left that reads it.
    let mut owned = HashSet::new();
    for node in &mut graph.nodes {
        for v in node.inputs.iter().flatten() {
            if let Some(&t) = ev.tensor_of_value.get(v)
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
    model.graph = graph;
    model.finish_hierarchy(&groups);
    if let Some(why) = cut {
        model.metadata.warnings.push(format!(
            "{}: the TorchScript graph is cut short: {why}",
            path.display(),
        ));
    }
    Ok(())
}

/// Parses and runs arbitrary code as an archive's: `input` holds source files separated by NUL
/// bytes, each starting with its module's name on a line of its own (`__torch__`). The module tree
/// comes from the code itself: the first class of the first file is the root, and each attribute
/// typed as a class of the code is a submodule. Returns the number of nodes made. For fuzzing.
#[doc(hidden)]
pub fn fuzz_code(input: &[u8]) -> usize {
    let text = String::from_utf8_lossy(input);
    let mut code = Code::default();
    let mut root = None;
    for chunk in text.split('\0') {
        let (module, src) = chunk.split_once('\n').unwrap_or(("__torch__", chunk));
        let module = module.trim();
        let Ok(classes) = code.add_file(module, src) else {
            continue;
        };
        if root.is_none() {
            root = classes.into_iter().next();
        }
    }
    let Some(root) = root else { return 0 };
    let mut modules = vec![Module {
        path: String::new(),
        class: root,
        children: HashMap::new(),
        attrs: HashMap::new(),
        tuple_state: None,
        group: Some(0),
    }];
    let mut i = 0;
    while i < modules.len() && modules.len() < 4096 {
        let mut kids: Vec<(String, String)> = code
            .classes
            .get(&modules[i].class)
            .map(|c| {
                c.attrs
                    .iter()
                    .filter_map(|(k, t)| Some((k.clone(), t.dotted()?)))
                    .filter(|(_, t)| code.classes.contains_key(t))
                    .collect()
            })
            .unwrap_or_default();
        kids.sort();
        for (key, class) in kids {
            let path = if modules[i].path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", modules[i].path)
            };
            let id = modules.len() as u32;
            modules[i].children.insert(key, id);
            modules.push(Module {
                path,
                class,
                children: HashMap::new(),
                attrs: HashMap::new(),
                tuple_state: None,
                group: None,
            });
        }
        i += 1;
    }
    let mut model = Model::new("fuzz.pt", crate::model::Format::TorchScript);
    let pickle = Pickle {
        nodes: Vec::new(),
        root: 0,
    };
    let _ = evaluate(
        &mut model,
        Path::new("fuzz.pt"),
        &code,
        modules,
        &pickle,
        &HashMap::new(),
    );
    model.graph.nodes.len()
}

/// Parses every source file under the code folder. `torch.jit.save` deflates the code (unlike the
/// weights), so each file is inflated, within [`MAX_CODE`] bytes in all.
fn read_code(data: &Bytes, entries: &Entries, prefix: &str) -> Result<Code, String> {
    let base = format!("{prefix}code/");
    let mut files: Vec<&String> = entries
        .keys()
        .filter(|k| k.starts_with(&base) && k.ends_with(".py"))
        .collect();
    files.sort();
    let mut zip = super::torch::zip_of(data)?;
    let mut code = Code::default();
    let mut left = MAX_CODE as u64;
    for name in files {
        let short = &name[prefix.len()..];
        let src = super::torch::inflate(&mut zip, name, &mut left).map_err(|e| {
            format!(
                "{short}: {e} (at most {} MiB of code are read)",
                MAX_CODE >> 20
            )
        })?;
        let src = String::from_utf8_lossy(&src);
        // `code/__torch__/torch/nn/modules/conv.py` is module `__torch__.torch.nn.modules.conv`.
        let module = name[base.len()..].trim_end_matches(".py").replace('/', ".");
        code.add_file(&module, &src)
            .map_err(|e| format!("{short}: {e}"))?;
    }
    Ok(code)
}

/// One module object of the pickled tree.
struct Module {
    /// Dotted path from the root (`""` for the root).
    path: String,
    /// Qualified class (`__torch__.torch.nn.modules.conv.Conv2d`).
    class: String,
    /// Submodules by attribute name.
    children: HashMap<String, u32>,
    /// Other attributes by name (`training`, `use_norm`, `_flat_weights`), as pickled.
    attrs: HashMap<String, Id>,
    /// The state a module pickles through `__getstate__` as a tuple rather than a dict (quantized
    /// modules: their weight, bias, scale and zero point).
    tuple_state: Option<Id>,
    /// Hierarchy group, made when an op first runs in it.
    group: Option<GroupId>,
}

/// The module objects of `data.pkl`, root first.
fn module_tree(pk: &Pickle) -> Vec<Module> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![(pk.root, String::new())];
    while let Some((id, path)) = stack.pop() {
        if !seen.insert(id) || out.len() >= 1 << 20 {
            continue;
        }
        let PNode::Object { class, state, .. } = pk.get(id) else {
            continue;
        };
        let PNode::Global(m, n) = pk.get(*class) else {
            continue;
        };
        if !m.starts_with("__torch__") {
            continue;
        }
        let index = out.len() as u32;
        let mut module = Module {
            path: path.clone(),
            class: format!("{m}.{n}"),
            children: HashMap::new(),
            attrs: HashMap::new(),
            tuple_state: None,
            group: (index == 0).then_some(0),
        };
        let pairs = match state.map(|s| pk.get(s)) {
            Some(PNode::Dict(pairs)) => pairs.as_slice(),
            Some(PNode::Tuple(_) | PNode::List(_)) => {
                module.tuple_state = *state;
                &[]
            }
            _ => &[],
        };
        let mut kids = Vec::new();
        for &(k, v) in pairs {
            let Some(key) = pk.str(k) else { continue };
            match pk.get(v) {
                // TorchBind objects (`__torch__.torch.classes.quantized.LinearPackedParamsBase`)
                // are values, not submodules.
                PNode::Object { class, .. }
                    if matches!(pk.get(*class), PNode::Global(m, _)
                        if m.starts_with("__torch__") && !m.starts_with("__torch__.torch.classes")) =>
                {
                    let child = if path.is_empty() {
                        key.to_string()
                    } else {
                        format!("{path}.{key}")
                    };
                    kids.push((v, child));
                }
                _ => {
                    module.attrs.insert(key.to_string(), v);
                }
            }
        }
        out.push(module);
        // Children are walked in the order written (the stack pops the last pushed first).
        stack.extend(kids.into_iter().rev());
    }
    // Link each module to its children by path.
    let by_path: HashMap<String, u32> = out
        .iter()
        .enumerate()
        .map(|(i, m)| (m.path.clone(), i as u32))
        .collect();
    for i in 0..out.len() {
        let path = out[i].path.clone();
        if path.is_empty() {
            continue;
        }
        let (parent, key) = match path.rfind('.') {
            Some(d) => (&path[..d], &path[d + 1..]),
            None => ("", path.as_str()),
        };
        if let Some(&p) = by_path.get(parent) {
            out[p as usize].children.insert(key.to_string(), i as u32);
        }
    }
    out
}

/// A value during evaluation.
#[derive(Clone, Debug)]
enum V {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    List(Rc<Vec<V>>),
    Tuple(Rc<Vec<V>>),
    /// A scalar or object that cannot be known without running the model.
    Unknown,
    /// A value of the graph: an input, a weight, or one output of an op.
    Tensor(ValueId),
    /// The result of an op, whose outputs are made as they are used (`a, b = torch.chunk(…)`).
    Result(u32),
    /// A module object of the tree.
    Module(u32),
    /// A global name (`torch.relu`, `__torch__.helper`).
    Global(Rc<str>),
    /// `obj.name` of something that is not a module, awaiting its call (`x.size`).
    Bound(Box<V>, Rc<str>),
    /// A module's method, awaiting its call.
    Method(u32, Rc<str>),
}

impl V {
    /// Known truth value.
    fn truth(&self) -> Option<bool> {
        match self {
            V::None => Some(false),
            V::Bool(b) => Some(*b),
            V::Int(i) => Some(*i != 0),
            V::Float(f) => Some(*f != 0.0),
            V::Str(s) => Some(!s.is_empty()),
            V::List(l) | V::Tuple(l) => Some(!l.is_empty()),
            V::Module(_) => Some(true),
            _ => None,
        }
    }

    fn is_const(&self) -> bool {
        match self {
            V::None | V::Bool(_) | V::Int(_) | V::Float(_) | V::Str(_) => true,
            V::List(l) | V::Tuple(l) => l.iter().all(V::is_const),
            _ => false,
        }
    }

    fn has_tensor(&self) -> bool {
        match self {
            V::Tensor(_) | V::Result(_) => true,
            V::List(l) | V::Tuple(l) => l.iter().any(V::has_tensor),
            _ => false,
        }
    }

    /// The same value (cheap, conservative).
    fn same(&self, o: &V) -> bool {
        match (self, o) {
            (V::None, V::None) | (V::Unknown, V::Unknown) => true,
            (V::Bool(a), V::Bool(b)) => a == b,
            (V::Int(a), V::Int(b)) => a == b,
            (V::Float(a), V::Float(b)) => a.to_bits() == b.to_bits(),
            (V::Str(a), V::Str(b)) => a == b,
            (V::Tensor(a), V::Tensor(b)) => a == b,
            (V::Result(a), V::Result(b)) | (V::Module(a), V::Module(b)) => a == b,
            (V::List(a), V::List(b)) | (V::Tuple(a), V::Tuple(b)) => {
                Rc::ptr_eq(a, b)
                    || (a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.same(y)))
            }
            (V::Global(a), V::Global(b)) => a == b,
            _ => false,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            V::Bool(b) => Some(f64::from(u8::from(*b))),
            V::Int(i) => Some(*i as f64),
            V::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Text of a constant, as Python prints it.
    fn text(&self) -> String {
        match self {
            V::None => "None".into(),
            V::Bool(true) => "True".into(),
            V::Bool(false) => "False".into(),
            V::Int(i) => i.to_string(),
            V::Float(f) => format!("{f:?}"),
            V::Str(s) => format!("{s:?}"),
            V::List(l) => format!("[{}]", l.iter().map(V::text).collect::<Vec<_>>().join(", ")),
            V::Tuple(l) => format!("({})", l.iter().map(V::text).collect::<Vec<_>>().join(", ")),
            V::Global(g) => g.to_string(),
            _ => "?".into(),
        }
    }

    /// As a node attribute.
    fn attr(&self) -> AttrValue {
        match self {
            V::Int(i) => AttrValue::Int(*i),
            V::Float(f) => AttrValue::Float(*f as f32),
            V::Str(s) => AttrValue::String(s.to_string()),
            V::List(l) | V::Tuple(l)
                if !l.is_empty() && l.iter().all(|v| matches!(v, V::Int(_))) =>
            {
                AttrValue::Ints(
                    l.iter()
                        .map(|v| if let V::Int(i) = v { *i } else { 0 })
                        .collect(),
                )
            }
            other => AttrValue::Other(other.text()),
        }
    }
}

type Env = HashMap<Rc<str>, V>;

/// How a block ended.
#[derive(Clone, Copy, PartialEq)]
enum Flow {
    Normal,
    /// `return`, `raise`, `break` or `continue`: the rest of the block does not run.
    Stop,
}

struct Eval<'a> {
    code: &'a Code,
    modules: Vec<Module>,
    pickle: &'a Pickle,
    /// The name each pickled tensor was given.
    tensor_names: &'a HashMap<Id, String>,
    model: &'a mut Model,
    tensors: HashMap<String, TensorId>,
    graph: Graph,
    groups: Vec<GroupId>,
    ops: OpNames,
    counters: HashMap<String, u32>,
    /// The graph value standing for each weight read.
    weight_values: HashMap<TensorId, ValueId>,
    tensor_of_value: HashMap<ValueId, TensorId>,
    /// The node each op output comes from.
    value_node: HashMap<ValueId, u32>,
    /// Ops whose result is a scalar, not a tensor.
    scalar_nodes: HashSet<u32>,
    /// The group ops are made in now.
    group: GroupId,
    depth: u32,
    steps: u64,
    /// Why a budget ran out.
    cut: Option<String>,
}

impl Eval<'_> {
    fn push_node(&mut self, node: Node) -> u32 {
        let id = self.graph.add_node(node);
        self.groups.push(self.group);
        id
    }

    fn out_of_budget(&mut self) -> bool {
        self.steps += 1;
        if self.cut.is_none() {
            if self.steps > MAX_STEPS {
                self.cut = Some(format!("its code runs more than {MAX_STEPS} steps"));
            } else if self.graph.nodes.len() >= MAX_NODES {
                self.cut = Some(format!("it makes more than {MAX_NODES} ops"));
            }
        }
        self.cut.is_some()
    }

    /// Runs a block of statements.
    fn block(&mut self, stmts: &[Stmt], env: &mut Env, rets: &mut Vec<V>) -> Flow {
        for s in stmts {
            if self.out_of_budget() {
                return Flow::Stop;
            }
            if self.stmt(s, env, rets) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Normal
    }

    fn stmt(&mut self, s: &Stmt, env: &mut Env, rets: &mut Vec<V>) -> Flow {
        match s {
            Stmt::Assign(targets, value) => {
                let v = self.expr(value, env);
                for t in targets {
                    self.assign(t, v.clone(), env);
                }
            }
            Stmt::AugAssign(target, op, value) => {
                let old = self.expr(target, env);
                let rhs = self.expr(value, env);
                let v = self.binary(op, old, rhs);
                self.assign(target, v, env);
            }
            Stmt::Expr(e) => {
                // A raised exception ends its branch, as `raise` does.
                if let Expr::Call(f, _, _) = e
                    && f.dotted().as_deref() == Some("ops.prim.RaiseException")
                {
                    return Flow::Stop;
                }
                self.expr(e, env);
            }
            Stmt::Return(e) => {
                let v = e.as_ref().map_or(V::None, |e| self.expr(e, env));
                rets.push(v);
                return Flow::Stop;
            }
            Stmt::Raise | Stmt::Break | Stmt::Continue => return Flow::Stop,
            Stmt::Pass => {}
            Stmt::With(body) => return self.block(body, env, rets),
            Stmt::If(cond, then, otherwise) => {
                let c = self.expr(cond, env);
                if let Some(t) = c.truth() {
                    return self.block(if t { then } else { otherwise }, env, rets);
                }
                let mut env_t = env.clone();
                let flow_t = self.block(then, &mut env_t, rets);
                let mut env_e = env.clone();
                let flow_e = self.block(otherwise, &mut env_e, rets);
                match (flow_t, flow_e) {
                    (Flow::Stop, Flow::Stop) => return Flow::Stop,
                    (Flow::Stop, Flow::Normal) => *env = env_e,
                    (Flow::Normal, Flow::Stop) => *env = env_t,
                    (Flow::Normal, Flow::Normal) => self.merge_envs(&c, env, env_t, env_e),
                }
            }
            Stmt::For(target, iter, body) => {
                let it = self.expr(iter, env);
                match it {
                    V::List(items) | V::Tuple(items) if items.len() <= MAX_UNROLL => {
                        for item in items.iter() {
                            self.assign(target, item.clone(), env);
                            if self.block(body, env, rets) == Flow::Stop && self.cut.is_some() {
                                return Flow::Stop;
                            }
                        }
                    }
                    _ => {
                        self.assign(target, V::Unknown, env);
                        self.block(body, env, rets);
                    }
                }
            }
            Stmt::While(cond, body) => {
                let c = self.expr(cond, env);
                if c.truth() != Some(false) {
                    self.block(body, env, rets);
                }
            }
        }
        Flow::Normal
    }

    /// After an `if` whose condition is not known: each name the branches leave different meets in
    /// an `If` node when it is a tensor, and is unknown otherwise.
    fn merge_envs(&mut self, cond: &V, env: &mut Env, t: Env, e: Env) {
        let mut keys: Vec<Rc<str>> = t.keys().chain(e.keys()).cloned().collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (vt, ve) = (t.get(&k), e.get(&k));
            let merged = match (vt, ve) {
                (Some(a), Some(b)) if a.same(b) => a.clone(),
                (Some(a), Some(b)) => self.meet(cond, a.clone(), b.clone()),
                (Some(a), None) | (None, Some(a)) => a.clone(),
                (None, None) => continue,
            };
            env.insert(k, merged);
        }
    }

    /// Whether `v` holds a tensor, not just the result of a scalar op (`dim`, `len`, `eq` of
    /// sizes).
    fn tensorish(&self, v: &V) -> bool {
        match v {
            V::Result(n) => !self.scalar_nodes.contains(n),
            V::Tensor(t) => self
                .value_node
                .get(t)
                .is_none_or(|n| !self.scalar_nodes.contains(n)),
            V::List(l) | V::Tuple(l) => l.iter().any(|x| self.tensorish(x)),
            _ => false,
        }
    }

    /// Two values that a branch chooses between: a tensor meets in an `If` node, anything else
    /// (a flag, a size, a message) is unknown past the branch.
    fn meet(&mut self, cond: &V, a: V, b: V) -> V {
        if !(self.tensorish(&a) || self.tensorish(&b)) {
            return V::Unknown;
        }
        let mut node = self.new_node("If", "prim::If");
        let mut inputs = Vec::new();
        for v in [cond, &a, &b] {
            self.flatten_tensors(v, &mut inputs);
        }
        node.inputs = inputs.into_iter().map(Some).collect();
        let out = self.graph.add_value(Value {
            name: node.name.clone(),
            ..Value::default()
        });
        node.outputs.push(out);
        self.push_node(node);
        V::Tensor(out)
    }

    /// The value of a function whose body returned `rets` (in order).
    fn merge_returns(&mut self, rets: Vec<V>) -> V {
        let mut it = rets.into_iter();
        let Some(mut v) = it.next() else {
            return V::None;
        };
        for r in it {
            if !v.same(&r) {
                v = self.meet(&V::Unknown, v, r);
            }
        }
        v
    }

    fn assign(&mut self, target: &Expr, v: V, env: &mut Env) {
        match target {
            Expr::Name(n) => {
                if let V::Tensor(id) = v
                    && let Some(val) = self.graph.values.get_mut(id as usize)
                    && val.name.is_empty()
                {
                    val.name = n.to_string();
                }
                env.insert(n.clone(), v);
            }
            Expr::Tuple(ts) | Expr::List(ts) => {
                let parts: Vec<V> = match &v {
                    V::List(items) | V::Tuple(items) => items.iter().cloned().collect(),
                    V::Result(node) => (0..ts.len())
                        .map(|i| V::Tensor(self.output(*node, i)))
                        .collect(),
                    other => vec![other.clone(); ts.len()],
                };
                for (t, p) in ts.iter().zip(parts) {
                    self.assign(t, p, env);
                }
            }
            // `self.x = …` and `l[i] = …` do not change the graph.
            _ => {}
        }
    }

    /// Output `i` of node `node`, made if it is new.
    fn output(&mut self, node: u32, i: usize) -> ValueId {
        let n = self.graph.nodes[node as usize].outputs.len();
        for k in n..=i.min(n + 1024) {
            let name = format!("{}:{k}", self.graph.nodes[node as usize].name);
            let v = self.graph.add_value(Value {
                name,
                ..Value::default()
            });
            self.graph.nodes[node as usize].outputs.push(v);
            self.value_node.insert(v, node);
        }
        let outs = &self.graph.nodes[node as usize].outputs;
        outs.get(i).or(outs.last()).copied().unwrap_or(0)
    }

    /// The graph values inside `v`, in order.
    fn flatten_tensors(&mut self, v: &V, out: &mut Vec<ValueId>) {
        match v {
            V::Tensor(t) => out.push(*t),
            V::Result(n) => {
                let id = self.output(*n, 0);
                out.push(id);
            }
            V::List(l) | V::Tuple(l) => {
                for x in l.iter() {
                    self.flatten_tensors(x, out);
                }
            }
            _ => {}
        }
    }

    fn expr(&mut self, e: &Expr, env: &mut Env) -> V {
        match e {
            Expr::Name(n) => env.get(n).cloned().unwrap_or_else(|| V::Global(n.clone())),
            Expr::Int(i) => V::Int(*i),
            Expr::Float(f) => V::Float(*f),
            Expr::Str(s) => V::Str(s.clone()),
            Expr::Bool(b) => V::Bool(*b),
            Expr::None => V::None,
            Expr::Ellipsis => V::Global("...".into()),
            Expr::Attr(o, a) => {
                let obj = self.expr(o, env);
                self.attribute(obj, a)
            }
            Expr::Call(f, args, kwargs) => {
                // `torch.append(outs, y)` grows the list named `outs` (lists are printed by name).
                if let (Some("torch.append"), [Expr::Name(list), item]) =
                    (f.dotted().as_deref(), args.as_slice())
                    && let Some(V::List(items)) = env.get(list).cloned()
                    && items.len() < MAX_UNROLL
                {
                    let item = self.expr(item, env);
                    let mut items = (*items).clone();
                    items.push(item);
                    env.insert(list.clone(), V::List(Rc::new(items)));
                    return V::None;
                }
                let func = self.expr(f, env);
                let args: Vec<V> = args.iter().map(|a| self.expr(a, env)).collect();
                let kwargs: Vec<(Rc<str>, V)> = kwargs
                    .iter()
                    .map(|(k, a)| (k.clone(), self.expr(a, env)))
                    .collect();
                self.call(func, args, kwargs)
            }
            Expr::Index(o, i) => {
                let obj = self.expr(o, env);
                let idx = self.expr(i, env);
                self.index(obj, idx)
            }
            Expr::Slice(a, b, c) => {
                let mut part =
                    |x: &Option<Box<Expr>>| x.as_ref().map_or(V::None, |x| self.expr(x, env));
                let (a, b, c) = (part(a), part(b), part(c));
                V::Tuple(Rc::new(vec![a, b, c]))
            }
            Expr::Tuple(items) => {
                V::Tuple(Rc::new(items.iter().map(|x| self.expr(x, env)).collect()))
            }
            Expr::List(items) => {
                V::List(Rc::new(items.iter().map(|x| self.expr(x, env)).collect()))
            }
            Expr::Dict(items) => {
                for (k, v) in items {
                    self.expr(k, env);
                    self.expr(v, env);
                }
                V::Unknown
            }
            Expr::Unary(op, x) => {
                let v = self.expr(x, env);
                match (*op, &v) {
                    ("not", v) => v.truth().map_or(V::Unknown, |t| V::Bool(!t)),
                    ("-", V::Int(i)) => V::Int(i.wrapping_neg()),
                    ("-", V::Float(f)) => V::Float(-f),
                    ("~", V::Int(i)) => V::Int(!i),
                    ("-", _) if v.has_tensor() => self.op("aten::neg", vec![v], Vec::new()),
                    ("~", _) if v.has_tensor() => self.op("aten::bitwise_not", vec![v], Vec::new()),
                    _ => V::Unknown,
                }
            }
            Expr::Binary(op, a, b) => {
                if *op == "and" || *op == "or" {
                    let x = self.expr(a, env);
                    match (*op, x.truth()) {
                        ("and", Some(false)) | ("or", Some(true)) => return x,
                        (_, Some(_)) => return self.expr(b, env),
                        _ => {
                            self.expr(b, env);
                            return V::Unknown;
                        }
                    }
                }
                let x = self.expr(a, env);
                let y = self.expr(b, env);
                self.binary(op, x, y)
            }
            Expr::IfExp(c, a, b) => {
                let cond = self.expr(c, env);
                match cond.truth() {
                    Some(true) => self.expr(a, env),
                    Some(false) => self.expr(b, env),
                    None => {
                        let x = self.expr(a, env);
                        let y = self.expr(b, env);
                        if x.same(&y) {
                            x
                        } else {
                            self.meet(&cond, x, y)
                        }
                    }
                }
            }
        }
    }

    fn binary(&mut self, op: &str, x: V, y: V) -> V {
        if let Some(v) = fold_binary(op, &x, &y) {
            return v;
        }
        if x.has_tensor() || y.has_tensor() {
            let aten = match op {
                "+" => "add",
                "-" => "sub",
                "*" => "mul",
                "/" => "div",
                "//" => "floordiv",
                "%" => "remainder",
                "**" => "pow",
                "@" => "matmul",
                "==" => "eq",
                "!=" => "ne",
                "<" => "lt",
                "<=" => "le",
                ">" => "gt",
                ">=" => "ge",
                "&" => "__and__",
                "|" => "__or__",
                "^" => "__xor__",
                "<<" => "__lshift__",
                ">>" => "__rshift__",
                "in" | "not in" => "__contains__",
                _ => return V::Unknown,
            };
            return self.op(&format!("aten::{aten}"), vec![x, y], Vec::new());
        }
        V::Unknown
    }

    fn index(&mut self, obj: V, idx: V) -> V {
        match (&obj, &idx) {
            (V::List(l) | V::Tuple(l), V::Int(i)) => {
                let n = l.len() as i64;
                let k = if *i < 0 { i + n } else { *i };
                if (0..n).contains(&k) {
                    return l[k as usize].clone();
                }
                V::Unknown
            }
            (V::Result(node), V::Int(i)) if *i >= 0 => V::Tensor(self.output(*node, *i as usize)),
            (V::Module(m), V::Int(i)) => self.attribute(V::Module(*m), &i.to_string()),
            (V::Module(m), V::Str(s)) => self.attribute(V::Module(*m), s),
            _ if obj.has_tensor() => self.op("aten::__getitem__", vec![obj, idx], Vec::new()),
            _ => V::Unknown,
        }
    }

    /// `obj.name`.
    fn attribute(&mut self, obj: V, name: &str) -> V {
        match obj {
            V::Module(m) => self.module_attribute(m, name),
            V::Global(g) => {
                if &*g == "CONSTANTS" {
                    return self
                        .weight(&format!("CONSTANTS.{name}"))
                        .unwrap_or(V::Unknown);
                }
                V::Global(format!("{g}.{name}").into())
            }
            other => V::Bound(Box::new(other), name.into()),
        }
    }

    fn module_attribute(&mut self, m: u32, name: &str) -> V {
        let code = self.code;
        let Some(module) = self.modules.get(m as usize) else {
            return V::Unknown;
        };
        let class = code.classes.get(&module.class);
        if class.is_some_and(|c| c.methods.contains_key(name)) {
            return V::Method(m, name.into());
        }
        if let Some(&c) = module.children.get(name) {
            return V::Module(c);
        }
        let path = if module.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", module.path)
        };
        // A quantized module's packed weights (`self._packed_params`), rebuilt by its
        // `__setstate__` from the pickled tuple: the tuple's tensors stand for them.
        let pickled = module
            .attrs
            .get(name)
            .copied()
            .or_else(|| module.tuple_state.filter(|_| name.contains("packed")));
        if let Some(v) = self.weight(&path) {
            return v;
        }
        if let Some(id) = pickled
            && let Some(v) = self.pickled(id, 0)
        {
            return v;
        }
        if let Some(c) = class.and_then(|c| c.consts.get(name)) {
            let mut env = Env::new();
            return self.expr(c, &mut env);
        }
        match class.and_then(|c| c.attrs.get(name)).and_then(Expr::dotted) {
            Some(t) if t == "NoneType" || t == "None" => V::None,
            _ => V::Unknown,
        }
    }

    /// A pickled attribute: a scalar, a tensor, or a short list or tuple of them.
    fn pickled(&mut self, id: Id, depth: u32) -> Option<V> {
        let pk = self.pickle;
        Some(match pk.get(id) {
            PNode::None => V::None,
            PNode::Bool(b) => V::Bool(*b),
            PNode::Int(i) => V::Int(*i),
            PNode::Float(f) => V::Float(*f),
            PNode::Str(s) => V::Str(s.as_str().into()),
            PNode::Tensor { .. } => {
                let name = self.tensor_names.get(&id)?.clone();
                self.weight(&name)?
            }
            PNode::List(items) | PNode::Tuple(items) if depth < 4 && items.len() <= 4096 => {
                // An item that is not a value here (a dtype, an object) is unknown, the rest kept.
                let items: Vec<V> = items
                    .iter()
                    .map(|&i| self.pickled(i, depth + 1).unwrap_or(V::Unknown))
                    .collect();
                V::List(Rc::new(items))
            }
            // A TorchBind object (quantized packed weights) stands for the tensors of its state.
            PNode::Object {
                class,
                state: Some(st),
                ..
            } if depth < 4
                && matches!(pk.get(*class), PNode::Global(m, _) if m.starts_with("__torch__.torch.classes")) =>
            {
                return self.pickled(*st, depth + 1);
            }
            // Typed lists (`torch.jit._pickle.build_tensorlist([...])`) and type tags
            // (`restore_type_tag(value, "List[int]")`) hold their value as the first argument.
            PNode::Object { class, args, .. } if depth < 4 => match pk.get(*class) {
                PNode::Global(m, n)
                    if m == "torch.jit._pickle"
                        && (n.starts_with("build_") || n == "restore_type_tag") =>
                {
                    let first = *pk.items(*args)?.first()?;
                    return self.pickled(first, depth + 1);
                }
                _ => return None,
            },
            _ => return None,
        })
    }

    /// The graph value of the weight named `name`.
    fn weight(&mut self, name: &str) -> Option<V> {
        let &t = self.tensors.get(name)?;
        if let Some(&v) = self.weight_values.get(&t) {
            return Some(V::Tensor(v));
        }
        let v = self
            .graph
            .add_value(Value::of_tensor(&self.model.tensors[t as usize]));
        self.weight_values.insert(t, v);
        self.tensor_of_value.insert(v, t);
        Some(V::Tensor(v))
    }

    fn call(&mut self, func: V, args: Vec<V>, kwargs: Vec<(Rc<str>, V)>) -> V {
        if self.out_of_budget() {
            return V::Unknown;
        }
        match func {
            V::Method(m, name) => self.call_method(m, &name, args, kwargs),
            V::Module(m) => self.call_method(m, "forward", args, kwargs),
            V::Bound(obj, name) => {
                let mut all = vec![*obj];
                all.extend(args);
                self.op(&format!("aten::{name}"), all, kwargs)
            }
            V::Global(name) => self.call_global(&name, args, kwargs),
            _ => V::Unknown,
        }
    }

    fn call_method(&mut self, m: u32, name: &str, args: Vec<V>, kwargs: Vec<(Rc<str>, V)>) -> V {
        let code = self.code;
        let def = self
            .modules
            .get(m as usize)
            .and_then(|module| code.classes.get(&module.class))
            .and_then(|c| c.methods.get(name))
            .cloned();
        let Some(def) = def else {
            return V::Unknown;
        };
        let saved = self.group;
        self.group = self.module_group(m);
        let mut all = vec![V::Module(m)];
        all.extend(args);
        let v = self.inline(&def, all, kwargs);
        self.group = saved;
        v
    }

    fn module_group(&mut self, m: u32) -> GroupId {
        let Some(module) = self.modules.get(m as usize) else {
            return self.group;
        };
        if let Some(g) = module.group {
            return g;
        }
        let (mut segs, leaf, _) = hierarchy_split(&module.path);
        segs.push(leaf);
        let g = self.model.hierarchy.insert_path(segs, '.');
        let short = module
            .class
            .rsplit('.')
            .next()
            .unwrap_or(&module.class)
            .to_string();
        self.model
            .metadata
            .module_classes
            .entry(module.path.clone())
            .or_insert(short);
        if let Some(module) = self.modules.get_mut(m as usize) {
            module.group = Some(g);
        }
        g
    }

    /// Runs a function's body with its parameters bound.
    fn inline(&mut self, def: &Rc<Def>, args: Vec<V>, kwargs: Vec<(Rc<str>, V)>) -> V {
        if self.depth >= MAX_INLINE {
            self.cut
                .get_or_insert_with(|| format!("calls nest deeper than {MAX_INLINE}"));
            return V::Unknown;
        }
        let mut env = Env::new();
        let mut args = args.into_iter();
        for p in &def.params {
            let v = match args.next() {
                Some(v) => v,
                None => match kwargs.iter().find(|(k, _)| *k == p.name) {
                    Some((_, v)) => v.clone(),
                    None => match &p.default {
                        Some(d) => {
                            let mut e = Env::new();
                            self.expr(d, &mut e)
                        }
                        None => V::Unknown,
                    },
                },
            };
            env.insert(p.name.clone(), v);
        }
        self.depth += 1;
        let mut rets = Vec::new();
        self.block(&def.body, &mut env, &mut rets);
        self.depth -= 1;
        self.merge_returns(rets)
    }

    fn call_global(&mut self, name: &str, args: Vec<V>, kwargs: Vec<(Rc<str>, V)>) -> V {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(V::Unknown);
        match name {
            "getattr" => {
                return match arg(1) {
                    V::Str(s) => self.attribute(arg(0), &s),
                    _ => V::Unknown,
                };
            }
            "annotate" | "unchecked_cast" => return arg(1),
            "torch.jit._unwrap_optional" => return arg(0),
            "torch.jit.is_scripting" => return V::Bool(true),
            "torch.jit.is_tracing" | "torch._C._get_tracing_state" => return V::Bool(false),
            "uninitialized" | "isinstance" | "hasattr" | "print" => return V::Unknown,
            // A short loop of known count unrolls, as the module runs it; a longer or unknown one
            // runs its body once.
            "range" => {
                let ints: Option<Vec<i64>> = args
                    .iter()
                    .map(|a| if let V::Int(i) = a { Some(*i) } else { None })
                    .collect();
                let (start, stop, step) = match ints.as_deref() {
                    Some(&[stop]) => (0, stop, 1),
                    Some(&[start, stop]) => (start, stop, 1),
                    Some(&[start, stop, step]) if step != 0 => (start, stop, step),
                    _ => return V::Unknown,
                };
                let count = if step > 0 {
                    (stop.saturating_sub(start)).max(0).saturating_add(step - 1) / step
                } else {
                    (start.saturating_sub(stop))
                        .max(0)
                        .saturating_add(-step - 1)
                        / -step
                };
                if count > MAX_UNROLL_RANGE {
                    return V::Unknown;
                }
                return V::List(Rc::new(
                    (0..count).map(|k| V::Int(start + k * step)).collect(),
                ));
            }
            "len" => match arg(0) {
                V::List(l) | V::Tuple(l) => return V::Int(l.len() as i64),
                V::Str(s) => return V::Int(s.chars().count() as i64),
                v if v.has_tensor() => return self.op("aten::len", args, kwargs),
                _ => return V::Unknown,
            },
            "int" | "float" | "bool" | "str" => {
                let v = arg(0);
                let folded = match (name, &v) {
                    ("int", V::Int(_))
                    | ("float", V::Float(_))
                    | ("bool", V::Bool(_))
                    | ("str", V::Str(_)) => Some(v.clone()),
                    ("int", V::Float(f)) => Some(V::Int(*f as i64)),
                    ("int", V::Bool(b)) => Some(V::Int(i64::from(*b))),
                    ("float", x) => x.as_f64().map(V::Float),
                    ("bool", x) => x.truth().map(V::Bool),
                    _ => None,
                };
                if let Some(f) = folded {
                    return f;
                }
                if v.has_tensor() {
                    let aten = match name {
                        "int" => "aten::Int",
                        "float" => "aten::Float",
                        "bool" => "aten::Bool",
                        _ => "aten::str",
                    };
                    return self.op(aten, args, kwargs);
                }
                return V::Unknown;
            }
            _ => {}
        }
        // A function compiled into the archive.
        if let Some(def) = self.code.functions.get(name).cloned() {
            return self.inline(&def, args, kwargs);
        }
        // A NamedTuple or other class made by call.
        if self.code.classes.contains_key(name) {
            return V::Tuple(Rc::new(args));
        }
        if let Some(v) = fold_call(name, &args) {
            return v;
        }
        let target = if let Some(rest) = name.strip_prefix("ops.") {
            match rest.split_once('.') {
                Some((ns, op)) => format!("{ns}::{op}"),
                None => rest.to_string(),
            }
        } else if let Some(rest) = name.strip_prefix("torch.") {
            format!("aten::{}", rest.rsplit('.').next().unwrap_or(rest))
        } else if let Some(rest) = name.strip_prefix("math.") {
            format!("aten::{rest}")
        } else {
            name.to_string()
        };
        self.op(&target, args, kwargs)
    }

    /// A fresh node for target `target`, named after its op with a counter.
    fn new_node(&mut self, op: &str, target: &str) -> Node {
        let c = self.counters.entry(op.to_string()).or_insert(0);
        let name = if *c == 0 {
            op.to_string()
        } else {
            format!("{op}_{c}")
        };
        *c += 1;
        let mut node = Node::new(name, self.ops.get(op), NodeKind::Op);
        node.attributes
            .push(("target".into(), AttrValue::String(target.to_string())));
        node
    }

    /// An op node: tensors in `args` are its inputs, the rest its attributes.
    fn op(&mut self, target: &str, args: Vec<V>, kwargs: Vec<(Rc<str>, V)>) -> V {
        let op = target.rsplit("::").next().unwrap_or(target).to_string();
        let mut node = self.new_node(&op, target);
        let names = arg_names(&op);
        let mut inputs = Vec::new();
        let all = args
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let name: Rc<str> = names
                    .get(i)
                    .map_or_else(|| format!("arg{i}").into(), |&n| n.into());
                (name, v)
            })
            .chain(kwargs);
        for (name, v) in all {
            if v.has_tensor() {
                self.flatten_tensors(&v, &mut inputs);
            } else if !matches!(v, V::Unknown) {
                node.attributes.push((name.to_string(), v.attr()));
            }
        }
        let scalar = SCALAR_OPS.contains(&op.as_str())
            || (SCALAR_IF_INPUTS_ARE.contains(&op.as_str())
                && inputs.iter().all(|v| {
                    self.value_node
                        .get(v)
                        .is_some_and(|n| self.scalar_nodes.contains(n))
                }));
        node.inputs = inputs.into_iter().map(Some).collect();
        let id = self.push_node(node);
        if scalar {
            self.scalar_nodes.insert(id);
        }
        V::Result(id)
    }
}

/// Ops that return a scalar (a flag, a size, a dtype, text), whatever they read.
const SCALAR_OPS: [&str; 40] = [
    "dim",
    "size",
    "numel",
    "device",
    "dtype",
    "layout",
    "requires_grad",
    "is_floating_point",
    "is_complex",
    "is_grad_enabled",
    "is_nested",
    "is_cuda",
    "is_sparse",
    "is_mkldnn",
    "is_quantized",
    "is_autocast_enabled",
    "is_autocast_cpu_enabled",
    "len",
    "format",
    "__contains__",
    "__is__",
    "__isnot__",
    "__not__",
    "Bool",
    "Int",
    "Float",
    "str",
    "type",
    "warn",
    "get_device",
    "item",
    "tolist",
    "all",
    "any",
    "list",
    "keys",
    "values",
    "items",
    "has_torch_function",
    "_has_torch_function",
];

/// Ops that return a scalar when everything they read is one (`eq(dim(x), 3)`).
const SCALAR_IF_INPUTS_ARE: [&str; 20] = [
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "add",
    "sub",
    "mul",
    "div",
    "floordiv",
    "remainder",
    "neg",
    "pow",
    "__and__",
    "__or__",
    "__xor__",
    "min",
    "max",
    "abs",
];

/// Arithmetic and comparisons on known scalars.
fn fold_binary(op: &str, x: &V, y: &V) -> Option<V> {
    match op {
        "is" | "is not" | "==" | "!=" if x.is_const() && y.is_const() => {
            let eq = x.same(y) || matches!((x.as_f64(), y.as_f64()), (Some(a), Some(b)) if a == b);
            return Some(V::Bool(eq == (op == "is" || op == "==")));
        }
        "is" | "is not" if matches!(x, V::None) || matches!(y, V::None) => {
            // A tensor or module is never None.
            let other = if matches!(x, V::None) { y } else { x };
            if other.has_tensor() || matches!(other, V::Module(_)) {
                return Some(V::Bool(op == "is not"));
            }
            return None;
        }
        _ => {}
    }
    if let (V::Int(a), V::Int(b)) = (x, y) {
        let (a, b) = (*a, *b);
        return Some(match op {
            "+" => V::Int(a.wrapping_add(b)),
            "-" => V::Int(a.wrapping_sub(b)),
            "*" => V::Int(a.wrapping_mul(b)),
            "//" if b != 0 => V::Int(a.div_euclid(b)),
            "%" if b != 0 => V::Int(a.rem_euclid(b)),
            "/" if b != 0 => V::Float(a as f64 / b as f64),
            "<" => V::Bool(a < b),
            "<=" => V::Bool(a <= b),
            ">" => V::Bool(a > b),
            ">=" => V::Bool(a >= b),
            _ => return None,
        });
    }
    let (a, b) = (x.as_f64()?, y.as_f64()?);
    Some(match op {
        "+" => V::Float(a + b),
        "-" => V::Float(a - b),
        "*" => V::Float(a * b),
        "/" if b != 0.0 => V::Float(a / b),
        "**" => V::Float(a.powf(b)),
        "<" => V::Bool(a < b),
        "<=" => V::Bool(a <= b),
        ">" => V::Bool(a > b),
        ">=" => V::Bool(a >= b),
        _ => return None,
    })
}

/// `torch.*` scalar functions of known arguments (`torch.__isnot__(None, None)`, `torch.gt(2, 0)`).
fn fold_call(name: &str, args: &[V]) -> Option<V> {
    if !args.iter().all(V::is_const) {
        return None;
    }
    let op = match name.strip_prefix("torch.")? {
        "__is__" => "is",
        "__isnot__" => "is not",
        "eq" => "==",
        "ne" => "!=",
        "lt" => "<",
        "le" => "<=",
        "gt" => ">",
        "ge" => ">=",
        "add" => "+",
        "sub" => "-",
        "mul" => "*",
        "floordiv" => "//",
        "remainder" => "%",
        "__not__" => return args.first()?.truth().map(|t| V::Bool(!t)),
        "neg" => {
            return match args.first()? {
                V::Int(i) => Some(V::Int(i.wrapping_neg())),
                V::Float(f) => Some(V::Float(-f)),
                _ => None,
            };
        }
        "len" => {
            return match args.first()? {
                V::List(l) | V::Tuple(l) => Some(V::Int(l.len() as i64)),
                _ => None,
            };
        }
        _ => return None,
    };
    let [x, y] = args else { return None };
    fold_binary(op, x, y)
}

/// The argument names of common ATen ops, from their schemas (`native_functions.yaml`).
pub(in crate::load) fn arg_names(op: &str) -> &'static [&'static str] {
    match op {
        // The edge dialect's `convolution` (ExecuTorch) takes the first nine.
        "_convolution" | "convolution" => &[
            "input",
            "weight",
            "bias",
            "stride",
            "padding",
            "dilation",
            "transposed",
            "output_padding",
            "groups",
            "benchmark",
            "deterministic",
            "cudnn_enabled",
            "allow_tf32",
        ],
        "conv1d" | "conv2d" | "conv3d" => &[
            "input", "weight", "bias", "stride", "padding", "dilation", "groups",
        ],
        "conv_transpose1d" | "conv_transpose2d" | "conv_transpose3d" => &[
            "input",
            "weight",
            "bias",
            "stride",
            "padding",
            "output_padding",
            "groups",
            "dilation",
        ],
        "batch_norm" => &[
            "input",
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "training",
            "momentum",
            "eps",
            "cudnn_enabled",
        ],
        "layer_norm" => &[
            "input",
            "normalized_shape",
            "weight",
            "bias",
            "eps",
            "cudnn_enable",
        ],
        "group_norm" => &[
            "input",
            "num_groups",
            "weight",
            "bias",
            "eps",
            "cudnn_enabled",
        ],
        "instance_norm" => &[
            "input",
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "use_input_stats",
            "momentum",
            "eps",
            "cudnn_enabled",
        ],
        "linear" => &["input", "weight", "bias"],
        // The edge dialect's ops (what ExecuTorch programs call).
        "_native_batch_norm_legit_no_training" => &[
            "input",
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "momentum",
            "eps",
        ],
        "addmm" => &["input", "mat1", "mat2", "beta", "alpha"],
        "embedding" => &[
            "weight",
            "indices",
            "padding_idx",
            "scale_grad_by_freq",
            "sparse",
        ],
        "max_pool1d" | "max_pool2d" | "max_pool3d" => &[
            "input",
            "kernel_size",
            "stride",
            "padding",
            "dilation",
            "ceil_mode",
        ],
        "avg_pool1d" | "avg_pool2d" | "avg_pool3d" => &[
            "input",
            "kernel_size",
            "stride",
            "padding",
            "ceil_mode",
            "count_include_pad",
            "divisor_override",
        ],
        "adaptive_avg_pool1d"
        | "adaptive_avg_pool2d"
        | "adaptive_avg_pool3d"
        | "adaptive_max_pool2d" => &["input", "output_size"],
        "softmax" | "log_softmax" => &["input", "dim", "dtype"],
        "mean" | "sum" => &["input", "dim", "keepdim", "dtype"],
        "flatten" => &["input", "start_dim", "end_dim"],
        "view" | "reshape" => &["input", "size"],
        "transpose" => &["input", "dim0", "dim1"],
        "permute" => &["input", "dims"],
        "add" | "sub" | "add_" | "sub_" => &["input", "other", "alpha"],
        "mul" | "div" | "matmul" | "mm" | "bmm" | "mul_" | "div_" => &["input", "other"],
        "cat" | "stack" | "concat" => &["tensors", "dim"],
        "dropout" | "feature_dropout" | "dropout_" => &["input", "p", "train"],
        "gelu" => &["input", "approximate"],
        "hardtanh" | "hardtanh_" => &["input", "min_val", "max_val"],
        "leaky_relu" | "leaky_relu_" => &["input", "negative_slope"],
        "chunk" => &["input", "chunks", "dim"],
        "split" => &["input", "split_size", "dim"],
        "slice" => &["input", "dim", "start", "end", "step"],
        "select" => &["input", "dim", "index"],
        "size" => &["input", "dim"],
        "unsqueeze" | "squeeze" => &["input", "dim"],
        "to" => &["input", "dtype", "non_blocking", "copy", "memory_format"],
        "contiguous" => &["input", "memory_format"],
        "upsample_nearest2d" | "upsample_bilinear2d" => &["input", "output_size", "scale_factors"],
        "scaled_dot_product_attention" => &[
            "query",
            "key",
            "value",
            "attn_mask",
            "dropout_p",
            "is_causal",
            "scale",
        ],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_harness_builds_a_module_tree_from_the_code() {
        let src = "__torch__\nclass M(Module):\n  inner : __torch__.L\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n    return torch.relu((self.inner).forward(x, ))\nclass L(Module):\n  def forward(self: __torch__.L, x: Tensor) -> Tensor:\n    return torch.linear(x, x, None)\n";
        // Input, linear (inlined from the submodule), relu, output.
        assert_eq!(fuzz_code(src.as_bytes()), 4);
        assert_eq!(fuzz_code(b"\xff\x00class"), 0);
    }

    #[test]
    fn folds_what_the_code_knows() {
        assert!(matches!(
            fold_call("torch.__isnot__", &[V::None, V::None]),
            Some(V::Bool(false))
        ));
        assert!(matches!(
            fold_call("torch.gt", &[V::Int(2), V::Int(0)]),
            Some(V::Bool(true))
        ));
        assert!(matches!(
            fold_call("torch.add", &[V::Int(2), V::Int(3)]),
            Some(V::Int(5))
        ));
        assert!(fold_call("torch.relu", &[V::Int(1)]).is_none());
        assert!(fold_call("torch.gt", &[V::Unknown, V::Int(0)]).is_none());
        assert!(matches!(
            fold_binary("is not", &V::Tensor(3), &V::None),
            Some(V::Bool(true))
        ));
        assert!(fold_binary("is not", &V::Unknown, &V::None).is_none());
    }
}
