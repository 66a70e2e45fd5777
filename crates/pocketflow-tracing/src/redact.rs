//! Keeps secrets out of everything exported. Two rules, both driven by the
//! configured sensitive keys (`redact_keys`):
//!
//! - in a JSON payload (`input`, `output`), the value of every sensitive key
//!   is replaced by `"[REDACTED]"`, at any depth, and inside JSON held in a
//!   string value;
//! - in free text (an error message, an event's fields, a payload that is
//!   not JSON), credentials are masked: `Bearer …` / `Basic …`,
//!   `key=value` and `key: value` for sensitive keys, and the password of a
//!   URL's `user:password@`.
//!
//! A key is sensitive when, compared with its separators (`-`, `_`, `.`,
//! whitespace) removed and its letters lowercased, it *ends with* a
//! configured key: with `api_key` configured, `API-Key`, `apiKey` and
//! `openai_api_key` are all sensitive.
//!
//! JSON is read by an escape-aware tokenizer rather than parsed: it is exact
//! on valid JSON, keeps everything it does not redact byte for byte (key
//! order, formatting), has no depth limit, and is just as exact on a payload
//! cut short by the size cap (a JSON prefix), where a parser would give up.

use std::borrow::Cow;

/// What replaces a secret.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// How many levels of JSON held in strings (JSON in a string in a string
/// …) are followed. A JSON-looking string nested deeper is replaced whole:
/// each level doubles its escapes, so no real payload gets near this.
const MAX_NESTING: usize = 16;

/// How the size cap marks a cut value: `…[truncated: N bytes]`, appended by
/// [`crate::record`]. Kept aside while the cut text is redacted, so that a
/// value cut open does not swallow it.
pub(crate) const TRUNCATION_MARK_START: &str = "…[truncated: ";
pub(crate) const TRUNCATION_MARK_END: &str = " bytes]";
/// Before the length when only a lower bound is known (a value refused the
/// rest once the recorder had what the cap needs).
pub(crate) const TRUNCATION_MARK_OVER: &str = "over ";

/// Redacts payloads and masks credentials in free text, for one set of
/// sensitive keys. With no keys, it changes nothing.
#[derive(Debug, Clone)]
pub(crate) struct Redactor {
    /// The configured keys, normalized ([`normalize`]), none empty.
    keys: Vec<String>,
    /// Which ASCII characters end a configured key, one bit each: most keys
    /// in a payload end in none of them and are passed over at once.
    last_bytes: u128,
}

impl Redactor {
    pub(crate) fn new(keys: &[String]) -> Self {
        let mut normalized: Vec<String> = keys.iter().map(|key| normalize(key)).filter(|key| !key.is_empty()).collect();
        normalized.sort_unstable();
        normalized.dedup();
        let mut last_bytes = 0u128;
        for key in &normalized {
            if let Some(&last) = key.as_bytes().last()
                && last.is_ascii()
            {
                last_bytes |= 1 << last;
            }
        }
        Self { keys: normalized, last_bytes }
    }

    /// Whether a JSON object key (or a `key=` in text) is sensitive: its
    /// normalized form ends with a configured key's.
    pub(crate) fn is_sensitive(&self, key: &str) -> bool {
        if !key.is_ascii() {
            return self.is_sensitive_unicode(key);
        }
        let bytes = key.as_bytes();
        let end = bytes.len() - bytes.iter().rev().take_while(|b| is_separator(char::from(**b))).count();
        let Some(last) = end.checked_sub(1).map(|i| bytes[i].to_ascii_lowercase()) else { return false };
        if self.last_bytes & (1 << last) == 0 {
            return false;
        }
        self.keys.iter().any(|wanted| {
            let mut tail = bytes[..end].iter().rev().filter(|b| !is_separator(char::from(**b)));
            wanted.bytes().rev().all(|w| tail.next().map(u8::to_ascii_lowercase) == Some(w))
        })
    }

    /// [`Self::is_sensitive`] for a key with non-ASCII characters, which
    /// may lowercase to ASCII ones (the Kelvin sign to `k`).
    fn is_sensitive_unicode(&self, key: &str) -> bool {
        self.keys.iter().any(|wanted| {
            let mut tail = key.chars().rev().filter(|c| !is_separator(*c)).flat_map(|c| c.to_lowercase().rev());
            wanted.chars().rev().all(|w| tail.next() == Some(w))
        })
    }

