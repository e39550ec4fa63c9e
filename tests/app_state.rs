//! The viewer's logic without a window: camera interaction, selection and highlighting, search,
//! expand/collapse, tabs, background loading and layout, error tabs.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on broken fixtures by design"
)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use glam::DVec2;
use modelmap::app::camera_ctl::FLIGHT_SECONDS;
use modelmap::app::scene::Picked;
use modelmap::app::search::{Search, SearchIndex, Target};
use modelmap::app::state::{AppState, Command, Loaded, ModelView, TabContent};
use modelmap::model::NodeId;

const VIEWPORT: DVec2 = DVec2::new(1200.0, 800.0);
const WAIT: Duration = Duration::from_secs(60);

fn demo() -> modelmap::model::Model {
    modelmap::assets::demo_model().unwrap()
}

fn app() -> AppState {
    AppState::new(VIEWPORT, Arc::new(|| {}))
}

/// An app showing the demo model with its layout in place.
fn app_with_demo() -> AppState {
    let mut app = app();
    app.open_loaded("demo", Loaded::prepare(demo(), None));
    assert!(app.wait_idle(WAIT), "layout job did not finish");
    let v = app.active_view().unwrap();
    assert!(!v.scene.is_placeholder(), "the layout replaced the grid");
    app
}

/// Draws a frame (the LOD cut that picking reads).
fn draw(v: &mut ModelView, now_s: f64) -> Arc<modelmap::lod::DrawList> {
    let model = v.model.clone();
    let inputs = v.scene_inputs();
    let cam = *v.camera.camera();
    v.scene.draw_list(&model, &inputs, &cam, now_s)
}

fn screen_of(v: &ModelView, n: NodeId) -> DVec2 {
    let r = v.scene.node_rect(n).unwrap();
    v.camera.camera().screen_from_world(r.center())
}

#[test]
fn starts_fitted_and_wheel_zooms_about_the_cursor() {
    let mut app = app_with_demo();
    let v = app.active_view_mut().unwrap();
    // Fitted: the whole layout is on screen.
    let vis = v.camera.camera().visible_world();
    let b = v.scene.bounds();
    assert!(vis.min.x <= b.min.x + 1e-6 && vis.max.x >= b.max.x - 1e-6);
    assert!(vis.min.y <= b.min.y + 1e-6 && vis.max.y >= b.max.y - 1e-6);
    // Zoom about a point keeps the world point under it.
    let cursor = DVec2::new(300.0, 200.0);
    let before = v.camera.camera().world_from_screen(cursor);
    let z0 = v.camera.camera().zoom;
    v.zoom_at(cursor, 2.0);
    let after = v.camera.camera().world_from_screen(cursor);
    assert!((before - after).length() < 1e-6);
    assert!((v.camera.camera().zoom / z0 - 2.0).abs() < 1e-9);
    // Dragging moves the world with the pointer.
    let p = v
        .camera
        .camera()
        .world_from_screen(DVec2::new(100.0, 100.0));
    v.pan(DVec2::new(40.0, -10.0));
    let s = v.camera.camera().screen_from_world(p);
    assert!((s - DVec2::new(140.0, 90.0)).length() < 1e-6);
}

#[test]
fn fit_all_and_arrow_keys_through_commands() {
    let mut app = app_with_demo();
    let fitted = *app.active_view().unwrap().camera.camera();
    app.command(Command::ZoomIn, 0.0);
    app.command(Command::Pan(1, 0), 0.0);
    let moved = *app.active_view().unwrap().camera.camera();
    assert!(moved.zoom > fitted.zoom);
    // Left arrow: the view moves left, i.e. the world slides right on screen.
    app.command(Command::FitAll, 1.0);
    assert!(
        app.tick(1.0 + FLIGHT_SECONDS * 0.5),
        "still flying half way"
    );
    assert!(!app.tick(1.0 + FLIGHT_SECONDS));
    let back = *app.active_view().unwrap().camera.camera();
    assert!((back.zoom - fitted.zoom).abs() < 1e-9);
    assert!((back.center - fitted.center).length() < 1e-9);
    let before = back.center;
    app.command(Command::Pan(-1, 0), 2.0);
    let after = app.active_view().unwrap().camera.camera().center;
    assert!(
        after.x < before.x,
        "left arrow shows what is left of the view"
    );
}

