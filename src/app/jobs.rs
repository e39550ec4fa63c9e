//! Background jobs: loading, indexing and export run off the UI thread and post their results over
//! a channel; the UI polls the channel once a frame and never waits.
//!
//! Each job gets a [`JobProgress`] (fraction, stage text, cancel flag) shared with the progress bar.
//! A `waker` closure (in the window: an `EventLoopProxy` send) is called when a job finishes so an
//! idle window wakes up; tests pass a no-op. Jobs are plain `std::thread`s because loading is mostly
//! waiting on page faults of a memory map; the compute inside them (layout, statistics) uses rayon.
//! Cancelling raises the flag; work that has checkpoints stops at the next one, and the result of a
//! cancelled job is discarded when it arrives.
//!
//! Rejected: an async runtime (nothing here is I/O-multiplexed) and `rayon::spawn` for loads (a slow
//! disk would park pool threads that layout and statistics need).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// Shared progress of one job: the layout engine's type, so a layout job reports straight into
/// the progress bar.
pub use crate::layout::Progress as JobProgress;

/// A job that has not posted its result yet.
#[derive(Debug, Clone)]
pub struct RunningJob {
    /// Job id (results carry it).
    pub id: u64,
    /// What it does, for the progress bar ("Loading model.onnx").
    pub label: String,
    /// Its progress.
    pub progress: Arc<JobProgress>,
}

/// A finished job's result, tagged with its id.
#[derive(Debug)]
pub struct Finished<T> {
    /// The job's id.
    pub id: u64,
    /// Whether it was cancelled before it finished (the result should be dropped).
    pub cancelled: bool,
    /// What it produced.
    pub output: T,
}

/// Runs jobs producing `T` and collects their results.
pub struct Jobs<T> {
    tx: Sender<Finished<T>>,
    rx: Receiver<Finished<T>>,
    waker: Arc<dyn Fn() + Send + Sync>,
    running: Vec<RunningJob>,
    next_id: u64,
}

impl<T> std::fmt::Debug for Jobs<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Jobs<T> {
    /// The closure that wakes the UI (for background work outside the job list).
    pub fn waker(&self) -> Arc<dyn Fn() + Send + Sync> {
        self.waker.clone()
    }

    /// A job runner that calls `waker` from the worker thread whenever a job finishes.
    pub fn new(waker: Arc<dyn Fn() + Send + Sync>) -> Self {
        let (tx, rx) = channel();
        Jobs {
            tx,
            rx,
            waker,
            running: Vec::new(),
            next_id: 1,
        }
    }

    /// Starts `work` on a new thread; returns the job id.
    pub fn spawn(
        &mut self,
        label: impl Into<String>,
        work: impl FnOnce(&JobProgress) -> T + Send + 'static,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let progress = JobProgress::new();
        let label = label.into();
        self.running.push(RunningJob {
            id,
            label: label.clone(),
            progress: progress.clone(),
        });
        let tx = self.tx.clone();
        let waker = self.waker.clone();
        let run = move || {
            let output = work(&progress);
            // The receiver is gone only when the app is closing; nothing to report then.
            let _ = tx.send(Finished {
                id,
                cancelled: progress.is_cancelled(),
                output,
            });
            waker();
        };
        let spawned = std::thread::Builder::new()
            .name(format!("modelmap job {id}"))
            .spawn(run);
        if let Err(e) = spawned {
            log::error!("cannot start a thread for {label}: {e}");
            self.running.retain(|j| j.id != id);
        }
        id
    }

    /// Jobs still running.
    pub fn running(&self) -> &[RunningJob] {
        &self.running
    }

    /// Cancels job `id` (no-op when it already finished).
    pub fn cancel(&self, id: u64) {
        if let Some(j) = self.running.iter().find(|j| j.id == id) {
            j.progress.cancel();
        }
    }

    /// Results posted since the last call (never blocks).
    pub fn poll(&mut self) -> Vec<Finished<T>> {
        let done: Vec<Finished<T>> = self.rx.try_iter().collect();
        if !done.is_empty() {
            self.running.retain(|j| !done.iter().any(|d| d.id == j.id));
        }
        done
    }

    /// Waits up to `timeout` for one result (tests and `--bench-startup` only; the UI uses `poll`).
    pub fn wait_one(&mut self, timeout: std::time::Duration) -> Option<Finished<T>> {
        let done = self.rx.recv_timeout(timeout).ok()?;
        self.running.retain(|j| j.id != done.id);
        Some(done)
    }
}
