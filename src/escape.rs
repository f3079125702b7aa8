//! The one escaping rule for text a person reads: console log fields and messages, the stdout result line and
//! the error line. Torq ids, emails and names are server text; printed raw, an `ESC ]0;… BEL` retitles the
//! terminal, a CR/LF forges a second line and U+202E reverses what follows. So every character a terminal would
//! act on or a reader could not see is shown as an escape, and a long value is cut with its length said.
//!
//! JSON logs do not use this: serde_json escapes control characters itself, and a JSON reader wants the value
//! whole. This module only formats text; it never decides what is logged.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Longest value (in characters) shown whole in a log field or result line; Torq ids, emails and names are far
/// shorter, so more is hostile or broken and only its start is shown.
pub const MAX_VALUE_CHARS: usize = 256;

/// Longest log message or error line (in characters): messages are ours, but may quote server text.
pub const MAX_LINE_CHARS: usize = 4096;

/// Whether `c` must not reach a terminal as it is: C0 controls (CR, LF and TAB included), DEL, C1 controls, the
/// line and paragraph separators, the bidirectional controls and characters that take no room on screen
/// (zero-width spaces and joiners, word joiner, invisible operators, byte-order mark, soft hyphen, tags).
pub fn is_hidden(c: char) -> bool {
    c.is_control() // C0, DEL, C1 (Unicode category Cc)
        || matches!(
            c,
            '\u{00AD}' // soft hyphen
                | '\u{034F}' // combining grapheme joiner
                | '\u{061C}' // Arabic letter mark (bidi)
                | '\u{115F}' | '\u{1160}' // Hangul fillers
                | '\u{17B4}' | '\u{17B5}' // Khmer invisible vowels
                | '\u{180E}' // Mongolian vowel separator
                | '\u{200B}'..='\u{200F}' // zero-width space, non-joiner, joiner; LRM, RLM
                | '\u{2028}'..='\u{202E}' // line/paragraph separators; LRE, RLE, PDF, LRO, RLO
                | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, LRI..PDI, deprecated format chars
                | '\u{3164}' | '\u{FFA0}' // Hangul fillers
                | '\u{FEFF}' // zero-width no-break space (BOM)
                | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
                | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
                | '\u{E0000}'..='\u{E007F}' // tags
        )
}

/// `value` as one safe line: hidden characters escaped (`\n`, `\r`, `\t`, else `\u{…}`), cut after `max` characters
/// with `… [cut: N bytes in all]`. Borrowed when nothing needed changing.
pub fn escape_with_limit(value: &str, max: usize) -> Cow<'_, str> {
    let long = value.len() > max && value.chars().nth(max).is_some();
    if !long && !value.chars().any(is_hidden) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len().min(max.saturating_mul(2)) + 32);
    for c in value.chars().take(max) {
        push_escaped(&mut out, c);
    }
    if long {
        let _ = write!(out, "… [cut: {} bytes in all]", value.len());
    }
    Cow::Owned(out)
}

/// [`escape_with_limit`] with [`MAX_VALUE_CHARS`]: for one value (an id, an email, a name).
pub fn escape(value: &str) -> Cow<'_, str> {
    escape_with_limit(value, MAX_VALUE_CHARS)
}

/// [`escape_with_limit`] with [`MAX_LINE_CHARS`]: for a whole message or error line.
pub fn escape_line(line: &str) -> Cow<'_, str> {
    escape_with_limit(line, MAX_LINE_CHARS)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_hidden(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Displays a value through [`escape`]; for `format!` and log fields (`%Shown(&name)`).
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

/// The console log formatter's fields: the message through [`escape_line`], every other field as `name=value`
/// through [`escape`], so one event is one line whatever the values hold. (tracing-subscriber's default console
/// fields escape ESC but keep CR/LF and bidi controls.)
pub mod console {
    use std::fmt;

    use tracing::field::{Field, Visit};
    use tracing_subscriber::field::RecordFields;
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::FormatFields;

    use super::{escape, escape_line};

    /// Use with `tracing_subscriber::fmt().fmt_fields(EscapedFields)` (console format only).
    #[derive(Clone, Copy, Debug, Default)]
    pub struct EscapedFields;

    impl<'writer> FormatFields<'writer> for EscapedFields {
        fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
            let mut visitor = Visitor { writer, result: Ok(()), first: true };
            fields.record(&mut visitor);
            visitor.result
        }
    }

    struct Visitor<'w> {
        writer: Writer<'w>,
        result: fmt::Result,
        first: bool,
    }

    impl Visitor<'_> {
        fn write(&mut self, field: &Field, value: &str) {
            if self.result.is_err() {
                return;
            }
            let sep = if self.first { "" } else { " " };
            self.first = false;
            let name = field.name();
            self.result = if name == "message" {
                write!(self.writer, "{sep}{}", escape_line(value))
            } else {
                // `r#type` fields are named `r#type` by tracing; show `type`.
                let name = name.strip_prefix("r#").unwrap_or(name);
                write!(self.writer, "{sep}{name}={}", escape(value))
            };
        }
    }

    impl Visit for Visitor<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            // Quoted, as tracing-subscriber's own console fields show a `&str` field (`%` fields are not).
            self.write(field, &format!("{value:?}"));
        }

        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.write(field, &format!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_bidi_and_invisible_characters_are_escaped() {
        assert_eq!(escape("a\u{1b}]0;x\u{7}b"), "a\\u{1b}]0;x\\u{7}b");
        assert_eq!(escape("one\r\ntwo\tthree"), "one\\r\\ntwo\\tthree");
        assert_eq!(escape("\u{0}\u{7f}\u{85}\u{9b}"), "\\u{0}\\u{7f}\\u{85}\\u{9b}");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape("a\u{200b}b\u{2066}c\u{feff}\u{2028}"), "a\\u{200b}b\\u{2066}c\\u{feff}\\u{2028}");
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for s in ["kate@example.com", "Jürgen Ñandú", "角色 ロール", "emoji 🎉", "back\\slash", ""] {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn long_values_are_cut_with_their_length() {
        let long = "é".repeat(1000);
        let shown = escape(&long);
        assert_eq!(shown, format!("{}… [cut: 2000 bytes in all]", "é".repeat(MAX_VALUE_CHARS)));
        // Exactly at the limit: whole.
        assert_eq!(escape(&"a".repeat(MAX_VALUE_CHARS)), "a".repeat(MAX_VALUE_CHARS));
        assert_eq!(escape_with_limit("ab\ncd", 3), "ab\\n… [cut: 5 bytes in all]");
    }
}
