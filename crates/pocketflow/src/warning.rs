//! What PocketFlow reports as warnings: kept (up to a bound), not just
//! logged.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use crate::action::Action;

/// How many warnings a [`RunReport`](crate::RunReport) keeps: the first
/// this many of the run, in order. The rest are only counted (in
/// [`WarningCounts`]), so a loop that warns on every turn keeps the memory
/// of a short one. The `pocketflow.warning` event is still emitted for
/// every warning: what a subscriber keeps of them is its own bound (the
/// tracing layer keeps at most a set number of events per span).
pub const MAX_KEPT_WARNINGS: usize = 100;

/// A condition PocketFlow reports with `warnings.warn`. Each is emitted as a
/// `pocketflow.warning` event and also returned to the caller: wiring
/// warnings by [`Flow::warnings`](crate::Flow::warnings), run warnings in
/// [`RunReport::warnings`](crate::RunReport) (the first
/// [`MAX_KEPT_WARNINGS`] of a run, all of them counted in
/// [`RunReport::warning_counts`](crate::RunReport)). Plain `run` returns
/// none and keeps none.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowWarning {
    /// A successor was set for an action that already had one; the new one
    /// replaced it.
    OverwrittenSuccessor {
        /// The node whose successor was replaced.
        node: String,
        /// The action.
        action: String,
    },
    /// A node returned an action with no successor while it has others, so
    /// the flow ended there.
    MissingSuccessor {
        /// The node that returned the action.
        node: String,
        /// The action it returned.
        action: Action,
        /// The actions it does have successors for, in the order they were added.
        available: Vec<String>,
    },
    /// The flow was run without a start node, so it did nothing.
    NoStartNode {
        /// The flow.
        flow: String,
    },
}

impl FlowWarning {
    /// A stable identifier of the warning's kind, as in the event's `kind` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OverwrittenSuccessor { .. } => "overwritten_successor",
            Self::MissingSuccessor { .. } => "missing_successor",
            Self::NoStartNode { .. } => "no_start_node",
        }
    }
}

/// The same words as PocketFlow's warnings, e.g.
/// `Flow ends: 'None' not found in ['specific_action']`. As in Python's
/// f-strings, the action stands between plain single quotes and the list of
/// actions is written as Python's `repr` writes a list of `str`
/// (`["it's", 'go']`). The no-start-node text, which Python lacks, quotes
/// the flow's name with `repr` too.
impl fmt::Display for FlowWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OverwrittenSuccessor { action, .. } => write!(f, "Overwriting successor for action '{action}'"),
            Self::MissingSuccessor { action, available, .. } => {
                write!(f, "Flow ends: '{action}' not found in {}", PyList(available))
            }
            Self::NoStartNode { flow } => write!(f, "Flow {} has no start node; nothing ran", PyRepr(flow)),
        }
    }
}

/// How many warnings a run raised, kept or not: returned in
/// [`RunReport::warning_counts`](crate::RunReport).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WarningCounts {
    /// Every warning the run raised.
    pub total: u64,
    /// The warnings past the first [`MAX_KEPT_WARNINGS`], counted here but
    /// not kept in [`RunReport::warnings`](crate::RunReport).
    pub not_kept: u64,
    /// Every warning by [kind](FlowWarning::kind), e.g.
    /// `missing_successor`.
    pub by_kind: BTreeMap<&'static str, u64>,
}

impl WarningCounts {
    /// How many warnings of `kind` ([`FlowWarning::kind`]) the run raised.
    pub fn of_kind(&self, kind: &str) -> u64 {
        self.by_kind.get(kind).copied().unwrap_or(0)
    }
}

/// A run's warnings as they are raised: the first [`MAX_KEPT_WARNINGS`],
/// and counts of all.
#[derive(Debug, Default)]
pub(crate) struct WarningLog {
    kept: Vec<FlowWarning>,
    counts: WarningCounts,
}

impl WarningLog {
    pub(crate) fn add(&mut self, warning: FlowWarning) {
        let counts = &mut self.counts;
        counts.total = counts.total.saturating_add(1);
        let of_kind = counts.by_kind.entry(warning.kind()).or_default();
        *of_kind = of_kind.saturating_add(1);
        if self.kept.len() < MAX_KEPT_WARNINGS {
            self.kept.push(warning);
        } else {
            counts.not_kept = counts.not_kept.saturating_add(1);
        }
    }

    pub(crate) fn take(&mut self) -> (Vec<FlowWarning>, WarningCounts) {
        (std::mem::take(&mut self.kept), std::mem::take(&mut self.counts))
    }
}

/// A string as Python's `repr` writes it: in single quotes, or in double
/// quotes when it holds a single quote and no double quote; backslashes,
/// the quote, and characters Python does not print (controls, separators
/// other than the space, format and private-use characters, noncharacters)
/// escaped as `\n`, `\xNN`, `\uNNNN` or `\UNNNNNNNN`. Python also escapes
/// unassigned code points, which this leaves as they are.
pub(crate) struct PyRepr<'a>(pub(crate) &'a str);

impl fmt::Display for PyRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quote = if self.0.contains('\'') && !self.0.contains('"') { '"' } else { '\'' };
        f.write_char(quote)?;
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c == quote => write!(f, "\\{c}")?,
                c if python_prints(c) => f.write_char(c)?,
                c if u32::from(c) <= 0xff => write!(f, "\\x{:02x}", u32::from(c))?,
                c if u32::from(c) <= 0xffff => write!(f, "\\u{:04x}", u32::from(c))?,
                c => write!(f, "\\U{:08x}", u32::from(c))?,
            }
        }
        f.write_char(quote)
    }
}

