//! Timestamps as c1z columns store them: local wall-clock TEXT in Go's `2006-01-02 15:04:05.999999999` layout,
//! i.e. `YYYY-MM-DD HH:MM:SS` plus `.fraction` with trailing zeros trimmed (no fraction when it is zero), no
//! zone.
//!
//! **Owns:** formatting of `started_at`, `ended_at` and `discovered_at`.
//!
//! **Must not:** store integers or RFC 3339 text with a zone suffix in these columns.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Local, TimeZone, Timelike};

/// Formats `t` in the Go layout used by c1z columns (see the module doc).
pub fn format_sqlite_time<Tz: TimeZone>(t: &DateTime<Tz>) -> String {
    let mut s = String::with_capacity(29);
    let _ = write!(
        s,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    // Leap seconds are represented by chrono as nanosecond >= 1e9; Go never prints those, clamp.
    let nanos = t.nanosecond().min(999_999_999);
    if nanos != 0 {
        let mut frac = format!("{nanos:09}");
        while frac.ends_with('0') {
            frac.pop();
        }
        s.push('.');
        s.push_str(&frac);
    }
    s
}

/// The current local time in the c1z column format.
pub fn now_text() -> String {
    format_sqlite_time(&Local::now())
}
