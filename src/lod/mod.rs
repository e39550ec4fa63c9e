//! The per-frame cut through the cluster tree, producing a [`DrawList`].

mod cut;
mod draw_list;
pub mod style;

pub use cut::{CutStats, LodOptions, LodState, NO_BAND, NodeOverlay, ViewState};
pub use draw_list::{
    Align, ColorMap, DrawList, EdgeItem, HeatmapItem, LabelItem, NodeItem, NodeShape, Rgba8, flags,
    next_revision,
};
