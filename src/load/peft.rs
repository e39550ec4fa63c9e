//! Hugging Face PEFT adapters: a folder of `adapter_config.json` beside `adapter_model.safetensors`
//! (or `adapter_model.bin`). The weights open as any checkpoint; this reads the config into the
//! model's properties (`peft.peft_type`, `peft.r`, `peft.lora_alpha`, `peft.alpha_pattern`…), which
//! is what `stats::lora` needs to merge a LoRA adapter into its base model for a comparison.
//!
//! Rejected: merging here, at load time (the base model is a second file the user names; an
//! adapter opened alone shows its own `lora_A` / `lora_B` matrices).

use std::path::{Path, PathBuf};

use crate::model::Model;

/// The adapter's config file when `path` is an adapter folder or its weights file.
fn config_of(path: &Path) -> Option<PathBuf> {
    let dir = if path.is_dir() {
        path
    } else {
        let name = path.file_name()?.to_str()?;
        if !name.starts_with("adapter_model.") {
            return None;
        }
        path.parent()?
    };
    let config = dir.join("adapter_config.json");
    config.is_file().then_some(config)
}

/// Adds an adapter's config to `model` (read from `path`'s folder) when `path` is a PEFT adapter;
/// a config that cannot be read is a warning, not an error (the weights are still there to see).
pub(super) fn apply_config(model: &mut Model, path: &Path) {
    let Some(config) = config_of(path) else {
        return;
    };
    let parsed = std::fs::read(&config)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).map_err(|e| e.to_string()));
    let json = match parsed {
        Ok(j) if j.get("peft_type").is_some() => j,
        Ok(_) => return,
        Err(e) => {
            model
                .metadata
                .warnings
                .push(format!("{}: not read: {e}", config.display()));
            return;
        }
    };
    model.metadata.producer = Some("PEFT".into());
    model.metadata.producer_version = json
        .get("peft_version")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    const KEYS: [&str; 12] = [
        "peft_type",
        "task_type",
        "r",
        "lora_alpha",
        "use_rslora",
        "use_dora",
        "fan_in_fan_out",
        "target_modules",
        "modules_to_save",
        "rank_pattern",
        "alpha_pattern",
        "base_model_name_or_path",
    ];
    let mut props = Vec::new();
    for key in KEYS {
        let text = match json.get(key) {
            None | Some(serde_json::Value::Null) => continue,
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
            Some(serde_json::Value::Object(o)) if o.is_empty() => continue,
            Some(v) => v.to_string(),
        };
        props.push((format!("peft.{key}"), text));
    }
    model.metadata.properties.splice(0..0, props);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Format;

    #[test]
    fn an_adapters_config_becomes_its_properties() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("adapter_config.json"),
            r#"{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"],
                "alpha_pattern": {}, "rank_pattern": {"down_proj": 2}, "peft_version": "0.21.2"}"#,
        )
        .unwrap();
        let weights = dir.path().join("adapter_model.safetensors");
        let mut m = Model::new(&weights, Format::Safetensors);
        apply_config(&mut m, &weights);
        let get = |k: &str| {
            m.metadata
                .properties
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("peft.peft_type"), Some("LORA"));
        assert_eq!(get("peft.r"), Some("8"));
        assert_eq!(get("peft.target_modules"), Some("q_proj,v_proj"));
        assert_eq!(get("peft.rank_pattern"), Some(r#"{"down_proj":2}"#));
        assert_eq!(get("peft.alpha_pattern"), None);
        assert_eq!(m.metadata.producer_version.as_deref(), Some("0.21.2"));
        // Any other safetensors file is left alone.
        let other = dir.path().join("model.safetensors");
        let mut m = Model::new(&other, Format::Safetensors);
        apply_config(&mut m, &other);
        assert!(m.metadata.properties.is_empty());
    }
}
