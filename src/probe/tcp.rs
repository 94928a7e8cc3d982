//! The tcp stage: every host, concurrently, refused told apart from timed out.

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
        return Err(if failures.is_empty() {
            Diagnosis::new(Kind::Internal, "no host was checked", "report this")
        } else {
            failures.remove(0)
        });
    }
    let warnings = failures
        .into_iter()
        .map(|d| format!("{} ({})", d.cause, d.kind.name()))
        .collect::<Vec<_>>();
    Ok(Passed::new(values, details.join("; ")).warn(warnings))
}

pub(crate) use crate::timing::ms_since as ms;

pub(crate) async fn connect(h: &HostPort, budget: Duration) -> Result<TcpStream, Diagnosis> {
    connect_bare(h, budget)
        .await
        .map_err(|d| outside_private_network(h, d))
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

async fn connect_bare(h: &HostPort, budget: Duration) -> Result<TcpStream, Diagnosis> {
    let started = Instant::now();
    match tokio::time::timeout(budget, TcpStream::connect((h.host.as_str(), h.port))).await {
        Err(_) => Err(Diagnosis::new(
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
        )),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(Diagnosis::new(
            Kind::TcpRefused,
            format!(
                "{h} refused the connection: nothing listens on port {}",
                h.port
            ),
            "check the port; an Atlas cluster that is paused or deleted refuses connections too",
        )),
        Ok(Err(e)) => Err(Diagnosis::new(
            Kind::TcpUnreachable,
            format!("cannot connect to {h}: {e}"),
            "check the network route to the host",
        )),
        Ok(Ok(s)) => {
            // the hello after the TLS handshake is not held back waiting for an ACK (the
            // drivers do the same)
            let _ = s.set_nodelay(true);
            Ok(s)
        }
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
        let s = connect(&h, budget).await?;
        let took = ms_f64(started);
        let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let mut facts = HostFacts::new(h.to_string());
        facts.address = Some(peer.clone()).filter(|p| !p.is_empty());
        facts.connect_ms = Some(took);
        Ok((format!("{h} ({peer}) in {} ms", took.round()), (s, facts)))
    })
    .await?;
    let (value, rest) = passed.split();
    let (streams, hosts): (Vec<_>, Vec<_>) =
        value.into_iter().map(|(h, (s, f))| ((h, s), f)).unzip();
    let facts = Facts {
        hosts,
        ..Default::default()
    };
    let Passed {
        detail, warnings, ..
    } = rest;
    Ok(Passed::new(streams, detail)
        .warn(warnings)
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
}
