//! Terminal progress display for a running sync: one line on stderr ("records fetched, rows written"), redrawn at
//! most ten times a second and cleared when the sync ends, whatever the outcome.
//!
//! It is shown only when stderr is a terminal and logs are in console format; never in JSON mode, in a pipe, in
//! a file or under cron. Console log lines written while it is shown first clear it (see [`StderrClearingLine`]),
//! so a warning never ends up glued to the progress text; the next tick redraws it.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::sync::SyncProgress;

/// Redraw period (at most ten updates a second).
const TICK: Duration = Duration::from_millis(100);
/// Nothing is drawn for syncs that end sooner than this, so short runs stay clean.
const FIRST_DRAW_AFTER: Duration = Duration::from_millis(300);
/// Carriage return + "erase the whole line".
const CLEAR_LINE: &str = "\r\x1b[2K";

/// Whether a progress line is currently on screen (so log lines know to clear it first).
static LINE_SHOWN: AtomicBool = AtomicBool::new(false);

/// True when a progress display makes sense: console logs and stderr is a terminal.
pub(crate) fn wanted(console_logs: bool) -> bool {
    console_logs && std::io::stderr().is_terminal()
}

/// The running display; [`Ticker::stop`] ends it and clears the line.
pub(crate) struct Ticker {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Ticker {
    /// Starts redrawing `progress` on stderr.
    pub(crate) fn start(progress: Arc<SyncProgress>) -> Ticker {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = interval.tick() => {}
                }
                if started.elapsed() < FIRST_DRAW_AFTER {
                    continue;
                }
                draw(&progress, started.elapsed());
            }
        });
        Ticker { stop: Some(stop), task }
    }

    /// Stops the display and clears its line.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        clear();
    }
}

fn draw(progress: &SyncProgress, elapsed: Duration) {
    let line = format!(
        "{CLEAR_LINE}syncing: {} records fetched, {} rows written ({:.0} s)",
        progress.records_fetched(),
        progress.rows_written(),
        elapsed.as_secs_f64()
    );
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.flush();
    LINE_SHOWN.store(true, Ordering::Relaxed);
}

fn clear() {
    if LINE_SHOWN.swap(false, Ordering::Relaxed) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(CLEAR_LINE.as_bytes());
        let _ = err.flush();
    }
}

/// A `tracing` writer for console logs: stderr, clearing a shown progress line before each record.
#[derive(Clone, Copy, Debug, Default)]
pub struct StderrClearingLine;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrClearingLine {
    type Writer = ClearingWriter;

    fn make_writer(&'a self) -> ClearingWriter {
        ClearingWriter { first: true }
    }
}

/// Writes to stderr; the first write of a record clears a shown progress line.
pub struct ClearingWriter {
    first: bool,
}

impl Write for ClearingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::mem::take(&mut self.first) {
            clear();
        }
        std::io::stderr().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
