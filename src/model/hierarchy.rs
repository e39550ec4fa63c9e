//! The module tree: named groups built from node and tensor paths.

use rustc_hash::FxHashMap;

use super::NodeId;

/// Index of a group in [`Hierarchy::groups`]; 0 is the root.
pub type GroupId = u32;

/// A named group of the module tree (`model` → `layers.17` → `mlp`).
#[derive(Clone, Debug, Default)]
pub struct Group {
    /// The last path segment (`layers.17`); empty for the root.
    pub name: String,
    /// The full path, segments joined by `.` for checkpoints and `/` for op graphs.
    pub path: String,
    /// Parent group (`None` for the root).
    pub parent: Option<GroupId>,
    /// Child groups, in first-seen order (which is file order, so layer 2 comes after layer 1).
    pub children: Vec<GroupId>,
    /// Nodes whose innermost group this is.
    pub nodes: Vec<NodeId>,
    /// Depth below the root (root = 0).
    pub depth: u32,
    /// Nodes in this group and all groups below it.
    pub node_count: u64,
    /// Parameters (tensor elements) owned by nodes in this group and below.
    pub param_count: u64,
}

/// The tree of groups.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    /// All groups; `groups[0]` is the root.
    pub groups: Vec<Group>,
    /// Children by name, per parent: looked up with a borrowed `&str` (a `(parent, Box<str>)` key
    /// cost an allocation per lookup, 200 k of them for a 50 k-node ONNX graph).
    lookup: FxHashMap<GroupId, FxHashMap<Box<str>, GroupId>>,
}

impl Default for Hierarchy {
    fn default() -> Self {
        Self::new()
    }
}

impl Hierarchy {
    /// A tree holding only the root.
    pub fn new() -> Self {
        Hierarchy {
            groups: vec![Group::default()],
            lookup: FxHashMap::default(),
        }
    }

    /// The root group.
    pub fn root(&self) -> &Group {
        &self.groups[0]
    }

    /// A group by id.
    pub fn get(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(id as usize)
    }

    /// The child of `parent` named `name`, created if missing.
    pub fn child(&mut self, parent: GroupId, name: &str, separator: char) -> GroupId {
        if let Some(&id) = self.lookup.get(&parent).and_then(|m| m.get(name)) {
            return id;
        }
        let id = self.groups.len() as GroupId;
        let (path, depth) = match self.groups.get(parent as usize) {
            Some(p) if p.path.is_empty() => (name.to_string(), p.depth + 1),
            Some(p) => (format!("{}{separator}{name}", p.path), p.depth + 1),
            None => (name.to_string(), 1),
        };
        self.groups.push(Group {
            name: name.to_string(),
            path,
            parent: Some(parent),
            depth,
            ..Group::default()
        });
        if let Some(p) = self.groups.get_mut(parent as usize) {
            p.children.push(id);
        }
        self.lookup
            .entry(parent)
            .or_default()
            .insert(name.into(), id);
        id
    }

    /// The child of `parent` named `name`, if there is one.
    pub fn existing_child(&self, parent: GroupId, name: &str) -> Option<GroupId> {
        self.lookup.get(&parent).and_then(|m| m.get(name)).copied()
    }

    /// A new child of `parent` named `name`, or `name#2`, `name#3`… where that is taken.
    pub fn new_child(&mut self, parent: GroupId, name: &str, separator: char) -> GroupId {
        let mut label = name.to_string();
        let mut k = 1;
        while self.existing_child(parent, &label).is_some() {
            k += 1;
            label = format!("{name}#{k}");
        }
        self.child(parent, &label, separator)
    }

