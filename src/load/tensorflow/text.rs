//! TensorFlow graphs in protobuf text format (`.pbtxt`, `tf.io.write_graph(..., as_text=True)`).
//!
//! The text is parsed into fields and re-encoded as the binary wire format through a table of the
//! `GraphDef` messages' field numbers and types, so the binary reader does the rest. Fields the
//! table does not know (a function library, debug info) are skipped, as prost skips unknown binary
//! fields. Nesting is bounded.

/// Deepest nesting of messages.
const MAX_DEPTH: u32 = 64;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// A varint: int32/int64/uint32/uint64, bool, or an enum (`DT_FLOAT`).
    Varint,
    /// `float` (fixed32).
    Float,
    /// `double` (fixed64).
    Double,
    /// `string` / `bytes`.
    Bytes,
    /// A nested message, by its index in [`MESSAGES`].
    Message(usize),
}

/// A message's fields: `(name, number, kind)`.
type Fields = &'static [(&'static str, u32, Kind)];

const GRAPH_DEF: usize = 0;
const NODE_DEF: usize = 1;
const ATTR_ENTRY: usize = 2;
const ATTR_VALUE: usize = 3;
const LIST_VALUE: usize = 4;
const SHAPE: usize = 5;
const DIM: usize = 6;
const TENSOR: usize = 7;
const VERSION: usize = 8;
const NAME_ATTR_LIST: usize = 9;

/// The messages of a `GraphDef`, with the field numbers of `tensorflow/core/framework/*.proto`.
const MESSAGES: [Fields; 10] = [
    // GraphDef
    &[
        ("node", 1, Kind::Message(NODE_DEF)),
        ("versions", 4, Kind::Message(VERSION)),
    ],
    // NodeDef
    &[
        ("name", 1, Kind::Bytes),
        ("op", 2, Kind::Bytes),
        ("input", 3, Kind::Bytes),
        ("device", 4, Kind::Bytes),
        ("attr", 5, Kind::Message(ATTR_ENTRY)),
    ],
    // map<string, AttrValue> entry
    &[
        ("key", 1, Kind::Bytes),
        ("value", 2, Kind::Message(ATTR_VALUE)),
    ],
    // AttrValue
    &[
        ("list", 1, Kind::Message(LIST_VALUE)),
        ("s", 2, Kind::Bytes),
        ("i", 3, Kind::Varint),
        ("f", 4, Kind::Float),
        ("b", 5, Kind::Varint),
        ("type", 6, Kind::Varint),
        ("shape", 7, Kind::Message(SHAPE)),
        ("tensor", 8, Kind::Message(TENSOR)),
        ("placeholder", 9, Kind::Bytes),
        ("func", 10, Kind::Message(NAME_ATTR_LIST)),
    ],
    // AttrValue.ListValue
    &[
        ("s", 2, Kind::Bytes),
        ("i", 3, Kind::Varint),
        ("f", 4, Kind::Float),
        ("b", 5, Kind::Varint),
        ("type", 6, Kind::Varint),
        ("shape", 7, Kind::Message(SHAPE)),
        ("tensor", 8, Kind::Message(TENSOR)),
        ("func", 9, Kind::Message(NAME_ATTR_LIST)),
    ],
    // TensorShapeProto
    &[
        ("dim", 2, Kind::Message(DIM)),
        ("unknown_rank", 3, Kind::Varint),
    ],
    // TensorShapeProto.Dim
    &[("size", 1, Kind::Varint), ("name", 2, Kind::Bytes)],
    // TensorProto
    &[
        ("dtype", 1, Kind::Varint),
        ("tensor_shape", 2, Kind::Message(SHAPE)),
        ("version_number", 3, Kind::Varint),
        ("tensor_content", 4, Kind::Bytes),
        ("half_val", 13, Kind::Varint),
        ("float_val", 5, Kind::Float),
        ("double_val", 6, Kind::Double),
        ("int_val", 7, Kind::Varint),
        ("string_val", 8, Kind::Bytes),
        ("int64_val", 10, Kind::Varint),
        ("bool_val", 11, Kind::Varint),
        ("uint32_val", 16, Kind::Varint),
        ("uint64_val", 17, Kind::Varint),
    ],
    // VersionDef
    &[
        ("producer", 1, Kind::Varint),
        ("min_consumer", 2, Kind::Varint),
    ],
    // NameAttrList
    &[("name", 1, Kind::Bytes)],
];

