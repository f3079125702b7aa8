//! Waiting for the operator's stop request: SIGINT (Ctrl-C) or SIGTERM (`docker stop`, systemd, Kubernetes).
//!
//! Owns only the waiting; what a stop means (abandon a sync, finish running tasks) is the caller's business.
//!
//! [`install_early`] runs first thing in `main`: until somebody listens, a stop request ends the process at once
//! with exit code 130 (nothing has been written yet), instead of the shell's 143 for an unhandled SIGTERM. From
//! the first [`listen`] on, stop requests are only delivered to listeners.
//!
//! A second stop request is the operator insisting: [`exit_on_second`] ends the process at once with 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Exit code of a process stopped before anything listened.
const EARLY_EXIT_CODE: i32 = 130;

/// `true` until the first [`listen`]: a stop request then exits the process.
static EARLY: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Makes SIGINT and SIGTERM exit with 130 until the first [`listen`]. Call once, before anything else.
pub fn install_early() {
    #[cfg(unix)]
    {
        let early = EARLY.get_or_init(|| Arc::new(AtomicBool::new(true)));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            if let Err(e) = signal_hook::flag::register_conditional_shutdown(sig, EARLY_EXIT_CODE, Arc::clone(early)) {
                tracing::debug!(error = %e, "cannot install the early stop handler");
            }
        }
    }
}

/// A registered interest in stop requests; signals that arrive after it was created are not lost.
pub(crate) struct StopListener {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

/// Starts listening (must run inside the tokio runtime). From now on stop requests no longer end the process.
pub(crate) fn listen() -> StopListener {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let streams = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(int), Ok(term)) => Some((int, term)),
            _ => None,
        };
        // Only now that the streams are registered may the early exit stand down: no signal falls in between.
        if streams.is_some() {
            if let Some(early) = EARLY.get() {
                early.store(false, Ordering::SeqCst);
            }
        }
        StopListener { streams }
    }
    #[cfg(not(unix))]
    StopListener {}
}

impl StopListener {
    /// Returns when the next SIGINT or SIGTERM arrives; can be called again for the one after.
    pub(crate) async fn next(&mut self) {
        #[cfg(unix)]
        if let Some((int, term)) = &mut self.streams {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Waits for the next stop request on `listener` (the first one is being handled) and then exits the process at
/// once with 130, without waiting for anything. Only for a state where an abrupt end loses nothing: the caller
/// has already decided that the output file is left as it was (work files are removed by the next run).
pub(crate) async fn exit_on_second(mut listener: StopListener, what: &'static str) {
    listener.next().await;
    tracing::warn!("second stop request: exiting at once; {what}");
    std::process::exit(EARLY_EXIT_CODE);
}
