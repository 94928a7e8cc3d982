//! The syntax of a connection string, by the connection-string specification
//! (`source/connection-string/connection-string-spec.md` in mongodb/specifications): scheme,
//! userinfo, hosts (names, IPv4, IP literals, unix domain sockets), database and options.
//!
//! What the specification leaves open is decided the way its reference implementation (pymongo's
//! `uri_parser`) decides it, with one exception said below: a raw `/` inside an option value.

use super::{decode, split_pair, ParsedUri};
use crate::diagnosis::{Diagnosis, Kind};

/// What a host identifier names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    Name,
    Ipv4,
    /// `[…]`: an IPv6 address
    IpLiteral,
    /// a percent-encoded path ending in `.sock`
    Unix,
}

/// One host identifier, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub kind: HostKind,
    /// The host without brackets or port (names lower-cased, as DNS compares them).
    pub host: String,
    pub port: Option<u16>,
}

impl Host {
    /// `host:port`, `[v6]:port`, or the socket path.
    pub fn shown(&self) -> String {
        let host = match self.kind {
            HostKind::IpLiteral => format!("[{}]", self.host),
            _ => self.host.clone(),
        };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }
}

/// The most hosts a string or an SRV answer may name: each is checked at once, over TCP and TLS.
pub const MAX_HOSTS: usize = 100;

const HINT: &str = "a connection string looks like mongodb+srv://cluster0.ab12c.mongodb.net/test?\
                    authSource=%24external&authMechanism=MONGODB-AWS; `atlas-iam uri --cluster \
                    HOST` builds one";
const ENCODE_HINT: &str = "percent-encode the username and password (@ is %40, : is %3A, / is \
                           %2F, % is %25), or better, take the credentials out of the string";

fn bad(why: impl Into<String>) -> Diagnosis {
    Diagnosis::new(Kind::InvalidUri, why.into(), HINT)
}

fn bad_userinfo(why: &str) -> Diagnosis {
    Diagnosis::new(
        Kind::InvalidUri,
        format!(
            "the username or password {why}: the connection-string specification requires \
             drivers to refuse it"
        ),
        ENCODE_HINT,
    )
}

