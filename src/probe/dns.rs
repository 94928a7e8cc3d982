//! The dns stage. mongodb+srv: SRV and TXT through hickory-resolver (the system configuration,
//! or --dns-server), targets outside the cluster's domain refused, TXT options checked. Other
//! strings: each host name resolved by the system resolver, as the driver will.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::Resolver;

use super::{Destination, HostPort};
use crate::diagnosis::{Diagnosis, Kind};
use crate::report::{Facts, HostFacts};
use crate::runner::Passed;

/// What the dns stage hands on: the hosts to connect to and the options from TXT.
#[derive(Clone, Debug)]
pub struct Seedlist {
    pub hosts: Vec<HostPort>,
    pub txt_options: Vec<(String, String)>,
}

/// TXT options the seedlist discovery specification allows.
const TXT_ALLOWED: [&str; 3] = ["authsource", "replicaset", "loadbalanced"];

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    NxDomain,
    NoRecords,
    Code(ResponseCode),
    Timeout,
    Other(String),
}

pub fn outcome(e: &NetError) -> Outcome {
    if e.is_nx_domain() {
        return Outcome::NxDomain;
    }
    match e {
        NetError::Timeout => Outcome::Timeout,
        NetError::Dns(DnsError::ResponseCode(rc)) => Outcome::Code(*rc),
        NetError::Dns(DnsError::NoRecordsFound(nr))
            if nr.response_code == ResponseCode::NoError =>
        {
            Outcome::NoRecords
        }
        NetError::Dns(DnsError::NoRecordsFound(nr)) => Outcome::Code(nr.response_code),
        other => Outcome::Other(other.to_string()),
    }
}

fn resolver(
    server: Option<SocketAddr>,
    budget: Duration,
) -> Result<Resolver<TokioRuntimeProvider>, Diagnosis> {
    let mut opts = ResolverOpts::default();
    opts.timeout = (budget / 2).clamp(Duration::from_millis(200), Duration::from_secs(5));
    opts.attempts = 2;
    let builder = match server {
        Some(addr) => {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
        }
        None => Resolver::builder_tokio().map_err(|e| {
            Diagnosis::new(
                Kind::DnsResolverFailed,
                format!("cannot read the system's DNS configuration: {e}"),
                "give a DNS server with --dns-server IP (e.g. 1.1.1.1)",
            )
        })?,
    };
    builder.with_options(opts).build().map_err(|e| {
        Diagnosis::new(
            Kind::DnsResolverFailed,
            format!("cannot set up the DNS resolver: {e}"),
            "give --dns-server IP",
        )
    })
}

fn which(server: Option<SocketAddr>) -> String {
    match server {
        Some(s) => format!("the DNS server {s}"),
        None => match system_nameservers().as_slice() {
            [] => "the system resolver".to_string(),
            ns => format!(
                "the system resolver ({} from /etc/resolv.conf)",
                ns.join(", ")
            ),
        },
    }
}

/// The nameservers asked: `--dns-server`, or the system's.
fn nameservers(server: Option<SocketAddr>) -> Vec<String> {
    match server {
        Some(s) => vec![s.to_string()],
        None => system_nameservers(),
    }
}

/// The `nameserver` lines of /etc/resolv.conf (read only as a regular file, capped).
fn system_nameservers() -> Vec<String> {
    let Ok(text) =
        crate::files::read_regular_text(std::path::Path::new("/etc/resolv.conf"), 64 << 10)
    else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .take(8)
        .collect()
}

/// The parent domain that SRV targets must share (the srv host without its first label).
pub fn parent_domain(srv_host: &str) -> String {
    let h = srv_host.trim_end_matches('.').to_ascii_lowercase();
    if h.split('.').count() < 3 {
        return h;
    }
    h.split_once('.').map(|(_, d)| d.to_string()).unwrap_or(h)
}

pub fn parse_txt(txt: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in txt.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not key=value"))?;
        if !TXT_ALLOWED.contains(&k.to_ascii_lowercase().as_str()) {
            return Err(format!("option `{k}` is not allowed in a TXT record"));
        }
        out.push((k.to_string(), crate::uri::decode(v)));
    }
    Ok(out)
}

