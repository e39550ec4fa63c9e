//! Layout engine: quality, robustness and cluster-tree invariants on synthetic and real graphs.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions may unwrap too"
)]

use std::time::Instant;

use glam::DVec2;

use modelmap::bench::synth;
use modelmap::graph::{self, ClusterTree, Item};
use modelmap::layout::{
    self, DataflowCache, DataflowOptions, ForceOptions, Layout, LayoutError, LayoutKind,
    MetricsOptions, Progress,
};
use modelmap::model::{Edge, Graph, Hierarchy, Node, NodeKind};

fn graph_of(n: usize, edges: &[(u32, u32)]) -> Graph {
    let mut g = Graph {
        name: "t".into(),
        ..Graph::default()
    };
    for i in 0..n {
        g.nodes.push(Node::new(format!("n{i}"), "Op", NodeKind::Op));
    }
    g.edges = edges
        .iter()
        .map(|&(from, to)| Edge { from, to, value: 0 })
        .collect();
    g
}

fn df(g: &Graph, h: &Hierarchy) -> Layout {
    layout::dataflow(g, h, &DataflowOptions::default(), &Progress::new()).unwrap()
}

fn metrics(l: &Layout, g: &Graph) -> layout::Metrics {
    let e = graph::edge_pairs(g).unwrap();
    layout::measure(
        l,
        &e,
        &MetricsOptions {
            stress_sources: 4,
            ..MetricsOptions::default()
        },
    )
}

/// Every node in exactly one leaf chain, member counts add up, boxes nest, every non-self-loop edge
/// in exactly one aggregate.
fn check_tree(t: &ClusterTree, g: &Graph) {
    let n = g.nodes.len();
    assert_eq!(t.node_cluster.len(), n);
    let mut seen = vec![0u32; n];
    for (ci, c) in t.clusters.iter().enumerate() {
        for &v in t.child_nodes(c) {
            seen[v as usize] += 1;
            assert_eq!(t.node_cluster[v as usize], ci as u32);
        }
        let sum: u64 = t.child_nodes(c).len() as u64
            + t.child_clusters(c)
                .iter()
                .map(|&k| t.clusters[k as usize].member_count)
                .sum::<u64>();
        assert_eq!(sum, c.member_count, "cluster {ci}");
        for &k in t.child_clusters(c) {
            assert_eq!(t.clusters[k as usize].parent, Some(ci as u32));
            assert!(k as usize > ci, "children numbered after parents");
            let kb = t.clusters[k as usize].bbox;
            assert!(
                c.bbox.min.x <= kb.min.x + 1e-6 && c.bbox.max.y >= kb.max.y - 1e-6,
                "box of {k} {kb:?} inside {ci} {:?}",
                c.bbox
            );
        }
    }
    assert!(
        seen.iter().all(|&s| s == 1),
        "each node under exactly one cluster"
    );
    assert_eq!(t.clusters[0].member_count, n as u64);
    let mut counted = vec![0u32; g.edges.len()];
    for c in &t.clusters {
        for a in t.sibling_edges(c) {
            assert_ne!(a.a, a.b);
            assert_eq!(t.agg_edge_ids(a).len(), a.count as usize);
            for &e in t.agg_edge_ids(a) {
                counted[e as usize] += 1;
                // Both items are direct children of the cluster and hold the endpoints.
                let ed = g.edges[e as usize];
                for (item, v) in [(a.a, ed.from), (a.b, ed.to)] {
                    match item {
                        Item::Node(x) => assert_eq!(x, v),
                        Item::Cluster(k) => {
                            assert!(t.ancestors(t.node_cluster[v as usize]).any(|x| x == k))
                        }
                    }
                }
            }
        }
    }
    for (e, ed) in g.edges.iter().enumerate() {
        assert_eq!(counted[e], u32::from(ed.from != ed.to), "edge {e}");
    }
}

#[test]
fn dataflow_model_like_is_clean_and_hierarchical() {
    let (g, h) = synth::model_like(4, 3);
    let l = df(&g, &h);
    assert_eq!(l.kind, LayoutKind::Dataflow);
    let m = metrics(&l, &g);
    assert_eq!(m.overlaps, 0);
    assert_eq!(m.upward_edges, 0, "all edges point down");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    // Group boxes hold their nodes; sibling layer boxes do not overlap and stack top to bottom.
    for (v, nd) in g.nodes.iter().enumerate() {
        for gid in h.ancestors(nd.group) {
            let r = l.groups[gid as usize];
            assert!(r.contains(l.nodes[v].center), "node {v} in group {gid}");
        }
    }
    let layers: Vec<_> = (0..4)
        .map(|i| h.find(&format!("model/layers.{i}")).unwrap())
        .collect();
    for w in layers.windows(2) {
        let (a, b) = (l.groups[w[0] as usize], l.groups[w[1] as usize]);
        assert!(a.max.y < b.min.y, "layers.N above layers.N+1");
    }
    check_tree(&l.clusters, &g);
    let q = h.find("model/layers.2/self_attn").unwrap();
    let c = l
        .clusters
        .clusters
        .iter()
        .find(|c| c.group == Some(q))
        .unwrap();
    assert_eq!(c.label, "self_attn");
    assert!(!c.dominant_op.is_empty());
    assert!(l.clusters.clusters[0].param_count > 0);
}

