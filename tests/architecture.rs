//! Module boundaries of DESIGN.md: a stage only names the stages it may use.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::collections::BTreeSet;
use std::path::Path;

/// Stage → stages it may name (`view` is pure math, usable by all but `model`; `diag`, process
/// memory readings for the trace, is a leaf file every stage may use).
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &["diag"]),
    ("view", &["diag"]),
    ("training", &["diag"]),
    ("load", &["model", "diag"]),
    ("graph", &["model", "view", "diag"]),
    ("layout", &["graph", "model", "view", "diag"]),
    ("lod", &["layout", "graph", "model", "view", "diag"]),
    ("stats", &["model", "view", "lod", "diag"]),
    ("render", &["lod", "stats", "view", "diag"]),
];

#[test]
fn diag_is_a_leaf() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/diag.rs")).unwrap();
    assert!(
        crate_refs(&text).is_empty(),
        "diag names {:?}",
        crate_refs(&text)
    );
}

fn crate_refs(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in src.match_indices("crate::") {
        let rest = &src[i + 7..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn rs_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn stages_only_name_earlier_stages() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut checked = 0;
    for (stage, allowed) in ALLOWED {
        let mut files = Vec::new();
        let dir = src.join(stage);
        if dir.is_dir() {
            rs_files(&dir, &mut files);
        }
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            checked += 1;
            for r in crate_refs(&text) {
                if r != *stage && !allowed.contains(&r.as_str()) {
                    violations.push(format!(
                        "{} names crate::{r}",
                        f.strip_prefix(&src).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} files checked");
    assert!(
        violations.is_empty(),
        "stage boundary violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_catches_a_violation() {
    let refs = crate_refs("use crate::app::Window; fn f() { crate::render::x(); }");
    assert!(refs.contains("app") && refs.contains("render"));
}
