//! The attribute's arguments: `flow_name = "…"`, `session_id = "…"`,
//! `user_id = "…"`, `tags = ["…", …]`, `metadata(key = value, …)`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned as _;
use syn::{Expr, ExprArray, ExprLit, ExprUnary, Ident, Lit, LitStr, Token, UnOp};

/// The arguments every `#[trace_flow]` accepts, for error messages.
const EXPECTED: &str = "expected one of `flow_name`, `session_id`, `user_id`, `tags`, `metadata`";

/// The parsed arguments of `#[trace_flow(...)]`.
#[derive(Default)]
pub(crate) struct Args {
    /// `flow_name = "…"`.
    pub(crate) flow_name: Option<LitStr>,
    /// `session_id = "…"`.
    pub(crate) session_id: Option<LitStr>,
    /// `user_id = "…"`.
    pub(crate) user_id: Option<LitStr>,
    /// `tags = ["…", …]`, in order.
    pub(crate) tags: Vec<LitStr>,
    /// `metadata(key = value, …)`, in order.
    pub(crate) metadata: Vec<(LitStr, MetaValue)>,
    /// Whether `tags` or `metadata` was given (even empty).
    collections_given: bool,
}

impl Args {
    /// Whether any run option (anything but `flow_name`) was given.
    pub(crate) fn has_run_options(&self) -> bool {
        self.session_id.is_some() || self.user_id.is_some() || self.collections_given
    }
}

/// A metadata value: a literal that converts into a `serde_json::Value`.
pub(crate) enum MetaValue {
    /// A string literal.
    Str(LitStr),
    /// `true` or `false`.
    Bool(syn::LitBool),
    /// A number, emitted as `-`? `digits` `suffix` (`i64`, `u64` or `f64`,
    /// so the literal's type never depends on inference).
    Number {
        /// Whether a `-` comes first.
        negative: bool,
        /// The magnitude's digits, as written minus suffix and underscores.
        digits: String,
        /// The Rust type suffix.
        suffix: &'static str,
        /// Where the value was written.
        span: Span,
    },
}

impl ToTokens for MetaValue {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Self::Str(s) => s.to_tokens(tokens),
            Self::Bool(b) => b.to_tokens(tokens),
            Self::Number { negative, digits, suffix, span } => {
                let text = format!("{digits}{suffix}");
                let magnitude = if *suffix == "f64" {
                    syn::LitFloat::new(&text, *span).into_token_stream()
                } else {
                    syn::LitInt::new(&text, *span).into_token_stream()
                };
                let sign = negative.then(|| quote_spanned!(*span=> -));
                tokens.extend(quote!(#sign #magnitude));
            }
        }
    }
}