#[test]
fn dataflow_reduces_crossings_to_zero_on_untangleable_dags() {
    // Initial DFS order puts p before q on layer 1, crossing b→p with a→q; barycenter must swap them.
    // Six copies hung under one root so they share layers.
    let mut edges = Vec::new();
    let n = 1 + 6 * 4;
    for k in 0..6u32 {
        let (a, b, p, q) = (1 + 4 * k, 2 + 4 * k, 3 + 4 * k, 4 + 4 * k);
        edges.extend([(0, a), (0, b), (a, p), (a, q), (b, p)]);
    }
    let g = graph_of(n, &edges);
    let l = df(&g, &Hierarchy::new());
    let m = metrics(&l, &g);
    assert!(m.crossings_exact);
    assert_eq!(m.crossings, 0.0);
    assert_eq!(m.overlaps, 0);
    // Without crossing reduction the same graph does cross: the sweeps did the work.
    let raw = DataflowOptions {
        crossing_passes: 0,
        ..DataflowOptions::default()
    };
    let l0 = layout::dataflow(&g, &Hierarchy::new(), &raw, &Progress::new()).unwrap();
    assert!(metrics(&l0, &g).crossings >= 6.0);
    // A complete bipartite K_{3,3} has (3 choose 2)^2 = 9 crossings in any 2-layer drawing.
    let k33: Vec<(u32, u32)> = (0..3).flat_map(|i| (3..6).map(move |j| (i, j))).collect();
    let g = graph_of(6, &k33);
    assert_eq!(metrics(&df(&g, &Hierarchy::new()), &g).crossings, 9.0);
}

#[test]
fn dataflow_is_deterministic() {
    let (g, h) = synth::model_like(3, 9);
    let a = df(&g, &h);
    let b = df(&g, &h);
    assert_eq!(a.nodes, b.nodes);
    assert_eq!(a.route_points, b.route_points);
    let (g, h) = synth::dag(600, 1500, 2);
    let opts = DataflowOptions {
        seed: 5,
        ..DataflowOptions::default()
    };
    let a = layout::dataflow(&g, &h, &opts, &Progress::new()).unwrap();
    let b = layout::dataflow(&g, &h, &opts, &Progress::new()).unwrap();
    assert_eq!(a.nodes, b.nodes);
    let m = metrics(&a, &g);
    assert_eq!((m.overlaps, m.upward_edges), (0, 0));
}

#[test]
fn cycles_and_self_loops_are_broken_and_reported() {
    // 0→1→2→0 loop, 2→3, 3→3 self-loop, 3→4→1 a second loop.
    let g = graph_of(5, &[(0, 1), (1, 2), (2, 0), (2, 3), (3, 3), (3, 4), (4, 1)]);
    let l = df(&g, &Hierarchy::new());
    assert!(
        l.warnings.iter().any(|w| w.contains("reversed")),
        "{:?}",
        l.warnings
    );
    assert!(
        l.warnings.iter().any(|w| w.contains("self-loop")),
        "{:?}",
        l.warnings
    );
    let reversed = l.routes().filter(|r| r.reversed).count();
    assert!((1..=2).contains(&reversed), "{reversed}");
    assert!(l.route(4).unwrap().hidden);
    let m = metrics(&l, &g);
    assert_eq!(m.upward_edges, 0, "only reversed edges run upward");
    for r in l.routes().filter(|r| r.reversed) {
        assert!(r.to.y < r.from.y);
    }
    assert_eq!(l.clusters.self_loops, 1);
    check_tree(&l.clusters, &g);
}

#[test]
fn thousand_components_are_packed() {
    let mut edges = Vec::new();
    for c in 0..1000u32 {
        edges.extend([(3 * c, 3 * c + 1), (3 * c + 1, 3 * c + 2)]);
    }
    let g = graph_of(3000, &edges);
    let l = df(&g, &Hierarchy::new());
    let size = l.bounds.size();
    let aspect = size.x / size.y;
    assert!(
        (0.2..5.0).contains(&aspect),
        "packed roughly square, got {size:?}"
    );
    let m = metrics(&l, &g);
    assert_eq!((m.overlaps, m.upward_edges), (0, 0));
    check_tree(&l.clusters, &g);
    assert!(l.clusters.clusters.iter().all(|c| c.child_count() <= 64));
}