    /// `text` (a recorded `input` or `output`) with the value of every
    /// sensitive key replaced. A payload that is not JSON (plain text, a
    /// `Debug` string) is also masked as free text is; a JSON payload cut by
    /// the size cap still reads as JSON.
    pub(crate) fn redact_payload(&self, text: String) -> String {
        if self.keys.is_empty() {
            return text;
        }
        let (body, mark) = split_truncation_mark(&text);
        match self.redact_document(body, 0) {
            Some(mut redacted) => {
                redacted.push_str(mark);
                redacted
            }
            None => text,
        }
    }

    /// `text` (an error message, an event's field) with credentials masked.
    pub(crate) fn mask_text(&self, text: String) -> String {
        if self.keys.is_empty() {
            return text;
        }
        match self.mask(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(masked) => masked,
        }
    }

    /// A value about to be cut by the size cap, made safe first: once cut,
    /// a secret's surroundings (the closing quote, the `@` after a URL's
    /// password) may be gone. Payloads are redacted, anything else masked.
    pub(crate) fn before_cut(&self, field: &str, text: String) -> String {
        match field {
            "input" | "output" => self.redact_payload(text),
            _ => self.mask_text(text),
        }
    }

    /// Redacts a payload; masks it too when it is not JSON. `None` when
    /// nothing changed.
    fn redact_document(&self, text: &str, depth: usize) -> Option<String> {
        let (redacted, json) = self.redact_json(text, depth);
        if json {
            return redacted;
        }
        match self.mask(redacted.as_deref().unwrap_or(text)) {
            Cow::Owned(masked) => Some(masked),
            Cow::Borrowed(_) => redacted,
        }
    }

    /// Replaces the value after every sensitive key in JSON text (whole or a
    /// prefix of it). A key is a string followed by `:`, which in JSON only
    /// a key is. Returns the new text (`None` when nothing changed) and
    /// whether the text is shaped as JSON: between its strings, nothing
    /// but what JSON allows there (see [`json_gap`]). Valid JSON, whole or
    /// cut, always is; text that is not has nothing that masking as free
    /// text would find outside its strings.
    fn redact_json(&self, text: &str, depth: usize) -> (Option<String>, bool) {
        let bytes = text.as_bytes();
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut at = 0;
        let mut json = true;
        let mut after_string = false;
        // A byte loop: payloads are short, and `str::find` costs more to set up.
        while let Some(offset) = bytes[at..].iter().position(|&b| b == b'"') {
            let start = at + offset;
            json = json && json_gap(&bytes[at..start], after_string);
            after_string = true;
            let (end, closed) = string_end(bytes, start);
            let content = &text[start + 1..if closed { end - 1 } else { end }];
            let after = skip_whitespace(bytes, end);
            if closed && bytes.get(after) == Some(&b':') {
                let value_start = skip_whitespace(bytes, after + 1);
                let value_end = value_end(bytes, value_start);
                let value = &text[value_start..value_end];
                if !value.is_empty() && value != QUOTED_REDACTED && self.is_sensitive(&unescape(content)) {
                    let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    out.push_str(&text[copied..value_start]);
                    out.push_str(QUOTED_REDACTED);
                    copied = value_end;
                    at = value_end;
                    after_string = false;
                } else {
                    at = end;
                }
                continue;
            }
            if let Some(replacement) = self.redact_nested(content, depth) {
                let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                out.push_str(&text[copied..start]);
                push_json_string(out, &replacement, closed);
                copied = end;
            }
            at = end;
        }
        json = json && json_gap(&bytes[at..], after_string);
        let out = out.map(|mut out| {
            out.push_str(&text[copied..]);
            out
        });
        (out, json)
    }

    /// A string value's content (still escaped) redacted as a payload of its
    /// own when it holds JSON (an object or array, possibly cut). `None`
    /// when it does not, or nothing changed.
    fn redact_nested(&self, escaped: &str, depth: usize) -> Option<String> {
        let first = Unescape::new(escaped).find(|c| !c.is_whitespace());
        if !matches!(first, Some('{' | '[')) {
            return None;
        }
        if depth >= MAX_NESTING {
            return Some(REDACTED.to_owned());
        }
        let content: String = Unescape::new(escaped).collect();
        self.redact_document(&content, depth + 1)
    }