/// Parses the attribute's arguments (the tokens inside the parentheses).
///
/// # Errors
/// A `syn::Error` spanned on the offending token: an unknown or duplicate
/// argument, a value of the wrong kind, a malformed list.
pub(crate) fn parse_args(tokens: TokenStream) -> syn::Result<Args> {
    syn::parse2(tokens)
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Self::default();
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let key = input.call(Ident::parse_any).map_err(|err| syn::Error::new(err.span(), EXPECTED))?;
            let name = key.unraw().to_string();
            if seen.contains(&name) {
                return Err(syn::Error::new_spanned(&key, format!("duplicate argument `{name}`")));
            }
            match name.as_str() {
                "flow_name" => {
                    let value = string_value(input, &key, "flow_name = \"DataProcessingFlow\"")?;
                    if value.value().is_empty() {
                        return Err(syn::Error::new_spanned(&value, "`flow_name` must not be empty"));
                    }
                    args.flow_name = Some(value);
                }
                "session_id" => args.session_id = Some(string_value(input, &key, "session_id = \"chat-42\"")?),
                "user_id" => args.user_id = Some(string_value(input, &key, "user_id = \"ada\"")?),
                "tags" => {
                    args.tags = tags_value(input, &key)?;
                    args.collections_given = true;
                }
                "metadata" => {
                    args.metadata = metadata_value(input, &key)?;
                    args.collections_given = true;
                }
                "config" => {
                    return Err(syn::Error::new_spanned(
                        &key,
                        "`config` has no counterpart in `#[trace_flow]`: tracing is configured once, where the \
                         subscriber is built (`pocketflow_tracing::TracingConfig`), not per flow",
                    ));
                }
                "name" => {
                    return Err(syn::Error::new_spanned(&key, "unknown argument `name`; did you mean `flow_name`?"));
                }
                "tag" => {
                    return Err(syn::Error::new_spanned(
                        &key,
                        "unknown argument `tag`; did you mean `tags = [\"...\"]`?",
                    ));
                }
                _ => return Err(syn::Error::new_spanned(&key, format!("unknown argument `{name}`; {EXPECTED}"))),
            }
            seen.push(name);
            if input.is_empty() {
                break;
            }
            if !input.peek(Token![,]) {
                return Err(input.error("expected `,` between arguments"));
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// `= <expr>` after `key`; an error showing `example` when the `=` is
/// missing.
fn value_expr(input: ParseStream<'_>, key: &Ident, example: &str) -> syn::Result<Expr> {
    if !input.peek(Token![=]) {
        return Err(syn::Error::new_spanned(key, format!("`{key}` takes a value, like `{example}`")));
    }
    input.parse::<Token![=]>()?;
    input.parse()
}

/// `= "…"`.
fn string_value(input: ParseStream<'_>, key: &Ident, example: &str) -> syn::Result<LitStr> {
    match value_expr(input, key, example)? {
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Ok(s),
        other => Err(syn::Error::new_spanned(other, format!("`{key}` takes a string literal, like `{example}`"))),
    }
}

/// `= ["…", …]`: distinct string literals.
fn tags_value(input: ParseStream<'_>, key: &Ident) -> syn::Result<Vec<LitStr>> {
    const EXAMPLE: &str = "tags = [\"beta\", \"checkout\"]";
    let elems = match value_expr(input, key, EXAMPLE)? {
        Expr::Array(ExprArray { elems, .. }) => elems,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                format!("`tags` takes an array of string literals, like `{EXAMPLE}`"),
            ));
        }
    };
    let mut tags: Vec<LitStr> = Vec::with_capacity(elems.len());
    for elem in elems {
        match elem {
            Expr::Lit(ExprLit { lit: Lit::Str(tag), .. }) => {
                if tags.iter().any(|t| t.value() == tag.value()) {
                    return Err(syn::Error::new_spanned(&tag, format!("duplicate tag \"{}\"", tag.value())));
                }
                tags.push(tag);
            }
            other => {
                return Err(syn::Error::new_spanned(other, format!("a tag is a string literal, like `{EXAMPLE}`")));
            }
        }
    }
    Ok(tags)
}

/// `(key = value, …)`: keys are identifiers or string literals, values are
/// string, integer, float or bool literals.
fn metadata_value(input: ParseStream<'_>, key: &Ident) -> syn::Result<Vec<(LitStr, MetaValue)>> {
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new_spanned(
            key,
            "`metadata` takes a list, like `metadata(plan = \"pro\", retries = 3, beta = true)`",
        ));
    }
    let content;
    syn::parenthesized!(content in input);
    let mut entries: Vec<(LitStr, MetaValue)> = Vec::new();
    while !content.is_empty() {
        let entry_key = if content.peek(LitStr) {
            content.parse::<LitStr>()?
        } else {
            let ident = content.call(Ident::parse_any).map_err(|err| {
                syn::Error::new(err.span(), "expected a metadata key: an identifier or a string literal")
            })?;
            LitStr::new(&ident.unraw().to_string(), ident.span())
        };
        if entries.iter().any(|(k, _)| k.value() == entry_key.value()) {
            return Err(syn::Error::new_spanned(
                &entry_key,
                format!("duplicate metadata key \"{}\"", entry_key.value()),
            ));
        }
        if !content.peek(Token![=]) {
            return Err(syn::Error::new_spanned(
                &entry_key,
                format!(
                    "metadata key \"{}\" takes a value, like `{} = \"value\"`",
                    entry_key.value(),
                    entry_key.value()
                ),
            ));
        }
        content.parse::<Token![=]>()?;
        let value = meta_value(content.parse()?)?;
        entries.push((entry_key, value));
        if content.is_empty() {
            break;
        }
        if !content.peek(Token![,]) {
            return Err(content.error("expected `,` between metadata entries"));
        }
        content.parse::<Token![,]>()?;
    }
    Ok(entries)
}

