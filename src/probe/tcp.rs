//! The tcp stage: every host, concurrently, refused told apart from timed out.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::HostPort;
use crate::diagnosis::{Diagnosis, Kind};
use crate::report::{Facts, HostFacts};
use crate::runner::Passed;

/// Once one host passed, how long the others still get before they are reported as not
/// answering (a dead member must not eat the time the driver needs).
use crate::timing::STRAGGLER_GRACE;

/// A host's detail and what its check gave, or why it failed.
type HostOutcome<T> = Result<(String, T), Diagnosis>;

/// Runs `check` on every host concurrently; fails when every host fails, warns when some do.
/// Hands on what the check gave for each host that passed.
pub(crate) async fn each_host<F, Fut, T>(
    hosts: &[HostPort],
    check: F,
) -> Result<Passed<Vec<(HostPort, T)>>, Diagnosis>
where
    F: Fn(HostPort) -> Fut,
    Fut: std::future::Future<Output = Result<(String, T), Diagnosis>> + Send + 'static,
    T: Send + 'static,
{
    let mut set = JoinSet::new();
    for (i, h) in hosts.iter().enumerate() {
        let fut = check(h.clone());
        set.spawn(async move { (i, fut.await) });
    }
    let mut results: Vec<(usize, HostOutcome<T>)> = Vec::new();
    let mut grace_until: Option<tokio::time::Instant> = None;
    loop {
        let next = match grace_until {
            None => set.join_next().await,
            Some(until) => match tokio::time::timeout_at(until, set.join_next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
        };
        let Some(r) = next else { break };
        if let Ok(r) = r {
            if r.1.is_ok() && grace_until.is_none() {
                grace_until = Some(tokio::time::Instant::now() + STRAGGLER_GRACE);
            }
            results.push(r);
        }
    }
    // Hosts still under way after the grace: reported, not waited for.
    let done: Vec<usize> = results.iter().map(|(i, _)| *i).collect();
    set.abort_all();
    for (i, h) in hosts.iter().enumerate() {
        if !done.contains(&i) {
            results.push((
                i,
                Err(Diagnosis::new(
                    Kind::TcpTimeout,
                    format!(
                        "{h} had not answered {} s after another member did",
                        STRAGGLER_GRACE.as_secs()
                    ),
                    "check that member",
                )),
            ));
        }
    }
    results.sort_by_key(|(i, _)| *i);
    let (ok, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(|(_, r)| r.is_ok());
    let mut details = Vec::new();
    let mut values = Vec::new();
    for (i, r) in ok {
        if let Ok((detail, value)) = r {
            details.push(detail);
            values.push((hosts[i].clone(), value));
        }
    }
    let mut failures: Vec<Diagnosis> = failed.into_iter().filter_map(|(_, r)| r.err()).collect();
    if details.is_empty() {
        if failures.is_empty() {
            return Err(Diagnosis::new(
                Kind::Internal,
                "no host was checked",
                "report this",
            ));
        }
        // the first host's diagnosis, with what the others gave
        let first = failures.remove(0);
        if failures.is_empty() {
            return Err(first);
        }
        let others: Vec<String> = failures.iter().map(|d| d.kind.name()).collect();
        return Err(Diagnosis {
            cause: format!(
                "{}; the other {} host{} failed too ({})",
                first.cause,
                others.len(),
                if others.len() == 1 { "" } else { "s" },
                others.join(", ")
            ),
            ..first
        });
    }
    let warnings = failures
        .into_iter()
        .map(|d| format!("{} ({})", d.cause, d.kind.name()))
        .collect::<Vec<_>>();
    Ok(Passed::new(values, details.join("; ")).warn(warnings))
}

pub(crate) use crate::timing::ms_since as ms;

/// A connection, and how it was reached: the addresses the system resolver gave (in its order,
/// the order the driver tries them) and those tried.
pub(crate) struct Reached {
    pub stream: TcpStream,
    pub resolved: Vec<IpAddr>,
    pub tried: Vec<SocketAddr>,
}

impl Reached {
    /// The addresses, their families and those tried, as facts.
    fn record(&self, facts: &mut HostFacts) {
        facts.addresses = self.resolved.iter().map(|a| a.to_string()).collect();
        facts.families = families(&self.resolved);
        facts.tried = self.tried.iter().map(|a| a.to_string()).collect();
    }
}

/// `ipv4`, `ipv6`: the families among `addrs`, in that order.
pub(crate) fn families(addrs: &[IpAddr]) -> Vec<String> {
    let mut out = Vec::new();
    if addrs.iter().any(IpAddr::is_ipv4) {
        out.push("ipv4".to_string());
    }
    if addrs.iter().any(IpAddr::is_ipv6) {
        out.push("ipv6".to_string());
    }
    out
}

pub(crate) async fn connect(h: &HostPort, budget: Duration) -> Result<Reached, Diagnosis> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + budget;
    let resolved: Vec<IpAddr> =
        match h.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let lookup = tokio::net::lookup_host((h.host.as_str(), h.port));
                match tokio::time::timeout_at(deadline, lookup).await {
                    Err(_) => {
                        return Err(Diagnosis::new(
                            Kind::DnsTimeout,
                            format!(
                                "the system resolver did not resolve {} within {} ms",
                                h.host,
                                ms(started)
                            ),
                            "check /etc/resolv.conf: the driver resolves member names through the \
                         system resolver too",
                        ))
                    }
                    Ok(Err(e)) => return Err(Diagnosis::new(
                        Kind::DnsNameNotFound,
                        format!("the system resolver cannot resolve {}: {e}", h.host),
                        "check the host name; the driver resolves it through the system resolver \
                         too",
                    )),
                    Ok(Ok(addrs)) => {
                        let mut out: Vec<IpAddr> = Vec::new();
                        for a in addrs {
                            if !out.contains(&a.ip()) {
                                out.push(a.ip());
                            }
                        }
                        out
                    }
                }
            }
        };
    let mut tried = Vec::new();
    let mut last = None;
    for ip in &resolved {
        let addr = SocketAddr::new(*ip, h.port);
        tried.push(addr);
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => {
                last = None;
                break;
            }
            Ok(Ok(stream)) => {
                // the hello after the TLS handshake is not held back waiting for an ACK (the
                // drivers do the same)
                let _ = stream.set_nodelay(true);
                return Ok(Reached {
                    stream,
                    resolved,
                    tried,
                });
            }
            Ok(Err(e)) => last = Some(e),
        }
    }
    let d = connect_failure(h, last.as_ref(), started);
    let d = outside_private_network(h, d);
    let d = match public_name_private_addresses(h, &resolved) {
        Some(finding) => Diagnosis {
            cause: format!("{}; {finding}", d.cause),
            hint: format!(
                "check /etc/hosts and the DNS this machine uses: from the internet the name \
                 resolves to public addresses; inside a peered network or behind a private \
                 endpoint, use that network's own string (…-pri… or …-pl-0…); {}",
                d.hint
            ),
            ..d
        },
        None => d,
    };
    Err(address_families(
        &resolved,
        &tried,
        last.as_ref(),
        d,
        egress_routes(),
    ))
}