/// A list of strings as Python's `repr` writes it: `['a', "it's"]`.
pub(crate) struct PyList<'a>(pub(crate) &'a [String]);

impl fmt::Display for PyList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            PyRepr(item).fmt(f)?;
        }
        f.write_char(']')
    }
}

/// Python's `str.isprintable` for one character (Unicode 14, as in Python
/// 3.11), for every assigned code point: false for controls (Cc), format
/// characters (Cf), private use (Co), line and paragraph separators and
/// spaces other than U+0020 (Zl, Zp, Zs), and noncharacters.
fn python_prints(c: char) -> bool {
    const NOT_PRINTED: [(u32, u32); 29] = [
        (0x0000, 0x001f),
        (0x007f, 0x009f),
        (0x00a0, 0x00a0),
        (0x00ad, 0x00ad),
        (0x0600, 0x0605),
        (0x061c, 0x061c),
        (0x06dd, 0x06dd),
        (0x070f, 0x070f),
        (0x0890, 0x0891),
        (0x08e2, 0x08e2),
        (0x1680, 0x1680),
        (0x180e, 0x180e),
        (0x2000, 0x200f),
        (0x2028, 0x202f),
        (0x205f, 0x2064),
        (0x2066, 0x206f),
        (0x3000, 0x3000),
        (0xe000, 0xf8ff),
        (0xfdd0, 0xfdef),
        (0xfeff, 0xfeff),
        (0xfff9, 0xfffb),
        (0x110bd, 0x110bd),
        (0x110cd, 0x110cd),
        (0x13430, 0x1343f),
        (0x1bca0, 0x1bca3),
        (0x1d173, 0x1d17a),
        (0xe0001, 0xe0001),
        (0xe0020, 0xe007f),
        (0xf0000, 0x10ffff),
    ];
    let code = u32::from(c);
    let noncharacter = code & 0xfffe == 0xfffe;
    !noncharacter && !NOT_PRINTED.iter().any(|&(low, high)| (low..=high).contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(s: &str) -> String {
        PyRepr(s).to_string()
    }

    /// Each expected text is what Python 3.11's `repr` printed.
    #[test]
    fn strings_are_quoted_as_python_repr_quotes_them() {
        assert_eq!(repr("plain"), "'plain'");
        assert_eq!(repr(""), "''");
        assert_eq!(repr("it's"), r#""it's""#);
        assert_eq!(repr(r#"say "hi""#), r#"'say "hi"'"#);
        assert_eq!(repr(r#"both ' and ""#), r#"'both \' and "'"#);
        assert_eq!(repr(r"back\slash"), r"'back\\slash'");
        assert_eq!(repr("nl\nt\tr\r"), r"'nl\nt\tr\r'");
        assert_eq!(repr("\u{1}\u{7f}\u{80}\u{9f}"), r"'\x01\x7f\x80\x9f'");
        assert_eq!(repr("é中😀"), "'é中😀'");
        assert_eq!(
            repr(
                "\u{a0}\u{ad}\u{2028}\u{2029}\u{200b}\u{feff}\u{e000}\u{f0000}\u{3000}\u{1680}\u{180e}\u{e0001}\u{fdd0}\u{ffff}\u{10ffff}"
            ),
            r"'\xa0\xad\u2028\u2029\u200b\ufeff\ue000\U000f0000\u3000\u1680\u180e\U000e0001\ufdd0\uffff\U0010ffff'"
        );
    }

    #[test]
    fn lists_are_written_as_python_writes_a_list_of_str() {
        let list = |items: &[&str]| PyList(&items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).to_string();
        assert_eq!(list(&[]), "[]");
        assert_eq!(list(&["default"]), "['default']");
        assert_eq!(list(&["it's", "plain", r#"both'""#]), r#"["it's", 'plain', 'both\'"']"#);
    }

    #[test]
    fn warning_texts_quote_as_python_does() {
        let missing = FlowWarning::MissingSuccessor {
            node: "N".into(),
            action: Action::from("it's"),
            available: vec!["it's".into(), "go".into()],
        };
        assert_eq!(missing.to_string(), r#"Flow ends: 'it's' not found in ["it's", 'go']"#);
        let overwritten = FlowWarning::OverwrittenSuccessor { node: "N".into(), action: "it's".into() };
        assert_eq!(overwritten.to_string(), "Overwriting successor for action 'it's'");
        assert_eq!(
            FlowWarning::NoStartNode { flow: "Bob's".into() }.to_string(),
            r#"Flow "Bob's" has no start node; nothing ran"#
        );
    }

    #[test]
    fn a_log_keeps_the_first_warnings_and_counts_all() {
        let mut log = WarningLog::default();
        for i in 0..MAX_KEPT_WARNINGS + 5 {
            log.add(FlowWarning::NoStartNode { flow: i.to_string() });
        }
        log.add(FlowWarning::OverwrittenSuccessor { node: "N".into(), action: "a".into() });
        let (kept, counts) = log.take();
        assert_eq!(kept.len(), MAX_KEPT_WARNINGS);
        assert_eq!(kept[0], FlowWarning::NoStartNode { flow: "0".into() });
        assert_eq!((counts.total, counts.not_kept), (MAX_KEPT_WARNINGS as u64 + 6, 6));
        assert_eq!(counts.of_kind("no_start_node"), MAX_KEPT_WARNINGS as u64 + 5);
        assert_eq!(counts.of_kind("overwritten_successor"), 1);
        assert_eq!(counts.of_kind("missing_successor"), 0);
    }
}
