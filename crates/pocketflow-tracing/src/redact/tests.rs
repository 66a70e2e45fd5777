#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::config::DEFAULT_REDACT_KEYS;

fn defaults() -> Redactor {
    Redactor::new(&DEFAULT_REDACT_KEYS.map(str::to_owned))
}

fn redact(text: &str) -> String {
    defaults().redact_payload(text.to_owned())
}

fn mask(text: &str) -> String {
    defaults().mask_text(text.to_owned())
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

#[test]
fn an_escaped_quote_in_an_earlier_string_does_not_stop_redaction() {
    let node_input = r#"{"note":"he said \"hi","api_key":"sk-live-123","nested":{"password":"hunter2"}}"#;
    let redacted = redact(node_input);
    assert_eq!(
        parse(&redacted),
        json!({"note": "he said \"hi", "api_key": "[REDACTED]", "nested": {"password": "[REDACTED]"}})
    );

    let shared_store = r#"{"comment":"odd \" quote","password":"hunter2","token":"tok-456"}"#;
    let redacted = redact(shared_store);
    assert_eq!(parse(&redacted), json!({"comment": "odd \" quote", "password": "[REDACTED]", "token": "[REDACTED]"}));
}

#[test]
fn what_is_not_redacted_is_kept_byte_for_byte() {
    let text = "{ \"z\" : 1,\n  \"password\" : \"x\",\n  \"a\": [1, 2.50, \"\\u00e9\"] }";
    assert_eq!(redact(text), "{ \"z\" : 1,\n  \"password\" : \"[REDACTED]\",\n  \"a\": [1, 2.50, \"\\u00e9\"] }");
    let clean = r#"{"b":1,"a":"\/ \u00e9 \" \\"}"#;
    assert_eq!(redact(clean), clean);
}

#[test]
fn keys_match_in_any_case_with_any_separator_and_as_a_suffix() {
    let r = defaults();
    for key in [
        "api_key",
        "API-KEY",
        "apiKey",
        "Api.Key",
        "api key",
        "openai_api_key",
        "X-Api-Key",
        "x_api_key",
        "db_password",
        "PASSWORD",
        "Authorization",
        "proxy-authorization",
        "Set-Cookie",
        "cookie",
        "client_secret",
        "clientSecret",
        "accessToken",
        "refresh_token",
        "csrf_token",
        "secret_key",
        "private_key",
        "ssh_private_key",
        // The Kelvin sign lowercases to `k`.
        "TO\u{212A}EN",
    ] {
        assert!(r.is_sensitive(key), "{key} should be sensitive");
    }
    for key in ["max_tokens", "input_tokens", "password_hash", "token_type", "keys", "name", "secrets", ""] {
        assert!(!r.is_sensitive(key), "{key} should not be sensitive");
    }
}

#[test]
fn configured_keys_are_normalized_too() {
    let r = Redactor::new(&["Customer-SSN".to_owned(), "  ".to_owned()]);
    assert!(r.is_sensitive("customer_ssn") && r.is_sensitive("xCustomerSsn") && r.is_sensitive("CUSTOMER.SSN"));
    assert!(!r.is_sensitive("password"), "the list replaces the defaults");
    assert!(!r.is_sensitive("anything"), "a key that normalizes to nothing matches nothing");
}

#[test]
fn no_keys_changes_nothing() {
    let r = Redactor::new(&[]);
    let payload = r#"{"password":"x"}"#;
    assert_eq!(r.redact_payload(payload.to_owned()), payload);
    assert_eq!(r.mask_text("Bearer abc password=x".to_owned()), "Bearer abc password=x");
}

#[test]
fn any_value_of_a_sensitive_key_is_replaced_whole() {
    let text = r#"{"token":{"a":"}","b":[1,{"c":"]"}]},"password":[1,2],"secret":12.5e3,"cookie":null,"n":1}"#;
    assert_eq!(
        parse(&redact(text)),
        json!({"token": "[REDACTED]", "password": "[REDACTED]", "secret": "[REDACTED]", "cookie": "[REDACTED]", "n": 1})
    );
}

#[test]
fn keys_written_with_unicode_escapes_are_recognized() {
    let text = r#"{"pass\u0077ord":"x","\u0054oken":"y","a\"b":"z"}"#;
    assert_eq!(parse(&redact(text)), json!({"password": "[REDACTED]", "Token": "[REDACTED]", "a\"b": "z"}));
}

#[test]
fn json_held_in_a_string_is_redacted_inside_at_any_depth() {
    let inner = json!({"password": "hunter2", "keep": "he said \"hi"}).to_string();
    let middle = json!({"body": inner, "other": [r#"{"token":"t0k"}"#]}).to_string();
    let outer = json!({"payload": middle}).to_string();
    let redacted = redact(&outer);
    assert!(!redacted.contains("hunter2") && !redacted.contains("t0k"), "{redacted}");
    let middle: Value = parse(parse(&redacted)["payload"].as_str().unwrap());
    let inner: Value = parse(middle["body"].as_str().unwrap());
    assert_eq!(inner, json!({"password": "[REDACTED]", "keep": "he said \"hi"}));
    assert_eq!(parse(middle["other"][0].as_str().unwrap()), json!({"token": "[REDACTED]"}));
}

#[test]
fn a_string_holding_json_nested_too_deep_is_replaced_whole() {
    let mut text = json!({"password": "x"}).to_string();
    for _ in 0..=MAX_NESTING {
        text = json!([text]).to_string();
    }
    let redacted = redact(&text);
    assert!(redacted.contains(REDACTED) && !redacted.contains("password"), "{redacted}");
}

#[test]
fn nesting_deeper_than_a_parser_allows_is_still_redacted() {
    let depth = 5_000;
    let text = format!("{}{{\"password\":\"hunter2\"}}{}", "[".repeat(depth), "]".repeat(depth));
    let redacted = redact(&text);
    assert!(!redacted.contains("hunter2"));
    assert!(redacted.contains(r#"{"password":"[REDACTED]"}"#));
}

#[test]
fn a_payload_cut_inside_a_secret_keeps_nothing_of_it() {
    let cut = format!(r#"{{"note":"he said \"hi","api_key":"sk-li{TRUNCATION_MARK_START}512{TRUNCATION_MARK_END}"#);
    let redacted = redact(&cut);
    assert_eq!(
        redacted,
        format!(r#"{{"note":"he said \"hi","api_key":"[REDACTED]"{TRUNCATION_MARK_START}512{TRUNCATION_MARK_END}"#)
    );

    let object = r#"{"a":1,"token":{"x":"}","y":"sk-"#;
    assert_eq!(redact(object), r#"{"a":1,"token":"[REDACTED]""#);

    let in_string = r#"{"body":"{\"password\":\"hun"#;
    let redacted = redact(in_string);
    assert!(!redacted.contains("hun\\") && !redacted.ends_with("hun"), "{redacted}");
    assert!(redacted.contains("[REDACTED]"), "{redacted}");
}

#[test]
fn a_payload_that_is_not_json_is_masked_as_text() {
    let debug = r#"Config { password: "hunter2", url: "postgres://app:pw@db/x", note: "ok" }"#;
    let masked = redact(debug);
    assert!(!masked.contains("hunter2") && !masked.contains(":pw@"), "{masked}");
    assert!(masked.contains("note: \"ok\""), "{masked}");
    // In valid JSON, a string value is data: only keys decide.
    let json = r#"{"log":"password=hunter2"}"#;
    assert_eq!(redact(json), json);
}

#[test]
fn the_truncation_mark_is_recognized_only_as_written() {
    let mark = format!("{TRUNCATION_MARK_START}70000{TRUNCATION_MARK_END}");
    assert_eq!(split_truncation_mark(&format!("abc{mark}")), ("abc", mark.as_str()));
    assert_eq!(split_truncation_mark("abc bytes]"), ("abc bytes]", ""));
    let no_digits = format!("abc{TRUNCATION_MARK_START}{TRUNCATION_MARK_END}");
    assert_eq!(split_truncation_mark(&no_digits), (no_digits.as_str(), ""));
}

#[test]
fn credentials_in_error_text_are_masked() {
    let cases = [
        ("401 from api: Bearer sk-abc.def_123 rejected", "401 from api: Bearer [REDACTED] rejected"),
        ("header authorization: Bearer sk-abc", "header authorization: [REDACTED]"),
        ("Authorization: token ghp_abc\nnext line", "Authorization: [REDACTED]\nnext line"),
        ("basic auth failed: Basic dXNlcjpwYXNz", "basic auth failed: Basic [REDACTED]"),
        ("GET /v1?api_key=sk-123&page=2 failed", "GET /v1?api_key=[REDACTED]&page=2 failed"),
        ("bad api-key: sk-123", "bad api-key: [REDACTED]"),
        ("login failed with password=hunter2, retrying", "login failed with password=[REDACTED], retrying"),
        ("OPENAI_API_KEY = 'sk-1 2'", "OPENAI_API_KEY = '[REDACTED]'"),
        ("connect postgres://app:s3cret@db:5432/x failed", "connect postgres://app:[REDACTED]@db:5432/x failed"),
        ("clone https://ghp_tok@github.com/a/b", "clone https://[REDACTED]@github.com/a/b"),
        (r#"body {"token":"abc","n":1}"#, r#"body {"token":"[REDACTED]","n":1}"#),
        (r#"body "{\"password\":\"hunter2\",\"n\":1}""#, r#"body "{\"password\":\"[REDACTED]\",\"n\":1}""#),
        ("Cookie: session=abc; csrf=def", "Cookie: [REDACTED]"),
        ("Invalid API Key: sk-123", "Invalid API Key: [REDACTED]"),
        ("a https://u:p1@hhttps://v:p2@h", "a https://u:[REDACTED]@hhttps://v:[REDACTED]@h"),
    ];
    for (text, expected) in cases {
        assert_eq!(mask(text), expected, "masking {text:?}");
    }
}

#[test]
fn error_text_without_credentials_is_unchanged() {
    for text in [
        "model timed out",
        "error: connection refused",
        "see https://example.com/docs?page=2#x",
        "max_tokens=4096 exceeded",
        "a::b == c, x => y",
        "the data is basically fine",
        "basic auth failed",
        "",
    ] {
        assert_eq!(mask(text), text);
    }
}

#[test]
fn masking_twice_changes_nothing_more() {
    for text in ["password=x Bearer y https://u:p@h", "authorization: Basic abc", r#"{"token":"x"}"#] {
        let once = mask(text);
        assert_eq!(mask(&once), once);
    }
}

// Property tests: arbitrary JSON with secrets planted at random depths,
// under random spellings of the default keys, beside arbitrary strings.

/// Every secret starts with this; nothing else can contain it.
const SECRET_PREFIX: &str = "QXJ";

/// Characters for everything but secrets and sensitive keys: quotes,
/// backslashes, escape look-alikes, brackets, Unicode, control characters.
/// No key of the default list can end in one of them (the lists' keys end
/// in `y`, `n`, `d`, `t` or `e`), and neither `@` (URLs) nor `b` (`Bearer`,
/// `Basic`) nor `QXJ` can be spelled with them.
const ORDINARY: &[char] = &[
    'a', 'c', 'o', 's', 'i', 'k', 'w', 'z', 'A', 'O', 'S', '0', '7', ' ', '"', '\\', '/', '{', '}', '[', ']', ':', ',',
    '=', '-', '_', '.', '\n', '\t', '\u{0}', '\u{1f}', 'é', 'ß', 'İ', 'K', '€', '😀', '\u{2028}',
];

fn ordinary_string() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ORDINARY), 0..12).prop_map(|chars| chars.into_iter().collect())
}

/// A default key spelled as a payload might: random case, random
/// separators, maybe behind a prefix (`openai_api_key`).
fn sensitive_key() -> impl Strategy<Value = String> {
    (
        prop::sample::select(DEFAULT_REDACT_KEYS.as_slice()),
        prop::collection::vec(any::<bool>(), 16),
        prop::sample::select(&["", "-", "_", ".", " "][..]),
        prop::sample::select(&["", "openai_", "db-", "My", "x.", "\"q\\"][..]),
    )
        .prop_map(|(key, upper, separator, prefix)| {
            let body: String = key
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, up)| match c {
                    '-' | '_' => separator.to_owned(),
                    c if *up => c.to_ascii_uppercase().to_string(),
                    c => c.to_string(),
                })
                .collect();
            format!("{prefix}{body}")
        })
}

/// A secret value: a string, or a structure holding secrets.
fn secret_value() -> impl Strategy<Value = Value> {
    let secret = "[0-9a-z]{1,8}".prop_map(|tail| Value::String(format!("{SECRET_PREFIX}{tail}")));
    prop_oneof![
        3 => secret.clone(),
        1 => prop::collection::vec(secret.clone(), 0..3).prop_map(Value::Array),
        1 => secret.prop_map(|s| json!({"inner": s, "n": 1})),
    ]
}

/// An input and what it must redact to.
type Case = (Value, Value);

fn leaf() -> impl Strategy<Value = Case> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        ordinary_string().prop_map(Value::String),
    ]
    .prop_map(|v| (v.clone(), v))
}

fn case() -> impl Strategy<Value = Case> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|items| {
                let (input, expected): (Vec<_>, Vec<_>) = items.into_iter().unzip();
                (Value::Array(input), Value::Array(expected))
            }),
            prop::collection::vec(entry(inner.clone()), 0..5).prop_map(|entries| {
                let mut input = serde_json::Map::new();
                let mut expected = serde_json::Map::new();
                for (key, (value, redacted)) in entries {
                    // A later duplicate key replaces the earlier one in both.
                    input.insert(key.clone(), value);
                    expected.insert(key, redacted);
                }
                (Value::Object(input), Value::Object(expected))
            }),
            // JSON held in a string (compact or pretty).
            (inner, any::<bool>()).prop_map(|((input, expected), pretty)| {
                let write = |v: &Value| {
                    if pretty { serde_json::to_string_pretty(v).unwrap() } else { v.to_string() }
                };
                if input.is_object() || input.is_array() {
                    (Value::String(write(&input)), Value::String(write(&expected)))
                } else {
                    (input, expected)
                }
            }),
        ]
    })
}