/// `DataType` names as text format writes them.
const DATA_TYPES: [(&str, i64); 25] = [
    ("DT_INVALID", 0),
    ("DT_FLOAT", 1),
    ("DT_DOUBLE", 2),
    ("DT_INT32", 3),
    ("DT_UINT8", 4),
    ("DT_INT16", 5),
    ("DT_INT8", 6),
    ("DT_STRING", 7),
    ("DT_COMPLEX64", 8),
    ("DT_INT64", 9),
    ("DT_BOOL", 10),
    ("DT_QINT8", 11),
    ("DT_QUINT8", 12),
    ("DT_QINT32", 13),
    ("DT_BFLOAT16", 14),
    ("DT_QINT16", 15),
    ("DT_QUINT16", 16),
    ("DT_UINT16", 17),
    ("DT_COMPLEX128", 18),
    ("DT_HALF", 19),
    ("DT_RESOURCE", 20),
    ("DT_VARIANT", 21),
    ("DT_UINT32", 22),
    ("DT_UINT64", 23),
    ("DT_FLOAT8_E5M2", 24),
];

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(Vec<u8>),
    Punct(u8),
}

fn tokens(src: &[u8]) -> Result<Vec<(Tok, u32)>, String> {
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1u32);
    while i < src.len() {
        let c = src[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            b'#' => {
                while i < src.len() && src[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' | b'}' | b':' | b'[' | b']' | b',' | b';' | b'<' | b'>' => {
                out.push((Tok::Punct(c), line));
                i += 1;
            }
            b'"' | b'\'' => {
                let (s, next) = string(src, i).map_err(|e| format!("line {line}: {e}"))?;
                out.push((Tok::Str(s), line));
                i = next;
            }
            c if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'.') => {
                let start = i;
                while i < src.len()
                    && (src[i].is_ascii_alphanumeric()
                        || matches!(src[i], b'_' | b'-' | b'+' | b'.'))
                {
                    i += 1;
                }
                out.push((
                    Tok::Word(String::from_utf8_lossy(&src[start..i]).into_owned()),
                    line,
                ));
            }
            other => {
                return Err(format!(
                    "line {line}: unexpected character {:?}",
                    other as char
                ));
            }
        }
    }
    Ok(out)
}

/// A quoted string with C escapes (`\000`, `\x41`, `\n`, `\"`).
fn string(src: &[u8], start: usize) -> Result<(Vec<u8>, usize), String> {
    let q = src[start];
    let mut i = start + 1;
    let mut out = Vec::new();
    loop {
        let c = *src.get(i).ok_or("a string runs to the end of the file")?;
        i += 1;
        match c {
            b'\n' => return Err("a string runs past the end of its line".into()),
            c if c == q => return Ok((out, i)),
            b'\\' => {
                let e = *src.get(i).ok_or("a string runs to the end of the file")?;
                i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'v' => out.push(11),
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            match src.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push(v as u8);
                    }
                    b'x' => {
                        let mut v = 0u32;
                        for _ in 0..2 {
                            match src.get(i).and_then(|d| (*d as char).to_digit(16)) {
                                Some(d) => {
                                    v = v * 16 + d;
                                    i += 1;
                                }
                                None => break,
                            }
                        }
                        out.push(v as u8);
                    }
                    other => out.push(other),
                }
            }
            c => out.push(c),
        }
    }
}

