//! (in progress)
pub mod training_panel;
