//! The Initial DNS Seedlist Discovery specification's rules (mongodb/specifications,
//! `source/initial-dns-seedlist-discovery/`), through atlas-iam's dns stage against the
//! testkit's DNS server on 127.0.0.1, each with the records the rule needs: the service name,
//! srvMaxHosts and its random choice, the domain of the SRV targets, and the TXT record (allowed
//! options, one record, several strings, merged under the string's options and checked with
//! them).

use std::collections::BTreeSet;
use std::time::Duration;

use atlas_iam::diagnosis::Kind;
use atlas_iam::probe::dns;
use atlas_iam::probe::target::destination;
use atlas_iam::report::Facts;
use atlas_iam::uri::ParsedUri;
use atlas_iam_testkit::dns::{Dns, DnsConfig};

const CLUSTER: &str = "test1.test.build.example.test";

struct Zone {
    cluster: &'static str,
    service: &'static str,
    members: Vec<String>,
    txt: Vec<Vec<&'static str>>,
}

impl Zone {
    fn new(members: &[&str]) -> Zone {
        Zone {
            cluster: CLUSTER,
            service: "mongodb",
            members: members.iter().map(|m| m.to_string()).collect(),
            txt: Vec::new(),
        }
    }

    fn txt(mut self, record: &[&'static str]) -> Zone {
        self.txt.push(record.to_vec());
        self
    }
}

/// The dns stage's answer for `uri` against a server publishing `zone`: the hosts and TXT
/// options it hands on with its facts, or the diagnosis.
async fn resolve(zone: &Zone, uri: &str) -> Result<(Vec<String>, Vec<String>, Facts), Kind> {
    let server = Dns::start(DnsConfig {
        cluster: zone.cluster.to_string(),
        service: zone.service.to_string(),
        members: zone
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.clone(), 27017 + i as u16))
            .collect(),
        txt: zone
            .txt
            .iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect(),
        fault: None,
    })
    .await
    .expect("start the DNS server");
    let parsed = ParsedUri::parse(uri).unwrap_or_else(|d| panic!("{uri}: {}", d.cause));
    let (target, _) = destination(&parsed, None, None).unwrap_or_else(|d| panic!("{}", d.cause));
    match dns::stage(&target, Some(server.addr), Duration::from_secs(5)).await {
        Ok(passed) => {
            let seedlist = passed.value;
            let hosts = seedlist.hosts.iter().map(|h| h.to_string()).collect();
            let txt = seedlist
                .txt_options
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            // the nameserver asked is reported
            assert_eq!(passed.facts.nameservers, [server.addr.to_string()]);
            Ok((hosts, txt, passed.facts))
        }
        Err(d) => Err(d.kind),
    }
}

fn members(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("node{i}.test.build.example.test"))
        .collect()
}

fn zone_of(n: usize) -> Zone {
    let m = members(n);
    let refs: Vec<&str> = m.iter().map(String::as_str).collect();
    Zone::new(&refs)
}

#[tokio::test]
async fn the_service_name_is_queried() {
    let mut zone = zone_of(2);
    zone.service = "customname";
    let (hosts, _, facts) = resolve(
        &zone,
        &format!("mongodb+srv://{CLUSTER}/?srvServiceName=customname"),
    )
    .await
    .expect("found under _customname._tcp");
    assert_eq!(hosts.len(), 2, "{hosts:?}");
    assert_eq!(
        facts.srv_name.as_deref(),
        Some(format!("_customname._tcp.{CLUSTER}").as_str())
    );
    assert_eq!(facts.srv_service_name.as_deref(), Some("customname"));
    // the default service is `mongodb`, which this zone does not publish
    assert_eq!(
        resolve(&zone, &format!("mongodb+srv://{CLUSTER}/"))
            .await
            .map(|r| r.0),
        Err(Kind::DnsNameNotFound)
    );
}

#[tokio::test]
async fn srv_max_hosts_keeps_that_many_at_random() {
    let zone = zone_of(3);
    let uri = format!("mongodb+srv://{CLUSTER}/?srvMaxHosts=1");
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let (hosts, _, facts) = resolve(&zone, &uri).await.expect("resolves");
        assert_eq!(hosts.len(), 1, "{hosts:?}");
        assert_eq!((facts.srv_max_hosts, facts.srv_records), (Some(1), Some(3)));
        seen.insert(hosts[0].clone());
    }
    // 40 draws of one in three: all alike once in 4e18
    assert!(seen.len() > 1, "always {seen:?}: the choice is not random");
    for (max, kept) in [(0, 3), (2, 2), (3, 3), (5, 3)] {
        let uri = format!("mongodb+srv://{CLUSTER}/?srvMaxHosts={max}");
        let (hosts, _, _) = resolve(&zone, &uri).await.expect("resolves");
        assert_eq!(hosts.len(), kept, "srvMaxHosts={max}: {hosts:?}");
        let distinct: BTreeSet<_> = hosts.iter().collect();
        assert_eq!(distinct.len(), kept, "{hosts:?}");
    }
}