#[test]
fn click_selects_and_highlights_neighbours_then_empty_click_clears() {
    let mut app = app_with_demo();
    let v = app.active_view_mut().unwrap();
    // Pick a visible node with both inputs and outputs.
    let layout = v.scene.laid().unwrap().layout.clone();
    let n = (0..v.model.graph.nodes.len() as NodeId)
        .find(|&n| {
            let (i, o) = v.neighbours(n);
            !i.is_empty() && !o.is_empty() && layout.nodes[n as usize].is_visible()
        })
        .expect("a node with inputs and outputs");
    // Zoom in on it so the click lands on it.
    let r = v.scene.node_rect(n).unwrap();
    v.camera.fly_to_bounds(r, 4.0, 0.0);
    v.camera.tick(10.0);
    draw(v, 20.0);
    let p = screen_of(v, n);
    assert_eq!(v.pick(p), Some(Picked::Node(n)));
    v.click_at(p);
    assert_eq!(v.selected, Some(n));
    let (ins, outs) = v.neighbours(n);
    for x in ins.iter().chain(&outs) {
        assert!(v.highlighted.contains(x), "{x} highlighted");
    }
    assert!(!v.highlighted.contains(&n));
    let list = draw(v, 21.0);
    let selected_items = list
        .nodes
        .iter()
        .filter(|i| i.flags & modelmap::lod::flags::SELECTED != 0)
        .count();
    assert_eq!(selected_items, 1);
    assert!(
        list.nodes
            .iter()
            .any(|i| i.flags & modelmap::lod::flags::HIGHLIGHT != 0)
    );
    // A click far outside the layout clears the selection.
    draw(v, 22.0);
    let b = v.scene.bounds();
    let outside = v
        .camera
        .camera()
        .screen_from_world(b.max + DVec2::splat(1.0e4));
    v.click_at(outside);
    assert_eq!(v.selected, None);
    assert!(v.highlighted.is_empty());
}

#[test]
fn draw_list_is_shared_until_something_changes() {
    let mut app = app_with_demo();
    let v = app.active_view_mut().unwrap();
    let a = draw(v, 100.0);
    let b = draw(v, 100.0);
    assert!(Arc::ptr_eq(&a, &b), "a steady frame reuses the list");
    v.select(Some(0));
    let c = draw(v, 100.0);
    assert_ne!(b.revision, c.revision, "a selection rebuilds it");
}

#[test]
fn search_finds_names_ops_and_tensors_and_flies_there() {
    let mut app = app_with_demo();
    let v = app.active_view_mut().unwrap();
    let model = v.model.clone();
    // The deepest node name of layer 3's MLP must be found by a fragment.
    let target = model
        .graph
        .nodes
        .iter()
        .position(|n| n.name.contains("layers.3") && n.name.contains("mlp"))
        .expect("layer 3 mlp node") as NodeId;
    let name = model.graph.nodes[target as usize].name.clone();
    v.search.set_query(&name.to_uppercase());
    let first = v.search.results().first().copied().unwrap();
    assert_eq!(first.target, Target::Node(target), "exact name ranks first");
    assert_eq!(first.rank, 0);
    // A tensor name finds its owner.
    let t = model
        .tensors
        .iter()
        .position(|t| t.name.ends_with("layers.2.mlp.down_proj.weight"))
        .unwrap();
    v.search.set_query("layers.2.mlp.down_proj.weight");
    let hit = v
        .search
        .results()
        .iter()
        .find(|h| matches!(h.target, Target::Tensor { tensor, .. } if tensor as usize == t))
        .copied()
        .expect("tensor hit");
    let owner = hit.target.node().expect("tensor has an owner node");
    assert!(
        model.graph.nodes[owner as usize]
            .tensors
            .contains(&(t as u32))
    );
    // Going there selects the node and flies to it.
    v.go_to_target(hit.target, 0.0);
    v.camera.tick(10.0);
    assert_eq!(v.selected, Some(owner));
    let r = v.scene.node_rect(owner).unwrap();
    let vis = v.camera.camera().visible_world();
    assert!(vis.contains(r.center()));
}

