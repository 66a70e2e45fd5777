//! Spans grouped by trace, with the parent/child queries tests assert on.

use std::fmt::Write as _;

use super::span::ReceivedSpan;

/// The spans of one trace, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedTrace {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// The spans, in arrival order.
    pub spans: Vec<ReceivedSpan>,
}

/// Groups spans by trace id, traces in order of their first span's arrival.
pub fn group_traces(spans: &[ReceivedSpan]) -> Vec<ReceivedTrace> {
    let mut traces: Vec<ReceivedTrace> = Vec::new();
    for span in spans {
        match traces.iter_mut().find(|t| t.trace_id == span.trace_id) {
            Some(trace) => trace.spans.push(span.clone()),
            None => traces.push(ReceivedTrace { trace_id: span.trace_id.clone(), spans: vec![span.clone()] }),
        }
    }
    traces
}

impl ReceivedTrace {
    /// The spans without a parent.
    pub fn roots(&self) -> Vec<&ReceivedSpan> {
        self.spans.iter().filter(|s| s.parent_span_id.is_none()).collect()
    }

    /// The spans whose parent is not in this trace (lost, or not exported
    /// yet): the usual sign of broken context propagation.
    pub fn orphans(&self) -> Vec<&ReceivedSpan> {
        self.spans.iter().filter(|s| s.parent_span_id.is_some() && self.parent(s).is_none()).collect()
    }

    /// The span's children, by start time.
    pub fn children(&self, span_id: &str) -> Vec<&ReceivedSpan> {
        let mut children: Vec<_> = self.spans.iter().filter(|s| s.parent_span_id.as_deref() == Some(span_id)).collect();
        children.sort_by_key(|s| s.start_unix_nano);
        children
    }

    /// The span's parent, when it is in this trace.
    pub fn parent(&self, span: &ReceivedSpan) -> Option<&ReceivedSpan> {
        let parent_id = span.parent_span_id.as_deref()?;
        self.spans.iter().find(|s| s.span_id == parent_id)
    }

    /// The length of the longest chain of ancestors (1 for a lone root, 0
    /// for an empty trace).
    pub fn depth(&self) -> usize {
        self.spans.iter().map(|s| self.ancestry(s).len()).max().unwrap_or(0)
    }

    /// The names from the topmost known ancestor down to the span.
    pub fn path(&self, span: &ReceivedSpan) -> Vec<String> {
        self.ancestry(span).into_iter().rev().map(|s| s.name.clone()).collect()
    }

    /// An indented tree of span names, roots and orphans at the top, for
    /// assertion messages.
    pub fn tree(&self) -> String {
        let mut out = String::new();
        let mut tops: Vec<_> = self.spans.iter().filter(|s| self.parent(s).is_none()).collect();
        tops.sort_by_key(|s| s.start_unix_nano);
        for top in tops {
            let note = if top.parent_span_id.is_some() { " (orphan)" } else { "" };
            let _ = writeln!(out, "{}{note}", top.name);
            self.write_children(&mut out, top, 1);
        }
        out
    }

    fn write_children(&self, out: &mut String, span: &ReceivedSpan, level: usize) {
        // A malformed trace could loop; no real tree is deeper than its span count.
        if level > self.spans.len() {
            return;
        }
        for child in self.children(&span.span_id) {
            let _ = writeln!(out, "{:indent$}{}", "", child.name, indent = level * 2);
            self.write_children(out, child, level + 1);
        }
    }

    /// The span and its known ancestors, innermost first, stopping at a
    /// cycle.
    fn ancestry<'a>(&'a self, span: &'a ReceivedSpan) -> Vec<&'a ReceivedSpan> {
        let mut chain = vec![span];
        let mut next = self.parent(span);
        while let Some(parent) = next {
            if chain.len() >= self.spans.len() {
                break;
            }
            chain.push(parent);
            next = self.parent(parent);
        }
        chain
    }
}