pub(super) fn parse(uri: &str) -> Result<ParsedUri, Diagnosis> {
    let (srv, rest) = if let Some(r) = uri.strip_prefix("mongodb://") {
        (false, r)
    } else if let Some(r) = uri.strip_prefix("mongodb+srv://") {
        (true, r)
    } else {
        return Err(match uri.split_once("://") {
            None => bad("the connection string has no scheme (mongodb:// or mongodb+srv://)"),
            Some((scheme, _)) => {
                let shown: String = scheme.chars().take(20).collect();
                bad(format!(
                    "unsupported scheme `{shown}`: use mongodb:// or mongodb+srv://"
                ))
            }
        });
    };
    // Userinfo may hold anything; only a string without `@` has nothing secret in its hosts.
    let quotable = !uri.contains('@');

    // Where the host section ends. The specification splits at the first `/`; pymongo, its
    // reference, splits at a `?` when there is no `/`. A `?` that comes before the first `/`
    // ends the hosts too when no `@` lies between them: the `/` is then inside an option value
    // (`?tlsCAFile=/etc/ca.pem`), where pymongo would refuse the string and others read it.
    let slash = rest.find('/');
    let question = rest.find('?');
    let (host_section, db, query) = match (slash, question) {
        (Some(s), Some(q)) if q < s && !rest[q..s].contains('@') => {
            (&rest[..q], None, Some(&rest[q + 1..]))
        }
        (Some(s), _) => {
            let path = &rest[s + 1..];
            match path.split_once('?') {
                Some((d, o)) => (&rest[..s], Some(d), Some(o)),
                None => (&rest[..s], Some(path), None),
            }
        }
        (None, Some(q)) => (&rest[..q], None, Some(&rest[q + 1..])),
        (None, None) => (rest, None, None),
    };

    let (userinfo, hosts_text) = match host_section.rfind('@') {
        Some(at) => (Some(&host_section[..at]), &host_section[at + 1..]),
        None => (None, host_section),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            if u.contains('@') {
                return Err(bad_userinfo("has an unescaped `@`"));
            }
            if u.matches(':').count() > 1 {
                return Err(bad_userinfo("has an unescaped `:`"));
            }
            if bad_percent(u) {
                return Err(bad_userinfo(
                    "has a `%` that is not followed by two hex digits",
                ));
            }
            match u.split_once(':') {
                Some((name, pw)) => (Some(name.to_string()), Some(pw.to_string())),
                None => (Some(u.to_string()), None),
            }
        }
    };
    // A `/` in the userinfo ends the host section early: what follows it then holds the `@`.
    if let Some(d) = db {
        if d.contains('@') {
            return Err(bad_userinfo(
                "has an unescaped `/` (or the hosts are followed by an `@`)",
            ));
        }
    }

    if hosts_text.is_empty() {
        return Err(bad("the connection string has no host"));
    }
    let count = hosts_text.split(',').count();
    if count > MAX_HOSTS {
        return Err(bad(format!(
            "the connection string names {count} hosts; atlas-iam checks at most {MAX_HOSTS} \
             (a replica set has at most 50 members)"
        )));
    }
    let hosts: Vec<String> = hosts_text.split(',').map(str::to_string).collect();
    let mut seeds = Vec::with_capacity(hosts.len());
    for (i, h) in hosts.iter().enumerate() {
        let which = if quotable {
            format!("`{h}`")
        } else {
            format!("number {}", i + 1)
        };
        seeds.push(host(h).map_err(|why| bad(format!("host {which} {why}")))?);
    }

    let db = match db {
        Some(d) if !d.is_empty() => {
            let decoded = decode(d);
            if let Some(c) = decoded
                .chars()
                .find(|c| matches!(c, '/' | '\\' | ' ' | '"' | '$'))
            {
                let why = format!(
                    "the database in the string has a `{c}`, which database names cannot hold"
                );
                return Err(Diagnosis::new(
                    Kind::InvalidUri,
                    why,
                    if c == '$' {
                        "the path after the hosts is the default database; IAM users are found \
                         with the option authSource=%24external"
                    } else {
                        HINT
                    },
                ));
            }
            Some(d.to_string())
        }
        _ => None,
    };

    let mut pairs = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        if !pair.contains('=') {
            let key: String = decode(pair).chars().take(40).collect();
            return Err(bad(format!(
                "the option `{key}` has no `=`: options are key=value pairs joined by &"
            )));
        }
        pairs.push(split_pair(pair));
    }

    Ok(ParsedUri {
        srv,
        user,
        password,
        hosts,
        seeds,
        db,
        query: pairs,
    })
}

/// A `%` that does not start a two-digit escape.
pub(crate) fn bad_percent(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c == b'%'
            && !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

fn port(p: &str) -> Result<u16, String> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err("has a port that is not a number".into());
    }
    p.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| "has a port outside 1..65535".into())
}

/// One host identifier: `[v6]:port`, a percent-encoded socket path, or `name[:port]`.
fn host(raw: &str) -> Result<Host, String> {
    if raw.is_empty() {
        return Err("is empty".into());
    }
    if let Some(inner) = raw.strip_prefix('[') {
        let (addr, after) = inner
            .split_once(']')
            .ok_or_else(|| "opens a `[` it does not close".to_string())?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("is not an IPv6 address between [ ]".into());
        }
        let port = match after {
            "" => None,
            a => Some(port(a.strip_prefix(':').ok_or_else(|| {
                "has text after `]` that is not :port".to_string()
            })?)?),
        };
        return Ok(Host {
            kind: HostKind::IpLiteral,
            host: addr.to_ascii_lowercase(),
            port,
        });
    }
    let decoded = decode(raw);
    if decoded.contains('/') {
        if !decoded.ends_with(".sock") {
            return Err("is a path, and a unix domain socket's path must end in .sock".into());
        }
        return Ok(Host {
            kind: HostKind::Unix,
            host: decoded,
            port: None,
        });
    }
    let (name, p) = match decoded.rsplit_once(':') {
        Some((n, p)) => (n.to_string(), Some(port(p)?)),
        None => (decoded, None),
    };
    if name.is_empty() {
        return Err("has no name before its port".into());
    }
    if name.contains(':') {
        return Err("has more than one `:` (an IPv6 address goes between [ ])".into());
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "@?#[]".contains(c))
    {
        return Err("has a character no host name can hold".into());
    }
    let kind = if name.parse::<std::net::Ipv4Addr>().is_ok() {
        HostKind::Ipv4
    } else {
        HostKind::Name
    };
    Ok(Host {
        kind,
        host: name.to_lowercase(),
        port: p,
    })
}