fn entry(value: impl Strategy<Value = Case>) -> impl Strategy<Value = (String, Case)> {
    prop_oneof![
        3 => (ordinary_string(), value),
        1 => (sensitive_key(), secret_value()).prop_map(|(key, secret)| (key, (secret, Value::from(REDACTED)))),
    ]
}

/// `value` with each string that holds JSON replaced by that JSON parsed,
/// so that values compare whatever the whitespace of the text they hold.
fn unfold(value: Value) -> Value {
    match value {
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(inner @ (Value::Object(_) | Value::Array(_))) => json!({ "json in a string": unfold(inner) }),
            _ => Value::String(s),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(unfold).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, unfold(v))).collect()),
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_secret_survives_and_everything_else_is_unchanged((input, expected) in case(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&input).unwrap() } else { input.to_string() };
        let redacted = redact(&text);
        prop_assert!(!redacted.contains(SECRET_PREFIX), "a secret survived: {}", redacted);
        let got: Value = serde_json::from_str(&redacted).map_err(|e| TestCaseError::fail(format!("{e}: {redacted}")))?;
        // Numbers compare as read back from text, as the redacted ones are.
        let expected: Value = serde_json::from_str(&expected.to_string()).unwrap();
        prop_assert_eq!(unfold(got), unfold(expected));
    }

    #[test]
    fn a_payload_cut_anywhere_keeps_no_secret((input, _) in case(), cut in any::<prop::sample::Index>()) {
        let text = input.to_string();
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let cut_text = format!("{}{TRUNCATION_MARK_START}{}{TRUNCATION_MARK_END}", &text[..at], text.len());
        let redacted = redact(&cut_text);
        // A cut may leave the start of a secret (`Q`); the tokenizer must
        // still see whose value it is.
        prop_assert!(!redacted.contains('Q'), "a secret survived: {}", redacted);
        prop_assert!(redacted.ends_with(TRUNCATION_MARK_END), "the mark is kept: {}", redacted);
    }

    #[test]
    fn redacting_twice_changes_nothing_more((input, _) in case()) {
        let once = redact(&input.to_string());
        prop_assert_eq!(redact(&once), once);
    }

    #[test]
    fn text_without_credentials_is_never_masked(text in ordinary_string()) {
        prop_assert_eq!(mask(&text), text);
    }

    #[test]
    fn no_credential_planted_in_text_survives(pieces in prop::collection::vec(text_piece(), 1..8)) {
        let text = pieces.concat();
        let masked = mask(&text);
        prop_assert!(!masked.contains(SECRET_PREFIX), "a secret survived: {} from {}", masked, text);
    }
}

