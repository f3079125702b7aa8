//! A child process's log read line by line while it is written, so a test can wait for what the process says
//! (an event) instead of sleeping and hoping it has happened.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::sync::watch;

/// The lines read so far, and whether the stream has ended.
#[derive(Default)]
struct Seen {
    lines: Vec<String>,
    ended: bool,
}

/// Reads a stream (a child's stderr) in the background.
pub struct LogWatch {
    seen: Arc<Mutex<Seen>>,
    /// Bumped after every line and at the end of the stream.
    changes: watch::Receiver<u64>,
}

impl LogWatch {
    /// Starts reading `stream` (e.g. `child.stderr.take().unwrap()`).
    pub fn start(stream: impl AsyncRead + Unpin + Send + 'static) -> LogWatch {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (tx, changes) = watch::channel(0u64);
        let shared = Arc::clone(&seen);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                shared.lock().unwrap().lines.push(line);
                tx.send_modify(|n| *n += 1);
            }
            shared.lock().unwrap().ended = true;
            tx.send_modify(|n| *n += 1);
        });
        LogWatch { seen, changes }
    }

    /// Everything read so far, one line each.
    pub fn text(&self) -> String {
        self.seen.lock().unwrap().lines.join("\n")
    }

    /// The first line containing `needle`, waiting for it at most `timeout`; panics (showing the log) when the
    /// time runs out or the stream ends without it.
    pub async fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let mut changes = self.changes.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let seen = self.seen.lock().unwrap();
                if let Some(line) = seen.lines.iter().find(|l| l.contains(needle)) {
                    return line.clone();
                }
                assert!(!seen.ended, "the log ended without {needle:?}:\n{}", seen.lines.join("\n"));
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                panic!("no {needle:?} in the log within {timeout:?}:\n{}", self.text());
            }
        }
    }

    /// The whole log, once the stream has ended (the process exited), waiting at most `timeout`.
    pub async fn finished(&self, timeout: Duration) -> String {
        let mut changes = self.changes.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.seen.lock().unwrap().ended {
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                panic!("the log did not end within {timeout:?}:\n{}", self.text());
            }
        }
        self.text()
    }
}