#[test]
fn incremental_search_narrows_and_widens_correctly() {
    let names: Vec<String> = (0..5000)
        .map(|i| format!("/model/layers.{}/block_{}/op{}", i % 50, i % 7, i))
        .collect();
    let index = Arc::new(SearchIndex::from_names(names.iter().map(String::as_str)));
    let mut s = Search::new(index);
    // An empty query shows nothing (not the whole model).
    let brute = |q: &str| {
        if q.is_empty() {
            0
        } else {
            names.iter().filter(|n| n.contains(q)).count()
        }
    };
    for q in [
        "l",
        "la",
        "layers.4",
        "layers.49",
        "layers.4",
        "block_3",
        "BLOCK_3/op1",
        "zzz",
        "",
    ] {
        s.set_query(q);
        assert_eq!(s.total(), brute(&q.to_lowercase()), "query {q:?}");
    }
    // Ranking: a name equal to the query beats one that merely contains it.
    s.set_query("/model/layers.0/block_0/op0");
    assert_eq!(s.results()[0].target, Target::Node(0));
    assert_eq!(s.results()[0].rank, 0);
}

#[test]
#[ignore = "timing print, not a test: run with --ignored --nocapture"]
fn search_one_million_names_timing() {
    let names: Vec<String> = (0..1_000_000)
        .map(|i| format!("/model/layers.{}/mlp/fc{}/MatMul_{}", i % 1000, i % 3, i))
        .collect();
    let t = std::time::Instant::now();
    let index = Arc::new(SearchIndex::from_names(names.iter().map(String::as_str)));
    println!(
        "build: {:?}, {} MB",
        t.elapsed(),
        index.memory_bytes() / 1_000_000
    );
    let mut s = Search::new(index);
    for q in [
        "m",
        "ma",
        "matmul_99",
        "matmul_999999",
        "layers.999/mlp",
        "nothing-here",
    ] {
        let t = std::time::Instant::now();
        s.set_query(q);
        println!("query {q:?}: {} results in {:?}", s.total(), t.elapsed());
    }
}

#[test]
fn double_click_closes_and_opens_clusters() {
    let mut app = app_with_demo();
    let v = app.active_view_mut().unwrap();
    // A node inside a cluster below the root.
    let n = (0..v.model.graph.nodes.len() as NodeId)
        .find(|&n| v.innermost_cluster(n).is_some())
        .expect("a node in a cluster");
    let c = v.innermost_cluster(n).unwrap();
    let r = v.scene.node_rect(n).unwrap();
    v.camera.fly_to_bounds(r, 4.0, 0.0);
    v.camera.tick(10.0);
    draw(v, 20.0);
    let p = screen_of(v, n);
    assert_eq!(
        v.pick(p),
        Some(Picked::Node(n)),
        "zoomed in, the node itself is drawn"
    );
    // Double-click on the node closes its cluster: at the same zoom the cluster is one box now.
    v.double_click_at(p, 21.0);
    assert!(v.expanded.is_pinned_closed(c));
    draw(v, 22.0);
    assert_eq!(v.pick(p), Some(Picked::Cluster(c)));
    // Double-click on the closed cluster opens it again.
    v.double_click_at(p, 23.0);
    assert!(v.expanded.is_pinned_open(c));
    draw(v, 24.0);
    assert_eq!(v.pick(p), Some(Picked::Node(n)));
    // `-` over the node closes it too; Escape-free `+` over the cluster reopens.
    v.hovered = Some(Picked::Node(n));
    app.command(Command::Collapse, 25.0);
    assert!(app.active_view().unwrap().expanded.is_pinned_closed(c));
    app.active_view_mut().unwrap().hovered = Some(Picked::Cluster(c));
    app.command(Command::Expand, 26.0);
    assert!(app.active_view().unwrap().expanded.is_pinned_open(c));
}