    /// Masks credentials in free text.
    fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let text = mask_url_credentials(text, REDACTED);
        let text = match self.mask_key_values(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(masked) => Cow::Owned(masked),
        };
        match mask_auth_schemes(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(masked) => Cow::Owned(masked),
        }
    }

    /// Masks the value of each `key=value`, `key: value` (also with the key
    /// quoted, as in JSON) whose key is sensitive. A quoted value is masked
    /// to its closing quote; after a bare `key:` (a header line) to the end
    /// of the line; otherwise up to whitespace or one of `&,;)]}>"'`.
    fn mask_key_values<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut at = 0;
        while let Some(offset) = bytes[at..].iter().position(|&b| b == b'=' || b == b':') {
            let separator = at + offset;
            at = separator + 1;
            let previous = separator.checked_sub(1).map(|i| bytes[i]);
            let next = bytes.get(separator + 1).copied();
            // `a::b`, `a == b`, `scheme://`.
            if matches!((bytes[separator], previous, next), (b':', Some(b':'), _) | (b':', _, Some(b':' | b'/')))
                || matches!((bytes[separator], previous, next), (b'=', Some(b'=' | b'!' | b'<' | b'>'), _))
                || matches!((bytes[separator], next), (b'=', Some(b'=' | b'>')))
            {
                continue;
            }
            let (key, quoted) = key_before(text, separator);
            if key.is_empty() || !self.is_sensitive(key) {
                continue;
            }
            let value_start = skip_blanks(bytes, separator + 1);
            if text[value_start..].starts_with(REDACTED) {
                continue;
            }
            let header = bytes[separator] == b':' && !quoted;
            if value_start < copied {
                // The key sits inside a value already masked (`a=xb: y`):
                // that mask grows over this value too.
                copied = copied.max(if header { line_end(bytes, copied) } else { token_end(bytes, copied) });
                continue;
            }
            let (start, end) = match (bytes.get(value_start), bytes.get(value_start + 1)) {
                (Some(b'\\'), Some(b'"')) => {
                    let start = value_start + 2;
                    (start, text[start..].find("\\\"").map_or(text.len(), |end| start + end))
                }
                (Some(&quote @ (b'"' | b'\'')), _) => {
                    let start = value_start + 1;
                    (start, quoted_end(bytes, start, quote))
                }
                _ if header => (value_start, line_end(bytes, value_start)),
                _ => (value_start, token_end(bytes, value_start)),
            };
            if end > start && &text[start..end] != REDACTED {
                let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                out.push_str(&text[copied..start]);
                out.push_str(REDACTED);
                copied = end;
            }
        }
        match out {
            Some(mut out) => {
                out.push_str(&text[copied..]);
                Cow::Owned(out)
            }
            None => Cow::Borrowed(text),
        }
    }
}

const QUOTED_REDACTED: &str = "\"[REDACTED]\"";

/// A key as compared: separators removed, letters lowercased.
fn normalize(key: &str) -> String {
    key.chars().filter(|c| !is_separator(*c)).flat_map(char::to_lowercase).collect()
}

fn is_separator(c: char) -> bool {
    matches!(c, '-' | '_' | '.') || c.is_whitespace()
}

/// `text` split before a trailing size-cap mark (`…[truncated: N bytes]`
/// or `…[truncated: over N bytes]`), if it has one.
pub(crate) fn split_truncation_mark(text: &str) -> (&str, &str) {
    let Some(body) = text.strip_suffix(TRUNCATION_MARK_END) else { return (text, "") };
    let digits = body.len() - body.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let before_digits = &body[..body.len() - digits];
    let before_length = before_digits.strip_suffix(TRUNCATION_MARK_OVER).unwrap_or(before_digits);
    let Some(start) = before_length.len().checked_sub(TRUNCATION_MARK_START.len()) else { return (text, "") };
    if digits == 0 || !text.is_char_boundary(start) || !text[start..].starts_with(TRUNCATION_MARK_START) {
        return (text, "");
    }
    text.split_at(start)
}