    /// The group for a sequence of segments below the root, creating what is missing.
    pub fn insert_path<'a>(
        &mut self,
        segments: impl IntoIterator<Item = &'a str>,
        separator: char,
    ) -> GroupId {
        self.insert_path_under(0, segments, separator)
    }

    /// The group for a sequence of segments below `parent`, creating what is missing.
    pub fn insert_path_under<'a>(
        &mut self,
        parent: GroupId,
        segments: impl IntoIterator<Item = &'a str>,
        separator: char,
    ) -> GroupId {
        let mut g = parent;
        for s in segments {
            g = self.child(g, s, separator);
        }
        g
    }

    /// Whether `group` is `ancestor` or inside it.
    pub fn is_within(&self, group: GroupId, ancestor: GroupId) -> bool {
        self.ancestors(group).any(|g| g == ancestor)
    }

    /// Finds a group by its full path.
    pub fn find(&self, path: &str) -> Option<GroupId> {
        if path.is_empty() {
            return Some(0);
        }
        self.groups
            .iter()
            .position(|g| g.path == path)
            .map(|i| i as GroupId)
    }

    /// The innermost group holding both `a` and `b` (the root when they share nothing else).
    pub fn common_ancestor(&self, a: GroupId, b: GroupId) -> GroupId {
        let depth = |g: GroupId| self.groups.get(g as usize).map_or(0, |x| x.depth);
        let parent = |g: GroupId| {
            self.groups
                .get(g as usize)
                .and_then(|x| x.parent)
                .unwrap_or(0)
        };
        let (mut a, mut b) = (a, b);
        while a != b {
            if depth(a) >= depth(b) && a != 0 {
                a = parent(a);
            } else if b != 0 {
                b = parent(b);
            } else {
                return 0;
            }
        }
        a
    }

    /// The chain from `id` up to and including the root.
    pub fn ancestors(&self, id: GroupId) -> impl Iterator<Item = GroupId> + '_ {
        std::iter::successors(Some(id), move |&g| {
            self.groups.get(g as usize).and_then(|x| x.parent)
        })
    }

    /// Records `node` in `group` and fills recursive node counts and parameter counts; `params(node)` gives
    /// a node's own parameter count. Call once after all nodes are placed.
    pub fn finish(&mut self, node_groups: &[GroupId], params: impl Fn(usize) -> u64) {
        for g in &mut self.groups {
            g.nodes.clear();
            g.node_count = 0;
            g.param_count = 0;
        }
        for (i, &g) in node_groups.iter().enumerate() {
            let p = params(i);
            if let Some(grp) = self.groups.get_mut(g as usize) {
                grp.nodes.push(i as NodeId);
                grp.node_count += 1;
                // Saturating: a malformed file's tensor may claim up to u64::MAX elements.
                grp.param_count = grp.param_count.saturating_add(p);
            }
        }
        // Children always have larger ids than parents, so one reverse sweep sums bottom-up.
        for i in (1..self.groups.len()).rev() {
            let (n, p, parent) = {
                let g = &self.groups[i];
                (g.node_count, g.param_count, g.parent)
            };
            if let Some(parent) = parent.and_then(|p| self.groups.get_mut(p as usize)) {
                parent.node_count += n;
                parent.param_count = parent.param_count.saturating_add(p);
            }
        }
    }
}

/// Splits a name into group segments and a leaf.
///
/// `/model/layers.0/self_attn/q_proj/MatMul` → (`[model, layers.0, self_attn, q_proj]`, `MatMul`);
/// `model.layers.0.self_attn.q_proj.weight` → (`[model, layers.0, self_attn, q_proj]`, `weight`): a
/// numeric segment joins the one before it, as module lists print (`layers.0`). Returns the separator
/// used (`/` or `.`).
pub fn split_path(name: &str) -> (Vec<&str>, &str, char) {
    if name.contains('/') {
        let parts: Vec<&str> = name.split('/').filter(|s| !s.is_empty()).collect();
        let Some((leaf, groups)) = parts.split_last() else {
            return (Vec::new(), name, '/');
        };
        return (groups.to_vec(), leaf, '/');
    }
    let mut segs: Vec<&str> = Vec::new();
    let mut start = 0usize;
    let bytes = name.as_bytes();
    let mut i = 0usize;
    while i <= bytes.len() {
        if i == bytes.len() || bytes[i] == b'.' {
            let seg = &name[start..i];
            let numeric = !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
            if numeric && !segs.is_empty() {
                // Merge with the previous segment: `layers` + `0` → `layers.0`.
                if let Some(prev) = segs.pop() {
                    let prev_start = prev.as_ptr() as usize - name.as_ptr() as usize;
                    segs.push(&name[prev_start..i]);
                }
            } else if !seg.is_empty() {
                segs.push(seg);
            }
            start = i + 1;
        }
        i += 1;
    }
    match segs.split_last() {
        Some((leaf, groups)) => (groups.to_vec(), leaf, '.'),
        None => (Vec::new(), name, '.'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_onnx_and_dotted_paths() {
        let (g, leaf, sep) = split_path("/model/layers.0/self_attn/q_proj/MatMul");
        assert_eq!(g, ["model", "layers.0", "self_attn", "q_proj"]);
        assert_eq!((leaf, sep), ("MatMul", '/'));
        let (g, leaf, sep) = split_path("model.layers.10.self_attn.q_proj.weight");
        assert_eq!(g, ["model", "layers.10", "self_attn", "q_proj"]);
        assert_eq!((leaf, sep), ("weight", '.'));
        let (g, leaf, _) = split_path("conv1");
        assert!(g.is_empty());
        assert_eq!(leaf, "conv1");
        let (g, leaf, _) = split_path("h.3.attn.c_attn.weight");
        assert_eq!(g, ["h.3", "attn", "c_attn"]);
        assert_eq!(leaf, "weight");
    }

    #[test]
    fn counts_roll_up() {
        let mut h = Hierarchy::new();
        let a = h.insert_path(["model", "layers.0"], '.');
        let b = h.insert_path(["model", "layers.1"], '.');
        let m = h.find("model").unwrap();
        h.finish(&[a, a, b], |i| [10, 20, 5][i]);
        assert_eq!(h.get(m).unwrap().node_count, 3);
        assert_eq!(h.get(m).unwrap().param_count, 35);
        assert_eq!(h.root().param_count, 35);
        assert_eq!(h.get(b).unwrap().path, "model.layers.1");
        assert_eq!(h.ancestors(b).collect::<Vec<_>>(), vec![b, m, 0]);
    }
}
