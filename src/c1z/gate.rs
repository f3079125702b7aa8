//! The commit gate: one decision, taken once, between "replace the sync file" and "leave it as it was".
//!
//! A stop request (Ctrl-C, SIGTERM) and [`super::C1zWriter::finish`] race for it. Whoever comes first wins and
//! the other learns the outcome, so the message shown to the user is always true: a stop that wins means the
//! rename never happens; a stop that loses arrived after the rename began, and the new file will be complete.
//!
//! Owns only that decision; it neither watches signals nor touches files.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

const OPEN: u8 = 0;
const ABANDONED: u8 = 1;
const COMMITTED: u8 = 2;

/// A shared handle (clones refer to the same gate).
#[derive(Clone, Debug, Default)]
pub struct CommitGate(Arc<AtomicU8>);

impl CommitGate {
    pub fn new() -> CommitGate {
        CommitGate::default()
    }

    /// Asks to leave the file as it was. `true` when that is now certain (the rename has not begun and never
    /// will); `false` when the writer had already started replacing the file.
    pub fn abandon(&self) -> bool {
        match self.0.compare_exchange(OPEN, ABANDONED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(state) => state == ABANDONED,
        }
    }

    /// Asks to replace the file. `true` when the writer may go ahead; `false` when a stop came first.
    pub(crate) fn commit(&self) -> bool {
        match self.0.compare_exchange(OPEN, COMMITTED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(state) => state == COMMITTED,
        }
    }

    /// Whether a stop has already won (lets the writer skip work whose result would be thrown away).
    pub(crate) fn is_abandoned(&self) -> bool {
        self.0.load(Ordering::Acquire) == ABANDONED
    }
}

/// Two handles are equal when they are the same gate.
impl PartialEq for CommitGate {
    fn eq(&self, other: &CommitGate) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CommitGate {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_wins_and_the_second_learns_it() {
        let gate = CommitGate::new();
        assert!(gate.abandon());
        assert!(!gate.commit(), "a stop that came first forbids the rename");
        assert!(gate.abandon() && gate.is_abandoned());

        let gate = CommitGate::new();
        assert!(gate.commit());
        assert!(!gate.abandon(), "a stop after the rename began cannot claim the file was left alone");
        assert!(gate.commit() && !gate.is_abandoned());
        assert_eq!(gate.clone(), gate);
        assert_ne!(gate, CommitGate::new());
    }
}