/// A private network's host name that cannot be reached: this machine is outside that network.
fn outside_private_network(h: &HostPort, d: Diagnosis) -> Diagnosis {
    match (d.kind, h.private_network()) {
        (Kind::TcpTimeout | Kind::TcpUnreachable, Some(network)) => Diagnosis {
            cause: format!(
                "{}; {} is a {network} host name, reachable only from inside the network it \
                 connects Atlas to",
                d.cause, h.host
            ),
            hint: format!(
                "run this from inside that VPC (or a peered network, or over its VPN or Direct \
                 Connect), or use the cluster's public connection string; {network} strings are \
                 for applications in the connected network"
            ),
            ..d
        },
        _ => d,
    }
}

/// The families this machine has a route for, asked of the kernel without sending anything
/// (connecting a UDP socket only picks a route): IPv4, IPv6.
fn egress_routes() -> (bool, bool) {
    let route = |bind: &str, to: &str| {
        std::net::UdpSocket::bind(bind)
            .and_then(|s| s.connect(to))
            .is_ok()
    };
    (
        route("0.0.0.0:0", "192.0.2.1:53"),
        route("[::]:0", "[2001:db8::1]:53"),
    )
}

/// Which families were resolved and tried; a host whose every address is of a family this
/// machine has no route for (an IPv6-only network meeting IPv4-only addresses) is named as such.
fn address_families(
    resolved: &[IpAddr],
    tried: &[SocketAddr],
    last: Option<&std::io::Error>,
    d: Diagnosis,
    (v4_route, v6_route): (bool, bool),
) -> Diagnosis {
    let fams = families(resolved);
    let shown: Vec<String> = resolved.iter().map(|a| a.to_string()).collect();
    let tried: Vec<String> = tried.iter().map(|a| a.to_string()).collect();
    let unreachable = last.is_some_and(|e| {
        matches!(
            e.kind(),
            std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::HostUnreachable
        )
    });
    let only = match fams.as_slice() {
        [one] => Some(one.as_str()),
        _ => None,
    };
    let facts = format!(
        "resolved to {} ({}); tried {}",
        shown.join(", "),
        fams.join(", "),
        if tried.is_empty() {
            "none".to_string()
        } else {
            tried.join(", ")
        }
    );
    match only {
        Some("ipv4") if unreachable && !v4_route && v6_route => Diagnosis::new(
            Kind::TcpUnreachable,
            format!(
                "{}: this machine has an IPv6 route but none for IPv4, and the host has IPv4 \
                 addresses only ({facts}): an IPv6-only network cannot reach it",
                d.cause
            ),
            "run from a network with IPv4 egress (dual stack), or give this one NAT64 with a \
             DNS64 resolver; Lambda and containers in IPv6-only subnets need the same",
        ),
        Some("ipv6") if unreachable && v4_route && !v6_route => Diagnosis::new(
            Kind::TcpUnreachable,
            format!(
                "{}: this machine has an IPv4 route but none for IPv6, and the host has IPv6 \
                 addresses only ({facts})",
                d.cause
            ),
            "run from a network with IPv6 egress, or use a host name with IPv4 addresses",
        ),
        _ => Diagnosis {
            cause: format!("{} ({facts})", d.cause),
            ..d
        },
    }
}

