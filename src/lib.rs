//! modelmap: a GPU-accelerated viewer for very large neural-network models.
//!
//! Data flows one way (see `DESIGN.md` in the shared folder):
//! `load` → `model` → `graph` → `layout` → `lod` (a [`lod::DrawList`]) → `render`; `stats` and
//! `training` feed the views; `app` drives it all in a window.

pub mod app;
pub mod assets;
pub mod bench;
pub mod diag;
pub mod graph;
pub mod layout;
pub mod load;
pub mod lod;
pub mod model;
pub mod neuron_view;
pub mod render;
pub mod scene;
pub mod stats;
pub mod training;
pub mod view;
