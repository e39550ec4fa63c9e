//! A restricted unpickler for PyTorch checkpoints: it builds a tree of plain values and never runs
//! code.
//!
//! `torch.save` writes a pickle (`data.pkl`) whose tensors are calls of
//! `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` and whose storages are
//! persistent ids `("storage", torch.FloatStorage, "0", "cpu", numel)` naming an archive entry. Python's
//! unpickler would import and call whatever the file names; this one only records calls, and
//! interprets the few torch and `collections` callables a checkpoint is made of ([`reduce`]). Every
//! other object stays an opaque [`Node::Object`] with its arguments and state, so a training
//! checkpoint (optimizer state, a pickled `nn.Module`, custom classes) still reads.
//!
//! Values live in one arena and refer to each other by index: the memo shares them without
//! copying, a container that holds itself is no problem, and dropping is flat. Every opcode reads
//! at least one byte and adds at most one node, and the few operations that copy references draw
//! on a budget proportional to the pickle's length, so time and memory are linear in it.

use std::collections::HashMap;

/// Index of a node in [`Pickle::nodes`].
pub(crate) type Id = u32;

/// One unpickled value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too wide for `i64` (the legacy format's magic number is one).
    BigInt,
    Float(f64),
    Str(String),
    /// Bytes (only their length is kept: checkpoints keep tensor data out of the pickle).
    Bytes(usize),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    /// `module.name`, as `GLOBAL` names it.
    Global(String, String),
    /// A call or object this reader does not interpret, with its arguments and `BUILD` state.
    Object {
        class: Id,
        args: Id,
        state: Option<Id>,
    },
    /// A persistent id (`BINPERSID`): torch's storage tuple.
    PersId(Id),
    /// `_rebuild_tensor_v2/v3`: a view of a storage.
    Tensor {
        storage: Id,
        offset: u64,
        size: Vec<u64>,
        stride: Vec<u64>,
        /// The dtype `_rebuild_tensor_v3` passes (v2 takes it from the storage class).
        dtype: Option<String>,
        /// A quantized tensor's scales and zero points (`_rebuild_qtensor`).
        quant: Option<QParams>,
    },
}

/// The quantizer of a `_rebuild_qtensor`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum QParams {
    /// `torch.per_tensor_affine`: scale and zero point.
    PerTensor(f64, f64),
    /// `torch.per_channel_affine`: the scales' and zero points' tensors and the channel axis.
    PerChannel { scales: Id, zeros: Id, axis: i64 },
}

/// An unpickled object graph.
#[derive(Debug)]
pub(crate) struct Pickle {
    pub nodes: Vec<Node>,
    pub root: Id,
}

impl Pickle {
    /// The node `id` (a `None` for an index out of range, which the reader never makes).
    pub fn get(&self, id: Id) -> &Node {
        self.nodes.get(id as usize).unwrap_or(&Node::None)
    }

