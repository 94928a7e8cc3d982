//! Secrets have a type: `Secret<T>` never shows its value through `Debug` or `Display`, and
//! `Scrubber` removes known secret values from text that came from the SDK or the driver before
//! that text is stored in a report.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters is encoded: what is safe in the userinfo and
/// in a query value for every driver, and so the form a secret takes inside a URI.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// A value that must not be printed by accident. Reading it needs [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself: call only where printing or sending it is the point.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

/// What stands in for a secret in every output.
pub const REDACTED: &str = "(redacted)";

/// An access key id as it may be shown: `ASIA…WXYZ` (its prefix tells long-term from temporary,
/// its tail tells keys apart). Ids too short to mask safely are redacted whole.
pub fn mask_key_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 12 {
        return REDACTED.to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Removes known secrets from text. Every secret is matched as is and percent-encoded (the form
/// it takes inside a URI); access key ids are replaced by their masked form.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// (needle, replacement), longest needles first.
    rules: Vec<(String, String)>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} rules)", self.rules.len())
    }
}

impl Scrubber {
    pub fn new() -> Self {
        Self::default()
    }

    /// A secret key or a session token: replaced by `(redacted)`.
    pub fn add_secret(&mut self, value: &str) {
        self.add(value, REDACTED.to_string());
    }

    /// An access key id: replaced by its masked form.
    pub fn add_key_id(&mut self, id: &str) {
        self.add(id, mask_key_id(id));
    }

    fn add(&mut self, value: &str, replacement: String) {
        // Very short values would scrub ordinary words; real secrets are long.
        if value.len() < 8 {
            return;
        }
        let encoded = encode_component(value);
        for needle in [value.to_string(), encoded] {
            if !self.rules.iter().any(|(n, _)| *n == needle) {
                self.rules.push((needle, replacement.clone()));
            }
        }
        self.rules.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (needle, replacement) in &self.rules {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), replacement);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("wJalrXUtnFEMI/K7MDENG".to_string());
        assert_eq!(format!("{s:?}"), "(redacted)");
        assert_eq!(format!("{s}"), "(redacted)");
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG");
    }

    #[test]
    fn key_ids_are_masked() {
        assert_eq!(mask_key_id("ASIAIOSFODNN7EXAWXYZ"), "ASIA…WXYZ");
        assert_eq!(mask_key_id("short"), REDACTED);
    }

    #[test]
    fn scrubber_removes_plain_and_encoded_secrets() {
        let mut s = Scrubber::new();
        s.add_secret("abc+def/ghi=");
        s.add_key_id("AKIAIOSFODNN7EXAMPLE");
        let text = "key AKIAIOSFODNN7EXAMPLE secret abc+def/ghi= in uri abc%2Bdef%2Fghi%3D";
        let out = s.scrub(text);
        assert_eq!(
            out, "key AKIA…MPLE secret (redacted) in uri (redacted)",
            "scrubbed: {out}"
        );
    }

    #[test]
    fn scrubber_ignores_tiny_values() {
        let mut s = Scrubber::new();
        s.add_secret("a");
        assert_eq!(s.scrub("a cat"), "a cat");
    }
}