#[tokio::test]
async fn srv_targets_must_share_the_domain() {
    for (cluster, target, ok) in [
        (CLUSTER, "localhost.sub.test.build.example.test", true),
        (CLUSTER, "localhost.build.example.test", false),
        (CLUSTER, "test.build.example.test", false),
        (CLUSTER, "localhost.not-test.build.example.test", false),
        ("mongo.local", "test_1.evil.local", false),
        ("mongo.local", "test_1.my_hostmongo.local", false),
        ("mongo.local", "mongo.local", false),
        ("mongo.local", "node.mongo.local", true),
        ("blogs.mongodb.com", "blogs.evil.com", false),
        ("blogs.mongodb.com", "cluster.testmongodb.com", false),
    ] {
        let mut zone = Zone::new(&[target]);
        zone.cluster = cluster;
        let got = resolve(&zone, &format!("mongodb+srv://{cluster}/")).await;
        match (ok, got) {
            (true, Ok((hosts, _, _))) => assert_eq!(hosts, [format!("{target}:27017")]),
            (false, Err(kind)) => assert_eq!(kind, Kind::DnsTargetOutsideDomain, "{target}"),
            (ok, got) => panic!("{cluster} -> {target}: wanted ok={ok}, got {got:?}"),
        }
    }
}

#[tokio::test]
async fn txt_options_by_the_rules() {
    let base = format!("mongodb+srv://{CLUSTER}/");
    // one record of several strings is their concatenation
    let zone = zone_of(1).txt(&["replicaS", "et=rep", "l0"]);
    let (_, txt, facts) = resolve(&zone, &base).await.expect("resolves");
    assert_eq!(txt, ["replicaSet=repl0"]);
    assert_eq!(facts.txt_options, ["replicaSet=repl0"]);
    // percent-encoded values are decoded
    let zone = zone_of(1).txt(&["authSource=%24external"]);
    assert_eq!(
        resolve(&zone, &base).await.expect("resolves").1,
        ["authSource=$external"]
    );
    // refused: two records, an option TXT may not set, an option without `=`
    for zone in [
        zone_of(1)
            .txt(&["replicaSet=repl0"])
            .txt(&["authSource=otherDB"]),
        zone_of(1).txt(&["ssl=false"]),
        zone_of(1).txt(&["socketTimeoutMS=500"]),
        zone_of(1).txt(&["authSource"]),
    ] {
        assert_eq!(
            resolve(&zone, &base).await.map(|r| r.1),
            Err(Kind::DnsTxtInvalid),
            "{:?}",
            zone.txt
        );
    }
}

#[tokio::test]
async fn txt_options_are_checked_with_the_strings() {
    let lb = || zone_of(1).txt(&["loadBalanced=true"]);
    // allowed: loadBalanced from TXT with one host, and with directConnection=false
    let (_, txt, _) = resolve(&lb(), &format!("mongodb+srv://{CLUSTER}/"))
        .await
        .expect("one load balancer");
    assert_eq!(txt, ["loadBalanced=true"]);
    resolve(
        &lb(),
        &format!("mongodb+srv://{CLUSTER}/?directConnection=false&srvMaxHosts=0"),
    )
    .await
    .expect("directConnection=false and srvMaxHosts=0 are allowed");
    // the string's loadBalanced=false wins over the TXT record's
    resolve(
        &zone_of(2).txt(&["loadBalanced=true"]),
        &format!("mongodb+srv://{CLUSTER}/?loadBalanced=false"),
    )
    .await
    .expect("the string's option wins");
    // refused once DNS has answered
    for (zone, uri) in [
        (lb(), format!("mongodb+srv://{CLUSTER}/?replicaSet=replset")),
        (lb(), format!("mongodb+srv://{CLUSTER}/?srvMaxHosts=1")),
        (
            zone_of(2).txt(&["loadBalanced=true"]),
            format!("mongodb+srv://{CLUSTER}/"),
        ),
        (
            zone_of(2),
            format!("mongodb+srv://{CLUSTER}/?loadBalanced=true"),
        ),
        (
            zone_of(2).txt(&["replicaSet=repl0&authSource=thisDB"]),
            format!("mongodb+srv://{CLUSTER}/?srvMaxHosts=1"),
        ),
    ] {
        assert_eq!(
            resolve(&zone, &uri).await.map(|r| r.0),
            Err(Kind::DnsTxtInvalid),
            "{uri} with {:?}",
            zone.txt
        );
    }
}