    /// The string a node holds.
    pub fn str(&self, id: Id) -> Option<&str> {
        match self.get(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items of a tuple or list.
    pub fn items(&self, id: Id) -> Option<&[Id]> {
        match self.get(id) {
            Node::Tuple(v) | Node::List(v) => Some(v),
            _ => None,
        }
    }
}

/// Bytes of the little-endian length or value that follows a binary opcode.
fn arg_width(op: u8) -> usize {
    match op {
        b'U' | b'C' | 0x8c | b'K' | 0x8a | b'q' | b'h' => 1,
        b'M' => 2,
        0x8d | 0x8e | 0x96 => 8,
        _ => 4, // X T B J LONG4 r j
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// The values read so far (`root` is set at STOP).
    pk: Pickle,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
    /// References the reader may still copy (a `BUILD` merging a dict, a call's arguments, a
    /// value returned by a call): a few per byte of pickle, so a hostile file that copies one
    /// large memoized container again and again is an error, not a quadratic blow-up.
    budget: usize,
}

/// Reads a pickle (protocols 0–5, the opcodes `torch.save` and the standard library's
/// containers use). An error names the opcode and its offset.
pub(crate) fn unpickle(data: &[u8]) -> Result<Pickle, String> {
    unpickle_prefix(data).map(|(pk, _)| pk)
}

/// Reads the pickle at the start of `data` and returns it with the offset just past its STOP
/// opcode (where the next one starts, in a stream of pickles such as the legacy `torch.save`).
pub(crate) fn unpickle_prefix(data: &[u8]) -> Result<(Pickle, usize), String> {
    let mut m = Machine {
        data,
        pos: 0,
        pk: Pickle {
            nodes: Vec::new(),
            root: 0,
        },
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        budget: data.len().saturating_mul(4).saturating_add(1 << 16),
    };
    loop {
        let at = m.pos;
        let op = m
            .byte()
            .map_err(|_| "the pickle ends before its STOP opcode".to_string())?;
        if op == b'.' {
            m.pk.root = m
                .pop()
                .map_err(|e| format!("pickle offset {at}: STOP: {e}"))?;
            return Ok((m.pk, m.pos));
        }
        m.step(op)
            .map_err(|e| format!("pickle offset {at}: opcode 0x{op:02x}: {e}"))?;
    }
}

impl Machine<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.data.get(self.pos).ok_or("truncated")?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&[u8], String> {
        let n = usize::try_from(n).map_err(|_| "length overflows")?;
        let end = self.pos.checked_add(n).ok_or("length overflows")?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| format!("a {n}-byte argument runs past the end"))?;
        self.pos = end;
        Ok(s)
    }

    fn le(&mut self, n: usize) -> Result<u64, String> {
        let s = self.take(n as u64)?;
        Ok(s.iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a text argument has no end of line")?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn push(&mut self, node: Node) -> Id {
        let id = self.pk.nodes.len() as Id;
        self.pk.nodes.push(node);
        self.stack.push(id);
        id
    }

    fn pop(&mut self) -> Result<Id, String> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("pops past a MARK".into());
        }
        self.stack.pop().ok_or_else(|| "the stack is empty".into())
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>, String> {
        let m = self.marks.pop().ok_or("no MARK on the stack")?;
        if m > self.stack.len() {
            return Err("a MARK above the stack".into());
        }
        Ok(self.stack.split_off(m))
    }

    fn top(&self) -> Result<Id, String> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("reads past a MARK".into());
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| "the stack is empty".into())
    }

    fn node_mut(&mut self, id: Id) -> Result<&mut Node, String> {
        self.pk
            .nodes
            .get_mut(id as usize)
            .ok_or_else(|| "bad reference".into())
    }

    /// The memo index a PUT/GET opcode names: a binary argument, a text line, or (MEMOIZE) the
    /// next free one.
    fn memo_key(&mut self, op: u8) -> Result<u64, String> {
        match op {
            b'p' | b'g' => self
                .line()?
                .trim()
                .parse()
                .map_err(|_| "bad memo index".into()),
            0x94 => Ok(self.memo.len() as u64),
            _ => self.le(arg_width(op)),
        }
    }

    fn memo_get(&mut self, key: u64) -> Result<(), String> {
        let id = u32::try_from(key)
            .ok()
            .and_then(|k| self.memo.get(&k).copied())
            .ok_or_else(|| format!("memo entry {key} was never stored"))?;
        self.stack.push(id);
        Ok(())
    }

    fn memo_put(&mut self, key: u64) -> Result<(), String> {
        let id = self.top()?;
        let key = u32::try_from(key).map_err(|_| "memo key overflows")?;
        self.memo.insert(key, id);
        Ok(())
    }

    fn string(&mut self, n: u64) -> Result<(), String> {
        let s = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.push(Node::Str(s));
        Ok(())
    }

    fn bytes(&mut self, n: u64) -> Result<(), String> {
        self.take(n)?;
        self.push(Node::Bytes(n as usize));
        Ok(())
    }

    fn long(&mut self, n: u64) -> Result<(), String> {
        let s = self.take(n)?;
        let node = if s.is_empty() {
            Node::Int(0)
        } else if s.len() <= 8 {
            // Little-endian two's complement, sign-extended from its top byte.
            let mut b = [if s[s.len() - 1] & 0x80 != 0 { 0xff } else { 0 }; 8];
            b[..s.len()].copy_from_slice(s);
            Node::Int(i64::from_le_bytes(b))
        } else {
            Node::BigInt
        };
        self.push(node);
        Ok(())
    }

    fn step(&mut self, op: u8) -> Result<(), String> {
        match op {
            0x80 => {
                self.byte()?; // PROTO
            }
            0x95 => {
                self.le(8)?; // FRAME: a length hint
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.push(Node::Global(module, name));
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Node::Str(m), Node::Str(n)) = (self.pk.get(module), self.pk.get(name)) else {
                    return Err("STACK_GLOBAL of non-strings".into());
                };
                let g = Node::Global(m.clone(), n.clone());
                self.push(g);
            }
            b'Q' => {
                let pid = self.pop()?;
                self.push(Node::PersId(pid));
            }
            b'P' => {
                let s = self.line()?;
                let pid = self.pk.nodes.len() as Id;
                self.pk.nodes.push(Node::Str(s));
                self.push(Node::PersId(pid));
            }
            b'R' => {
                let args = self.pop()?;
                let func = self.pop()?;
                let node = self.reduce(func, args, 0)?;
                self.push(node);
            }
            0x81 => {
                let args = self.pop()?;
                let class = self.pop()?;
                self.push(Node::Object {
                    class,
                    args,
                    state: None,
                });
            }
            0x92 => {
                let _kwargs = self.pop()?;
                let args = self.pop()?;
                let class = self.pop()?;
                self.push(Node::Object {
                    class,
                    args,
                    state: None,
                });
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?;
                let add = match self.pk.get(state) {
                    Node::Dict(pairs) if matches!(self.pk.get(target), Node::Dict(_)) => {
                        let pairs = pairs.clone();
                        self.spend(pairs.len())?;
                        pairs
                    }
                    _ => Vec::new(),
                };
                match self.node_mut(target)? {
                    Node::Object { state: s, .. } => *s = Some(state),
                    Node::Dict(pairs) => pairs.extend(add),
                    _ => {}
                }
            }
            b'}' => {
                self.push(Node::Dict(Vec::new()));
            }
            b']' | 0x8f => {
                self.push(Node::List(Vec::new()));
            }
            b')' => {
                self.push(Node::Tuple(Vec::new()));
            }
            b'(' => self.marks.push(self.stack.len()),
            b't' => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items));
            }
            b'l' | 0x91 => {
                let items = self.pop_mark()?;
                self.push(Node::List(items));
            }
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                self.push(Node::Dict(pairs));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push(Node::Tuple(items));
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                let d = self.top()?;
                if let Node::Dict(pairs) = self.node_mut(d)? {
                    pairs.push((k, v));
                }
            }
            b'u' => {
                let items = self.pop_mark()?;
                let d = self.top()?;
                if let Node::Dict(pairs) = self.node_mut(d)? {
                    pairs.extend(items.chunks_exact(2).map(|p| (p[0], p[1])));
                }
            }
            b'a' => {
                let v = self.pop()?;
                let l = self.top()?;
                if let Node::List(items) = self.node_mut(l)? {
                    items.push(v);
                }
            }
            b'e' | 0x90 => {
                let add = self.pop_mark()?;
                let l = self.top()?;
                if let Node::List(items) = self.node_mut(l)? {
                    items.extend(add);
                }
            }
            b'X' | b'T' | 0x8c | b'U' | 0x8d => {
                let n = self.le(arg_width(op))?;
                self.string(n)?;
            }
            b'V' | b'S' => {
                let s = self.line()?;
                self.push(Node::Str(s));
            }
            b'B' | b'C' | 0x8e | 0x96 => {
                let n = self.le(arg_width(op))?;
                self.bytes(n)?;
            }
            b'J' => {
                let v = self.le(4)? as u32 as i32;
                self.push(Node::Int(i64::from(v)));
            }
            b'K' | b'M' => {
                let v = self.le(arg_width(op))?;
                self.push(Node::Int(v as i64));
            }
            0x8a | 0x8b => {
                let n = self.le(arg_width(op))?;
                self.long(n)?;
            }
            b'I' | b'L' => {
                let s = self.line()?;
                let t = s.trim_end_matches('L');
                let node = match t {
                    "00" => Node::Bool(false),
                    "01" => Node::Bool(true),
                    _ => t.parse().map_or(Node::BigInt, Node::Int),
                };
                self.push(node);
            }
            b'F' => {
                let s = self.line()?;
                self.push(Node::Float(s.trim().parse().unwrap_or(f64::NAN)));
            }
            b'G' => {
                let s = self.take(8)?;
                let mut b = [0u8; 8];
                b.copy_from_slice(s);
                self.push(Node::Float(f64::from_be_bytes(b)));
            }
            b'N' => {
                self.push(Node::None);
            }
            0x88 => {
                self.push(Node::Bool(true));
            }
            0x89 => {
                self.push(Node::Bool(false));
            }
            b'q' | b'r' | b'p' | 0x94 => {
                let k = self.memo_key(op)?;
                self.memo_put(k)?;
            }
            b'h' | b'j' | b'g' => {
                let k = self.memo_key(op)?;
                self.memo_get(k)?;
            }
            b'0' => {
                if self.marks.last().is_some_and(|&m| m == self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let t = self.top()?;
                self.stack.push(t);
            }
            _ => return Err("not an opcode this reader knows".into()),
        }
        Ok(())
    }

    /// Draws `n` copied references from the budget.
    fn spend(&mut self, n: usize) -> Result<(), String> {
        self.budget = self.budget.checked_sub(n).ok_or(
            "the pickle copies the same containers over and over (more references than a \
             checkpoint of its size holds)",
        )?;
        Ok(())
    }

    /// The number of references a node holds (what copying it costs).
    fn weight(&self, id: Id) -> usize {
        match self.pk.get(id) {
            Node::Tuple(v) | Node::List(v) => v.len(),
            Node::Dict(p) => p.len() * 2,
            Node::Tensor { size, stride, .. } => size.len() + stride.len(),
            _ => 1,
        }
    }

    /// The value of `func(*args)` for the callables a checkpoint is made of; an opaque object for
    /// the rest.
    fn reduce(&mut self, func: Id, args: Id, depth: u32) -> Result<Node, String> {
        let opaque = Node::Object {
            class: func,
            args,
            state: None,
        };
        let Node::Global(module, name) = self.pk.get(func) else {
            return Ok(opaque);
        };
        let (module, name) = (module.clone(), name.clone());
        self.spend(self.weight(args))?;
        let argv: Vec<Id> = match self.pk.get(args) {
            Node::Tuple(v) | Node::List(v) => v.clone(),
            _ => return Ok(opaque),
        };
        Ok(match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") | ("builtins" | "__builtin__", "dict") => {
                // OrderedDict() then SETITEMS, or OrderedDict([(k, v), …]).
                let mut pairs = Vec::new();
                if let Some(&list) = argv.first() {
                    self.spend(self.weight(list))?;
                }
                if let Some(&list) = argv.first()
                    && let Node::List(items) | Node::Tuple(items) = self.pk.get(list)
                {
                    for &p in items {
                        if let Node::Tuple(kv) | Node::List(kv) = self.pk.get(p)
                            && let [k, v] = kv.as_slice()
                        {
                            pairs.push((*k, *v));
                        }
                    }
                }
                Node::Dict(pairs)
            }
            // A quantized tensor (`_rebuild_qtensor`) is a view the same way; its fifth argument
            // is `(torch.per_tensor_affine, scale, zero_point)` or
            // `(torch.per_channel_affine, scales, zero_points, axis)`, both kept.
            (
                "torch._utils",
                "_rebuild_tensor_v2" | "_rebuild_tensor" | "_rebuild_tensor_v3"
                | "_rebuild_qtensor",
            ) => {
                for id in [argv.get(2), argv.get(3)].into_iter().flatten() {
                    self.spend(self.weight(*id))?;
                }
                let int_list = |id: Option<&Id>| -> Option<Vec<u64>> {
                    self.pk
                        .items(*id?)?
                        .iter()
                        .map(|&i| match self.pk.get(i) {
                            Node::Int(v) => u64::try_from(*v).ok(),
                            _ => None,
                        })
                        .collect()
                };
                let offset = match argv.get(1).map(|&i| self.pk.get(i)) {
                    Some(Node::Int(v)) => u64::try_from(*v).ok(),
                    _ => None,
                };
                let (Some(&storage), Some(offset), Some(size), Some(stride)) = (
                    argv.first(),
                    offset,
                    int_list(argv.get(2)),
                    int_list(argv.get(3)),
                ) else {
                    return Ok(opaque);
                };
                let dtype = if name == "_rebuild_tensor_v3" {
                    argv.get(6).and_then(|&d| match self.pk.get(d) {
                        Node::Global(_, n) => Some(n.clone()),
                        _ => None,
                    })
                } else {
                    None
                };
                let quant = (name == "_rebuild_qtensor")
                    .then(|| {
                        let items = self.pk.items(*argv.get(4)?)?;
                        let number = |i: usize| match self.pk.get(*items.get(i)?) {
                            Node::Float(v) => Some(*v),
                            Node::Int(v) => Some(*v as f64),
                            _ => None,
                        };
                        let Node::Global(m, n) = self.pk.get(*items.first()?) else {
                            return None;
                        };
                        match (m.as_str(), n.as_str()) {
                            ("torch", "per_tensor_affine") => {
                                Some(QParams::PerTensor(number(1)?, number(2)?))
                            }
                            // Float zero points (`per_channel_affine_float_qparams`, as
                            // quantized embeddings have) dequantize by the same formula, and
                            // torch pickles them under `per_channel_affine`; the other name is
                            // taken as well.
                            (
                                "torch",
                                "per_channel_affine" | "per_channel_affine_float_qparams",
                            ) => Some(QParams::PerChannel {
                                scales: *items.get(1)?,
                                zeros: *items.get(2)?,
                                axis: number(3)? as i64,
                            }),
                            _ => None,
                        }
                    })
                    .flatten();
                Node::Tensor {
                    storage,
                    offset,
                    size,
                    stride,
                    dtype,
                    quant,
                }
            }
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state")
            | ("torch", "Size")
            | ("builtins" | "__builtin__", "list" | "tuple" | "set" | "frozenset") => {
                match argv.first() {
                    Some(&a) => {
                        self.spend(self.weight(a))?;
                        self.pk.get(a).clone()
                    }
                    None => opaque,
                }
            }
            ("torch._tensor", "_rebuild_from_type_v2") => {
                // (func, new_type, args, state): a tensor subclass rebuilt by `func(*args)`; one
                // level deep in practice, a few at most.
                match argv.as_slice() {
                    [f, _, a, ..] if depth < 4 => self.reduce(*f, *a, depth + 1)?,
                    _ => opaque,
                }
            }
            _ => opaque,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_memo_and_calls() {
        // pickle.dumps({"a": [1, -2, 3.5], "b": ("x", None, True), "c": OrderedDict(), "d": a},
        // protocol=2) by hand: a dict with a list, a tuple, a reduce and a memo reference.
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'(']; // PROTO 2, EMPTY_DICT, BINPUT 0, MARK
        p.extend(b"X\x01\x00\x00\x00a"); // 'a'
        p.extend([b']', b'q', 1, b'(', b'K', 1, b'J']); // [ BINPUT 1 MARK 1 BININT
        p.extend((-2i32).to_le_bytes());
        p.push(b'G');
        p.extend(3.5f64.to_be_bytes());
        p.push(b'e'); // APPENDS
        p.extend(b"X\x01\x00\x00\x00b");
        p.extend([0x8c, 1, b'x', b'N', 0x88, 0x87]); // 'x' None True TUPLE3
        p.extend(b"X\x01\x00\x00\x00c");
        p.extend(b"ccollections\nOrderedDict\n)R");
        p.extend(b"X\x01\x00\x00\x00d");
        p.extend([b'h', 1, b'u', b'.']); // BINGET 1, SETITEMS, STOP
        let pk = unpickle(&p).unwrap();
        let Node::Dict(pairs) = pk.get(pk.root) else {
            panic!("root is {:?}", pk.get(pk.root))
        };
        let keys: Vec<&str> = pairs.iter().filter_map(|(k, _)| pk.str(*k)).collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
        let list = pk.items(pairs[0].1).unwrap();
        assert_eq!(pk.get(list[0]), &Node::Int(1));
        assert_eq!(pk.get(list[1]), &Node::Int(-2));
        assert_eq!(pk.get(list[2]), &Node::Float(3.5));
        assert_eq!(pk.items(pairs[1].1).unwrap().len(), 3);
        assert_eq!(pk.get(pairs[2].1), &Node::Dict(Vec::new()));
        // The memo shares the list itself.
        assert_eq!(pairs[3].1, pairs[0].1);
    }

    #[test]
    fn bad_pickles_are_errors() {
        for (bytes, what) in [
            (&b""[..], "ends before its STOP"),
            (b"\x80\x02", "ends before its STOP"),
            (b"\x80\x02.", "stack is empty"),
            (b"(t(.", "past a MARK"),
            (b"h\x05.", "never stored"),
            (b"X\xff\xff\xff\x7f", "runs past the end"),
            (b"u.", "no MARK"),
            (b"\xfe", "not an opcode"),
            (b"(K\x01(0R.", "past a MARK"),
        ] {
            let e = unpickle(bytes).unwrap_err();
            assert!(e.contains(what), "{bytes:?}: {e}");
        }
        // A dict merged into itself by BUILD doubles each time: 60 BUILDs would hold 2⁶⁰
        // references. The copy budget stops it.
        let mut p = b"}q\x00(K\x01K\x02K\x03K\x04u".to_vec();
        for _ in 0..60 {
            p.extend(b"h\x00b");
        }
        p.push(b'.');
        let e = unpickle(&p).unwrap_err();
        assert!(e.contains("over and over"), "{e}");
        // A tensor-subclass rebuild whose arguments are itself recurses a few levels, not forever.
        let mut p = b"ctorch._tensor\n_rebuild_from_type_v2\nq\x00".to_vec();
        p.extend(b"]q\x01(h\x00Nh\x01Ne"); // L = [G, None, L, None]
        p.extend(b"R."); // G(*L)
        let pk = unpickle(&p).unwrap();
        assert!(matches!(pk.get(pk.root), Node::Object { .. }));
        // A list that holds itself is fine (no copying, no recursion).
        let pk = unpickle(b"]q\x00h\x00a.").unwrap();
        assert_eq!(pk.get(pk.root), &Node::List(vec![pk.root]));
    }
}