/// Whether `gap`, text between JSON strings (or before the first, or after
/// the last), holds only what JSON allows there: whitespace, brackets,
/// commas, numbers, `true`, `false`, `null`, and a `:` only straight after
/// a string (`after_string`), as a key's. Anything else (a bare word, `=`)
/// means the text is not JSON.
fn json_gap(gap: &[u8], after_string: bool) -> bool {
    let mut colon_allowed = after_string;
    let mut at = 0;
    while at < gap.len() {
        match gap[at] {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b':' if colon_allowed => colon_allowed = false,
            b'{' | b'}' | b'[' | b']' | b',' | b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' => colon_allowed = false,
            b't' | b'f' | b'n' => {
                let Some(word) = [&b"true"[..], b"false", b"null"].into_iter().find(|word| gap[at..].starts_with(word))
                else {
                    return false;
                };
                at += word.len();
                colon_allowed = false;
                continue;
            }
            _ => return false,
        }
        at += 1;
    }
    true
}

/// The end of the JSON string opening at `start` (just past its closing
/// quote), and whether it is closed: a cut text may end inside it.
fn string_end(bytes: &[u8], start: usize) -> (usize, bool) {
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return (at + 1, true),
            _ => at += 1,
        }
    }
    (bytes.len(), false)
}

/// The end of the JSON value starting at `start`: a string, an object or
/// array (to its matching bracket), or a scalar (up to `,`, `}`, `]`, a
/// quote or a line end, less trailing whitespace). The end of the text when
/// the value is cut.
fn value_end(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        None => start,
        Some(b'"') => string_end(bytes, start).0,
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut at = start;
            while at < bytes.len() {
                match bytes[at] {
                    b'"' => {
                        at = string_end(bytes, at).0;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return at + 1;
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            bytes.len()
        }
        Some(_) => {
            let end = bytes[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b'"' | b'\n' | b'\r'))
                .map_or(bytes.len(), |end| start + end);
            start + bytes[start..end].trim_ascii_end().len()
        }
    }
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && bytes[at].is_ascii_whitespace() {
        at += 1;
    }
    at
}

fn skip_blanks(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t') {
        at += 1;
    }
    at
}

/// The decoded content of a JSON string (without its quotes).
fn unescape(escaped: &str) -> Cow<'_, str> {
    if escaped.contains('\\') { Cow::Owned(Unescape::new(escaped).collect()) } else { Cow::Borrowed(escaped) }
}

/// Decodes JSON string escapes, leniently: an invalid or cut escape is kept
/// as written, a lone surrogate becomes U+FFFD.
struct Unescape<'a> {
    rest: std::str::Chars<'a>,
}

impl<'a> Unescape<'a> {
    fn new(escaped: &'a str) -> Self {
        Self { rest: escaped.chars() }
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut lookahead = self.rest.clone();
        let mut value = 0;
        for _ in 0..4 {
            value = value * 16 + lookahead.next()?.to_digit(16)?;
        }
        self.rest = lookahead;
        Some(value)
    }
}

impl Iterator for Unescape<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let c = self.rest.next()?;
        if c != '\\' {
            return Some(c);
        }
        let mut lookahead = self.rest.clone();
        let decoded = match lookahead.next() {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => {
                self.rest = lookahead;
                let Some(high) = self.hex4() else { return Some('\u{fffd}') };
                if (0xD800..0xDC00).contains(&high) {
                    let mut pair = self.rest.clone();
                    if pair.next() == Some('\\') && pair.next() == Some('u') {
                        let saved = std::mem::replace(&mut self.rest, pair);
                        match self.hex4() {
                            Some(low) if (0xDC00..0xE000).contains(&low) => {
                                let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                                return Some(char::from_u32(code).unwrap_or('\u{fffd}'));
                            }
                            _ => self.rest = saved,
                        }
                    }
                }
                return Some(char::from_u32(high).unwrap_or('\u{fffd}'));
            }
            _ => return Some('\\'),
        };
        self.rest = lookahead;
        Some(decoded)
    }
}

