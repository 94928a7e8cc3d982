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

/// Removes known secrets from text. Every secret is matched as is, percent-encoded in either
/// case (the forms it takes inside a URI) and JSON-escaped; access key ids are replaced by their
/// masked form. Secrets shorter than 8 bytes are matched only as whole words, so that they are
/// hidden without eating ordinary words that contain them.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// (needle, replacement, whole words only), longest needles first.
    rules: Vec<(String, String, bool)>,
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
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        let words = value.len() < 8;
        let encoded = encode_component(value);
        let json = serde_json::to_string(value).unwrap_or_default();
        let json = json.trim_matches('"').to_string();
        let mut needles = vec![
            value.to_string(),
            encoded.to_ascii_lowercase(),
            encoded,
            json,
        ];
        if value.len() >= 12 {
            needles.extend(base64_cores(value.as_bytes()));
        }
        for needle in needles {
            if !self.rules.iter().any(|(n, _, _)| *n == needle) {
                self.rules.push((needle, replacement.clone(), words));
            }
        }
        self.rules
            .sort_by_key(|(n, _, _)| std::cmp::Reverse(n.len()));
    }

    /// Text for a report: made terminal-safe first (so that control bytes woven into a secret
    /// cannot hide it from the match), then scrubbed, then cut to `MAX_TEXT` characters (so that
    /// a cut never leaves the start of a secret).
    pub fn clean(&self, text: &str) -> String {
        let out = self.scrub(&sanitize_terminal(text));
        match out.char_indices().nth(MAX_TEXT) {
            Some((at, _)) => format!("{}… (cut)", &out[..at]),
            None => out,
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = redact_url_userinfo(text);
        for (needle, replacement, words) in &self.rules {
            if out.contains(needle.as_str()) {
                out = if *words {
                    replace_words(&out, needle, replacement)
                } else {
                    out.replace(needle.as_str(), replacement)
                };
            }
        }
        out
    }
}

/// The most characters one text of a report keeps (a server's errmsg, an API's detail).
pub const MAX_TEXT: usize = 8192;

/// What a secret looks like inside base64 of anything that holds it (a SASL payload, a Basic
/// authorization): for each of the three alignments, the characters that depend on the secret's
/// bytes alone, in the standard and the URL-safe alphabet.
fn base64_cores(secret: &[u8]) -> Vec<String> {
    use base64::Engine;
    let mut out = Vec::new();
    for k in 0..3usize {
        let mut bytes = vec![0u8; k];
        bytes.extend_from_slice(secret);
        for engine in [
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let e = engine.encode(&bytes);
            // the first group holds prefix bits when k > 0; the last may hold what follows
            let start = if k == 0 { 0 } else { 4 };
            let end = e.len().saturating_sub(4);
            if end > start + 8 {
                out.push(e[start..end].to_string());
            }
        }
    }
    out
}

/// Replaces `needle` where it stands as a whole word (not inside a longer run of letters and
/// digits).
fn replace_words(text: &str, needle: &str, replacement: &str) -> String {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(needle) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + needle.len()..].chars().next();
        out.push_str(&rest[..at]);
        if is_word(before) || is_word(after) {
            out.push_str(needle);
        } else {
            out.push_str(replacement);
        }
        rest = &rest[at + needle.len()..];
    }
    out.push_str(rest);
    out
}

