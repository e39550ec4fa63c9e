//! Names close to one that matched nothing, for "did you mean …?" in errors.

use super::Model;

/// "; did you mean …?" with up to three group paths, tensor or node names close to `name` (the
/// same with `.`, `/` and `:` taken as one separator and case ignored: containing it, or within a
/// few edits of it; containing it first), or "" when none is. Node names are searched in graphs of up to 100 000 nodes.
pub(super) fn near_names(model: &Model, name: &str) -> String {
    let norm = |s: &str| s.to_lowercase().replace(['.', ':'], "/");
    let q = norm(name);
    if q.is_empty() {
        return String::new();
    }
    let groups = model
        .hierarchy
        .groups
        .iter()
        .skip(1)
        .map(|g| g.path.as_str());
    let tensors = model.tensors.iter().map(|t| t.name.as_str());
    let nodes = (model.graph.nodes.len() <= 100_000)
        .then(|| model.graph.nodes.iter().map(|n| n.name.as_str()))
        .into_iter()
        .flatten();
    let budget = (q.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, usize, &str)> = groups
        .chain(tensors)
        .chain(nodes)
        .filter_map(|c| {
            let n = norm(c);
            if n.is_empty() {
                return None;
            }
            if n.contains(&q) {
                return Some((0, n.len().abs_diff(q.len()), c));
            }
            if n.len().abs_diff(q.len()) > budget {
                return None;
            }
            let d = edit_distance(&q, &n, budget)?;
            Some((1, d, c))
        })
        .collect();
    scored.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    scored.dedup_by(|a, b| a.2 == b.2);
    let best: Vec<String> = scored
        .iter()
        .take(3)
        .map(|s| format!("{:?}", s.2))
        .collect();
    if best.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", best.join(", "))
    }
}

/// Levenshtein distance between `a` and `b` (by chars), or `None` once it exceeds `limit`.
fn edit_distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        if row_min > limit {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().filter(|&d| d <= limit)
}
