//! Benchmarks that need the whole program (`modelmap bench …`) and synthetic data (`modelmap synth`).

pub mod layout;
pub mod load;
pub mod render;
pub mod stats;
pub mod synth;
pub mod synth_model;
pub mod tfevents;
pub mod zoom;