/// Hides the userinfo of any URL in the text (`scheme://user:password@host` becomes
/// `scheme://(redacted)@host`), unless it is already masked (`ASIA…WXYZ:(redacted)@`).
pub fn redact_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '`' || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority_end = tail[..end].find('/').unwrap_or(end);
        // the last @ before the path, or before the first = when a password holds a raw /
        let limit = tail[..end].find('=').unwrap_or(end).max(authority_end);
        match tail[..limit].rfind('@') {
            Some(at) if !tail[..at].contains(REDACTED) => {
                out.push_str(REDACTED);
                rest = &tail[at..];
            }
            _ => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Hides what looks like a credential in text that may carry unknown ones (a credential
/// process's stderr): access key ids, and long runs of base64 that mix letters and digits.
pub fn redact_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let key_id = run.len() >= 16
            && (run.starts_with("AKIA") || run.starts_with("ASIA"))
            && run
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        let mixed = run.len() >= 20
            && run.chars().any(|c| c.is_ascii_digit())
            && run.chars().any(|c| c.is_ascii_lowercase())
            && run.chars().any(|c| c.is_ascii_uppercase());
        if key_id {
            out.push_str(&mask_key_id(run));
        } else if mixed {
            out.push_str(REDACTED);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || "+/=_-".contains(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Text from a server, STS or a file, made safe for a terminal: control characters and escape
/// sequences removed (a newline or tab becomes a space).
pub fn sanitize_terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // ESC [ ... final byte, or ESC ] ... BEL / ESC \, or ESC and one more character
                match chars.peek() {
                    Some('[') => {
                        chars.next();
                        for c in chars.by_ref() {
                            if ('\u{40}'..='\u{7e}').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        chars.next();
                        while let Some(c) = chars.next() {
                            if c == '\u{7}' || (c == '\u{1b}' && chars.peek() == Some(&'\\')) {
                                break;
                            }
                        }
                    }
                    _ => {
                        chars.next();
                    }
                }
            }
            '\n' | '\t' | '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => out.push(' '),
            c if c.is_control() => {}
            // bidirectional overrides and isolates reorder what the terminal shows
            '\u{200e}'
            | '\u{200f}'
            | '\u{061c}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => {}
            c => out.push(c),
        }
    }
    out
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
    fn short_secrets_are_scrubbed_as_whole_words() {
        let mut s = Scrubber::new();
        s.add_secret("a");
        assert_eq!(s.scrub("a cat"), "(redacted) cat");
        s.add_secret("pw12");
        assert_eq!(
            s.scrub("pw12 pw123 x=pw12"),
            "(redacted) pw123 x=(redacted)"
        );
    }

    #[test]
    fn every_encoding_of_a_secret_is_scrubbed() {
        let mut s = Scrubber::new();
        s.add_secret("ab+c/d\\e\"f");
        for text in [
            "ab+c/d\\e\"f",
            "ab%2Bc%2Fd%5Ce%22f",
            "ab%2bc%2fd%5ce%22f",
            "ab+c/d\\\\e\\\"f",
        ] {
            assert_eq!(s.scrub(text), REDACTED, "{text}");
        }
    }

    #[test]
    fn url_userinfo_is_hidden_anywhere() {
        assert_eq!(
            redact_url_userinfo("cannot reach http://u:p%2F@sts.local:1/ now"),
            "cannot reach http://(redacted)@sts.local:1/ now"
        );
        assert_eq!(
            redact_url_userinfo("mongodb://AKIA:a/b?c@h/x"),
            "mongodb://(redacted)@h/x"
        );
        let masked = "mongodb://ASIA…WXYZ:(redacted)@h/";
        assert_eq!(redact_url_userinfo(masked), masked);
        assert_eq!(redact_url_userinfo("http://h/?a=b@c"), "http://h/?a=b@c");
    }

    #[test]
    fn token_like_runs_are_hidden() {
        let t = redact_tokens(
            "bad key AKIAIOSFODNN7EXAMPLE secret wJalrXUtnFEMI/K7MDENG/bPxRfiCY1 exit 2",
        );
        assert_eq!(t, "bad key AKIA…MPLE secret (redacted) exit 2");
    }

    #[test]
    fn secrets_are_found_woven_with_controls_in_base64_and_never_cut() {
        use base64::Engine;
        let token = "IQoJb3JpZ2luX2VjEXAMPLETOKENvalue1234567890";
        let mut s = Scrubber::new();
        s.add_secret(token);
        // interleaved with BEL and an escape sequence
        let woven = format!(
            "tok {}\u{7}{}\u{1b}[m{} end",
            &token[..5],
            &token[5..20],
            &token[20..]
        );
        assert!(!s.clean(&woven).contains("IQoJb"), "{}", s.clean(&woven));
        // inside the base64 of a larger payload, at every alignment
        for prefix in ["", "a", "ab", "abc"] {
            let payload = format!("{prefix}{{\"t\":\"{token}\"}}");
            let b64 = base64::engine::general_purpose::STANDARD.encode(payload.as_bytes());
            let cleaned = s.clean(&format!("payload {b64}"));
            let inner = &base64::engine::general_purpose::STANDARD.encode(token.as_bytes())[4..20];
            assert!(cleaned.contains(REDACTED), "{prefix:?}: {cleaned}");
            assert!(
                !cleaned.contains(inner) || !b64.contains(inner),
                "{cleaned}"
            );
        }
        // a long text is cut after scrubbing: the secret at the boundary is gone whole
        let long = format!("{}{token}", "x".repeat(MAX_TEXT - 5));
        let cleaned = s.clean(&long);
        assert!(
            !cleaned.contains("IQoJb"),
            "the cut left the secret's start"
        );
    }

    #[test]
    fn terminal_text_loses_escapes_and_controls() {
        assert_eq!(
            sanitize_terminal("ok\u{1b}[2J\u{1b}]0;title\u{7}\u{8}x\ny"),
            "okx y"
        );
        // a right-to-left override and the Unicode line separators, as an errmsg may carry them
        assert_eq!(
            sanitize_terminal("user \u{202e}txt.exe\u{2028}next\u{2066}x\u{2069}"),
            "user txt.exe nextx"
        );
    }
}