pub async fn stage(
    target: &Destination,
    server: Option<SocketAddr>,
    budget: Duration,
) -> Result<Passed<Seedlist>, Diagnosis> {
    let via = which(server);
    let lookup = async {
        match &target.srv {
            Some(srv) => srv_stage(srv, target, server, budget).await,
            None => hosts_stage(&target.hosts).await,
        }
    };
    // The stage's own bound, so that a silent resolver is named as such.
    tokio::time::timeout(budget, lookup)
        .await
        .unwrap_or_else(|_| {
            let what = match &target.srv {
                Some(srv) => format!("the SRV query for _{}._tcp.{srv}", target.srv_service),
                None => "the host names".to_string(),
            };
            Err(Diagnosis::new(
                Kind::DnsTimeout,
                format!(
                    "{via} did not answer {what} within {} ms",
                    budget.as_millis()
                ),
                "give a resolver that answers SRV queries with --dns-server IP (e.g. 1.1.1.1), or \
             use the cluster's standard (mongodb://) connection string from Atlas",
            ))
        })
}

async fn hosts_stage(hosts: &[HostPort]) -> Result<Passed<Seedlist>, Diagnosis> {
    let mut details = Vec::new();
    let mut facts = Facts::default();
    for h in hosts {
        let mut host = HostFacts::new(h.to_string());
        if h.host.parse::<std::net::IpAddr>().is_ok() {
            details.push(format!("{} (an address)", h.host));
            facts.hosts.push(host);
            continue;
        }
        match tokio::net::lookup_host((h.host.as_str(), h.port)).await {
            Ok(addrs) => {
                let mut ips: Vec<std::net::IpAddr> = Vec::new();
                for a in addrs {
                    if !ips.contains(&a.ip()) {
                        ips.push(a.ip());
                    }
                }
                let addrs: Vec<String> = ips.iter().map(|a| a.to_string()).collect();
                details.push(format!("{} -> {}", h.host, addrs.join(", ")));
                host.addresses = addrs;
                host.families = super::tcp::families(&ips);
                facts.hosts.push(host);
            }
            Err(e) => {
                return Err(Diagnosis::new(
                    Kind::DnsNameNotFound,
                    format!("the system resolver cannot resolve {}: {e}", h.host),
                    "check the host name in the connection string",
                ))
            }
        }
    }
    Ok(Passed::new(
        Seedlist {
            hosts: hosts.to_vec(),
            txt_options: Vec::new(),
        },
        details.join("; "),
    )
    .with_facts(facts))
}

fn txt_timeout(via: &str, srv_name: &str, srv: &str, budget: Duration) -> Diagnosis {
    Diagnosis::new(
        Kind::DnsTimeout,
        format!(
            "{via} answered the SRV query for {srv_name} but not the TXT query for {srv} (within \
             {} ms): the drivers need both and fail here too (Node: `queryTxt ETIMEOUT`)",
            budget.as_millis()
        ),
        "give a resolver that answers TXT queries with --dns-server IP (e.g. 1.1.1.1), or use \
         the cluster's standard (mongodb://) connection string, which needs no TXT",
    )
}