#[test]
fn going_to_a_search_result_releases_closed_clusters() {
    let mut app = app_with_demo();
    let v = app.active_view_mut().unwrap();
    let n = (0..v.model.graph.nodes.len() as NodeId)
        .find(|&n| v.innermost_cluster(n).is_some())
        .unwrap();
    let chain = v.scene.cluster_chain(n);
    for &c in &chain {
        v.set_cluster_open(c, false);
    }
    v.go_to_node(n, 0.0);
    for &c in &chain {
        assert!(!v.expanded.is_pinned_closed(c), "cluster {c} released");
    }
    assert_eq!(v.selected, Some(n));
    let group = v.model.graph.nodes[n as usize].group;
    if group != 0 {
        assert_eq!(v.breadcrumb().last().map(|(x, _)| *x), Some(group));
    }
}

#[test]
fn tabs_load_in_background_and_bad_files_become_error_tabs() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not_a_model.bin");
    std::fs::write(&bad, b"\xff\xfe this is not a model at all").unwrap();
    let missing = dir.path().join("missing.onnx");
    let good = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/demo_decoder.onnx");
    let mut app = app();
    app.open_path(bad.clone());
    app.open_path(missing.clone());
    app.open_path(good.clone());
    assert_eq!(app.tabs.len(), 3);
    assert!(
        app.tabs
            .iter()
            .all(|t| matches!(t.content, TabContent::Loading { .. }))
    );
    assert!(app.wait_idle(WAIT));
    let msg = |i: usize| match &app.tabs[i].content {
        TabContent::Failed { message } => message.clone(),
        other => panic!("tab {i} not an error: {other:?}"),
    };
    assert!(msg(0).contains("not_a_model.bin"), "{}", msg(0));
    assert!(msg(1).contains("missing.onnx"), "{}", msg(1));
    match &app.tabs[2].content {
        TabContent::Ready(v) => {
            assert!(!v.model.graph.nodes.is_empty());
            assert!(!v.scene.is_placeholder());
        }
        other => panic!("good tab: {other:?}"),
    }
    // Closing a tab keeps the others; the active index stays valid.
    app.active = 2;
    app.close_tab(0);
    assert_eq!(app.tabs.len(), 2);
    assert_eq!(app.active, 1);
    assert!(app.active_view().is_some());
    app.command(Command::NextTab, 0.0);
    assert_eq!(app.active, 0);
}

#[test]
fn escape_closes_overlays_before_clearing_selection() {
    let mut app = app_with_demo();
    app.active_view_mut().unwrap().select(Some(1));
    app.command(Command::Help, 0.0);
    app.command(Command::Search, 0.0);
    assert!(app.show_help && app.show_search && app.focus_search);
    app.command(Command::Escape, 0.0);
    assert!(!app.show_help);
    assert!(app.show_search);
    app.command(Command::Escape, 0.0);
    assert!(!app.show_search);
    assert_eq!(app.active_view().unwrap().selected, Some(1));
    app.command(Command::Escape, 0.0);
    assert_eq!(app.active_view().unwrap().selected, None);
}

/// A checkpoint with 5 layers of `mlp.up_proj` and `self_attn.q_proj`: a NaN in layer 1's up_proj,
/// an all-zero row (row 3) in layer 2's q_proj.
fn planted_checkpoint(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("planted.safetensors");
    let mut datas: Vec<(String, Vec<u8>)> = Vec::new();
    for l in 0..5 {
        for (k, proj) in ["mlp.up_proj", "self_attn.q_proj"].iter().enumerate() {
            let mut v: Vec<f32> = (0..16 * 8)
                .map(|i| ((i * 31 + l * 7 + k * 5) % 17) as f32 / 17.0 - 0.45)
                .collect();
            if l == 1 && k == 0 {
                v[5] = f32::NAN;
            }
            if l == 2 && k == 1 {
                v[3 * 8..4 * 8].fill(0.0);
            }
            datas.push((
                format!("model.layers.{l}.{proj}.weight"),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ));
        }
    }
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = datas
        .iter()
        .map(|(name, d)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![16, 8], d)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(tensors, None, &path).unwrap();
    path
}

