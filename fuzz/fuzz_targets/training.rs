//! Fuzzes the training-log readers: TensorBoard event files (raw bytes, and the same bytes cut into
//! records with valid TFRecord framing, so the Event/Summary decoding is reached past the CRCs),
//! CSV and JSONL, and W&B run files (raw, and the input's pieces framed as W&B's writer frames
//! them, so the Record decoding is reached). Any input must give curves, skipped records or an error, never a panic or a hang.
#![no_main]

use modelmap::training::{Run, logs, parse_event_bytes, tfrecord, wandb};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let path = std::path::Path::new("fuzz.tfevents");
    let mut run = Run::new("fuzz");
    match mode % 6 {
        0 => {
            parse_event_bytes(path, rest, &mut run);
        }
        1 => {
            // Records whose lengths are the input's own bytes: [len, payload…] repeated.
            let mut framed = Vec::new();
            let mut at = rest;
            while let Some((&len, tail)) = at.split_first() {
                let (payload, next) = tail.split_at(usize::from(len).min(tail.len()));
                tfrecord::write_record(&mut framed, payload);
                at = next;
            }
            parse_event_bytes(path, &framed, &mut run);
        }
        4 => wandb::WandbReader::new("fuzz.wandb").decode(rest, 0, &mut run),
        5 => {
            // Messages whose lengths are the input's own bytes, as in mode 1.
            let mut messages = Vec::new();
            let mut at = rest;
            while let Some((&len, tail)) = at.split_first() {
                let (payload, next) = tail.split_at(usize::from(len).min(tail.len()));
                messages.push(payload.to_vec());
                at = next;
            }
            wandb::WandbReader::new("fuzz.wandb").decode(&wandb::frame(&messages), 0, &mut run);
        }
        2 => {
            let _ = logs::read_csv(path, &String::from_utf8_lossy(rest), &mut run);
        }
        _ => {
            let _ = logs::read_jsonl(path, &String::from_utf8_lossy(rest), &mut run);
        }
    }
});
