//! A parser for the Python subset that TorchScript serializes (`code/__torch__/…/*.py` in a
//! `torch.jit.save` archive): classes with typed attributes and methods, free functions, and the
//! statements and expressions `torch/csrc/jit/serialization/python_print.cpp` writes.
//!
//! It runs nothing. Every recursion is bounded by [`MAX_NESTING`], so a file of ten thousand
//! opening brackets is an error, not a stack overflow.

use std::collections::HashMap;
use std::rc::Rc;

/// Deepest nesting of brackets, blocks and operators.
const MAX_NESTING: u32 = 200;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    Op(&'static str),
    Newline,
    Indent,
    Dedent,
    End,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: u32,
}

const OPS: [&str; 47] = [
    "**=", "//=", ">>=", "<<=", "...", "->", "**", "//", "==", "!=", "<=", ">=", "<<", ">>", "+=",
    "-=", "*=", "/=", "%=", "&=", "|=", "^=", "@=", ":=", "+", "-", "*", "/", "%", "@", "&", "|",
    "^", "~", "<", ">", "(", ")", "[", "]", "{", "}", ",", ":", ".", ";", "=",
];

/// Splits source text into tokens, with Python's indentation and implicit line joining.
fn tokenize(src: &str) -> Result<Vec<Token>, String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut indents: Vec<usize> = vec![0];
    let (mut i, mut line, mut depth) = (0usize, 1u32, 0u32);
    let mut at_line_start = true;
    let push = |out: &mut Vec<Token>, tok: Tok, line: u32| out.push(Token { tok, line });
    while i < b.len() {
        if at_line_start && depth == 0 {
            // Measure the indentation; blank and comment-only lines do not count.
            let mut col = 0usize;
            let mut j = i;
            while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                col = if b[j] == b'\t' {
                    (col / 8 + 1) * 8
                } else {
                    col + 1
                };
                j += 1;
            }
            if j >= b.len() {
                break;
            }
            if b[j] == b'\n' || b[j] == b'\r' || b[j] == b'#' {
                while j < b.len() && b[j] != b'\n' {
                    j += 1;
                }
                i = j + 1;
                line += 1;
                continue;
            }
            i = j;
            at_line_start = false;
            let top = indents.last().copied().unwrap_or(0);
            if col > top {
                indents.push(col);
                push(&mut out, Tok::Indent, line);
            } else {
                while col < indents.last().copied().unwrap_or(0) {
                    indents.pop();
                    push(&mut out, Tok::Dedent, line);
                }
                if col != indents.last().copied().unwrap_or(0) {
                    return Err(format!(
                        "line {line}: the indentation matches no outer block"
                    ));
                }
            }
            continue;
        }
        let c = b[i];
        match c {
            b'\n' => {
                if depth == 0 {
                    push(&mut out, Tok::Newline, line);
                    at_line_start = true;
                }
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b'\x0c' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\\' if b.get(i + 1) == Some(&b'\n') => {
                i += 2;
                line += 1;
            }
            b'"' | b'\'' => {
                let (s, next, lines) = string(b, i).map_err(|e| format!("line {line}: {e}"))?;
                push(&mut out, Tok::Str(s), line);
                line += lines;
                i = next;
            }
            b'0'..=b'9' => {
                let (t, next) = number(b, i);
                push(&mut out, t, line);
                i = next;
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (t, next) = number(b, i);
                push(&mut out, t, line);
                i = next;
            }
            c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                let start = i;
                while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric() || b[i] >= 0x80)
                {
                    i += 1;
                }
                // String prefixes (r"", b"", u"", f"").
                let word = &src[start..i];
                if matches!(b.get(i), Some(b'"' | b'\''))
                    && word.len() <= 2
                    && word.chars().all(|c| "rRbBuUfF".contains(c))
                {
                    let (s, next, lines) = string(b, i).map_err(|e| format!("line {line}: {e}"))?;
                    push(&mut out, Tok::Str(s), line);
                    line += lines;
                    i = next;
                } else {
                    push(&mut out, Tok::Name(word.to_string()), line);
                }
            }
            _ => {
                let Some(op) = OPS.iter().find(|op| b[i..].starts_with(op.as_bytes())) else {
                    return Err(format!(
                        "line {line}: unexpected character {:?}",
                        src[i..].chars().next().unwrap_or('?')
                    ));
                };
                match *op {
                    "(" | "[" | "{" => {
                        depth += 1;
                        if depth > MAX_NESTING {
                            return Err(format!("line {line}: brackets nested too deeply"));
                        }
                    }
                    ")" | "]" | "}" => depth = depth.saturating_sub(1),
                    _ => {}
                }
                push(&mut out, Tok::Op(op), line);
                i += op.len();
            }
        }
    }
    if !at_line_start {
        push(&mut out, Tok::Newline, line);
    }
    for _ in 1..indents.len() {
        push(&mut out, Tok::Dedent, line);
    }
    push(&mut out, Tok::End, line);
    Ok(out)
}

