//! The local DNS through a real resolver (hickory-resolver, as a client would configure it with
//! a custom server): SRV, TXT, A, NXDOMAIN and the faults.

use std::time::Duration;

use atlas_iam_testkit::dns::DnsFault;
use atlas_iam_testkit::{Stack, StackOptions};
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::Resolver;

fn stack(fault: Option<DnsFault>) -> Stack {
    Stack::start(StackOptions {
        dns: true,
        dns_fault: fault,
        ..Default::default()
    })
    .expect("stack")
}

fn resolver(stack: &Stack) -> Resolver<TokioRuntimeProvider> {
    let addr = stack.dns.as_ref().expect("dns").addr;
    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
    for c in &mut ns.connections {
        c.port = addr.port();
    }
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_millis(500);
    opts.attempts = 1;
    Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        TokioRuntimeProvider::default(),
    )
    .with_options(opts)
    .build()
    .expect("resolver")
}

const SRV: &str = "_mongodb._tcp.cluster0.ab12c.example.test.";

#[test]
fn srv_txt_and_members_resolve() {
    let s = stack(None);
    let r = resolver(&s);
    let srv = s.block_on(r.srv_lookup(SRV)).expect("SRV");
    let targets: Vec<(String, u16)> = srv
        .answers()
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::SRV(v) => Some((v.target.to_ascii(), v.port)),
            _ => None,
        })
        .collect();
    assert_eq!(
        targets,
        vec![("node0.ab12c.example.test.".to_string(), s.atlas.addr.port())]
    );
    let txt = s
        .block_on(r.txt_lookup("cluster0.ab12c.example.test."))
        .expect("TXT");
    let text: Vec<String> = txt
        .answers()
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::TXT(t) => Some(t.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        text,
        vec!["authSource=admin&replicaSet=atlas-ab12c-shard-0".to_string()]
    );
    let a = s
        .block_on(r.ipv4_lookup("node0.ab12c.example.test."))
        .expect("A");
    assert_eq!(a.answers().len(), 1);
    // the server presents itself as the set's primary under the member name
    assert!(s.info()["srv_uri"]
        .as_str()
        .is_some_and(|u| u.starts_with("mongodb+srv://cluster0.ab12c.example.test/")));
}

#[test]
fn unknown_names_are_nxdomain() {
    let s = stack(None);
    let err = s
        .block_on(resolver(&s).srv_lookup("_mongodb._tcp.cluster9.ab12c.example.test."))
        .expect_err("NXDOMAIN");
    assert!(err.is_nx_domain(), "{err}");
}

#[test]
fn servfail_and_silence() {
    let s = stack(Some(DnsFault::ServFail));
    let err = s
        .block_on(resolver(&s).srv_lookup(SRV))
        .expect_err("SERVFAIL");
    assert!(
        !err.is_nx_domain() && err.to_string().contains("Server Failure"),
        "{err}"
    );

    let s = stack(Some(DnsFault::Silent));
    let started = std::time::Instant::now();
    let err = s
        .block_on(resolver(&s).srv_lookup(SRV))
        .expect_err("timeout");
    assert!(
        err.to_string().to_lowercase().contains("timed out")
            || err.to_string().to_lowercase().contains("timeout"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn outside_fault_answers_a_target_outside_the_domain() {
    let s = stack(Some(DnsFault::Outside));
    let srv = s.block_on(resolver(&s).srv_lookup(SRV)).expect("SRV");
    let target = srv
        .answers()
        .iter()
        .find_map(|rec| match &rec.data {
            RData::SRV(v) => Some(v.target.to_ascii()),
            _ => None,
        })
        .expect("target");
    assert!(!target.ends_with(".ab12c.example.test."), "{target}");
}
