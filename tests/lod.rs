//! The LOD cut without a window: coverage, hysteresis, eviction, revisions.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use glam::DVec2;

use modelmap::graph::Item;
use modelmap::layout::{self, DataflowOptions, ForceOptions, Layout, Progress};
use modelmap::lod::{LodOptions, LodState, ViewState, flags};
use modelmap::model::{Format, Model};
use modelmap::view::Camera;

fn model_like(blocks: usize) -> (Model, Layout) {
    let (graph, hierarchy) = modelmap::bench::synth::model_like(blocks, 3);
    let mut m = Model::new("synthetic", Format::Onnx);
    m.graph = graph;
    m.hierarchy = hierarchy;
    let l = dataflow_of(&m);
    (m, l)
}

fn dataflow_of(m: &Model) -> Layout {
    layout::dataflow(
        &m.graph,
        &m.hierarchy,
        &DataflowOptions::default(),
        &Progress::new(),
    )
    .unwrap()
}

/// A chain of ops, one after the other, without groups, laid out as dataflow.
fn chain<'a>(ops: impl IntoIterator<Item = &'a str>) -> (Model, Layout) {
    let mut m = Model::new("chain", Format::Onnx);
    for (i, op) in ops.into_iter().enumerate() {
        m.graph.nodes.push(modelmap::model::Node::new(
            format!("op{i}"),
            op,
            modelmap::model::NodeKind::Op,
        ));
        if i > 0 {
            m.graph.edges.push(modelmap::model::Edge {
                from: i as u32 - 1,
                to: i as u32,
                value: 0,
            });
        }
    }
    let l = dataflow_of(&m);
    (m, l)
}

fn random_force(n: usize) -> (Model, Layout) {
    let (graph, hierarchy) = modelmap::bench::synth::random(n, n * 2, 5);
    let mut m = Model::new("synthetic", Format::Onnx);
    m.graph = graph;
    m.hierarchy = hierarchy;
    let l = layout::force(&m.graph, &ForceOptions::default(), &Progress::new()).unwrap();
    (m, l)
}

/// Every node is covered by exactly one drawn item: itself or exactly one closed ancestor cluster.
fn assert_exact_cover(m: &Model, l: &Layout, lod: &LodState) {
    let drawn: std::collections::HashSet<Item> = lod
        .items()
        .iter()
        .zip(&lod.draw_list().nodes)
        .filter(|(_, n)| n.flags & flags::FRAME == 0)
        .map(|(i, _)| *i)
        .collect();
    let tree = &l.clusters;
    let mut covered_members = 0u64;
    for (i, _) in m.graph.nodes.iter().enumerate() {
        if !l.nodes[i].is_visible() {
            continue;
        }
        let mut hits = usize::from(drawn.contains(&Item::Node(i as u32)));
        let mut c = Some(tree.node_cluster[i]);
        while let Some(cc) = c {
            hits += usize::from(drawn.contains(&Item::Cluster(cc)));
            c = tree.clusters[cc as usize].parent;
        }
        assert_eq!(
            hits, 1,
            "node {i} ({}) covered {hits} times",
            m.graph.nodes[i].name
        );
        covered_members += 1;
    }
    // Counts add up: drawn nodes + members of drawn clusters = all nodes.
    let from_items: u64 = drawn
        .iter()
        .map(|it| match it {
            Item::Node(_) => 1,
            Item::Cluster(c) => tree.clusters[*c as usize].member_count,
        })
        .sum();
    assert_eq!(from_items, covered_members);
}

#[test]
fn cut_covers_every_node_exactly_once_at_every_zoom() {
    for (m, l) in [model_like(12), random_force(3000)] {
        let mut cam = Camera::new(DVec2::new(1280.0, 720.0));
        cam.fit(l.bounds, 10.0);
        let mut lod = LodState::new(
            &l,
            LodOptions {
                fade_s: 0.0,
                ..LodOptions::default()
            },
        );
        let center = cam.viewport * 0.5;
        let mut seen_closed = false;
        let mut seen_nodes = false;
        // Zoom in step by step, keeping everything in view by widening the viewport with the zoom.
        for step in 0..12 {
            let mut c = cam;
            c.zoom_about(center, 1.6f64.powi(step));
            c.viewport *= 1.6f64.powi(step);
            c.center = l.bounds.center();
            lod.cut(&m, &l, &c, &ViewState::default(), step as f64);
            assert_exact_cover(&m, &l, &lod);
            seen_closed |= lod.stats.clusters_drawn > 0;
            seen_nodes |= lod.stats.nodes_drawn > 0;
        }
        assert!(
            seen_closed && seen_nodes,
            "the cut moved from clusters to nodes"
        );
    }
}