#[test]
fn huge_fan_out_is_fast() {
    let n = 100_001u32;
    let edges: Vec<(u32, u32)> = (1..n).map(|v| (0, v)).collect();
    let g = graph_of(n as usize, &edges);
    let t = Instant::now();
    let l = df(&g, &Hierarchy::new());
    let dt = t.elapsed().as_secs_f64();
    assert!(dt < 20.0, "100k fan-out took {dt} s");
    let m = layout::measure(
        &l,
        &graph::edge_pairs(&g).unwrap(),
        &MetricsOptions::default(),
    );
    assert_eq!(m.overlaps, 0);
    assert_eq!(m.upward_edges, 0);
    check_tree(&l.clusters, &g);
    // A star also coarsens in one step for the force layout.
    let small: Vec<(u32, u32)> = (1..5000).map(|v| (0, v)).collect();
    let g = graph_of(5000, &small);
    let opts = ForceOptions {
        iterations: 5,
        coarse_iterations: 20,
        ..ForceOptions::default()
    };
    let f = layout::force(&g, &opts, &Progress::new()).unwrap();
    check_tree(&f.clusters, &g);
    // Computed clusters carry no stored label; what is drawn is their dominant op and size.
    let c = f
        .clusters
        .clusters
        .iter()
        .skip(1)
        .max_by_key(|c| c.member_count)
        .unwrap();
    assert!(c.label.is_empty());
    assert_eq!(c.display_label(), format!("Op ×{}", c.member_count));
    assert_eq!(f.clusters.clusters[0].display_label(), "graph");
}

#[test]
fn long_edges_fan_out_as_one_bundle() {
    // A constant feeding consumers at every depth of a 200-chain: one dummy chain, not one per edge.
    let mut edges: Vec<(u32, u32)> = (1..200).map(|v| (v, v + 1)).collect();
    edges.extend((2..=200).map(|v| (0, v)));
    edges.push((1, 0)); // keeps the constant's layer at the top
    let g = graph_of(201, &edges);
    let l = df(&g, &Hierarchy::new());
    assert!(
        l.route_points.len() < 400,
        "{} waypoints",
        l.route_points.len()
    );
    let last = l.routes().position(|r| r.points_len > 150).unwrap();
    // Waypoints run downward between the endpoints.
    let w = l.waypoints(last);
    assert!(w.windows(2).all(|p| p[1].y > p[0].y));
    let m = metrics(&l, &g);
    assert_eq!(m.overlaps, 0);
}

#[test]
fn one_child_groups_and_wide_groups() {
    let mut g = graph_of(0, &[]);
    let mut h = Hierarchy::new();
    let solo = h.insert_path(["solo"], '/');
    let inner = h.insert_path(["solo", "inner"], '/');
    let wide = h.insert_path(["wide"], '/');
    for i in 0..3 {
        let mut nd = Node::new(format!("s{i}"), "Op", NodeKind::Op);
        nd.group = inner;
        g.nodes.push(nd);
    }
    for i in 0..50_000 {
        let mut nd = Node::new(format!("w{i}"), "Relu", NodeKind::Op);
        nd.group = wide;
        g.nodes.push(nd);
    }
    g.edges = vec![
        Edge {
            from: 0,
            to: 1,
            value: 0,
        },
        Edge {
            from: 1,
            to: 2,
            value: 0,
        },
        Edge {
            from: 2,
            to: 3,
            value: 0,
        },
    ];
    let groups: Vec<u32> = g.nodes.iter().map(|n| n.group).collect();
    h.finish(&groups, |_| 1);
    let t = Instant::now();
    let l = df(&g, &h);
    assert!(t.elapsed().as_secs_f64() < 20.0);
    let (rs, ri, rw) = (
        l.groups[solo as usize],
        l.groups[inner as usize],
        l.groups[wide as usize],
    );
    assert!(rs.contains(ri.min) && rs.contains(ri.max));
    assert!(!rs.intersects(&rw));
    let m = layout::measure(
        &l,
        &graph::edge_pairs(&g).unwrap(),
        &MetricsOptions::default(),
    );
    assert_eq!(m.overlaps, 0);
    check_tree(&l.clusters, &g);
    assert!(l.clusters.clusters.iter().all(|c| c.child_count() <= 64));
    assert_eq!(l.clusters.clusters[0].param_count, 50_003);
}

