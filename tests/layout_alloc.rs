//! One Barnes–Hut force iteration does not allocate (its own binary: the counting allocator is global).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use glam::Vec2;
use modelmap::bench::synth;
use modelmap::graph::{self, WeightedGraph};
use modelmap::layout::ForceSim;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn barnes_hut_iteration_does_not_allocate() {
    let (g, _) = synth::random(20_000, 40_000, 1);
    let edges = graph::edge_pairs(&g).unwrap();
    let wg = WeightedGraph::from_edges(g.nodes.len(), &edges);
    let mut rng = graph::Pcg32::new(2);
    let mut pos: Vec<Vec2> = (0..g.nodes.len())
        .map(|_| Vec2::new(rng.unit_f32(), rng.unit_f32()) * 5000.0)
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut sim = ForceSim::new();
    // Warm-up sizes the buffers (and rayon's per-thread state).
    for _ in 0..3 {
        pool.install(|| sim.iterate(&mut pos, &wg, 60.0, 30.0, 0.9));
    }
    let allocs = pool.install(|| {
        ALLOCS.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        let e = sim.iterate(&mut pos, &wg, 60.0, 30.0, 0.9);
        COUNTING.store(false, Ordering::SeqCst);
        assert!(e.is_finite());
        ALLOCS.load(Ordering::SeqCst)
    });
    assert_eq!(allocs, 0);
}
