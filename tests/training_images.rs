//! Image summaries in TensorBoard event files, against what TensorBoard's EventAccumulator and
//! Pillow (PyTorch's `SummaryWriter.add_image`), and TensorFlow's own reader and PNG decoder
//! (`tf.summary.image`, several samples a step), read back: `tests/data/training/images/`.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns may unwrap too"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use modelmap::training::{ImageEntry, load_runs};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/training/images")
}

fn check(facts_file: &str) {
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(facts_file)).unwrap()).unwrap();
    let runs = load_runs(root()).unwrap();
    let run = runs.get(facts["run"].as_str().unwrap()).unwrap();
    assert!(run.issues.is_empty(), "{:?}", run.issues);
    let tags = facts["images"].as_object().unwrap();
    assert_eq!(run.images.len(), tags.len());
    assert_eq!(run.scalars["loss"].len(), run.scalars["loss"].steps.len());
    for (tag, entries) in tags {
        let ours = &run.images[tag];
        let entries = entries.as_array().unwrap();
        assert_eq!(ours.len(), entries.len(), "{tag}");
        for (image, fact) in ours.iter().zip(entries) {
            let what = format!("{tag} step {} sample {}", image.step, image.sample);
            assert_eq!(image.step, fact["step"].as_i64().unwrap(), "{what}");
            assert_eq!(
                image.sample as u64,
                fact["sample"].as_u64().unwrap(),
                "{what}"
            );
            let (w, h) = (
                fact["width"].as_u64().unwrap() as u32,
                fact["height"].as_u64().unwrap() as u32,
            );
            assert_eq!(image.size, [w, h], "{what}");
            assert_eq!(image.len, fact["bytes"].as_u64().unwrap(), "{what}");
            let (width, height, rgba) = image.decode_rgba().unwrap();
            assert_eq!((width, height), (w, h), "{what}");
            let sum: u64 = rgba.iter().map(|&b| u64::from(b)).sum();
            assert_eq!(sum, fact["rgba_sum"].as_u64().unwrap(), "{what}");
            let pixel = |x: u32, y: u32| -> Vec<u64> {
                let at = ((y * width + x) * 4) as usize;
                rgba[at..at + 4].iter().map(|&b| u64::from(b)).collect()
            };
            let want = |k: &str| -> Vec<u64> {
                fact[k]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect()
            };
            assert_eq!(pixel(0, 0), want("first"), "{what}");
            assert_eq!(pixel(width / 2, height / 2), want("middle"), "{what}");
        }
    }
}

#[test]
fn pytorch_add_image_matches_tensorboard() {
    check("facts_torch.json");
}

#[test]
fn tf_summary_image_samples_match_tensorflow() {
    check("facts_tf.json");
}

/// An image whose bytes are gone or are not PNG is an error that names the file, not a panic.
#[test]
fn missing_or_foreign_images_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path: Arc<Path> = Arc::from(dir.path().join("img.bin").as_path());
    std::fs::write(&path, [0xff, 0xd8, 0xff, 0xe0, 0, 0, 0, 0]).unwrap();
    let entry = |offset, len| ImageEntry {
        step: 0,
        wall_time_bits: 0,
        sample: 0,
        size: [0, 0],
        file: path.clone(),
        offset,
        len,
    };
    let e = entry(0, 8).decode_rgba().unwrap_err();
    assert!(e.contains("JPEG") && e.contains("img.bin"), "{e}");
    let e = entry(4, 100).decode_rgba().unwrap_err();
    assert!(e.contains("cut short"), "{e}");
    std::fs::write(&path, b"\x89PNG\r\n\x1a\n garbage").unwrap();
    let e = entry(0, 17).decode_rgba().unwrap_err();
    assert!(e.contains("img.bin"), "{e}");
}

/// `curves --json` names each image's file and place, where its PNG bytes start.
#[test]
fn json_lists_where_images_lie() {
    let runs = load_runs(root()).unwrap();
    let json = modelmap::training::curves_json(&runs, &[], 0.0);
    let mut seen = 0;
    for run in json["runs"].as_array().unwrap() {
        for entries in run["images"].as_object().unwrap().values() {
            for e in entries.as_array().unwrap() {
                let bytes = std::fs::read(e["file"].as_str().unwrap()).unwrap();
                let at = e["offset"].as_u64().unwrap() as usize;
                let len = e["bytes"].as_u64().unwrap() as usize;
                assert!(bytes[at..at + len].starts_with(b"\x89PNG\r\n\x1a\n"));
                assert!(bytes[at..at + len].ends_with(b"IEND\xaeB`\x82"));
                seen += 1;
            }
        }
    }
    assert_eq!(
        seen,
        4 + 4 + 9,
        "torch: 2 tags × 4 steps; tf: 3 steps × 3 samples"
    );
}