/// A number literal at `i`: `(token, next index)`.
fn number(b: &[u8], mut i: usize) -> (Tok, usize) {
    let start = i;
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        let s = i;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
            i += 1;
        }
        let text: String = b[s..i]
            .iter()
            .filter(|&&c| c != b'_')
            .map(|&c| c as char)
            .collect();
        return match i64::from_str_radix(&text, 16) {
            Ok(v) => (Tok::Int(v), i),
            Err(_) => (Tok::Float(f64::NAN), i),
        };
    }
    let mut float = false;
    while i < b.len() {
        match b[i] {
            b'0'..=b'9' | b'_' => i += 1,
            b'.' => {
                float = true;
                i += 1;
            }
            b'e' | b'E' => {
                float = true;
                i += 1;
                if matches!(b.get(i), Some(b'+' | b'-')) {
                    i += 1;
                }
            }
            b'j' | b'J' => {
                float = true;
                i += 1;
                break;
            }
            _ => break,
        }
    }
    let text: String = b[start..i]
        .iter()
        .filter(|&&c| c != b'_' && c != b'j' && c != b'J')
        .map(|&c| c as char)
        .collect();
    if !float && let Ok(v) = text.parse::<i64>() {
        return (Tok::Int(v), i);
    }
    (Tok::Float(text.parse::<f64>().unwrap_or(f64::NAN)), i)
}

/// A string literal at `i` (its quote): `(value, next index, newlines inside)`.
fn string(b: &[u8], i: usize) -> Result<(String, usize, u32), String> {
    let q = b[i];
    let triple = b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q);
    let mut j = if triple { i + 3 } else { i + 1 };
    let mut out: Vec<u8> = Vec::new();
    let mut lines = 0;
    loop {
        let Some(&c) = b.get(j) else {
            return Err("a string runs to the end of the file".into());
        };
        if c == q && (!triple || (b.get(j + 1) == Some(&q) && b.get(j + 2) == Some(&q))) {
            j += if triple { 3 } else { 1 };
            break;
        }
        if c == b'\n' {
            if !triple {
                return Err("a string runs past the end of its line".into());
            }
            lines += 1;
        }
        if c == b'\\' {
            let Some(&e) = b.get(j + 1) else {
                return Err("a string runs to the end of the file".into());
            };
            j += 2;
            match e {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'0'..=b'7' => {
                    let mut v = u32::from(e - b'0');
                    let mut k = 0;
                    while k < 2 && b.get(j).is_some_and(|d| (b'0'..=b'7').contains(d)) {
                        v = v * 8 + u32::from(b[j] - b'0');
                        j += 1;
                        k += 1;
                    }
                    push_char(&mut out, v);
                }
                b'x' | b'u' | b'U' => {
                    let n = match e {
                        b'x' => 2,
                        b'u' => 4,
                        _ => 8,
                    };
                    let hex = b.get(j..j + n).unwrap_or(&[]);
                    let v = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u32::from_str_radix(h, 16).ok());
                    match v {
                        Some(v) => {
                            push_char(&mut out, v);
                            j += n;
                        }
                        None => out.extend_from_slice(&[b'\\', e]),
                    }
                }
                b'\n' => lines += 1,
                _ => out.push(e),
            }
            continue;
        }
        out.push(c);
        j += 1;
    }
    Ok((String::from_utf8_lossy(&out).into_owned(), j, lines))
}

