//! Endpoint URLs: checked once, when the config is built, so that a typo
//! never sends spans somewhere else; and shown without their password
//! wherever they are displayed (errors, `Debug`, diagnostics).
//!
//! The check is done with a real URL parser: `http::Uri`, which the
//! transports use, takes `http://host:99999` and `http://host:abc` and then
//! connects to port 80.

use std::borrow::Cow;

use crate::error::ConfigError;

/// What a password in a displayed URL is replaced by.
const MASK: &str = "***";

/// Checks that `url` can be an endpoint; the error names `name` (a
/// variable, a setting or an argument) and shows the URL without its
/// password.
pub(crate) fn check(name: &str, url: &str) -> Result<(), ConfigError> {
    match problem(url) {
        None => Ok(()),
        Some(problem) => Err(ConfigError::InvalidEndpoint {
            name: name.to_owned(),
            url: mask_credentials(url).into_owned(),
            problem: problem.to_owned(),
        }),
    }
}

/// Why `url` cannot be an endpoint: it must be an absolute `http://` or
/// `https://` URL with a host, an optional port from 1 to 65535, and no
/// whitespace. `None` when it is fine.
pub(crate) fn problem(url: &str) -> Option<&'static str> {
    let lower = url.to_ascii_lowercase();
    let Some(rest) = ["http://", "https://"].iter().find_map(|scheme| lower.strip_prefix(scheme)) else {
        return Some("the scheme must be http:// or https://");
    };
    if url.contains(char::is_whitespace) {
        return Some("it contains whitespace");
    }
    // The transports take ASCII only.
    if !url.is_ascii() {
        return Some("it is not ASCII (write an international host name in its xn-- form, other text percent-encoded)");
    }
    // The parser would read `http:///host` as `http://host`.
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        return Some("there is no host after the scheme");
    }
    match url::Url::parse(url) {
        Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => Some("there is no host after the scheme"),
        Ok(parsed) if parsed.port() == Some(0) => Some("the port must be a number from 1 to 65535"),
        // What the transports parse it with must take it too.
        Ok(_) if url.parse::<http::Uri>().is_err() => Some("it is not a valid URL"),
        Ok(_) => None,
        Err(url::ParseError::InvalidPort) => Some("the port must be a number from 1 to 65535"),
        Err(url::ParseError::EmptyHost) => Some("there is no host after the scheme"),
        Err(url::ParseError::InvalidIpv4Address | url::ParseError::InvalidIpv6Address) => {
            Some("the host is not a valid IP address")
        }
        Err(url::ParseError::InvalidDomainCharacter | url::ParseError::IdnaError) => {
            Some("the host contains characters not allowed in a host name")
        }
        Err(_) => Some("it is not a valid URL"),
    }
}

/// `text` with the password of every URL in it replaced by `***`
/// (`http://user:secret@host` → `http://user:***@host`): for a URL on its
/// own, and for error messages that quote one.
pub(crate) fn mask_credentials(text: &str) -> Cow<'_, str> {
    crate::redact::mask_url_credentials(text, MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_urls_with_a_host_and_a_valid_port() {
        for url in [
            "http://localhost:4317",
            "HTTPS://collector.example.com",
            "http://127.0.0.1:65535/v1/traces",
            "http://[::1]:4318",
            "http://user:secret@collector:4317",
            "https://cloud.langfuse.com/api/public/otel/",
        ] {
            assert_eq!(problem(url), None, "{url}");
        }
    }

    #[test]
    fn rejects_ports_out_of_range_or_not_numbers_and_urls_without_a_host() {
        let port = Some("the port must be a number from 1 to 65535");
        for url in ["http://127.0.0.1:99999", "http://host:abc", "http://host:0", "http://host:-1", "http://host:65536"]
        {
            assert_eq!(problem(url), port, "{url}");
        }
        let host = Some("there is no host after the scheme");
        for url in ["http://", "http:///v1/traces", "https://:4317", "http://user:pw@:4317", "http://?x"] {
            assert_eq!(problem(url), host, "{url}");
        }
        for url in ["collector:4317", "ftp://collector", "grpc://collector:4317", "localhost"] {
            assert_eq!(problem(url), Some("the scheme must be http:// or https://"), "{url}");
        }
        assert_eq!(problem("http://coll ector:4317"), Some("it contains whitespace"));
        assert!(problem("http://bücher.example:4318").is_some_and(|p| p.contains("ASCII")));
        assert_eq!(problem("http://host:4317/a<b"), Some("it is not a valid URL"), "http::Uri refuses <");
        assert!(problem("http://300.1.1.1:4317").is_some());
        assert!(problem("http://[::1:4317").is_some());
    }

    #[test]
    fn masks_passwords_in_urls_and_in_text_quoting_them() {
        assert_eq!(mask_credentials("http://user:secret@host:4317"), "http://user:***@host:4317");
        assert_eq!(mask_credentials("https://u:p@ss@host/v1/traces"), "https://u:***@host/v1/traces");
        assert_eq!(
            mask_credentials("invalid endpoint 'http://a:b@h:1/x' and (https://c:d@e)"),
            "invalid endpoint 'http://a:***@h:1/x' and (https://c:***@e)"
        );
        assert_eq!(mask_credentials("http://token@host"), "http://***@host", "a user part alone may be a token");
        assert_eq!(mask_credentials("http://host:4317/a@b"), "http://host:4317/a@b", "an @ in the path");
        assert_eq!(mask_credentials("mail me@home"), "mail me@home");
    }
}
