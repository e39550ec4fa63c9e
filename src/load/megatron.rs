//! Megatron-LM's (and NeMo 1's Megatron models') checkpoint folders: `latest_checkpointed_iteration.txt`
//! beside one folder per saved iteration (`iter_0001000/`, or `release/`), each holding one folder
//! per model-parallel rank (`mp_rank_00/`, with pipeline parallelism `mp_rank_00_000/`) of a
//! `torch.save` file (`model_optim_rng.pt`, `model_rng.pt` without the optimizer). The latest
//! iteration's first rank is read (the others hold other slices of the same tensors), with a
//! warning naming how many ranks there are.

use std::path::{Path, PathBuf};

use super::LoadError;
use crate::model::Model;

/// What Megatron names its iteration marker.
const TRACKER: &str = "latest_checkpointed_iteration.txt";

/// The rank folders of an iteration folder, sorted.
fn ranks(dir: &Path) -> Vec<PathBuf> {
    let mut ranks: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("mp_rank_"))
                && e.path().is_dir()
        })
        .map(|e| e.path())
        .collect();
    ranks.sort();
    ranks
}

/// Whether `dir` is a Megatron checkpoint folder or one of its iteration folders.
pub(super) fn is_checkpoint(dir: &Path) -> bool {
    dir.join(TRACKER).is_file() || !ranks(dir).is_empty()
}

/// Opens a Megatron checkpoint folder (its latest iteration) or an iteration folder.
pub(super) fn open(dir: &Path) -> Result<Model, LoadError> {
    let tracker = dir.join(TRACKER);
    let (iteration_dir, iteration) = if tracker.is_file() {
        let text = std::fs::read_to_string(&tracker).map_err(|e| LoadError::io(&tracker, e))?;
        let text = text.trim();
        let sub = if text == "release" {
            "release".to_string()
        } else {
            let n: u64 = text.parse().map_err(|_| {
                LoadError::corrupt(
                    &tracker,
                    format!("`{text}` is neither an iteration nor `release`"),
                )
            })?;
            format!("iter_{n:07}")
        };
        (dir.join(&sub), Some(text.to_string()))
    } else {
        (dir.to_path_buf(), None)
    };
    let ranks = ranks(&iteration_dir);
    let first = ranks.first().ok_or_else(|| {
        LoadError::corrupt(
            &iteration_dir,
            "no mp_rank_NN folder: not a Megatron checkpoint",
        )
    })?;
    let file = ["model_optim_rng.pt", "model_rng.pt"]
        .iter()
        .map(|n| first.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| LoadError::corrupt(first, "no model_optim_rng.pt or model_rng.pt in it"))?;
    let mut model = super::torch::open_file(&file, super::map_file(&file)?)?;
    if ranks.len() > 1 {
        model.metadata.warnings.push(format!(
            "{}: saved with model parallelism in {} ranks; the weights shown are {}'s",
            iteration_dir.display(),
            ranks.len(),
            first
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("the first")
        ));
    }
    if let Some(i) = iteration {
        model
            .metadata
            .properties
            .push(("megatron.iteration".into(), i));
    }
    model.metadata.producer = Some("Megatron-LM".into());
    Ok(model)
}