#[test]
fn zoomed_in_frames_touch_only_what_is_near() {
    let (m, l) = random_force(20_000);
    let mut cam = Camera::new(DVec2::new(1280.0, 720.0));
    cam.fit(l.bounds, 10.0);
    let mut lod = LodState::new(&l, LodOptions::default());
    lod.cut(&m, &l, &cam, &ViewState::default(), 0.0);
    let whole = lod.stats;
    cam.zoom_about(cam.viewport * 0.5, 200.0);
    lod.cut(&m, &l, &cam, &ViewState::default(), 1.0);
    let deep = lod.stats;
    assert!(deep.nodes_drawn + deep.clusters_drawn < 2000, "{deep:?}");
    assert!(
        deep.clusters_visited < l.clusters.clusters.len() / 4,
        "visited {} of {}",
        deep.clusters_visited,
        l.clusters.clusters.len()
    );
    assert!(
        whole.clusters_drawn > 0 && whole.nodes_drawn < 20_000,
        "{whole:?}"
    );
}

#[test]
fn hysteresis_keeps_a_cluster_open_between_thresholds() {
    let (m, l) = model_like(6);
    let opts = LodOptions {
        fade_s: 0.0,
        ..LodOptions::default()
    };
    // The largest non-root cluster.
    let (c, cl) = l
        .clusters
        .clusters
        .iter()
        .enumerate()
        .skip(1)
        .max_by(|a, b| a.1.bbox.size().y.total_cmp(&b.1.bbox.size().y))
        .unwrap();
    let side = cl.bbox.size().x.max(cl.bbox.size().y);
    let mut cam = Camera::new(DVec2::new(4000.0, 4000.0));
    cam.center = cl.bbox.center();
    let mut lod = LodState::new(&l, opts.clone());
    let drawn_closed = |lod: &LodState| {
        lod.items()
            .iter()
            .zip(&lod.draw_list().nodes)
            .any(|(i, n)| *i == Item::Cluster(c as u32) && n.flags & flags::CLUSTER != 0)
    };
    let at = |lod: &mut LodState, px: f64| {
        let mut k = cam;
        k.zoom = px / side;
        lod.cut(&m, &l, &k, &ViewState::default(), 0.0);
    };
    at(&mut lod, opts.close_px * 0.9);
    assert!(drawn_closed(&lod), "small: closed");
    at(&mut lod, (opts.close_px + opts.open_px) / 2.0);
    assert!(
        drawn_closed(&lod),
        "between thresholds, coming from below: still closed"
    );
    at(&mut lod, opts.open_px * 1.1);
    assert!(!drawn_closed(&lod), "large: open");
    at(&mut lod, (opts.close_px + opts.open_px) / 2.0);
    assert!(
        !drawn_closed(&lod),
        "between thresholds, coming from above: still open"
    );
    at(&mut lod, opts.close_px * 0.9);
    assert!(drawn_closed(&lod), "small again: closed");
}

#[test]
fn chunk_cache_evicts_under_a_small_budget() {
    let (m, l) = model_like(20);
    let mut lod = LodState::new(
        &l,
        LodOptions {
            cache_budget_bytes: 4096,
            ..LodOptions::default()
        },
    );
    let mut cam = Camera::new(DVec2::new(800.0, 600.0));
    cam.fit(l.bounds, 0.0);
    cam.zoom *= 30.0;
    let mut evicted = 0;
    // Pan from top to bottom: different clusters open and close.
    for i in 0..60 {
        cam.center = DVec2::new(
            l.bounds.center().x,
            l.bounds.min.y + l.bounds.size().y * i as f64 / 59.0,
        );
        lod.cut(&m, &l, &cam, &ViewState::default(), i as f64);
        evicted += lod.stats.chunks_evicted;
        assert!(
            lod.cache_bytes() <= 4096.max(lod.cache_bytes_in_use()),
            "cache at {} bytes",
            lod.cache_bytes()
        );
    }
    assert!(evicted > 0, "nothing was evicted");
}

