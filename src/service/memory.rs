//! Memory given back in service mode. glibc's malloc gives threads that allocate at the same time their own
//! arenas (up to 8 per core) and keeps what a sync freed inside them: a daemon running syncs on several tokio and
//! blocking threads held 85-210 MB idle after 60 tasks and trimming after each task did not change that, while
//! one arena plus a trim after each task keeps it near 22 MB (docs/performance.md, "Service mode: memory").
//!
//! Must not: run a trim on an async worker (it walks the arena; it runs on a blocking thread); override a
//! `MALLOC_ARENA_MAX` the operator set.

/// Service mode only, before any second thread exists (glibc fixes its arena limit when a second thread first
/// allocates): one malloc arena, unless `MALLOC_ARENA_MAX` says otherwise.
pub fn prepare(args: &crate::cli::ServiceArgs) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if super::requested(args) && std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a malloc parameter; called before other threads start.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = args;
}

/// Hands the heap's free pages back to the OS after a task (glibc `malloc_trim`; elsewhere nothing to do).
pub(crate) async fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let _ = tokio::task::spawn_blocking(|| {
        // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointers and is thread-safe.
        unsafe {
            libc::malloc_trim(0);
        }
    })
    .await;
}