#[test]
fn anomaly_scan_lists_planted_nan_and_dead_row_and_click_selects_the_owner() {
    use modelmap::stats::anomaly::AnomalyKind;
    let dir = tempfile::tempdir().unwrap();
    let path = planted_checkpoint(dir.path());
    let mut app = app();
    app.open_path(path);
    assert!(app.wait_idle(WAIT));
    assert!(app.active_view().unwrap().anomalies.scan.is_none());
    // `A` opens the panel and starts the scan in the background.
    app.command(Command::Anomalies, 0.0);
    assert!(app.show_anomalies);
    assert!(app.active_view().unwrap().anomalies.job.is_some());
    assert!(app.busy(), "the scan runs as a job");
    assert!(app.wait_idle(WAIT));
    let v = app.active_view_mut().unwrap();
    let scan = v.anomalies.scan.clone().expect("scan finished");
    assert_eq!(scan.tensors, 10);
    assert_eq!(scan.with_stats, 10);
    let nan = scan
        .findings
        .iter()
        .position(|f| f.anomaly.kind == AnomalyKind::NonFinite)
        .expect("NaN listed");
    assert_eq!(
        scan.findings[nan].anomaly.tensor,
        "model.layers.1.mlp.up_proj.weight"
    );
    assert_eq!(nan, 0, "errors sort first");
    let dead = scan
        .findings
        .iter()
        .find(|f| f.anomaly.kind == AnomalyKind::DeadRows)
        .expect("dead row listed");
    assert_eq!(
        dead.anomaly.tensor,
        "model.layers.2.self_attn.q_proj.weight"
    );
    assert!(dead.anomaly.message.contains("1 of 16 rows"));
    // Clicking the NaN finding selects the node owning that tensor.
    assert_eq!(v.selected, None);
    let node = v.go_to_finding(nan, 0.0).expect("an owner");
    assert_eq!(v.selected, Some(node));
    let owner = &v.model.graph.nodes[node as usize];
    let tid = v.model.tensor_index["model.layers.1.mlp.up_proj.weight"];
    assert!(owner.tensors.contains(&tid), "{} owns it", owner.name);
    let r = v.scene.node_rect(node).unwrap();
    let target = v.camera.target().visible_world();
    assert!(
        target.contains(r.min) && target.contains(r.max),
        "flies to show it"
    );
    assert!(
        v.camera.target().zoom > v.camera.camera().zoom,
        "closer than fit-all"
    );
    // Colour by: per-node values reach the draw list, and the nodes' colours change (seen from
    // the owner, where the camera arrives: collapsed groups average only their direct nodes).
    let t = FLIGHT_SECONDS + 1.0;
    v.camera.tick(t);
    draw(v, t);
    // The weights' colour ranges are sampled in the background on first sight.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while v.scene.weights_pending() > 0 {
        assert!(std::time::Instant::now() < deadline, "weights never landed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let before = draw(v, t + 1.0);
    assert!(before.nodes.len() > 1);
    let fill_of = |l: &modelmap::lod::DrawList| l.nodes.iter().map(|n| n.fill).collect::<Vec<_>>();
    assert!(v.set_color_by(Some(modelmap::stats::overlay::Figure::WeightNorm)));
    let overlay = v.scene_inputs().overlay.unwrap();
    assert_eq!(overlay.0.values.len(), v.model.graph.nodes.len());
    assert!(overlay.0.values.iter().any(|x| x.is_finite()));
    let after = draw(v, t + 1.0);
    assert_ne!(fill_of(&before), fill_of(&after), "overlay recolours nodes");
    // Boxes at this zoom show their weights in place (transparent fill over a heatmap) until a
    // colour-by overlay is chosen: then the overlay's colours win.
    let see_through =
        |l: &modelmap::lod::DrawList| l.nodes.iter().filter(|n| n.fill[3] == 0).count();
    assert!(
        see_through(&before) > 0,
        "weights in place without an overlay"
    );
    assert_eq!(
        see_through(&after),
        0,
        "an overlay keeps every box coloured"
    );
    v.set_color_by(None);
    assert!(v.scene_inputs().overlay.is_none());
}

/// The corpus' 4-layer LLaMA-style ONNX decoder, opened and laid out, with the matrix built.
fn llama_with_matrix() -> Option<AppState> {
    let corpus = common::corpus()?;
    let mut app = app();
    app.open_path(corpus.join("generated/llama_tiny_4l.onnx"));
    assert!(app.wait_idle(WAIT));
    app.command(Command::Matrix, 0.0);
    assert!(app.show_matrix);
    assert!(app.wait_idle(WAIT));
    assert!(app.active_view().unwrap().current_matrix().is_some());
    Some(app)
}

/// Asserts that every cluster's member nodes occupy exactly its span in the matrix order.
fn assert_cluster_runs(m: &modelmap::app::matrix::Matrix, tree: &modelmap::graph::ClusterTree) {
    let mut runs: Vec<Vec<u32>> = vec![Vec::new(); tree.clusters.len()];
    for (node, &leaf) in tree.node_cluster.iter().enumerate() {
        let p = m.order.position(node as NodeId).unwrap();
        for c in tree.ancestors(leaf) {
            runs[c as usize].push(p);
        }
    }
    let mut multi = 0;
    for (c, run) in runs.iter().enumerate() {
        let span = m.order.span(c as u32).unwrap();
        let (lo, hi) = (*run.iter().min().unwrap(), *run.iter().max().unwrap());
        assert_eq!((lo, hi + 1), (span.start, span.end), "cluster {c}");
        assert_eq!(
            run.len() as u32,
            span.end - span.start,
            "cluster {c} is contiguous"
        );
        multi += usize::from(run.len() > 1);
    }
    assert!(multi > 5, "{multi} clusters with several nodes");
}

fn node_named(m: &modelmap::model::Model, name: &str) -> NodeId {
    m.graph.nodes.iter().position(|n| n.name == name).unwrap() as NodeId
}

#[test]
fn matrix_of_a_corpus_model_counts_every_edge_in_cluster_order() {
    let Some(mut app) = llama_with_matrix() else {
        return;
    };
    let v = app.active_view_mut().unwrap();
    let m = v.current_matrix().unwrap();
    let model = v.model.clone();
    let layout = v.scene.laid().unwrap().layout.clone();
    let tree = &layout.clusters;
    let n = model.graph.nodes.len();
    // Every node once, every edge counted once.
    assert_eq!(m.len(), n);
    assert!(n <= modelmap::app::matrix::MAX_CELLS, "one node per cell");
    assert_eq!(m.cells, n);
    assert_eq!(m.edges, model.graph.edges.len() as u64);
    assert_eq!(
        m.counts.iter().map(|&c| u64::from(c)).sum::<u64>(),
        model.graph.edges.len() as u64
    );
    // Each hierarchy group's nodes are contiguous in the order.
    let h = &model.hierarchy;
    let mut checked = 0;
    for g in 1..h.groups.len() as u32 {
        let pos: Vec<u32> = (0..n as NodeId)
            .filter(|&x| {
                h.ancestors(model.graph.nodes[x as usize].group)
                    .any(|a| a == g)
            })
            .map(|x| m.order.position(x).unwrap())
            .collect();
        if pos.is_empty() {
            continue;
        }
        let (lo, hi) = (*pos.iter().min().unwrap(), *pos.iter().max().unwrap());
        assert_eq!(
            (hi - lo + 1) as usize,
            pos.len(),
            "group {} is contiguous",
            h.groups[g as usize].path
        );
        checked += 1;
    }
    assert!(checked > 10, "{checked} groups checked");
    assert_cluster_runs(&m, tree);
    // A known edge lands in its cell; hover names both ends; a click selects it.
    let q = node_named(&model, "/model/layers.1/self_attn/q_proj/MatMul");
    let r = node_named(&model, "/model/layers.1/self_attn/q_Reshape");
    let (row, col) = (
        m.cell_of(m.order.position(q).unwrap()),
        m.cell_of(m.order.position(r).unwrap()),
    );
    assert!(m.count(row, col) >= 1);
    let info = m.cell_info(&model, tree, row, col).unwrap();
    assert!(
        info.row_label
            .starts_with("/model/layers.1/self_attn/q_proj/MatMul"),
        "{info:?}"
    );
    assert!(
        info.col_label
            .starts_with("/model/layers.1/self_attn/q_Reshape"),
        "{info:?}"
    );
    // The reverse cell is empty (the graph is acyclic there).
    assert_eq!(m.count(col, row), 0);
    assert_eq!(v.matrix_click(col, row, 0.0), None);
    assert_eq!(v.matrix_click(row, col, 0.0), Some((q, r)));
    assert_eq!(v.selected, Some(q));
    assert_eq!(v.highlighted, vec![r]);
    // Pixel fractions map back to the same cell.
    let f = |i: usize| (i as f32 + 0.5) / m.cells as f32;
    assert_eq!(m.cell_at(f(col), f(row)), Some((row, col)));
    assert_eq!(m.cell_at(1.0, 0.5), None);
}

#[test]
fn matrix_of_the_selections_group_holds_only_its_nodes() {
    let Some(mut app) = llama_with_matrix() else {
        return;
    };
    let v = app.active_view_mut().unwrap();
    let model = v.model.clone();
    let q = node_named(&model, "/model/layers.1/self_attn/q_proj/MatMul");
    v.select(Some(q));
    let scope = v.selection_scope();
    assert_ne!(scope, 0);
    // Walk up to the cluster of the whole attention block.
    let layout = v.scene.laid().unwrap().layout.clone();
    let tree = &layout.clusters;
    let block = tree
        .ancestors(scope)
        .find(|&c| tree.clusters[c as usize].label.ends_with("self_attn"))
        .unwrap_or(scope);
    v.set_matrix_scope(block);
    assert!(
        v.current_matrix().is_none(),
        "a new scope needs a new build"
    );
    assert!(app.wait_idle(WAIT));
    let v = app.active_view().unwrap();
    let m = v.current_matrix().unwrap();
    let members: Vec<NodeId> = (0..model.graph.nodes.len() as NodeId)
        .filter(|&x| {
            tree.ancestors(tree.node_cluster[x as usize])
                .any(|c| c == block)
        })
        .collect();
    assert_eq!(m.len() as u64, tree.clusters[block as usize].member_count);
    assert_eq!(m.len(), members.len());
    let inside = model
        .graph
        .edges
        .iter()
        .filter(|e| members.contains(&e.from) && members.contains(&e.to))
        .count();
    assert_eq!(m.edges as usize, inside);
    assert!(m.order.position(q).is_some());
    let outside = (0..model.graph.nodes.len() as NodeId)
        .find(|x| !members.contains(x))
        .unwrap();
    assert_eq!(m.order.position(outside), None);
}

#[test]
fn matrix_bins_a_larger_corpus_model_into_512_cells() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let model = Arc::new(
        modelmap::load::open(&corpus.join("real/onnx_light/light_densenet121.onnx")).unwrap(),
    );
    let progress = modelmap::layout::Progress::new();
    let scene = modelmap::scene::Scene::build(
        model.clone(),
        modelmap::scene::LayoutChoice::Auto,
        &progress,
    )
    .unwrap();
    let m = modelmap::app::matrix::build_matrix(&model, &scene.layout, 0);
    let n = model.graph.nodes.len();
    assert!(n > 1000);
    assert_eq!(m.len(), n);
    assert_eq!(m.cells, modelmap::app::matrix::MAX_CELLS);
    assert_eq!(m.edges, model.graph.edges.len() as u64);
    assert_eq!(m.counts.iter().map(|&c| u64::from(c)).sum::<u64>(), m.edges);
    // Every cluster of the layout's tree (computed clusters here: the file has no module paths, so
    // its node order does not group them) is one contiguous run, and its span says where.
    assert_cluster_runs(&m, &scene.layout.clusters);
    // Cells partition the positions, and cell_of agrees with cell_range.
    let mut next = 0;
    for i in 0..m.cells {
        let r = m.cell_range(i);
        assert_eq!(r.start, next);
        assert!(!r.is_empty());
        for p in r.clone() {
            assert_eq!(m.cell_of(p), i);
        }
        next = r.end;
    }
    assert_eq!(next as usize, n);
    // Every edge is in the cell of its ends; a many-node cell names its range.
    let e = &model.graph.edges[model.graph.edges.len() / 2];
    let (row, col) = (
        m.cell_of(m.order.position(e.from).unwrap()),
        m.cell_of(m.order.position(e.to).unwrap()),
    );
    assert!(m.count(row, col) >= 1);
    let info = m
        .cell_info(&model, &scene.layout.clusters, row, col)
        .unwrap();
    assert!(
        info.rows.len() >= 3 && info.row_label.contains(" nodes in "),
        "{info:?}"
    );
    // The picture: one RGBA pixel per cell, empty cells white, edge cells blue.
    let rgba = m.rgba();
    assert_eq!(rgba.len(), m.cells * m.cells * 4);
    let px = |r: usize, c: usize| &rgba[(r * m.cells + c) * 4..(r * m.cells + c) * 4 + 4];
    assert!(px(row, col)[2] > px(row, col)[0]);
}

