//! The per-frame cut through the cluster tree, producing a [`DrawList`].

mod draw_list;

pub use draw_list::{
    Align, ColorMap, DrawList, EdgeItem, HeatmapItem, LabelItem, NodeItem, NodeShape, Rgba8, flags,
};
