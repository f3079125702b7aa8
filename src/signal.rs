//! Waiting for the operator's stop request: SIGINT (Ctrl-C) or SIGTERM (`docker stop`, systemd, Kubernetes).
//!
//! Owns only the waiting; what a stop means (abandon a sync, finish running tasks) is the caller's business.

/// Returns when SIGINT or SIGTERM arrives (only Ctrl-C where SIGTERM cannot be watched).
pub async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