struct Encoder {
    toks: Vec<(Tok, u32)>,
    pos: usize,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Encoder {
    fn line(&self) -> u32 {
        self.toks.get(self.pos).map_or(0, |t| t.1)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn punct(&mut self, c: u8) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Fields until `close` (or the end, for the top level), encoded for message `m`.
    fn message(
        &mut self,
        m: Option<usize>,
        close: Option<u8>,
        depth: u32,
    ) -> Result<Vec<u8>, String> {
        if depth > MAX_DEPTH {
            return Err(format!("line {}: messages nested too deeply", self.line()));
        }
        let mut out = Vec::new();
        loop {
            match (self.peek(), close) {
                (None, None) => return Ok(out),
                (None, Some(_)) => return Err("a message runs to the end of the file".into()),
                (Some(Tok::Punct(c)), Some(want)) if *c == want => {
                    self.pos += 1;
                    return Ok(out);
                }
                _ => {}
            }
            let line = self.line();
            let name = match self.toks.get(self.pos) {
                Some((Tok::Word(w), _)) => w.clone(),
                _ => return Err(format!("line {line}: expected a field name")),
            };
            self.pos += 1;
            let field = m
                .and_then(|m| MESSAGES[m].iter().find(|f| f.0 == name))
                .copied();
            let colon = self.punct(b':');
            let values = if self.punct(b'[') {
                let mut v = Vec::new();
                while !self.punct(b']') {
                    v.push(self.value(field, depth, colon, line)?);
                    self.punct(b',');
                    if self.peek().is_none() {
                        return Err(format!("line {line}: a list runs to the end of the file"));
                    }
                }
                v
            } else {
                vec![self.value(field, depth, colon, line)?]
            };
            if let Some((_, number, kind)) = field {
                for v in values.into_iter().flatten() {
                    let wire = match kind {
                        Kind::Varint => 0,
                        Kind::Double => 1,
                        Kind::Float => 5,
                        Kind::Bytes | Kind::Message(_) => 2,
                    };
                    varint(&mut out, u64::from(number) << 3 | wire);
                    if wire == 2 {
                        varint(&mut out, v.len() as u64);
                    }
                    out.extend_from_slice(&v);
                }
            }
            if !self.punct(b',') {
                self.punct(b';');
            }
        }
    }

    /// One value of a field, encoded (without its tag); `None` for a field the table skips.
    fn value(
        &mut self,
        field: Option<(&str, u32, Kind)>,
        depth: u32,
        colon: bool,
        line: u32,
    ) -> Result<Option<Vec<u8>>, String> {
        let kind = field.map(|f| f.2);
        // A message: `{ … }` or `< … >`.
        for (open, close) in [(b'{', b'}'), (b'<', b'>')] {
            if self.punct(open) {
                let m = match kind {
                    Some(Kind::Message(m)) => Some(m),
                    _ => None,
                };
                let body = self.message(m, Some(close), depth + 1)?;
                return Ok(m.map(|_| body));
            }
        }
        if !colon {
            return Err(format!("line {line}: expected ':' or '{{'"));
        }
        let tok = self.toks.get(self.pos).map(|t| &t.0);
        let out = match (kind, tok) {
            (None, Some(Tok::Word(_) | Tok::Str(_))) => None,
            (Some(Kind::Bytes), Some(Tok::Str(s))) => {
                let mut s = s.clone();
                // Adjacent strings concatenate.
                while let Some((Tok::Str(more), _)) = self.toks.get(self.pos + 1) {
                    s.extend_from_slice(more);
                    self.pos += 1;
                }
                Some(s)
            }
            (Some(Kind::Varint), Some(Tok::Word(w))) => {
                let v = match w.as_str() {
                    "true" | "True" | "t" => 1,
                    "false" | "False" | "f" => 0,
                    w => match DATA_TYPES.iter().find(|(n, _)| *n == w) {
                        Some(&(_, v)) => v,
                        None => w
                            .parse::<i64>()
                            .ok()
                            .or_else(|| w.parse::<u64>().ok().map(|u| u as i64))
                            .ok_or_else(|| format!("line {line}: {w:?} is not an integer"))?,
                    },
                };
                let mut b = Vec::new();
                varint(&mut b, v as u64);
                Some(b)
            }
            (Some(Kind::Float | Kind::Double), Some(Tok::Word(w))) => {
                let t = w.trim_end_matches(['f', 'F']);
                let v: f64 = match t.to_ascii_lowercase().as_str() {
                    "inf" | "infinity" => f64::INFINITY,
                    "-inf" | "-infinity" => f64::NEG_INFINITY,
                    "nan" => f64::NAN,
                    _ => t
                        .parse()
                        .map_err(|_| format!("line {line}: {w:?} is not a number"))?,
                };
                Some(if kind == Some(Kind::Float) {
                    (v as f32).to_le_bytes().to_vec()
                } else {
                    v.to_le_bytes().to_vec()
                })
            }
            _ => return Err(format!("line {line}: a value of the wrong kind")),
        };
        self.pos += 1;
        Ok(out)
    }
}

/// Re-encodes a text-format `GraphDef` as binary.
pub(super) fn graph_def_to_binary(src: &[u8]) -> Result<Vec<u8>, String> {
    let mut e = Encoder {
        toks: tokens(src)?,
        pos: 0,
    };
    e.message(Some(GRAPH_DEF), None, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn text_graphs_encode_as_their_binary_messages() {
        let text = br#"
node {
  name: "x"
  op: "Placeholder"
  attr { key: "dtype" value { type: DT_FLOAT } }
  attr { key: "shape" value { shape { dim { size: -1 } dim { size: 3 } } } }
}
node {
  name: "w"
  op: "Const"
  attr {
    key: "value"
    value {
      tensor {
        dtype: DT_FLOAT
        tensor_shape { dim { size: 2 } }
        tensor_content: "\000\000\200?\000\000\000@"
      }
    }
  }
}
node { name: "y" op: "Mul" input: "x" input: "w" input: "^ctl"
  attr { key: "strides" value { list { i: [1, 2, 2, 1] } } }
  attr { key: "eps" value { f: 0.001 } }
  debug_info { original_node_names: "ignored" }
}
versions { producer: 27 }
library { function { signature { name: "f" } } }
"#;
        let bin = graph_def_to_binary(text).unwrap();
        let g = super::super::proto::GraphDef::decode(bin.as_slice()).unwrap();
        assert_eq!(g.node.len(), 3);
        assert_eq!(g.node[2].input, ["x", "w", "^ctl"]);
        assert_eq!(g.versions.unwrap().producer, 27);
        use super::super::proto::attr_value::Value as AV;
        let shape = &g.node[0].attr["shape"];
        assert!(
            matches!(&shape.value, Some(AV::Shape(s)) if s.dim[0].size == -1 && s.dim[1].size == 3)
        );
        let Some(AV::Tensor(t)) = &g.node[1].attr["value"].value else {
            panic!()
        };
        assert_eq!(t.dtype, 1);
        assert_eq!(&t.tensor_content[..], &[0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
        assert!(
            matches!(&g.node[2].attr["strides"].value, Some(AV::List(l)) if l.i == [1, 2, 2, 1])
        );
        assert!(matches!(g.node[2].attr["eps"].value, Some(AV::F(f)) if (f - 0.001).abs() < 1e-9));
        // Errors name the line.
        for bad in [
            &b"node { name: \"x\" "[..],
            b"node { name \"x\" }",
            b"node { name: \"x }",
        ] {
            assert!(
                graph_def_to_binary(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "node { ".repeat(100);
        assert!(graph_def_to_binary(deep.as_bytes()).is_err());
    }
}