#[test]
fn revision_changes_only_when_the_picture_does() {
    let (m, l) = model_like(4);
    let mut lod = LodState::new(
        &l,
        LodOptions {
            fade_s: 0.0,
            ..LodOptions::default()
        },
    );
    let mut cam = Camera::new(DVec2::new(800.0, 600.0));
    cam.fit(l.bounds, 10.0);
    let r1 = lod.cut(&m, &l, &cam, &ViewState::default(), 0.0).revision;
    let r2 = lod.cut(&m, &l, &cam, &ViewState::default(), 0.1).revision;
    assert_eq!(r1, r2, "same view, same revision");
    let first = lod.items()[lod.items().len() - 1];
    let view = ViewState {
        selected: Some(first),
        revision: 1,
        ..ViewState::default()
    };
    let r3 = lod.cut(&m, &l, &cam, &view, 0.2).revision;
    assert_ne!(r2, r3, "selection changes the picture");
    let sel = lod.items().iter().position(|i| *i == first).unwrap();
    assert!(lod.draw_list().nodes[sel].flags & flags::SELECTED != 0);
    // Picking at the selected item's centre returns it.
    let n = lod.draw_list().nodes[sel];
    let world = lod.draw_list().origin + n.center.as_dvec2();
    assert_eq!(lod.pick(&cam, cam.screen_from_world(world)), Some(first));
}

#[test]
fn aggregated_edges_connect_closed_clusters() {
    let (m, l) = model_like(8);
    let mut lod = LodState::new(&l, LodOptions::default());
    let mut cam = Camera::new(DVec2::new(300.0, 300.0));
    cam.fit(l.bounds, 0.0);
    lod.cut(&m, &l, &cam, &ViewState::default(), 0.0);
    let list = lod.draw_list();
    assert!(lod.stats.clusters_drawn >= 2, "{:?}", lod.stats);
    assert!(
        !list.edges.is_empty(),
        "closed layer clusters are joined by aggregated edges"
    );
    assert!(
        list.edges.iter().any(|e| e.width_px > 1.5),
        "an aggregate of several edges is drawn thicker"
    );
}

/// Pixels the list's edges cover as the edge budget counts them (length × width plus a pixel of
/// anti-aliasing each side).
fn edge_pixels(list: &modelmap::lod::DrawList, zoom: f64) -> f64 {
    list.edges
        .iter()
        .map(|e| {
            f64::from((e.to - e.from).length()) * zoom * (f64::from(e.width_px).max(1.0) + 2.0)
        })
        .sum()
}

#[test]
fn budgets_bound_items_and_edge_pixels_on_a_force_graph() {
    let (m, l) = random_force(20_000);
    let mut cam = Camera::new(DVec2::new(1280.0, 720.0));
    cam.fit(l.bounds, 10.0);
    let opts = LodOptions {
        fade_s: 0.0,
        max_items: 600,
        max_edge_px: 40_000.0,
        ..LodOptions::default()
    };
    let mut lod = LodState::new(&l, opts.clone());
    for step in 0..6 {
        let mut c = cam;
        c.zoom_about(c.viewport * 0.5, 3f64.powi(step));
        lod.cut(&m, &l, &c, &ViewState::default(), step as f64);
        let s = lod.stats;
        assert!(
            s.nodes_drawn + s.clusters_drawn <= opts.max_items,
            "step {step}: {s:?}"
        );
        // Edges: each within the view (clipped), their covered pixels within the budget.
        let list = lod.draw_list();
        let view = c.visible_world().expand(9.0 / c.zoom);
        for e in &list.edges {
            for p in [e.from, e.to] {
                assert!(
                    view.contains(list.origin + p.as_dvec2()),
                    "step {step}: edge outside the view"
                );
            }
        }
        let px = edge_pixels(list, c.zoom);
        assert!(
            px <= opts.max_edge_px + 1.0,
            "step {step}: {px} edge pixels"
        );
        // Closed force clusters are discs no larger than an opening cluster on screen.
        for n in &list.nodes {
            if n.flags & flags::CLUSTER != 0 {
                let side = f64::from(n.half_size.x.max(n.half_size.y)) * 2.0 * c.zoom;
                assert!(
                    side <= opts.open_px * opts.computed_cluster_scale + 1e-6,
                    "{side} px"
                );
            }
        }
    }
    // At the fit the budget is what stops the cut: the whole graph would not fit in it.
    lod.cut(&m, &l, &cam, &ViewState::default(), 10.0);
    assert!(
        lod.stats.clusters_drawn > 0 && lod.stats.nodes_drawn < 20_000,
        "{:?}",
        lod.stats
    );
    assert_exact_cover(&m, &l, &lod);
    // The pixel budget is per 1280×720 of view: an export four times the area may cover four
    // times the pixels, or a tall picture loses the short edges between neighbours.
    let mut big = Camera::new(DVec2::new(2560.0, 1440.0));
    big.fit(l.bounds, 20.0);
    let mut lod = LodState::new(&l, opts.clone());
    let px = edge_pixels(lod.cut(&m, &l, &big, &ViewState::default(), 20.0), big.zoom);
    assert!(
        px > opts.max_edge_px * 1.5 && px <= opts.max_edge_px * 4.0 + 1.0,
        "{px} edge pixels at 2560×1440"
    );
}