#[test]
fn collapsing_a_group_recomputes_only_its_ancestors() {
    let (g, h) = synth::model_like(6, 1);
    let layer = h.find("model/layers.3").unwrap();
    let mut cache = DataflowCache::default();
    let p = Progress::new();
    let full =
        layout::dataflow_cached(&g, &h, &DataflowOptions::default(), &mut cache, &p).unwrap();
    assert_eq!(cache.hits, 0);
    let opts = DataflowOptions {
        collapsed: vec![layer],
        ..DataflowOptions::default()
    };
    let col = layout::dataflow_cached(&g, &h, &opts, &mut cache, &p).unwrap();
    assert_eq!(cache.misses, 2, "model and root only");
    assert!(col.collapsed[layer as usize]);
    let r = col.groups[layer as usize];
    assert!(r.size().y < full.groups[layer as usize].size().y / 4.0);
    let inside = h.find("model/layers.3/mlp").unwrap();
    assert!(col.groups[inside as usize].is_empty());
    let v = h.groups[inside as usize].nodes[0] as usize;
    assert!(!col.nodes[v].is_visible());
    assert_eq!(col.nodes[v].center, r.center());
    let m = metrics(&col, &g);
    assert_eq!((m.overlaps, m.upward_edges), (0, 0));
    check_tree(&col.clusters, &g);
    // Expanding again reuses the cached inside of layers.3.
    let again =
        layout::dataflow_cached(&g, &h, &DataflowOptions::default(), &mut cache, &p).unwrap();
    assert_eq!(cache.misses, 2);
    assert_eq!(again.nodes, full.nodes);
}

#[test]
fn cancellation_stops_both_layouts() {
    let (g, h) = synth::model_like(2, 1);
    let p = Progress::new();
    p.cancel();
    assert!(matches!(
        layout::dataflow(&g, &h, &DataflowOptions::default(), &p),
        Err(LayoutError::Cancelled)
    ));
    assert!(matches!(
        layout::force(&g, &ForceOptions::default(), &p),
        Err(LayoutError::Cancelled)
    ));
}

#[test]
fn bad_edges_are_errors() {
    let g = graph_of(2, &[(0, 5)]);
    let e = layout::dataflow(
        &g,
        &Hierarchy::new(),
        &DataflowOptions::default(),
        &Progress::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("edge 0"), "{e}");
    assert!(layout::force(&g, &ForceOptions::default(), &Progress::new()).is_err());
}

#[test]
fn force_recovers_lattice_shape_deterministically() {
    let (g, _) = synth::random(3000, 6000, 4);
    let opts = ForceOptions {
        seed: 3,
        ..ForceOptions::default()
    };
    let mut levels = 0;
    let a = layout::force_with_levels(&g, &opts, &Progress::new(), &mut |_| levels += 1).unwrap();
    assert!(levels >= 3, "multilevel: {levels}");
    let b = layout::force(&g, &opts, &Progress::new()).unwrap();
    assert_eq!(a.nodes, b.nodes);
    let c = layout::force(
        &g,
        &ForceOptions {
            seed: 4,
            ..opts.clone()
        },
        &Progress::new(),
    )
    .unwrap();
    assert_ne!(a.nodes, c.nodes);
    let m = metrics(&a, &g);
    // Random placement over the same area would give edges ~ half the layout's width.
    let width = a.bounds.size().x;
    assert!(
        m.edge_length_mean < width / 8.0,
        "mean {} vs width {width}",
        m.edge_length_mean
    );
    assert!(m.stress.unwrap() < 0.5, "stress {:?}", m.stress);
    check_tree(&a.clusters, &g);
    assert!(a.clusters.clusters[0].child_count() <= 128);
}

#[test]
fn force_handles_components_and_isolated_nodes() {
    let mut edges = Vec::new();
    for c in 0..300u32 {
        edges.extend([
            (3 * c, 3 * c + 1),
            (3 * c + 1, 3 * c + 2),
            (3 * c + 2, 3 * c),
        ]);
    }
    let mut g = graph_of(1000, &edges);
    g.edges.push(Edge {
        from: 999,
        to: 999,
        value: 0,
    });
    let l = layout::force(&g, &ForceOptions::default(), &Progress::new()).unwrap();
    assert!(l.nodes.iter().all(|n| n.center.is_finite()));
    check_tree(&l.clusters, &g);
}

/// Runs both layouts on every model of the shared corpus (skips when the corpus is absent).
/// The corpus, or `None` after saying it is missing.
fn corpus_dir() -> Option<std::path::PathBuf> {
    // `../shared/corpus` from the main checkout; `../../shared/corpus` from a worktree under wt/.
    let dir = std::env::var("MODELMAP_CORPUS").unwrap_or_else(|_| {
        let near = "../shared/corpus";
        if std::path::Path::new(near).exists() {
            near.to_string()
        } else {
            "../../shared/corpus".to_string()
        }
    });
    let dir = std::path::PathBuf::from(dir);
    if !dir.exists() {
        eprintln!("CORPUS MISSING: not found at {}: skipped", dir.display());
        return None;
    }
    Some(dir)
}