fn push_char(out: &mut Vec<u8>, v: u32) {
    let c = char::from_u32(v).unwrap_or('\u{fffd}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// An expression.
#[derive(Clone, Debug)]
pub(super) enum Expr {
    Name(Rc<str>),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bool(bool),
    None,
    Ellipsis,
    Attr(Box<Expr>, Rc<str>),
    Call(Box<Expr>, Vec<Expr>, Vec<(Rc<str>, Expr)>),
    Index(Box<Expr>, Box<Expr>),
    Slice(Option<Box<Expr>>, Option<Box<Expr>>, Option<Box<Expr>>),
    Tuple(Vec<Expr>),
    List(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    Unary(&'static str, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    IfExp(Box<Expr>, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// The dotted name an expression spells (`torch.nn.Linear`), if it is one.
    pub fn dotted(&self) -> Option<String> {
        match self {
            Expr::Name(n) => Some(n.to_string()),
            Expr::Attr(o, a) => o.dotted().map(|p| format!("{p}.{a}")),
            Expr::Index(o, _) => o.dotted(),
            Expr::None => Some("None".into()),
            _ => None,
        }
    }
}

/// A statement.
#[derive(Clone, Debug)]
pub(super) enum Stmt {
    Assign(Vec<Expr>, Expr),
    AugAssign(Expr, &'static str, Expr),
    Expr(Expr),
    Return(Option<Expr>),
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    For(Expr, Expr, Vec<Stmt>),
    While(Expr, Vec<Stmt>),
    With(Vec<Stmt>),
    Raise,
    Pass,
    Break,
    Continue,
}

/// A parameter of a function.
#[derive(Clone, Debug)]
pub(super) struct Param {
    pub name: Rc<str>,
    pub default: Option<Expr>,
}

/// A function or method.
#[derive(Debug)]
pub(super) struct Def {
    pub name: Rc<str>,
    pub params: Vec<Param>,
    pub body: Vec<Stmt>,
}

/// A class: its declared attributes (name → type), constants and methods.
#[derive(Debug, Default)]
pub(super) struct Class {
    pub attrs: HashMap<String, Expr>,
    pub consts: HashMap<String, Expr>,
    pub methods: HashMap<String, Rc<Def>>,
}

/// The code of an archive, by qualified name (`__torch__.torch.nn.modules.conv.Conv2d`).
#[derive(Debug, Default)]
pub(super) struct Code {
    pub classes: HashMap<String, Class>,
    pub functions: HashMap<String, Rc<Def>>,
}

impl Code {
    /// Adds the classes and functions of one source file of module `module`
    /// (`__torch__.torch.nn.modules.conv`), and returns the classes' names in the order written.
    pub fn add_file(&mut self, module: &str, src: &str) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        let toks = tokenize(src)?;
        let mut p = Parser {
            toks,
            pos: 0,
            depth: 0,
        };
        while !p.at(&Tok::End) {
            if p.eat(&Tok::Newline) {
                continue;
            }
            match p.peek_name() {
                Some("class") => {
                    let (name, class) = p.class()?;
                    let name = format!("{module}.{name}");
                    names.push(name.clone());
                    self.classes.insert(name, class);
                }
                Some("def") => {
                    let def = p.def()?;
                    self.functions
                        .insert(format!("{module}.{}", def.name), Rc::new(def));
                }
                Some("@") => p.skip_line(),
                _ => {
                    // `import …`, `op_version_set = 1` and the like.
                    p.statement()?;
                }
            }
        }
        Ok(names)
    }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: u32,
}

type R<T> = Result<T, String>;

/// Positional and keyword arguments of a call.
type Args = (Vec<Expr>, Vec<(Rc<str>, Expr)>);

impl Parser {
    fn tok(&self) -> &Tok {
        self.toks.get(self.pos).map_or(&Tok::End, |t| &t.tok)
    }

    fn line(&self) -> u32 {
        self.toks.get(self.pos).map_or(0, |t| t.line)
    }

    fn at(&self, t: &Tok) -> bool {
        self.tok() == t
    }

    fn at_op(&self, op: &str) -> bool {
        matches!(self.tok(), Tok::Op(o) if *o == op)
    }

    fn peek_name(&self) -> Option<&str> {
        match self.tok() {
            Tok::Name(n) => Some(n),
            Tok::Op("@") => Some("@"),
            _ => None,
        }
    }

    fn at_word(&self, w: &str) -> bool {
        matches!(self.tok(), Tok::Name(n) if n == w)
    }

    fn bump(&mut self) -> Tok {
        let t = self.tok().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.at(t) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if self.at_op(op) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.at_word(w) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn err<T>(&self, what: &str) -> R<T> {
        Err(format!(
            "line {}: expected {what}, found {}",
            self.line(),
            match self.tok() {
                Tok::Name(n) => format!("{n:?}"),
                Tok::Int(v) => v.to_string(),
                Tok::Float(v) => v.to_string(),
                Tok::Str(_) => "a string".into(),
                Tok::Op(o) => format!("{o:?}"),
                Tok::Newline => "the end of the line".into(),
                Tok::Indent => "an indented block".into(),
                Tok::Dedent => "the end of a block".into(),
                Tok::End => "the end of the file".into(),
            }
        ))
    }

    fn expect_op(&mut self, op: &str) -> R<()> {
        if self.eat_op(op) {
            Ok(())
        } else {
            self.err(&format!("{op:?}"))
        }
    }

    fn name(&mut self) -> R<Rc<str>> {
        match self.tok() {
            Tok::Name(n) => {
                let n: Rc<str> = n.as_str().into();
                self.bump();
                Ok(n)
            }
            _ => self.err("a name"),
        }
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!("line {}: nested too deeply", self.line()));
        }
        Ok(())
    }

    fn skip_line(&mut self) {
        while !self.at(&Tok::Newline) && !self.at(&Tok::End) {
            self.bump();
        }
        self.eat(&Tok::Newline);
    }

    /// `class Name(Base): body`.
    fn class(&mut self) -> R<(Rc<str>, Class)> {
        self.bump();
        let name = self.name()?;
        if self.eat_op("(") {
            while !self.eat_op(")") {
                if self.at(&Tok::End) {
                    return self.err("\")\"");
                }
                self.bump();
            }
        }
        self.expect_op(":")?;
        let mut class = Class::default();
        if !self.eat(&Tok::Newline) {
            self.statement()?;
            return Ok((name, class));
        }
        if !self.eat(&Tok::Indent) {
            return self.err("an indented class body");
        }
        while !self.eat(&Tok::Dedent) {
            if self.at(&Tok::End) {
                break;
            }
            if self.eat(&Tok::Newline) {
                continue;
            }
            if self.at_word("def") {
                let def = self.def()?;
                class.methods.insert(def.name.to_string(), Rc::new(def));
                continue;
            }
            if self.at_op("@") {
                self.skip_line();
                continue;
            }
            // `name : Type [= value]`, `__annotations__["0"] = Type`, `__parameters__ = [...]`.
            let target = self.test()?;
            if self.eat_op(":") {
                let ty = self.test()?;
                let value = if self.eat_op("=") {
                    Some(self.test_list()?)
                } else {
                    None
                };
                if let Expr::Name(n) = &target {
                    if let Some(v) = value {
                        class.consts.insert(n.to_string(), v);
                    }
                    class.attrs.insert(n.to_string(), ty);
                }
            } else if self.eat_op("=") {
                let value = self.test_list()?;
                match &target {
                    Expr::Index(o, key) if matches!(&**o, Expr::Name(n) if &**n == "__annotations__") => {
                        if let Expr::Str(k) = &**key {
                            class.attrs.insert(k.to_string(), value);
                        }
                    }
                    Expr::Name(n) => {
                        class.consts.insert(n.to_string(), value);
                    }
                    _ => {}
                }
            }
            if !self.eat(&Tok::Newline) && !self.at(&Tok::Dedent) && !self.at(&Tok::End) {
                return self.err("the end of the line");
            }
        }
        Ok((name, class))
    }

    /// `def name(params) -> T: body`.
    fn def(&mut self) -> R<Def> {
        self.bump();
        let name = self.name()?;
        self.expect_op("(")?;
        let mut params = Vec::new();
        while !self.eat_op(")") {
            if (self.eat_op("*") || self.eat_op("**")) && self.at_op(",") {
                self.bump();
                continue;
            }
            if self.eat_op("/") {
                self.eat_op(",");
                continue;
            }
            let pname = self.name()?;
            if self.eat_op(":") {
                self.test()?;
            }
            let default = if self.eat_op("=") {
                Some(self.test()?)
            } else {
                None
            };
            params.push(Param {
                name: pname,
                default,
            });
            if !self.eat_op(",") && !self.at_op(")") {
                return self.err("\",\" or \")\" in a parameter list");
            }
        }
        if self.eat_op("->") {
            self.test()?;
        }
        self.expect_op(":")?;
        let body = self.suite()?;
        Ok(Def { name, params, body })
    }

    /// A block: statements on the same line, or an indented run of them.
    fn suite(&mut self) -> R<Vec<Stmt>> {
        self.enter()?;
        let mut out = Vec::new();
        if !self.eat(&Tok::Newline) {
            out.extend(self.simple_line()?);
            self.depth -= 1;
            return Ok(out);
        }
        if !self.eat(&Tok::Indent) {
            return self.err("an indented block");
        }
        while !self.eat(&Tok::Dedent) {
            if self.at(&Tok::End) {
                break;
            }
            if self.eat(&Tok::Newline) {
                continue;
            }
            out.extend(self.statement()?);
        }
        self.depth -= 1;
        Ok(out)
    }

    /// One statement (compound or a line of simple ones).
    fn statement(&mut self) -> R<Vec<Stmt>> {
        match self.peek_name() {
            Some("if") => {
                self.bump();
                Ok(vec![self.if_rest()?])
            }
            Some("for") => {
                self.bump();
                let target = self.target_list()?;
                if !self.eat_word("in") {
                    return self.err("\"in\"");
                }
                let iter = self.test_list()?;
                self.expect_op(":")?;
                let body = self.suite()?;
                if self.eat_word("else") {
                    self.expect_op(":")?;
                    self.suite()?;
                }
                Ok(vec![Stmt::For(target, iter, body)])
            }
            Some("while") => {
                self.bump();
                let cond = self.test()?;
                self.expect_op(":")?;
                let body = self.suite()?;
                if self.eat_word("else") {
                    self.expect_op(":")?;
                    self.suite()?;
                }
                Ok(vec![Stmt::While(cond, body)])
            }
            Some("with") => {
                self.bump();
                loop {
                    self.test()?;
                    if self.eat_word("as") {
                        self.target_list()?;
                    }
                    if !self.eat_op(",") {
                        break;
                    }
                }
                self.expect_op(":")?;
                Ok(vec![Stmt::With(self.suite()?)])
            }
            Some("class") => {
                self.class()?;
                Ok(Vec::new())
            }
            Some("def") => {
                self.def()?;
                Ok(Vec::new())
            }
            Some("@") => {
                self.skip_line();
                Ok(Vec::new())
            }
            _ => self.simple_line(),
        }
    }

    /// The rest of an `if` after its keyword (also each `elif`).
    fn if_rest(&mut self) -> R<Stmt> {
        self.enter()?;
        let cond = self.test()?;
        self.expect_op(":")?;
        let then = self.suite()?;
        let otherwise = if self.eat_word("elif") {
            vec![self.if_rest()?]
        } else if self.eat_word("else") {
            self.expect_op(":")?;
            self.suite()?
        } else {
            Vec::new()
        };
        self.depth -= 1;
        Ok(Stmt::If(cond, then, otherwise))
    }

    /// Simple statements separated by `;`, ending the line.
    fn simple_line(&mut self) -> R<Vec<Stmt>> {
        let mut out = Vec::new();
        loop {
            if let Some(s) = self.simple()? {
                out.push(s);
            }
            if !self.eat_op(";") || self.at(&Tok::Newline) {
                break;
            }
        }
        if !self.eat(&Tok::Newline) && !self.at(&Tok::End) && !self.at(&Tok::Dedent) {
            return self.err("the end of the line");
        }
        Ok(out)
    }

    fn simple(&mut self) -> R<Option<Stmt>> {
        match self.peek_name() {
            Some("pass") => {
                self.bump();
                return Ok(Some(Stmt::Pass));
            }
            Some("break") => {
                self.bump();
                return Ok(Some(Stmt::Break));
            }
            Some("continue") => {
                self.bump();
                return Ok(Some(Stmt::Continue));
            }
            Some("return") => {
                self.bump();
                let value = if self.at(&Tok::Newline) || self.at_op(";") || self.at(&Tok::End) {
                    None
                } else {
                    Some(self.test_list()?)
                };
                return Ok(Some(Stmt::Return(value)));
            }
            Some("raise") => {
                self.bump();
                while !self.at(&Tok::Newline) && !self.at_op(";") && !self.at(&Tok::End) {
                    self.bump();
                }
                return Ok(Some(Stmt::Raise));
            }
            Some("import" | "from" | "global" | "nonlocal" | "del" | "assert") => {
                while !self.at(&Tok::Newline) && !self.at_op(";") && !self.at(&Tok::End) {
                    self.bump();
                }
                return Ok(None);
            }
            _ => {}
        }
        let first = self.test_list()?;
        if self.eat_op(":") {
            // An annotated assignment: `x : T = value`.
            self.test()?;
            if self.eat_op("=") {
                let value = self.test_list()?;
                return Ok(Some(Stmt::Assign(vec![first], value)));
            }
            return Ok(None);
        }
        for op in [
            "+=", "-=", "*=", "/=", "//=", "%=", "**=", "@=", "&=", "|=", "^=", ">>=", "<<=",
        ] {
            if self.eat_op(op) {
                let value = self.test_list()?;
                let bin = OPS
                    .iter()
                    .find(|o| **o == &op[..op.len() - 1])
                    .copied()
                    .unwrap_or("+");
                return Ok(Some(Stmt::AugAssign(first, bin, value)));
            }
        }
        if self.at_op("=") {
            let mut targets = vec![first];
            let mut value = None;
            while self.eat_op("=") {
                let e = self.test_list()?;
                if let Some(v) = value.replace(e) {
                    targets.push(v);
                }
            }
            let value =
                value.ok_or_else(|| format!("line {}: an empty assignment", self.line()))?;
            return Ok(Some(Stmt::Assign(targets, value)));
        }
        Ok(Some(Stmt::Expr(first)))
    }

    /// Targets of `for`: `a`, `a, b`, `(a, b)`.
    fn target_list(&mut self) -> R<Expr> {
        let mut items = vec![self.or_expr()?];
        let mut tuple = false;
        while self.eat_op(",") {
            tuple = true;
            if self.at_word("in") || self.at_op("=") {
                break;
            }
            items.push(self.or_expr()?);
        }
        Ok(if tuple {
            Expr::Tuple(items)
        } else {
            items.remove(0)
        })
    }

    /// `a`, or a bare tuple `a, b,`.
    fn test_list(&mut self) -> R<Expr> {
        let first = self.test()?;
        if !self.at_op(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_op(",") {
            if self.at(&Tok::Newline)
                || self.at_op("=")
                || self.at_op(")")
                || self.at_op(";")
                || self.at_op(":")
                || self.at(&Tok::End)
            {
                break;
            }
            items.push(self.test()?);
        }
        Ok(Expr::Tuple(items))
    }

    fn test(&mut self) -> R<Expr> {
        self.enter()?;
        if self.eat_word("lambda") {
            while !self.eat_op(":") {
                if self.at(&Tok::Newline) || self.at(&Tok::End) {
                    return self.err("\":\"");
                }
                self.bump();
            }
            self.test()?;
            self.depth -= 1;
            return Ok(Expr::Name("lambda".into()));
        }
        let e = self.or_test()?;
        let e = if self.eat_word("if") {
            let cond = self.or_test()?;
            if !self.eat_word("else") {
                return self.err("\"else\"");
            }
            let other = self.test()?;
            Expr::IfExp(Box::new(cond), Box::new(e), Box::new(other))
        } else {
            e
        };
        self.depth -= 1;
        Ok(e)
    }

    fn or_test(&mut self) -> R<Expr> {
        let mut e = self.and_test()?;
        while self.eat_word("or") {
            e = Expr::Binary("or", Box::new(e), Box::new(self.and_test()?));
        }
        Ok(e)
    }

    fn and_test(&mut self) -> R<Expr> {
        let mut e = self.not_test()?;
        while self.eat_word("and") {
            e = Expr::Binary("and", Box::new(e), Box::new(self.not_test()?));
        }
        Ok(e)
    }

    fn not_test(&mut self) -> R<Expr> {
        if self.eat_word("not") {
            self.enter()?;
            let e = Expr::Unary("not", Box::new(self.not_test()?));
            self.depth -= 1;
            return Ok(e);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> R<Expr> {
        let mut e = self.or_expr()?;
        loop {
            let op = match self.tok() {
                Tok::Op(o @ ("<" | ">" | "==" | ">=" | "<=" | "!=")) => *o,
                Tok::Name(n) if n == "in" => "in",
                Tok::Name(n) if n == "is" => "is",
                Tok::Name(n) if n == "not" => "not in",
                _ => break,
            };
            self.bump();
            let op = match op {
                "is" if self.eat_word("not") => "is not",
                "not in" => {
                    if !self.eat_word("in") {
                        return self.err("\"in\"");
                    }
                    "not in"
                }
                o => o,
            };
            e = Expr::Binary(op, Box::new(e), Box::new(self.or_expr()?));
        }
        Ok(e)
    }

    fn binary_level(&mut self, level: usize) -> R<Expr> {
        const LEVELS: [&[&str]; 6] = [
            &["|"],
            &["^"],
            &["&"],
            &["<<", ">>"],
            &["+", "-"],
            &["*", "/", "//", "%", "@"],
        ];
        let Some(ops) = LEVELS.get(level) else {
            return self.factor();
        };
        let mut e = self.binary_level(level + 1)?;
        while let Tok::Op(o) = self.tok() {
            let o = *o;
            if !ops.contains(&o) {
                break;
            }
            self.bump();
            e = Expr::Binary(o, Box::new(e), Box::new(self.binary_level(level + 1)?));
        }
        Ok(e)
    }

    fn or_expr(&mut self) -> R<Expr> {
        self.binary_level(0)
    }

    fn factor(&mut self) -> R<Expr> {
        if let Tok::Op(o @ ("-" | "+" | "~")) = self.tok() {
            let o = *o;
            self.bump();
            self.enter()?;
            let inner = self.factor()?;
            self.depth -= 1;
            return Ok(match (o, inner) {
                ("-", Expr::Int(v)) => Expr::Int(v.wrapping_neg()),
                ("-", Expr::Float(v)) => Expr::Float(-v),
                ("+", e) => e,
                (o, e) => Expr::Unary(o, Box::new(e)),
            });
        }
        let base = self.primary()?;
        if self.eat_op("**") {
            self.enter()?;
            let exp = self.factor()?;
            self.depth -= 1;
            return Ok(Expr::Binary("**", Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn primary(&mut self) -> R<Expr> {
        let mut e = self.atom()?;
        let mut trailers = 0u32;
        loop {
            if self.eat_op(".") {
                e = Expr::Attr(Box::new(e), self.name()?);
            } else if self.eat_op("(") {
                let (args, kwargs) = self.call_args()?;
                e = Expr::Call(Box::new(e), args, kwargs);
            } else if self.eat_op("[") {
                let mut items = Vec::new();
                while !self.eat_op("]") {
                    items.push(self.subscript()?);
                    if !self.eat_op(",") && !self.at_op("]") {
                        return self.err("\",\" or \"]\"");
                    }
                }
                let index = if items.len() == 1 {
                    items.remove(0)
                } else {
                    Expr::Tuple(items)
                };
                e = Expr::Index(Box::new(e), Box::new(index));
            } else {
                break;
            }
            trailers += 1;
            if trailers > 10_000 {
                return Err(format!("line {}: an expression too long", self.line()));
            }
        }
        Ok(e)
    }

    fn subscript(&mut self) -> R<Expr> {
        let lo = if self.at_op(":") {
            None
        } else {
            Some(self.test()?)
        };
        if !self.eat_op(":") {
            return lo.ok_or_else(|| format!("line {}: an empty subscript", self.line()));
        }
        let part = |p: &mut Self| -> R<Option<Box<Expr>>> {
            if p.at_op(":") || p.at_op(",") || p.at_op("]") {
                Ok(None)
            } else {
                Ok(Some(Box::new(p.test()?)))
            }
        };
        let hi = part(self)?;
        let step = if self.eat_op(":") { part(self)? } else { None };
        Ok(Expr::Slice(lo.map(Box::new), hi, step))
    }

    fn call_args(&mut self) -> R<Args> {
        let (mut args, mut kwargs) = (Vec::new(), Vec::new());
        while !self.eat_op(")") {
            if self.eat_op("*") || self.eat_op("**") {
                args.push(self.test()?);
            } else if matches!(self.tok(), Tok::Name(_))
                && matches!(
                    self.toks.get(self.pos + 1).map(|t| &t.tok),
                    Some(Tok::Op("="))
                )
            {
                let k = self.name()?;
                self.bump();
                kwargs.push((k, self.test()?));
            } else {
                args.push(self.test()?);
            }
            if !self.eat_op(",") && !self.at_op(")") {
                return self.err("\",\" or \")\" in a call");
            }
        }
        Ok((args, kwargs))
    }

    fn atom(&mut self) -> R<Expr> {
        self.enter()?;
        let e = match self.bump() {
            Tok::Name(n) => match n.as_str() {
                "True" => Expr::Bool(true),
                "False" => Expr::Bool(false),
                "None" => Expr::None,
                _ => Expr::Name(n.as_str().into()),
            },
            Tok::Int(v) => Expr::Int(v),
            Tok::Float(v) => Expr::Float(v),
            Tok::Str(s) => {
                let mut s = s;
                while let Tok::Str(more) = self.tok() {
                    s.push_str(more);
                    self.bump();
                }
                Expr::Str(s.as_str().into())
            }
            Tok::Op("...") => Expr::Ellipsis,
            Tok::Op("(") => {
                if self.eat_op(")") {
                    Expr::Tuple(Vec::new())
                } else {
                    let first = self.test()?;
                    if self.eat_op(")") {
                        first
                    } else {
                        let mut items = vec![first];
                        while self.eat_op(",") {
                            if self.at_op(")") {
                                break;
                            }
                            items.push(self.test()?);
                        }
                        self.expect_op(")")?;
                        Expr::Tuple(items)
                    }
                }
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                while !self.eat_op("]") {
                    items.push(self.test()?);
                    if self.at_word("for") {
                        // A comprehension: kept as an opaque list.
                        while !self.at_op("]") && !self.at(&Tok::End) {
                            self.bump();
                        }
                    }
                    if !self.eat_op(",") && !self.at_op("]") {
                        return self.err("\",\" or \"]\"");
                    }
                }
                Expr::List(items)
            }
            Tok::Op("{") => {
                let mut items = Vec::new();
                while !self.eat_op("}") {
                    let k = self.test()?;
                    let v = if self.eat_op(":") {
                        self.test()?
                    } else {
                        Expr::None
                    };
                    items.push((k, v));
                    if !self.eat_op(",") && !self.at_op("}") {
                        return self.err("\",\" or \"}\"");
                    }
                }
                Expr::Dict(items)
            }
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return self.err("an expression");
            }
        };
        self.depth -= 1;
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_traced_module() {
        let src = r#"class Conv2d(Module):
  __parameters__ = ["weight", "bias", ]
  __buffers__ = []
  weight : Tensor
  bias : Tensor
  training : bool
  __annotations__["0"] = __torch__.Block
  out_features : Final[int] = 16
  def forward(self: __torch__.torch.nn.modules.conv.Conv2d,
    x: Tensor, y: Optional[Tensor]=None) -> Tensor:
    bias = self.bias
    weight = self.weight
    input = torch._convolution(x, weight, bias, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, False, False, True, True)
    a, b, = torch.chunk(input, 2, -1)
    if torch.__isnot__(y, None):
      c = torch.add(a, unchecked_cast(Tensor, y), alpha=1)
    elif bool(torch.gt(a, 0.5)):
      c = -a
    else:
      c = b[:, 0:2:1, ...]
    return (c, 1.0000000000000001e-05)
def helper(x: Tensor) -> Tensor:
  for i in range(3):
    x = torch.relu(x)
  return x
"#;
        let mut code = Code::default();
        code.add_file("__torch__.torch.nn.modules.conv", src)
            .unwrap();
        let c = &code.classes["__torch__.torch.nn.modules.conv.Conv2d"];
        assert_eq!(
            c.attrs["0"].dotted().as_deref(),
            Some("__torch__.Block"),
            "{:?}",
            c.attrs
        );
        assert!(matches!(c.consts["out_features"], Expr::Int(16)));
        assert!(matches!(c.consts["__parameters__"], Expr::List(ref v) if v.len() == 2));
        let f = &c.methods["forward"];
        assert_eq!(f.params.len(), 3);
        assert!(f.params[2].default.is_some());
        assert_eq!(f.body.len(), 6);
        assert!(
            matches!(&f.body[3], Stmt::Assign(t, _) if matches!(&t[0], Expr::Tuple(v) if v.len() == 2))
        );
        let Stmt::If(_, _, otherwise) = &f.body[4] else {
            panic!("{:?}", f.body[4])
        };
        assert!(matches!(&otherwise[0], Stmt::If(_, _, e) if e.len() == 1));
        let h = &code.functions["__torch__.torch.nn.modules.conv.helper"];
        assert!(matches!(&h.body[0], Stmt::For(_, _, b) if b.len() == 1));
    }

    #[test]
    fn bad_code_is_an_error_not_a_crash() {
        for src in [
            "class A(Module):\n  def f(self):\n    x = (\n",
            "def f(x):\n  return x +\n",
            "def f(x):\n    a = 1\n  b = 2\n",
            "x = 'unterminated\n",
            &"(".repeat(100_000),
            &format!("x = {}1", "-".repeat(100_000)),
            &format!("x = {}", "not ".repeat(100_000)),
        ] {
            let mut code = Code::default();
            assert!(code.add_file("m", src).is_err(), "{:.40}", src);
        }
    }
}