/// A piece of error text: ordinary text, or a credential in one of the
/// forms masked.
fn text_piece() -> impl Strategy<Value = String> {
    let secret = || "[0-9a-z]{1,8}".prop_map(|tail| format!("{SECRET_PREFIX}{tail}"));
    prop_oneof![
        3 => ordinary_string(),
        2 => (
            sensitive_key(),
            prop::sample::select(&["=", " = ", ": ", ":"][..]),
            prop::sample::select(&["", "\"", "'"][..]),
            secret(),
        )
            .prop_map(|(key, separator, quote, secret)| format!("{key}{separator}{quote}{secret}{quote}")),
        1 => (sensitive_key(), secret(), any::<bool>()).prop_map(|(key, secret, escaped)| {
            let q = if escaped { "\\\"" } else { "\"" };
            format!("{{{q}{key}{q}:{q}{secret}{q}}}")
        }),
        1 => (prop::sample::select(&["Bearer", "bearer", "BASIC", "Basic"][..]), secret())
            .prop_map(|(scheme, secret)| format!(" {scheme} {secret}")),
        1 => (prop::sample::select(&["https://user:", "postgres://", "redis://:"][..]), secret())
            .prop_map(|(start, secret)| format!(" {start}{secret}@host.example:5432/db")),
    ]
}
