//! Timestamps as c1z columns store them: local wall-clock TEXT in Go's `2006-01-02 15:04:05.999999999` layout,
//! i.e. `YYYY-MM-DD HH:MM:SS` plus `.fraction` with trailing zeros trimmed (no fraction when it is zero), no
//! zone.
//!
//! **Owns:** formatting of `started_at`, `ended_at` and `discovered_at`. Sync runs get the full nanosecond
//! time; object rows get [`SecondClock`]'s whole-second time, which barely changes within a sync and therefore
//! compresses to almost nothing (a nanosecond stamp per row made files noticeably larger; docs/performance.md).
//!
//! **Must not:** store integers or RFC 3339 text with a zone suffix in these columns.

use std::fmt::Write as _;

use std::time::{SystemTime, UNIX_EPOCH};

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

/// Whether `s` is a valid time exactly as [`format_sqlite_time`] writes it (a real date and time, the fraction
/// trimmed), so that comparing two such texts compares the wall-clock times they name.
pub(crate) fn is_go_time_text(s: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .is_ok_and(|t| format_sqlite_time(&t.and_utc()) == s)
}

/// The current local time in the c1z column format.
pub(crate) fn now_text() -> String {
    format_sqlite_time(&Local::now())
}

/// Time for `discovered_at`: the sync's start time until the clock reaches the next whole second, then the
/// current whole second (local time, no fraction), re-formatted only when the second changes. So, as long as
/// the clock does not step back (or the local time fall back an hour at the end of daylight saving time, which
/// affects any local-time text), every row reads `started_at <= discovered_at <= ended_at`, and "discovered
/// during this second" is all it says.
#[derive(Debug)]
pub(crate) struct SecondClock {
    second: i64,
    text: String,
}

impl SecondClock {
    /// A clock for a sync that started at `start`.
    pub(crate) fn starting_at(start: &DateTime<Local>) -> SecondClock {
        SecondClock { second: start.timestamp(), text: format_sqlite_time(start) }
    }

    /// The current time as described on [`SecondClock`].
    pub(crate) fn now(&mut self) -> &str {
        let second = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let second = i64::try_from(second).unwrap_or(i64::MAX);
        if second > self.second {
            let now = Local::now();
            self.text = format_sqlite_time(&now.with_nanosecond(0).unwrap_or(now));
            self.second = second;
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_layout_trims_the_fraction() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 28, 20, 22, 37).unwrap();
        assert_eq!(format_sqlite_time(&t), "2026-11-28 20:22:37");
        let t = t.with_nanosecond(350_516_490).unwrap();
        assert_eq!(format_sqlite_time(&t), "2026-11-28 20:22:37.35051649");
    }

    #[test]
    fn go_time_text_is_recognised_exactly() {
        for ok in ["2026-11-28 20:22:37", "2026-11-28 20:22:37.35051649", "2026-11-28 20:22:37.000000001"] {
            assert!(is_go_time_text(ok), "{ok}");
        }
        for bad in [
            "2026-11-28T20:22:37",
            "2026-11-28 20:22:37.50",
            "2026-02-30 20:22:37",
            "9999-12-31 23:59:59.9999999999",
            "2026-11-28 20:22:37Z",
            "",
        ] {
            assert!(!is_go_time_text(bad), "{bad}");
        }
    }

    #[test]
    fn second_clock_starts_at_the_start_then_ticks_in_whole_seconds() {
        let whole_second = |t: DateTime<Local>| format_sqlite_time(&t.with_nanosecond(0).unwrap_or(t));
        let start = Local::now();
        let mut clock = SecondClock::starting_at(&start);
        let first = clock.now().to_string();
        // The start time itself, unless a second boundary passed in between.
        assert!(first == format_sqlite_time(&start) || first == whole_second(Local::now()), "{first}");
        let earlier = start - chrono::Duration::seconds(3);
        let mut clock = SecondClock::starting_at(&earlier);
        let text = clock.now().to_string();
        let now = whole_second(Local::now());
        assert_eq!(text.len(), "2026-11-28 20:22:37".len(), "{text}");
        assert!(format_sqlite_time(&earlier) < text && text <= now, "{text} vs {now}");
    }
}