#[test]
fn corpus_models_lay_out() {
    if let Some(dir) = corpus_dir() {
        corpus::run(&dir);
    }
}

/// A chain `0 → 1 → … → 29`; node 30 a `Constant` feeding chain nodes 5, 15 and 25; nodes 31, 32 a
/// `Constant` and the `Reshape` of it (an unfolded weight) feeding chain node 20.
fn chain_with_constants() -> Graph {
    let mut edges: Vec<(u32, u32)> = (0..29).map(|v| (v, v + 1)).collect();
    edges.extend([(30, 5), (30, 15), (30, 25), (31, 32), (32, 20)]);
    let mut g = graph_of(33, &edges);
    g.nodes[30].op = "Constant".into();
    g.nodes[31].op = "Constant".into();
    g.nodes[32].op = "Reshape".into();
    g
}

#[test]
fn shared_constants_get_stubs_and_weight_chains_sit_above_their_use() {
    let g = chain_with_constants();
    let l = df(&g, &Hierarchy::new());
    let m = metrics(&l, &g);
    assert_eq!((m.overlaps, m.upward_edges), (0, 0));
    let center = |v: usize| l.nodes[v].center;
    let gap = DataflowOptions::default().layer_gap;
    // The shared constant sits right above its first consumer…
    let step = center(6).y - center(5).y;
    assert!(
        (center(5).y - center(30).y - step).abs() < 1e-6,
        "above node 5"
    );
    for (e, edge) in g.edges.iter().enumerate() {
        let r = l.route(e).unwrap();
        let len = (r.to - r.from).length();
        match (edge.from, edge.to) {
            // …and its other consumers get a short lead ending on their top edge, no waypoints.
            (30, to @ (15 | 25)) => {
                assert!(len < gap, "stub into {to} is {len} long");
                assert_eq!(r.points_len, 0);
                let top = l.nodes[to as usize].rect().min.y;
                assert!((r.to.y - top).abs() < 1e-6 && r.from.y < r.to.y);
            }
            (30, 5) => {
                // The first use is a plain edge across one layer gap.
                assert!((r.to.y - r.from.y - gap).abs() < 1e-6 && r.points_len == 0);
            }
            _ => {}
        }
    }
    // The weight and its Reshape are pulled down the chain to sit right above node 20, not left
    // on the top layer with an edge the length of the chain.
    assert!(
        (center(20).y - center(32).y - step).abs() < 1e-6,
        "Reshape above its use"
    );
    assert!(
        (center(32).y - center(31).y - step).abs() < 1e-6,
        "Constant above its Reshape"
    );
    // And they do not bend the chain: nodes 19 and 21 are in one column.
    assert!((center(19).x - center(21).x).abs() < 1.0);
    // Only constants get stubs: the same graph with plain ops routes every edge in full.
    let mut plain = g.clone();
    plain.nodes[30].op = "Op".into();
    let l = df(&plain, &Hierarchy::new());
    let e = plain
        .edges
        .iter()
        .position(|e| (e.from, e.to) == (30, 25))
        .unwrap();
    let r = l.route(e).unwrap();
    assert!(
        r.to.y - r.from.y > 10.0 * step,
        "a full route from the source"
    );
}

#[test]
fn block_colours_come_from_what_the_block_computes() {
    // A DenseNet layer is BN → ReLU → Conv twice, its batch norms written as Mul + Add of
    // unsqueezed constants, its weights made by ConstantOfShape: the block is coloured by its
    // convolutions or norms, not by the Unsqueezes and Adds that outnumber them (nor, counting
    // members rather than votes, by a sub-block's member count).
    let Some(dir) = corpus_dir() else {
        return;
    };
    let model = modelmap::load::open(&dir.join("real/onnx_light/light_densenet121.onnx")).unwrap();
    let l = df(&model.graph, &model.hierarchy);
    let block = model.hierarchy.find("conv2_1").unwrap();
    let c = l
        .clusters
        .clusters
        .iter()
        .find(|c| c.group == Some(block))
        .unwrap();
    assert!(
        ["Conv", "BatchNormalization", "Relu"].contains(&&*c.dominant_op),
        "conv2_1 coloured as {}",
        c.dominant_op
    );
    // A transformer layer of a PyTorch export computes its reshapes from `Shape` → `Gather` →
    // `Concat` chains, eight Gathers a layer against nine MatMuls: it read "mostly Gather".
    // Parameter-free data movement does not vote; the layer and its attention are MatMul blocks.
    let model = modelmap::load::open(&dir.join("generated/llama_tiny_4l.onnx")).unwrap();
    let l = df(&model.graph, &model.hierarchy);
    for name in ["model/layers.0", "model/layers.2/self_attn"] {
        let g = model.hierarchy.find(name).unwrap();
        let c = l
            .clusters
            .clusters
            .iter()
            .find(|c| c.group == Some(g))
            .unwrap();
        assert_eq!(&*c.dominant_op, "MatMul", "{name}");
    }
}