#[test]
fn two_producers_never_hand_out_the_same_revision() {
    // A renderer skips the upload when a list's revision is the one it drew last. The window hands
    // one renderer the provisional grid and then the laid-out model's cut: when both producers
    // counted from 1, the model never showed until something changed.
    let (m, l) = model_like(4);
    let mut cam = Camera::new(DVec2::new(800.0, 600.0));
    cam.fit(l.bounds, 10.0);
    let mut a = LodState::new(&l, LodOptions::default());
    let mut b = LodState::new(&l, LodOptions::default());
    let ra = a.cut(&m, &l, &cam, &ViewState::default(), 0.0).revision;
    let rb = b.cut(&m, &l, &cam, &ViewState::default(), 0.0).revision;
    assert_ne!(ra, rb, "two fresh cuts of the same scene");
    assert_ne!(modelmap::lod::next_revision(), ra);
}

#[test]
fn long_op_names_shrink_to_fit_their_box() {
    // A `BatchNormalization` box at 16 px high: the usual 9 px font is too wide for it, so the
    // label is set smaller (it used to be dropped, leaving every BatchNorm of a model unlabelled),
    // and where even the smallest font is too wide it is shortened.
    let (m, l) = chain(["Conv", "BatchNormalization"]);
    let mut cam = Camera::new(DVec2::new(800.0, 600.0));
    cam.fit(l.bounds, 10.0);
    cam.zoom_about(cam.viewport * 0.5, (16.0 / 28.0) / cam.zoom);
    let mut lod = LodState::new(
        &l,
        LodOptions {
            fade_s: 0.0,
            ..LodOptions::default()
        },
    );
    let list = lod.cut(&m, &l, &cam, &ViewState::default(), 0.0);
    let bn = list
        .labels
        .iter()
        .find(|t| t.text == "BatchNormalization")
        .expect("a label on the BatchNormalization box");
    assert!(bn.size_px >= 7.0 && bn.size_px < 9.0, "{} px", bn.size_px);
    assert!(
        list.labels
            .iter()
            .any(|t| t.text == "Conv" && t.size_px >= 9.0)
    );
    // Smaller still (12 px high): cut short with an ellipsis at the smallest font.
    cam.zoom_about(cam.viewport * 0.5, (12.0 / 28.0) / cam.zoom);
    let list = lod.cut(&m, &l, &cam, &ViewState::default(), 1.0);
    let bn = list
        .labels
        .iter()
        .find(|t| t.text.starts_with("BatchNorm"))
        .expect("a shortened label");
    assert!(
        bn.text.ends_with('…') && bn.text.chars().count() < 18,
        "{}",
        bn.text
    );
    assert_eq!(bn.size_px, 7.0);
}

/// A node's name is written under its op when zoomed in, unless it only repeats the op
/// (`/model/layers.0/mlp/MatMul`, `__module.mlp/aten::linear/MatMul`).
#[test]
fn a_name_that_repeats_the_op_is_not_written_twice() {
    let (mut m, l) = chain(["MatMul", "Add"]);
    m.graph.nodes[0].name = "__module.mlp.fc1/aten::linear/MatMul".into();
    m.graph.nodes[1].name = "/mlp/fc1/bias_add".into();
    let mut cam = Camera::new(DVec2::new(800.0, 600.0));
    cam.fit(l.bounds, 10.0);
    // Boxes 60 px high: room for two lines.
    cam.zoom_about(cam.viewport * 0.5, (60.0 / 28.0) / cam.zoom);
    let mut lod = LodState::new(
        &l,
        LodOptions {
            fade_s: 0.0,
            ..LodOptions::default()
        },
    );
    let list = lod.cut(&m, &l, &cam, &ViewState::default(), 0.0);
    let texts: Vec<&str> = list.labels.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(
        texts.iter().filter(|t| **t == "MatMul").count(),
        1,
        "{texts:?}"
    );
    assert!(
        texts.contains(&"Add") && texts.contains(&"bias_add"),
        "{texts:?}"
    );
}