/// A metadata value from its expression.
fn meta_value(expr: Expr) -> syn::Result<MetaValue> {
    const KINDS: &str = "a metadata value is a string, integer, float or bool literal";
    let whole = expr.to_token_stream();
    let (negative, lit) = match expr {
        Expr::Lit(ExprLit { lit, .. }) => (false, lit),
        Expr::Unary(ExprUnary { op: UnOp::Neg(_), expr: inner, .. }) => match *inner {
            Expr::Lit(ExprLit { lit: lit @ (Lit::Int(_) | Lit::Float(_)), .. }) => (true, lit),
            _ => return Err(syn::Error::new_spanned(whole, KINDS)),
        },
        _ => return Err(syn::Error::new_spanned(whole, KINDS)),
    };
    let span = whole.span();
    match lit {
        Lit::Str(s) => Ok(MetaValue::Str(s)),
        Lit::Bool(b) => Ok(MetaValue::Bool(b)),
        Lit::Int(int) => {
            let digits = int.base10_digits().to_owned();
            let sign = if negative { "-" } else { "" };
            let suffix = if format!("{sign}{digits}").parse::<i64>().is_ok() {
                "i64"
            } else if !negative && digits.parse::<u64>().is_ok() {
                "u64"
            } else {
                return Err(syn::Error::new_spanned(whole, "integer out of range for a metadata value (i64 or u64)"));
            };
            Ok(MetaValue::Number { negative, digits, suffix, span })
        }
        Lit::Float(float) => {
            if !float.base10_parse::<f64>()?.is_finite() {
                return Err(syn::Error::new_spanned(whole, "float out of range for a metadata value"));
            }
            let mut digits = float.base10_digits().to_owned();
            if digits.ends_with('.') {
                digits.push('0');
            }
            Ok(MetaValue::Number { negative, digits, suffix: "f64", span })
        }
        _ => Err(syn::Error::new_spanned(whole, KINDS)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn parse(src: &str) -> syn::Result<Args> {
        parse_args(src.parse().expect("tokens"))
    }

    /// The error's message and the source text its span covers.
    fn error(src: &str) -> (String, String) {
        let Err(err) = parse(src) else { panic!("`{src}` parsed") };
        let text = err.span().source_text().unwrap_or_default();
        (err.to_string(), text)
    }

    fn emitted(value: &MetaValue) -> String {
        value.to_token_stream().to_string()
    }

    #[test]
    fn no_arguments() {
        for src in ["", " "] {
            let args = parse(src).unwrap();
            assert!(args.flow_name.is_none());
            assert!(!args.has_run_options());
        }
    }

    #[test]
    fn every_argument() {
        let args = parse(
            r#"flow_name = "Data", session_id = "s", user_id = "u", tags = ["a", "b"],
               metadata(plan = "pro", n = 3, neg = -7, big = 18000000000000000000, x = 0.5, y = -2., on = true,
                        "model-id" = "m", type = "t", r#loop = 1),"#,
        )
        .unwrap();
        assert_eq!(args.flow_name.as_ref().map(LitStr::value).as_deref(), Some("Data"));
        assert_eq!(args.session_id.as_ref().map(LitStr::value).as_deref(), Some("s"));
        assert_eq!(args.user_id.as_ref().map(LitStr::value).as_deref(), Some("u"));
        assert_eq!(args.tags.iter().map(LitStr::value).collect::<Vec<_>>(), ["a", "b"]);
        let metadata: Vec<(String, String)> = args.metadata.iter().map(|(k, v)| (k.value(), emitted(v))).collect();
        let expected = [
            ("plan", "\"pro\""),
            ("n", "3i64"),
            ("neg", "- 7i64"),
            ("big", "18000000000000000000u64"),
            ("x", "0.5f64"),
            ("y", "- 2.0f64"),
            ("on", "true"),
            ("model-id", "\"m\""),
            ("type", "\"t\""),
            ("loop", "1i64"),
        ];
        assert_eq!(metadata, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert!(args.has_run_options());
    }

    #[test]
    fn the_extreme_integers_fit() {
        let args = parse("metadata(min = -9223372036854775808, max = 18446744073709551615)").unwrap();
        let values: Vec<String> = args.metadata.iter().map(|(_, v)| emitted(v)).collect();
        assert_eq!(values, ["- 9223372036854775808i64", "18446744073709551615u64"]);
    }

    #[test]
    fn empty_collections_still_count_as_options() {
        assert!(parse("tags = []").unwrap().has_run_options());
        assert!(parse("metadata()").unwrap().has_run_options());
        assert!(!parse(r#"flow_name = "X""#).unwrap().has_run_options());
    }

    #[test]
    fn unknown_arguments() {
        let (message, at) = error(r#"flow_name = "X", level = "info""#);
        assert_eq!(message, format!("unknown argument `level`; {EXPECTED}"));
        assert_eq!(at, "level");
        assert_eq!(
            error(r#"name = "X""#),
            ("unknown argument `name`; did you mean `flow_name`?".into(), "name".into())
        );
        assert_eq!(error(r#"tag = "a""#).1, "tag");
        let (message, at) = error("config = TracingConfig::from_env()");
        assert!(message.starts_with("`config` has no counterpart"), "{message}");
        assert_eq!(at, "config");
    }

    #[test]
    fn duplicate_arguments() {
        let (message, at) = error(r#"session_id = "a", user_id = "u", session_id = "b""#);
        assert_eq!(message, "duplicate argument `session_id`");
        assert_eq!(at, "session_id");
        assert_eq!(error(r#"tags = ["a"], tags = ["b"]"#).0, "duplicate argument `tags`");
        assert_eq!(error("metadata(a = 1), metadata(b = 2)").0, "duplicate argument `metadata`");
    }

    #[test]
    fn wrong_value_kinds() {
        let cases = [
            ("session_id = 42", "`session_id` takes a string literal, like `session_id = \"chat-42\"`", "42"),
            ("user_id = name", "`user_id` takes a string literal, like `user_id = \"ada\"`", "name"),
            (
                "flow_name = concat!(\"a\")",
                "`flow_name` takes a string literal, like `flow_name = \"DataProcessingFlow\"`",
                "concat!(\"a\")",
            ),
            (
                "tags = \"beta\"",
                "`tags` takes an array of string literals, like `tags = [\"beta\", \"checkout\"]`",
                "\"beta\"",
            ),
            ("tags = [\"a\", 1]", "a tag is a string literal, like `tags = [\"beta\", \"checkout\"]`", "1"),
            (
                "metadata = 1",
                "`metadata` takes a list, like `metadata(plan = \"pro\", retries = 3, beta = true)`",
                "metadata",
            ),
            ("metadata(k = [1, 2])", "a metadata value is a string, integer, float or bool literal", "[1, 2]"),
            ("metadata(k = -true)", "a metadata value is a string, integer, float or bool literal", "-true"),
            ("metadata(k = b'x')", "a metadata value is a string, integer, float or bool literal", "b'x'"),
            ("metadata(k = v)", "a metadata value is a string, integer, float or bool literal", "v"),
        ];
        for (src, message, at) in cases {
            assert_eq!(error(src), (message.to_owned(), at.to_owned()), "{src}");
        }
    }

    #[test]
    fn missing_values() {
        assert_eq!(
            error("session_id"),
            ("`session_id` takes a value, like `session_id = \"chat-42\"`".into(), "session_id".into())
        );
        assert_eq!(error("tags, user_id = \"u\"").1, "tags");
        assert_eq!(
            error("metadata(plan)"),
            ("metadata key \"plan\" takes a value, like `plan = \"value\"`".into(), "plan".into())
        );
        assert_eq!(error("flow_name = ").1, "");
    }

    #[test]
    fn empty_flow_name() {
        assert_eq!(error(r#"flow_name = """#), ("`flow_name` must not be empty".into(), "\"\"".into()));
    }

    #[test]
    fn duplicates_inside_collections() {
        assert_eq!(error(r#"tags = ["a", "b", "a"]"#), ("duplicate tag \"a\"".into(), "\"a\"".into()));
        assert_eq!(error(r#"metadata(k = 1, "k" = 2)"#), ("duplicate metadata key \"k\"".into(), "\"k\"".into()));
    }

    #[test]
    fn out_of_range_numbers() {
        let (message, at) = error("metadata(k = 18446744073709551616)");
        assert_eq!(message, "integer out of range for a metadata value (i64 or u64)");
        assert_eq!(at, "18446744073709551616");
        assert_eq!(error("metadata(k = -9223372036854775809)").0, message);
        assert_eq!(error("metadata(k = 1e999)").0, "float out of range for a metadata value");
    }

    #[test]
    fn separators() {
        let (message, at) = error(r#"flow_name = "a" session_id = "b""#);
        assert_eq!(message, "expected `,` between arguments");
        assert_eq!(at, "session_id");
        assert_eq!(error("metadata(a = 1 b = 2)").0, "expected `,` between metadata entries");
        assert_eq!(error("metadata(1 = 2)").0, "expected a metadata key: an identifier or a string literal");
        assert!(parse(r#"flow_name = "a","#).is_ok(), "a trailing comma is fine");
        assert_eq!(error(r#", flow_name = "a""#), (EXPECTED.into(), ",".into()));
        assert_eq!(error(r#""flow_name" = "a""#), (EXPECTED.into(), "\"flow_name\"".into()));
    }
}