async fn srv_stage(
    srv: &str,
    target: &Destination,
    server: Option<SocketAddr>,
    budget: Duration,
) -> Result<Passed<Seedlist>, Diagnosis> {
    let started = tokio::time::Instant::now();
    let r = resolver(server, budget)?;
    let name = format!(
        "_{}._tcp.{}.",
        target.srv_service,
        srv.trim_end_matches('.')
    );
    let via = which(server);
    let lookup = match r.srv_lookup(name.as_str()).await {
        Ok(l) => l,
        Err(e) => return Err(srv_failure(&r, srv, &name, &via, server, &e).await),
    };
    let domain = parent_domain(srv);
    let mut hosts = Vec::new();
    for rec in lookup.answers() {
        if let RData::SRV(s) = &rec.data {
            let target = s
                .target
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if !(target.ends_with(&format!(".{domain}"))) {
                return Err(Diagnosis::new(
                    Kind::DnsTargetOutsideDomain,
                    format!("{via} answered {name} with {target}, outside the cluster's domain {domain}: \
                             drivers refuse such an answer, and atlas-iam did not connect to it"),
                    "the answer may be spoofed or the DNS records are wrong: try --dns-server with a \
                     resolver you trust",
                ));
            }
            hosts.push(HostPort {
                host: target,
                port: s.port,
            });
        }
    }
    let limit = match target.srv_max_hosts as usize {
        0 => crate::uri::MAX_HOSTS,
        n => n.min(crate::uri::MAX_HOSTS),
    };
    if hosts.len() > crate::uri::MAX_HOSTS && limit == crate::uri::MAX_HOSTS {
        return Err(Diagnosis::new(
            Kind::DnsTxtInvalid,
            format!(
                "{via} answered {name} with {} SRV records; atlas-iam checks at most {}",
                hosts.len(),
                crate::uri::MAX_HOSTS
            ),
            "check the cluster's DNS records, or limit them with srvMaxHosts",
        ));
    }
    if hosts.is_empty() {
        return Err(Diagnosis::new(
            Kind::DnsNameNotFound,
            format!("{via} has no SRV records for {name}"),
            "check the cluster name (Atlas: Connect > Drivers shows it)",
        ));
    }
    let txt_name = format!("{}.", srv.trim_end_matches('.'));
    let mut txt_options = Vec::new();
    // the TXT query within what the stage has left, so that a resolver that answers SRV and
    // never TXT is named as such (Node's `queryTxt ETIMEOUT`), not as a silent SRV
    let left = budget
        .saturating_sub(started.elapsed())
        .saturating_sub(Duration::from_millis(100));
    let txt = match tokio::time::timeout(left, r.txt_lookup(txt_name.as_str())).await {
        Ok(answer) => answer,
        Err(_) => return Err(txt_timeout(&via, &name, srv, budget)),
    };
    match txt {
        Err(e) if matches!(outcome(&e), Outcome::Timeout) => {
            return Err(txt_timeout(&via, &name, srv, budget))
        }
        Ok(txt) => {
            let records: Vec<String> = txt
                .answers()
                .iter()
                .filter_map(|rec| match &rec.data {
                    RData::TXT(t) => Some(
                        t.txt_data
                            .iter()
                            .map(|d| String::from_utf8_lossy(d).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect();
            if records.len() > 1 {
                return Err(Diagnosis::new(
                    Kind::DnsTxtInvalid,
                    format!(
                        "{srv} has {} TXT records; a mongodb+srv cluster may have one",
                        records.len()
                    ),
                    "fix the DNS records of the cluster",
                ));
            }
            if let Some(t) = records.first() {
                txt_options = parse_txt(t).map_err(|why| {
                    Diagnosis::new(
                        Kind::DnsTxtInvalid,
                        format!("the TXT record of {srv} is invalid: {why}"),
                        "fix the DNS records of the cluster",
                    )
                })?;
            }
        }
        Err(e) if matches!(outcome(&e), Outcome::NoRecords | Outcome::NxDomain) => {}
        Err(e) => {
            return Err(Diagnosis::new(
                Kind::DnsResolverFailed,
                format!("{via} failed the TXT lookup of {srv}: {e}"),
                "give another resolver with --dns-server IP (e.g. 1.1.1.1)",
            ));
        }
    }
    let records = hosts.len();
    crate::uri::seedlist_rules(&target.uri_options, &txt_options, records)?;
    let hosts = keep_at_random(hosts, target.srv_max_hosts as usize);
    let shown: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let mut detail = format!("{} via {via}", shown.join(", "));
    if hosts.len() < records {
        detail.push_str(&format!(
            " ({} of {records} SRV records, chosen at random: srvMaxHosts={})",
            hosts.len(),
            target.srv_max_hosts
        ));
    }
    if !txt_options.is_empty() {
        let t: Vec<String> = txt_options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        detail.push_str(&format!("; TXT {}", t.join("&")));
    }
    let facts = Facts {
        srv_name: Some(name.trim_end_matches('.').to_string()),
        srv_service_name: Some(target.srv_service.clone()),
        srv_max_hosts: Some(target.srv_max_hosts),
        srv_records: Some(records),
        nameservers: nameservers(server),
        txt_options: txt_options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        hosts: shown.into_iter().map(HostFacts::new).collect(),
        ..Default::default()
    };
    Ok(Passed::new(Seedlist { hosts, txt_options }, detail).with_facts(facts))
}

/// `srvMaxHosts`: when it is above zero and below the number of SRV targets, that many of them
/// chosen at random (a Fisher-Yates shuffle, as the seedlist specification recommends), in the
/// order the records came; otherwise all of them.
pub fn keep_at_random(mut hosts: Vec<HostPort>, max: usize) -> Vec<HostPort> {
    if max == 0 || max >= hosts.len() {
        return hosts;
    }
    let mut order: Vec<usize> = (0..hosts.len()).collect();
    let mut rng = rand::rng();
    for i in (1..order.len()).rev() {
        let j = rand::Rng::random_range(&mut rng, 0..=i);
        order.swap(i, j);
    }
    let mut keep: Vec<usize> = order.into_iter().take(max).collect();
    keep.sort_unstable();
    let mut i = 0;
    hosts.retain(|_| {
        let kept = keep.binary_search(&i).is_ok();
        i += 1;
        kept
    });
    hosts
}

/// Whether the resolver answers an address query for `host` at all (records, no records, or a
/// name that does not exist are all answers; a refusal or a failure is not).
async fn answers_addresses(r: &Resolver<TokioRuntimeProvider>, host: &str) -> bool {
    let name = format!("{}.", host.trim_end_matches('.'));
    match r.ipv4_lookup(name.as_str()).await {
        Ok(_) => true,
        Err(e) => matches!(outcome(&e), Outcome::NoRecords | Outcome::NxDomain),
    }
}

/// Tells a wrong cluster name from a resolver that cannot answer SRV: the same resolver is asked
/// for the cluster's parent domain, which exists whenever the project does.
async fn srv_failure(
    r: &Resolver<TokioRuntimeProvider>,
    srv: &str,
    name: &str,
    via: &str,
    server: Option<SocketAddr>,
    e: &NetError,
) -> Diagnosis {
    let other_resolver = if server.is_some() {
        "try the system resolver (drop --dns-server) or another server"
    } else {
        "give a resolver that answers SRV queries with --dns-server IP (e.g. 1.1.1.1 or 8.8.8.8), \
         or use the cluster's standard (mongodb://) connection string from Atlas"
    };
    let found = outcome(e);
    if found == Outcome::Timeout {
        return Diagnosis::new(
            Kind::DnsTimeout,
            format!("{via} did not answer the SRV query for {name}"),
            other_resolver,
        );
    }
    let domain = parent_domain(srv);
    let parent_known = r
        .soa_lookup(format!("{domain}.").as_str())
        .await
        .map(|_| true)
        .unwrap_or_else(|pe| matches!(outcome(&pe), Outcome::NoRecords));
    match found {
        Outcome::NxDomain | Outcome::NoRecords if parent_known => Diagnosis::new(
            Kind::DnsNameNotFound,
            format!("{name} does not exist: {via} knows {domain}, but not the cluster {srv}"),
            "check the cluster name: Atlas shows it under Connect > Drivers (cluster0.xxxxx.mongodb.net)",
        ),
        Outcome::NxDomain | Outcome::NoRecords => Diagnosis::new(
            Kind::DnsNameNotFound,
            format!("{via} knows neither {name} nor its domain {domain}: the cluster name is wrong, or \
                     the resolver cannot see that domain"),
            format!("check the cluster name; if it is right, {other_resolver}"),
        ),
        Outcome::Code(rc) if answers_addresses(r, srv).await => Diagnosis::new(
            Kind::DnsSrvRefused,
            format!(
                "{via} answers address (A) queries for {srv} but answered the SRV query for \
                 {name} with {rc}: it does not serve SRV records, as some corporate and VPN \
                 resolvers do not; every driver needs them for mongodb+srv"
            ),
            "give a resolver that answers SRV queries with --dns-server IP (e.g. 1.1.1.1 or \
             8.8.8.8), or use the cluster's standard (mongodb://) connection string from Atlas \
             (Connect > Drivers, an older driver version), which needs no SRV or TXT",
        ),
        Outcome::Code(rc) => Diagnosis::new(
            Kind::DnsResolverFailed,
            format!("{via} answered the SRV query for {name} with {rc}{}",
                if parent_known { format!(" although it answers for {domain}: it cannot answer SRV queries") } else { String::new() }),
            other_resolver,
        ),
        Outcome::Timeout => Diagnosis::new(Kind::DnsTimeout, format!("{via} did not answer"), other_resolver),
        Outcome::Other(text) => Diagnosis::new(
            Kind::DnsResolverFailed,
            format!("the SRV lookup of {name} through {via} failed: {text}"),
            other_resolver,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_domains() {
        assert_eq!(
            parent_domain("cluster0.ab12c.mongodb.net"),
            "ab12c.mongodb.net"
        );
        assert_eq!(
            parent_domain("Cluster0.AB12C.example.test."),
            "ab12c.example.test"
        );
        assert_eq!(parent_domain("short.test"), "short.test");
    }

    #[test]
    fn txt_options_are_limited() {
        assert_eq!(
            parse_txt("authSource=$external&replicaSet=rs0")
                .expect("ok")
                .len(),
            2
        );
        assert!(parse_txt("ssl=false").is_err());
        assert!(parse_txt("nonsense").is_err());
    }
}