#[test]
fn items_opened_at_the_end_of_a_flight_finish_fading_in() {
    let mut app = app_with_demo();
    let v = app.active_view_mut().unwrap();
    let n = node_named(&v.model.clone(), "model.layers.1.self_attn.q_proj");
    draw(v, 0.0);
    v.go_to_node(n, 0.0);
    let arrive = FLIGHT_SECONDS + 0.01;
    v.camera.tick(arrive);
    // The first frame at the destination opens clusters; their items start transparent.
    let first = draw(v, arrive);
    assert!(
        first.nodes.iter().any(|x| x.alpha < 1.0),
        "something fades in"
    );
    // The camera is still now, but a later frame must show them fully opaque.
    let later = draw(v, arrive + 1.0);
    assert!(later.revision != first.revision);
    assert!(later.nodes.iter().all(|x| x.alpha == 1.0));
    assert!(!v.scene.is_animating());
}

/// `modelmap runs/` (or a drop) hands a log folder to the training window; a model opens a tab.
#[test]
fn a_log_folder_opens_the_training_window_not_a_tab() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut app = app();
    let tabs = app.tabs.len();
    app.open_any(corpus.join("generated/tb_runs"));
    assert_eq!(app.tabs.len(), tabs);
    assert_eq!(
        app.pending_training.take(),
        Some(corpus.join("generated/tb_runs"))
    );
    app.open_any(corpus.join("generated/llama_tiny_4l.onnx"));
    assert_eq!(app.tabs.len(), tabs + 1);
    assert!(app.pending_training.is_none());
}

/// A training run's logged model graph (`SummaryWriter.add_graph`) opens as a model tab, its
/// modules as boxes.
#[test]
fn logged_graph_opens_in_a_tab() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/training/graphs");
    let runs = modelmap::training::load_runs(root).unwrap();
    let run = runs.get("torch_cnn").unwrap();
    let mut app = app();
    app.open_logged_graph(&run.name, run.graph.as_ref().unwrap());
    assert!(app.wait_idle(WAIT));
    assert_eq!(app.active_tab().unwrap().title, "torch_cnn · graph");
    let v = app.active_view().unwrap();
    assert_eq!(v.model.format, modelmap::model::Format::TensorFlow);
    assert!(v.model.hierarchy.find("Net/Linear[fc1]").is_some());
    assert_eq!(
        v.model.metadata.producer.as_deref(),
        Some("PyTorch (SummaryWriter.add_graph)")
    );
    assert!(
        v.model
            .graph
            .nodes
            .iter()
            .any(|n| &*n.op == "aten::_convolution")
    );
}