/// Appends `text` as a JSON string; without its closing quote when the
/// string it replaces was cut open.
fn push_json_string(out: &mut String, text: &str, closed: bool) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = std::fmt::Write::write_fmt(out, format_args!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    if closed {
        out.push('"');
    }
}

/// The key ending just before `separator` (blanks and one closing quote,
/// possibly escaped, allowed in between), and whether it was quoted.
fn key_before(text: &str, separator: usize) -> (&str, bool) {
    let bytes = text.as_bytes();
    let mut end = separator;
    while end > 0 && matches!(bytes[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    let quoted = end > 0 && matches!(bytes[end - 1], b'"' | b'\'');
    if quoted {
        end -= 1;
        if end > 0 && bytes[end - 1] == b'\\' {
            end -= 1;
        }
    }
    let mut start = end;
    // Blanks are part of a key (`API Key: …`): matching ignores them and
    // looks at the end only. Non-ASCII bytes belong to whole characters, so
    // `start` stays on a character boundary.
    while start > 0
        && (bytes[start - 1].is_ascii_alphanumeric()
            || matches!(bytes[start - 1], b'_' | b'-' | b'.' | b' ' | b'\t' | 0x80..))
    {
        start -= 1;
    }
    (&text[start..end], quoted)
}

/// Just before the quote closing a value quoted with `quote` from `start`
/// (a backslash escapes it), or the end of the text.
fn quoted_end(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut at = start;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b if b == quote => return at,
            _ => at += 1,
        }
    }
    bytes.len()
}

fn line_end(bytes: &[u8], start: usize) -> usize {
    let end = bytes[start..].iter().position(|&b| b == b'\n' || b == b'\r').map_or(bytes.len(), |end| start + end);
    start + bytes[start..end].trim_ascii_end().len()
}

fn token_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b"&,;)]}>\"'<".contains(&b))
        .map_or(bytes.len(), |end| start + end)
}

/// Replaces by `marker` the password in each `scheme://user:password@host`
/// (all of the user part when it has no `:`, as a token used as a user
/// name). The one URL scanner of the crate: exported text uses
/// [`REDACTED`], configuration errors and `Debug` their own `***`.
pub(crate) fn mask_url_credentials<'t>(text: &'t str, marker: &str) -> Cow<'t, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while let Some(offset) = text[at..].find("://") {
        let authority = at + offset + 3;
        let end = bytes[authority..]
            .iter()
            .position(|&b| b.is_ascii_whitespace() || b"/?#\"'<>".contains(&b))
            .map_or(bytes.len(), |end| authority + end);
        // The next URL may start inside this run (`…@hosthttps://…`).
        at = authority;
        let Some(user_end) = text[authority..end].rfind('@').map(|at_sign| authority + at_sign) else { continue };
        let secret_start = text[authority..user_end].find(':').map_or(authority, |colon| authority + colon + 1);
        let secret = &text[secret_start..user_end];
        if secret.is_empty() || secret == marker {
            continue;
        }
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[copied..secret_start]);
        out.push_str(marker);
        copied = user_end;
    }
    match out {
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(text),
    }
}

/// Masks the credential after each `Bearer` or `Basic` (any case, as a
/// word, followed by blanks). After `Basic`, a word of lowercase letters
/// only is prose (`basic auth failed`), not base64.
fn mask_auth_schemes(text: &str) -> Cow<'_, str> {
    const SCHEMES: [&[u8]; 2] = [b"bearer", b"basic"];
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while let Some(offset) = text[at..].find(['b', 'B']) {
        at += offset;
        let word_start = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let scheme = SCHEMES.iter().find(|scheme| {
            word_start && bytes[at..].get(..scheme.len()).is_some_and(|w| w.eq_ignore_ascii_case(scheme))
        });
        let Some(scheme) = scheme else {
            at += 1;
            continue;
        };
        let start = skip_blanks(bytes, at + scheme.len());
        let end = bytes[start..]
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)))
            .map_or(bytes.len(), |end| start + end);
        let prose = *scheme == b"basic" && bytes[start..end].iter().all(u8::is_ascii_lowercase);
        if start == at + scheme.len() || end == start || prose {
            at += scheme.len();
            continue;
        }
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
        at = end;
    }
    match out {
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests;