/// Zoo models feed every Conv from weight generators (`ConstantOfShape` nodes), which sit beside
/// its data input. They used to pull or shove the chain sideways a little at every block, and every
/// residual merge stepped aside towards its skip edge, so a VGG-19 or a ResNet-50 leaned across the
/// picture (VGG's ReLUs spread over 513 units, ResNet's sums over 218). The chain now stays in one
/// column.
#[test]
fn weight_generators_do_not_bend_the_chain() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    for (file, op, max_spread) in [
        ("light_vgg19.onnx", "Relu", 20.0),
        ("light_resnet50.onnx", "Sum", 60.0),
    ] {
        let path = dir.join("real/onnx_light").join(file);
        let model = modelmap::load::open(&path).unwrap();
        let l = df(&model.graph, &model.hierarchy);
        // The main chain: VGG's activations, ResNet's residual sums.
        let xs: Vec<f64> = model
            .graph
            .nodes
            .iter()
            .zip(&l.nodes)
            .filter(|(n, _)| &*n.op == op)
            .map(|(_, b)| b.center.x)
            .collect();
        let (lo, hi) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        eprintln!("{file}: {} {op}s spread over {:.1}", xs.len(), hi - lo);
        assert!(xs.len() > 10);
        assert!(
            hi - lo <= max_spread,
            "{file}: {op}s spread over {:.1}",
            hi - lo
        );
    }
}