/// An Atlas public host name that this machine's resolver gives private addresses only: the
/// opposite of a private network's name seen from outside it.
fn public_name_private_addresses(h: &HostPort, resolved: &[IpAddr]) -> Option<String> {
    if !h.is_atlas() || h.private_network().is_some() || resolved.is_empty() {
        return None;
    }
    if !resolved.iter().all(is_private) {
        return None;
    }
    let shown: Vec<String> = resolved.iter().map(|a| a.to_string()).collect();
    Some(format!(
        "{} is a public Atlas host name, but this machine's resolver gives it the private \
         address{} {} (a peered network's or a VPN's split-horizon DNS, or a hosts-file entry)",
        h.host,
        if shown.len() > 1 { "es" } else { "" },
        shown.join(", ")
    ))
}

/// Private ranges: RFC 1918, shared address space (RFC 6598), IPv6 unique local (fc00::/7).
fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

fn connect_failure(h: &HostPort, last: Option<&std::io::Error>, started: Instant) -> Diagnosis {
    match last {
        None => Diagnosis::new(
            Kind::TcpTimeout,
            format!(
                "{h} did not accept a connection within {} ms: packets are dropped on the way",
                ms(started)
            ),
            if h.is_atlas() {
                "outbound traffic to port 27017 is blocked here (firewall, security group, corporate \
                 network): allow it, or run from a network that can reach Atlas"
            } else {
                "check the host, the port and any firewall between"
            },
        ),
        Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Diagnosis::new(
            Kind::TcpRefused,
            format!(
                "{h} refused the connection: nothing listens on port {}",
                h.port
            ),
            "check the port; an Atlas cluster that is paused or deleted refuses connections too",
        ),
        Some(e) => Diagnosis::new(
            Kind::TcpUnreachable,
            format!("cannot connect to {h}: {e}"),
            "check the network route to the host",
        ),
    }
}

/// Connects to every host; the connections are handed on to the tls stage (none is opened only
/// to be closed).
pub(crate) async fn tcp_stage(
    hosts: &[HostPort],
    budget: Duration,
) -> Result<Passed<Vec<(HostPort, TcpStream)>>, Diagnosis> {
    let passed = each_host(hosts, move |h| async move {
        let started = Instant::now();
        let reached = connect(&h, budget).await?;
        let took = ms_f64(started);
        let peer = reached
            .stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let mut facts = HostFacts::new(h.to_string());
        reached.record(&mut facts);
        let finding = public_name_private_addresses(&h, &reached.resolved);
        facts.address = Some(peer.clone()).filter(|p| !p.is_empty());
        facts.connect_ms = Some(took);
        let detail = format!("{h} ({peer}) in {} ms", took.round());
        Ok((detail, (reached.stream, facts, finding)))
    })
    .await?;
    let (value, rest) = passed.split();
    let mut findings = Vec::new();
    let (streams, hosts): (Vec<_>, Vec<_>) = value
        .into_iter()
        .map(|(h, (s, f, finding))| {
            findings.extend(finding.map(|f| {
                format!(
                    "{f}: this machine reaches the cluster through a private network, where \
                     Atlas's access list must hold the network's own range (peering); an \
                     application elsewhere resolves public addresses"
                )
            }));
            ((h, s), f)
        })
        .unzip();
    let facts = Facts {
        hosts,
        ..Default::default()
    };
    let Passed {
        detail, warnings, ..
    } = rest;
    Ok(Passed::new(streams, detail)
        .warn(warnings)
        .warn(findings)
        .with_facts(facts))
}

