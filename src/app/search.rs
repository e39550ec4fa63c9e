//! Search over node names, op types and tensor names, built once per model and queried on every
//! keystroke.
//!
//! How it works: every node name and tensor name is lower-cased into one byte haystack, entries
//! separated by `\n`, with a sorted vector of entry start offsets. A query is a SIMD substring scan
//! (`memchr::memmem`) over the haystack; each match maps to its entry by binary search. Op types are
//! few (tens to hundreds) and are matched separately, each standing for all nodes of that op. When a
//! query extends the previous one (typing one more letter) only the previous matches are re-checked,
//! so the cost falls as the query narrows. Results are ranked: exact name, prefix, match after a
//! path separator, anywhere; ties keep file order.
//!
//! Rejected: a trigram or suffix index (10–20× the memory of the names for a 1 M-node model and
//! seconds to build, while a memmem scan of ~60 MB of names costs a few milliseconds) and fuzzy
//! matching (people paste exact names out of stack traces and configs; substring is what Netron does).

use std::sync::Arc;

use crate::model::{Model, NodeId, TensorId};

/// What a search result points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A node (matched by its name).
    Node(NodeId),
    /// A tensor (matched by its name); `owner` is the node that owns it, when one does.
    Tensor {
        /// The tensor.
        tensor: TensorId,
        /// The node owning it.
        owner: Option<NodeId>,
    },
    /// A node matched through its op type.
    NodeByOp(NodeId),
}

impl Target {
    /// The node to show for this result, when there is one.
    pub fn node(&self) -> Option<NodeId> {
        match *self {
            Target::Node(n) | Target::NodeByOp(n) => Some(n),
            Target::Tensor { owner, .. } => owner,
        }
    }
}

/// One result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// What matched.
    pub target: Target,
    /// 0 exact, 1 prefix, 2 after a separator, 3 anywhere, 4 via op type.
    pub rank: u8,
}

/// The index of one model, immutable once built (shared with the UI through an `Arc`).
#[derive(Debug, Default)]
pub struct SearchIndex {
    hay: Vec<u8>,
    /// Start offset of each entry in `hay` (its end is the next start minus the separator).
    starts: Vec<usize>,
    targets: Vec<Target>,
    /// Distinct op types: lower-cased, as written, and the nodes of that op.
    ops: Vec<(String, String, Vec<NodeId>)>,
}

impl SearchIndex {
    /// Builds the index of `model` (one pass over names; ~100 ms for a million nodes).
    pub fn build(model: &Model) -> Self {
        let mut owner: Vec<Option<NodeId>> = vec![None; model.tensors.len()];
        for (i, n) in model.graph.nodes.iter().enumerate() {
            for &t in &n.tensors {
                if let Some(slot) = owner.get_mut(t as usize) {
                    slot.get_or_insert(i as NodeId);
                }
            }
        }
        let mut index = SearchIndex::default();
        let mut ops: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, n) in model.graph.nodes.iter().enumerate() {
            index.push(&n.name, Target::Node(i as NodeId));
            let slot = *ops.entry(&*n.op).or_insert_with(|| {
                index
                    .ops
                    .push((n.op.to_lowercase(), n.op.to_string(), Vec::new()));
                index.ops.len() - 1
            });
            if let Some(op) = index.ops.get_mut(slot) {
                op.2.push(i as NodeId);
            }
        }
        for (t, tensor) in model.tensors.iter().enumerate() {
            let owner = owner.get(t).copied().flatten();
            index.push(
                &tensor.name,
                Target::Tensor {
                    tensor: t as TensorId,
                    owner,
                },
            );
        }
        index
    }

    /// An index over plain names (each one a `Target::Node` with its position), for tests and
    /// benchmarks.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut index = SearchIndex::default();
        for (i, n) in names.into_iter().enumerate() {
            index.push(n, Target::Node(i as NodeId));
        }
        index
    }

    fn push(&mut self, name: &str, target: Target) {
        self.starts.push(self.hay.len());
        // Newlines inside a name would split it; they cannot be searched for anyway.
        self.hay.extend(name.bytes().map(|b| {
            if b == b'\n' {
                b' '
            } else {
                b.to_ascii_lowercase()
            }
        }));
        self.hay.push(b'\n');
        self.targets.push(target);
    }

    /// Number of named entries (nodes plus tensors).
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Bytes held by the index.
    pub fn memory_bytes(&self) -> usize {
        self.hay.capacity()
            + self.starts.capacity() * std::mem::size_of::<usize>()
            + self.targets.capacity() * std::mem::size_of::<Target>()
    }

    /// The lower-cased text of entry `e`.
    fn entry(&self, e: u32) -> &[u8] {
        let e = e as usize;
        let (Some(&a), end) = (self.starts.get(e), self.starts.get(e + 1)) else {
            return &[];
        };
        let b = end.map_or(self.hay.len(), |&s| s).saturating_sub(1);
        self.hay.get(a..b).unwrap_or(&[])
    }

    /// All entries containing `needle` (lower-case), in file order.
    fn scan(&self, needle: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut last: Option<u32> = None;
        for pos in memchr::memmem::find_iter(&self.hay, needle) {
            let e = self.starts.partition_point(|&s| s <= pos).saturating_sub(1) as u32;
            if last != Some(e) {
                out.push(e);
                last = Some(e);
            }
        }
        out
    }

    fn rank(&self, e: u32, finder: &memchr::memmem::Finder<'_>) -> u8 {
        let needle = finder.needle();
        let text = self.entry(e);
        if text == needle {
            return 0;
        }
        if text.starts_with(needle) {
            return 1;
        }
        let after_sep = finder
            .find_iter(text)
            .any(|p| p > 0 && matches!(text.get(p - 1), Some(b'/' | b'.' | b'_' | b':' | b'-')));
        if after_sep { 2 } else { 3 }
    }
}