/// A transformer export feeds its attention mask and rotary tables from graph inputs into every
/// layer. Those edges must run in the gaps and beside the layer boxes they pass, not through them:
/// - in the layout, a dummy beside a tall box is a vertical run the box's height (one point at its
///   middle made the curve to the next dummy an S the height of the layer, through the layer);
/// - in the LOD cut, an aggregated edge follows the route of an edge it stands for outside its two
///   boxes (it was one curve from the input straight to the fourth layer).
///
/// A curve between two waypoints stays inside their bounding box (vertical tangents), so a piece
/// whose box misses a layer's interior does not cross that layer.
#[test]
fn long_edges_run_beside_the_boxes_they_pass() {
    use modelmap::lod::{LodOptions, LodState, ViewState};
    use modelmap::view::{Camera, Rect};
    let Some(dir) = corpus_dir() else {
        return;
    };
    let model = modelmap::load::open(&dir.join("generated/llama_tiny_4l.onnx")).unwrap();
    let (g, h) = (&model.graph, &model.hierarchy);
    let l = df(g, h);
    let layers: Vec<Rect> = (0..4)
        .map(|k| l.groups[h.find(&format!("model/layers.{k}")).unwrap() as usize])
        .collect();
    // Does the piece p → q pass through box r without starting or ending in it?
    let crosses = |r: &Rect, p: DVec2, q: DVec2| {
        let inner = r.expand(-2.0);
        let outer = r.expand(2.0);
        let bb = Rect::new(p.min(q), p.max(q));
        bb.min.x < inner.max.x
            && bb.max.x > inner.min.x
            && bb.min.y < inner.max.y
            && bb.max.y > inner.min.y
            && !outer.contains(p)
            && !outer.contains(q)
    };
    let edges = graph::edge_pairs(g).unwrap();
    let mut checked = 0;
    for (e, &(u, v)) in edges.iter().enumerate() {
        if g.nodes[u as usize].kind != NodeKind::Input {
            continue;
        }
        let r = l.route(e).unwrap();
        let pts: Vec<DVec2> = std::iter::once(r.from)
            .chain(l.waypoints(e).iter().copied())
            .chain(std::iter::once(r.to))
            .collect();
        for w in pts.windows(2) {
            for (k, lr) in layers.iter().enumerate() {
                assert!(
                    !crosses(lr, w[0], w[1]),
                    "{} -> {}: {:?} -> {:?} crosses layers.{k}",
                    g.nodes[u as usize].name,
                    g.nodes[v as usize].name,
                    w[0],
                    w[1]
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 20, "{checked} edges from graph inputs");

    // The cut at fit zoom draws the layers' insides as closed clusters, so most edges from the
    // inputs are aggregates.
    let mut lod = LodState::new(
        &l,
        LodOptions {
            fade_s: 0.0,
            ..LodOptions::default()
        },
    );
    let mut cam = Camera::new(DVec2::new(1200.0, 1600.0));
    cam.fit(l.bounds, 10.0);
    lod.cut(&model, &l, &cam, &ViewState::default(), 0.0);
    assert!(lod.stats.clusters_drawn > 0, "{:?}", lod.stats);
    let list = lod.draw_list();
    let origin = list.origin;
    let mut long = 0;
    for ed in &list.edges {
        let (p, q) = (origin + ed.from.as_dvec2(), origin + ed.to.as_dvec2());
        if (q.y - p.y).abs() >= 0.9 * layers[0].size().y {
            long += 1;
        }
        for (k, lr) in layers.iter().enumerate() {
            assert!(!crosses(lr, p, q), "{p:?} -> {q:?} crosses layers.{k}");
        }
    }
    assert!(long > 0, "some pieces run down beside a whole layer");
}

mod corpus {
    use super::*;

    pub fn run(dir: &std::path::Path) {
        let facts: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("facts.json")).unwrap())
                .unwrap();
        let mut done = 0;
        for f in facts["files"].as_array().unwrap() {
            let format = f["format"].as_str().unwrap_or("");
            if !["onnx", "gguf", "safetensors", "json-layers"].contains(&format) {
                continue;
            }
            let path = dir.join(f["path"].as_str().unwrap());
            let model = modelmap::load::open(&path).unwrap_or_else(|e| panic!("{e}"));
            let t0 = Instant::now();
            let g = &model.graph;
            let opts = DataflowOptions {
                node_params: graph::node_param_counts(&model),
                ..DataflowOptions::default()
            };
            let l = layout::dataflow(g, &model.hierarchy, &opts, &Progress::new()).unwrap();
            let td = t0.elapsed().as_secs_f64();
            let m = metrics(&l, g);
            assert_eq!(m.overlaps, 0, "{}", path.display());
            assert_eq!(m.upward_edges, 0, "{}", path.display());
            check_tree(&l.clusters, g);
            assert_eq!(
                l.clusters.clusters[0].param_count,
                opts.node_params.iter().sum::<u64>(),
                "{}",
                path.display()
            );
            let t1 = Instant::now();
            let fo = ForceOptions {
                iterations: 20,
                coarse_iterations: 60,
                ..ForceOptions::default()
            };
            let fl = layout::force(g, &fo, &Progress::new()).unwrap();
            assert!(fl.nodes.iter().all(|n| n.center.is_finite()));
            check_tree(&fl.clusters, g);
            eprintln!(
                "{}: dataflow {td:.2} s, +metrics {:.2} s, force {:.2} s; {} nodes, {} edges, {} groups, crossings {}, warnings {:?}",
                path.display(),
                (t1 - t0).as_secs_f64(),
                t1.elapsed().as_secs_f64(),
                g.nodes.len(),
                g.edges.len(),
                model.hierarchy.groups.len(),
                m.crossings,
                l.warnings
            );
            done += 1;
        }
        assert!(done >= 14, "only {done} corpus models laid out");
    }
}

/// Writes SVG pictures of a few layouts under `docs/layout/` (run by hand:
/// `cargo test --test layout -- --ignored write_pictures`).
#[test]
#[ignore = "writes files under docs/; run by hand"]
fn write_pictures() {
    use modelmap::bench::layout::layout_svg;
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/layout");
    std::fs::create_dir_all(&out).unwrap();
    let (g, h) = synth::model_like(2, 1);
    std::fs::write(
        out.join("model_like_dataflow.svg"),
        layout_svg(&df(&g, &h), &g, 5000),
    )
    .unwrap();
    let layer = h.find("model/layers.0").unwrap();
    let opts = DataflowOptions {
        collapsed: vec![layer],
        ..DataflowOptions::default()
    };
    let l = layout::dataflow(&g, &h, &opts, &Progress::new()).unwrap();
    std::fs::write(
        out.join("model_like_collapsed.svg"),
        layout_svg(&l, &g, 5000),
    )
    .unwrap();
    let (g, h) = synth::dag(150, 260, 3);
    std::fs::write(
        out.join("dag_dataflow.svg"),
        layout_svg(&df(&g, &h), &g, 5000),
    )
    .unwrap();
    let (g, _) = synth::random(4000, 8000, 1);
    let l = layout::force(&g, &ForceOptions::default(), &Progress::new()).unwrap();
    std::fs::write(out.join("random_force.svg"), layout_svg(&l, &g, 0)).unwrap();
    let (g, _) = synth::model_like(3, 1);
    let l = layout::force(&g, &ForceOptions::default(), &Progress::new()).unwrap();
    std::fs::write(out.join("model_like_force.svg"), layout_svg(&l, &g, 0)).unwrap();
    let corpus =
        std::env::var("MODELMAP_CORPUS").unwrap_or_else(|_| "../shared/corpus".to_string());
    for (file, name) in [
        ("generated/llama_tiny_4l.onnx", "llama_tiny_4l"),
        ("real/onnx_light/light_inception_v1.onnx", "inception_v1"),
        ("real/onnx_light/light_resnet50.onnx", "resnet50"),
        (
            "real/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx",
            "ppocr_cls",
        ),
    ] {
        let Ok(model) = modelmap::load::open(&std::path::Path::new(&corpus).join(file)) else {
            continue;
        };
        let l = layout::dataflow(
            &model.graph,
            &model.hierarchy,
            &DataflowOptions::default(),
            &Progress::new(),
        )
        .unwrap();
        std::fs::write(
            out.join(format!("{name}_dataflow.svg")),
            layout_svg(&l, &model.graph, 5000),
        )
        .unwrap();
        let l = layout::force(&model.graph, &ForceOptions::default(), &Progress::new()).unwrap();
        std::fs::write(
            out.join(format!("{name}_force.svg")),
            layout_svg(&l, &model.graph, 0),
        )
        .unwrap();
    }
}

/// Prints `bench layout` summaries at moderate sizes (debug build: indicative only).
/// `cargo test --test layout -- --ignored --nocapture bench_smoke`
#[test]
#[ignore = "timing printout; run by hand"]
fn bench_smoke() {
    use modelmap::bench::layout::{BenchLayout, LayoutBenchArgs, run};
    let nodes: usize = std::env::var("BENCH_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000);
    let r = run(&LayoutBenchArgs {
        nodes,
        ..LayoutBenchArgs::default()
    })
    .unwrap();
    println!("{}", r.summary());
    let r = run(&LayoutBenchArgs {
        nodes,
        layout: BenchLayout::Force,
        ..LayoutBenchArgs::default()
    })
    .unwrap();
    println!("{}", r.summary());
}

/// Stage timings of the force layout pieces (debug build: indicative only).
#[test]
#[ignore = "timing printout; run by hand"]
fn force_stage_timings() {
    use modelmap::graph::WeightedGraph;
    use modelmap::layout::ForceSim;
    let n: usize = std::env::var("BENCH_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let t = Instant::now();
    let (g, _) = synth::random(n, 2 * n, 1);
    println!("generate {:.3}", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let edges = graph::edge_pairs(&g).unwrap();
    let wg = WeightedGraph::from_edges(n, &edges);
    println!("csr {:.3}", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let levels = graph::coarsen(&wg, 100, 1);
    println!(
        "coarsen {:.3} ({} levels)",
        t.elapsed().as_secs_f64(),
        levels.len()
    );
    let mut rng = graph::Pcg32::new(2);
    let mut pos: Vec<glam::Vec2> = (0..n)
        .map(|_| glam::Vec2::new(rng.unit_f32(), rng.unit_f32()) * 30000.0)
        .collect();
    let mut sim = ForceSim::new();
    for k in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(k)
            .build()
            .unwrap();
        let t = Instant::now();
        for _ in 0..3 {
            pool.install(|| sim.iterate(&mut pos, &wg, 60.0, 30.0, 0.9));
        }
        println!(
            "iteration ({k} threads) {:.3}",
            t.elapsed().as_secs_f64() / 3.0
        );
    }
    let t = Instant::now();
    let maps: Vec<Vec<u32>> = levels.into_iter().map(|l| l.map).collect();
    let mut tree = ClusterTree::from_levels(n, &maps);
    println!("tree {:.3}", t.elapsed().as_secs_f64());
    let t = Instant::now();
    tree.aggregate_edges(&edges);
    println!("aggregate {:.3}", t.elapsed().as_secs_f64());
}

/// Per-level timing of the force layout (debug build: indicative only).
#[test]
#[ignore = "timing printout; run by hand"]
fn force_level_timings() {
    let n: usize = std::env::var("BENCH_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000);
    let (g, _) = synth::random(n, 2 * n, 1);
    let t = Instant::now();
    let l = layout::force_with_levels(&g, &ForceOptions::default(), &Progress::new(), &mut |s| {
        println!(
            "level {} ({} nodes) done at {:.3} s",
            s.level,
            s.positions.len(),
            s.elapsed.as_secs_f64()
        );
    })
    .unwrap();
    println!(
        "total {:.3} s, {} clusters",
        t.elapsed().as_secs_f64(),
        l.clusters.clusters.len()
    );
}
