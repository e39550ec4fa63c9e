//! The demo model shipped inside the binary, shown when modelmap starts with no file.

use bytes::Bytes;

use crate::load::{self, LoadError};
use crate::model::Model;

/// A small LLaMA-style checkpoint (4 layers, hidden 64) written by `modelmap synth demo`, with a NaN
/// and a dead row planted so the anomaly panel has something to find.
pub const DEMO_SAFETENSORS: &[u8] = include_bytes!("../assets/demo/model.safetensors");

/// Its `config.json`.
pub const DEMO_CONFIG: &str = include_str!("../assets/demo/config.json");

/// Loads the embedded demo model.
pub fn demo_model() -> Result<Model, LoadError> {
    let mut model = load::open_bytes(
        "demo/model.safetensors (embedded)",
        Bytes::from_static(DEMO_SAFETENSORS),
    )?;
    load::apply_hf_config(&mut model, DEMO_CONFIG);
    Ok(model)
}