/// Milliseconds since `since`, to the tenth: the facts' figures.
pub(crate) fn ms_f64(since: Instant) -> f64 {
    crate::timing::millis(since.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_private_endpoint_says_this_machine_is_outside_its_network() {
        let h = HostPort {
            host: "cluster0-pl-0.ab12c.mongodb.net".into(),
            port: 27017,
        };
        let timeout = Diagnosis::new(Kind::TcpTimeout, "did not accept", "h");
        let d = outside_private_network(&h, timeout.clone());
        assert!(d.cause.contains("private endpoint host name"), "{d}");
        assert!(d.hint.contains("inside that VPC"), "{d}");
        // a refusal is an answer: something listens, the network is reached
        let refused = Diagnosis::new(Kind::TcpRefused, "refused", "h");
        assert_eq!(outside_private_network(&h, refused.clone()), refused);
        let public = HostPort {
            host: "cluster0.ab12c.mongodb.net".into(),
            port: 27017,
        };
        assert_eq!(outside_private_network(&public, timeout.clone()), timeout);
    }

    #[test]
    fn an_ipv6_only_network_meeting_ipv4_only_addresses_is_named() {
        let v4: Vec<IpAddr> = vec!["52.1.2.3".parse().expect("ip")];
        let tried = vec![SocketAddr::new(v4[0], 27017)];
        let unreachable = std::io::Error::from(std::io::ErrorKind::NetworkUnreachable);
        let d = || Diagnosis::new(Kind::TcpUnreachable, "cannot connect", "h");
        let only_v6 = address_families(&v4, &tried, Some(&unreachable), d(), (false, true));
        assert!(
            only_v6.cause.contains("IPv6 route but none for IPv4"),
            "{only_v6}"
        );
        assert!(only_v6.cause.contains("52.1.2.3 (ipv4)"), "{only_v6}");
        assert!(only_v6.hint.contains("NAT64"), "{only_v6}");
        // with an IPv4 route too, it is another unreachable: the families are only shown
        let both = address_families(&v4, &tried, Some(&unreachable), d(), (true, true));
        assert!(!both.cause.contains("IPv6 route"), "{both}");
        assert!(both.cause.contains("tried 52.1.2.3:27017"), "{both}");
        // a refusal is an answer, whatever the routes
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let r = address_families(&v4, &tried, Some(&refused), d(), (false, true));
        assert!(!r.cause.contains("IPv6 route"), "{r}");
        let v6: Vec<IpAddr> = vec!["2600:1f18::1".parse().expect("ip")];
        let only_v4 = address_families(&v6, &[], Some(&unreachable), d(), (true, false));
        assert!(
            only_v4.cause.contains("IPv4 route but none for IPv6"),
            "{only_v4}"
        );
    }

    #[test]
    fn a_public_atlas_name_with_private_addresses_is_named() {
        let h = |host: &str| HostPort {
            host: host.into(),
            port: 27017,
        };
        let private: Vec<IpAddr> = vec!["10.1.2.3".parse().expect("ip")];
        let public: Vec<IpAddr> = vec!["52.1.2.3".parse().expect("ip")];
        let public_name = h("cluster0-shard-00-00.ab12c.mongodb.net");
        let found = public_name_private_addresses(&public_name, &private).expect("finding");
        assert!(found.contains("private address 10.1.2.3"), "{found}");
        assert_eq!(public_name_private_addresses(&public_name, &public), None);
        // a private endpoint's name is expected to resolve privately; other hosts are not Atlas
        let pl = h("cluster0-pl-0.ab12c.mongodb.net");
        assert_eq!(public_name_private_addresses(&pl, &private), None);
        assert_eq!(
            public_name_private_addresses(&h("db.internal"), &private),
            None
        );
        for (ip, private) in [
            ("10.0.0.1", true),
            ("172.16.5.4", true),
            ("192.168.1.1", true),
            ("100.64.0.1", true),
            ("100.128.0.1", false),
            ("8.8.8.8", false),
            ("127.0.0.1", false),
            ("fd12::1", true),
            ("2001:db8::1", false),
        ] {
            assert_eq!(is_private(&ip.parse().expect("ip")), private, "{ip}");
        }
    }
}