/// A flat group too long for one cluster is cut into bands (computed tiles). The bands of one group
/// open and close together: measured alone, a remainder band a little under the threshold stayed
/// a closed box between open ones (seen on PP-OCR's 566-op column).
#[test]
fn bands_of_one_column_open_together() {
    let (m, l) = chain((0..1000).map(|i| if i % 3 == 0 { "Conv" } else { "Relu" }));
    let tree = &l.clusters;
    let bands: Vec<u32> = tree
        .child_clusters(&tree.clusters[0])
        .iter()
        .copied()
        .filter(|&c| tree.clusters[c as usize].group.is_none())
        .collect();
    assert!(bands.len() >= 2, "{} bands", bands.len());
    let heights: Vec<f64> = bands
        .iter()
        .map(|&c| tree.clusters[c as usize].bbox.size().y)
        .collect();
    let mut lod = LodState::new(
        &l,
        LodOptions {
            fade_s: 0.0,
            ..LodOptions::default()
        },
    );
    let mut cam = Camera::new(DVec2::new(1280.0, 720.0));
    cam.fit(l.bounds, 0.0);
    // Centred on the last band (the remainder), so that it and its neighbour stay on screen.
    cam.center = tree.clusters[*bands.last().unwrap() as usize].bbox.center();
    let (mut mixed, mut saw_closed, mut saw_open) = (0, false, false);
    for step in 0..200 {
        lod.cut(&m, &l, &cam, &ViewState::default(), f64::from(step));
        let drawn: std::collections::HashSet<Item> = lod.items().iter().copied().collect();
        // Only bands wholly on screen count: one off screen is not entered.
        let view = cam.visible_world();
        let on_screen: Vec<bool> = bands
            .iter()
            .filter(|&&c| {
                let b = tree.clusters[c as usize].bbox;
                view.contains(b.min) && view.contains(b.max)
            })
            .map(|&c| drawn.contains(&Item::Cluster(c)))
            .collect();
        let closed = on_screen.iter().filter(|&&x| x).count();
        saw_closed |= closed > 0;
        saw_open |= closed < on_screen.len();
        if closed > 0 && closed < on_screen.len() {
            mixed += 1;
        }
        cam.zoom_about(cam.viewport * 0.5, 1.02);
    }
    assert!(saw_closed && saw_open, "the sweep passes the threshold");
    assert_eq!(
        mixed, 0,
        "frames with open and closed bands side by side (heights {heights:?})"
    );
}

/// Zoomed into one layer of a 400-layer decoder, the layer's own edges are drawn. The aggregates
/// from the graph inputs to the layers below run the whole height of the model: counted at their
/// full length they spent the frame's edge-pixel budget alone and every edge in view was dropped
/// (the layer showed its boxes and no connections). Routed, only their pieces near the view are
/// drawn, and a curve's cost is bounded by the part of its box on screen.
#[test]
fn a_layer_deep_in_a_decoder_shows_its_edges() {
    let dir = std::env::temp_dir().join(format!("modelmap-lod-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("decoder-400.onnx");
    modelmap::bench::synth_model::write_onnx_decoder(400, 64, &path).unwrap();
    let m = modelmap::load::open(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let l = dataflow_of(&m);
    let layer = l.groups[m.hierarchy.find("model/layers.200").unwrap() as usize];
    let mut cam = Camera::new(DVec2::new(1280.0, 800.0));
    cam.fit(layer, 0.0);
    let mut lod = LodState::new(
        &l,
        LodOptions {
            fade_s: 0.0,
            ..LodOptions::default()
        },
    );
    lod.cut(&m, &l, &cam, &ViewState::default(), 0.0);
    let list = lod.draw_list();
    let inner = layer.expand(-1.0);
    let inside = list
        .edges
        .iter()
        .filter(|e| {
            inner.contains(list.origin + e.from.as_dvec2())
                && inner.contains(list.origin + e.to.as_dvec2())
        })
        .count();
    assert!(
        inside >= 15,
        "{inside} edges inside layers.200 ({} drawn in all)",
        list.edges.len()
    );
}