/// The query state of one view: the index plus what the last query matched, for incremental
/// narrowing.
#[derive(Debug, Default)]
pub struct Search {
    index: Arc<SearchIndex>,
    query: String,
    /// Entries matching `query` (all of them, in file order).
    matches: Vec<u32>,
    /// Ranked results, capped at the limit.
    results: Vec<Hit>,
    /// Total number of results before the cap.
    total: usize,
    /// Results shown at most.
    limit: usize,
}

impl Search {
    /// Results kept for display by default.
    pub const DEFAULT_LIMIT: usize = 500;
    /// Above this many names a one-letter query searches nothing (it would list them all).
    pub const ONE_LETTER_LIMIT: usize = 100_000;

    /// A search over `index`.
    pub fn new(index: Arc<SearchIndex>) -> Self {
        Search {
            index,
            limit: Self::DEFAULT_LIMIT,
            ..Default::default()
        }
    }

    /// The index.
    pub fn index(&self) -> &Arc<SearchIndex> {
        &self.index
    }

    /// The current query as typed.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The ranked results (at most the limit).
    pub fn results(&self) -> &[Hit] {
        &self.results
    }

    /// How many results there are in all.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Sets the query and recomputes results; re-checks only the previous matches when the new query
    /// contains the old one.
    pub fn set_query(&mut self, query: &str) {
        if query == self.query {
            return;
        }
        let needle = query.trim().to_lowercase().replace('\n', " ");
        let old = self.query.trim().to_lowercase();
        self.query = query.to_string();
        if needle.is_empty() {
            self.matches.clear();
            self.results.clear();
            self.total = 0;
            return;
        }
        let nb = needle.as_bytes();
        // One letter matches nearly every name of a huge model: wait for the second one.
        if nb.len() < 2 && self.index.len() > Self::ONE_LETTER_LIMIT {
            self.matches.clear();
            self.results.clear();
            self.total = 0;
            self.query.clear();
            return;
        }
        let narrowing = !old.is_empty() && needle.contains(old.as_str());
        self.matches = if narrowing {
            let finder = memchr::memmem::Finder::new(nb);
            self.matches
                .iter()
                .copied()
                .filter(|&e| finder.find(self.index.entry(e)).is_some())
                .collect()
        } else {
            self.index.scan(nb)
        };
        self.rank_results(nb);
    }

    fn rank_results(&mut self, needle: &[u8]) {
        let index = &self.index;
        // One bucket per rank, each capped at the limit, so a query matching a million names costs
        // no sort and no million-entry allocation.
        let mut buckets: [Vec<Hit>; 5] = Default::default();
        let finder = memchr::memmem::Finder::new(needle);
        for &e in &self.matches {
            let rank = index.rank(e, &finder);
            let Some(bucket) = buckets.get_mut(rank as usize) else {
                continue;
            };
            if bucket.len() < self.limit
                && let Some(&target) = index.targets.get(e as usize)
            {
                bucket.push(Hit { target, rank });
            }
        }
        let mut op_hits = 0usize;
        let needle_str = std::str::from_utf8(needle).unwrap_or("");
        for (lower, _, nodes) in &index.ops {
            if lower.contains(needle_str) {
                op_hits += nodes.len();
                let room = self.limit.saturating_sub(buckets[4].len());
                buckets[4].extend(nodes.iter().take(room).map(|&n| Hit {
                    target: Target::NodeByOp(n),
                    rank: 4,
                }));
            }
        }
        self.total = self.matches.len() + op_hits;
        let mut hits: Vec<Hit> = Vec::with_capacity(self.limit);
        for b in buckets {
            let room = self.limit.saturating_sub(hits.len());
            hits.extend(b.into_iter().take(room));
        }
        self.results = hits;
    }

    /// Op types matching the current query, with their node counts (for the "op: MatMul × 212" rows).
    pub fn matching_ops(&self) -> Vec<(&str, usize)> {
        let needle = self.query.trim().to_lowercase();
        if needle.is_empty() {
            return Vec::new();
        }
        self.index
            .ops
            .iter()
            .filter(|(lower, _, _)| lower.contains(needle.as_str()))
            .map(|(_, op, nodes)| (op.as_str(), nodes.len()))
            .collect()
    }
}
