//! A DNS server for mongodb+srv, in process on 127.0.0.1 (UDP and TCP on one port): SRV
//! `_mongodb._tcp.<cluster>` to member names in the cluster's domain, TXT with the options, A
//! records for the members, NXDOMAIN for other names; faults SERVFAIL, silent, and a target
//! outside the domain (a spoofed answer that clients must refuse).
//!
//! Built on hickory-proto's messages rather than hickory-server's zone handlers: the faults
//! need a per-query say over the answer (none at all, SERVFAIL, a foreign target) that an
//! authority over a zone does not give without a custom handler, which is more code than this.

use std::net::{Ipv4Addr, SocketAddr};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsFault {
    ServFail,
    Silent,
    /// The SRV target lies outside the cluster's domain.
    Outside,
    /// Answers SRV (and A), never TXT: the resolvers behind Node's `queryTxt ETIMEOUT`.
    SilentTxt,
    /// Answers every query but SRV, which it refuses (REFUSED): corporate and VPN resolvers that
    /// serve addresses only.
    RefuseSrv,
}

impl std::str::FromStr for DnsFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "servfail" => Ok(DnsFault::ServFail),
            "silent" => Ok(DnsFault::Silent),
            "outside" => Ok(DnsFault::Outside),
            "silent-txt" => Ok(DnsFault::SilentTxt),
            "refuse-srv" => Ok(DnsFault::RefuseSrv),
            other => Err(format!(
                "unknown DNS fault `{other}` (servfail, silent, outside, silent-txt, refuse-srv)"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// e.g. `cluster0.ab12c.example.test`
    pub cluster: String,
    /// The SRV service name: records are published at `_<service>._tcp.<cluster>` (the
    /// seedlist specification's `srvServiceName`; Atlas uses `mongodb`).
    pub service: String,
    /// Member host names (in the cluster's parent domain) and their port.
    pub members: Vec<(String, u16)>,
    /// The TXT records of the cluster's name, each as its character strings (a record of
    /// several strings is read as their concatenation); none, one (as Atlas has), or more.
    pub txt: Vec<Vec<String>>,
    pub fault: Option<DnsFault>,
}

impl DnsConfig {
    /// The cluster's parent domain: members must live under it.
    pub fn domain(&self) -> &str {
        self.cluster
            .split_once('.')
            .map(|(_, d)| d)
            .unwrap_or(&self.cluster)
    }
}

pub struct Dns {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Dns {
    pub async fn start(cfg: DnsConfig) -> std::io::Result<Dns> {
        let mut tries = 0;
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await?;
            let port = udp.local_addr()?.port();
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(tcp) => break (udp, tcp),
                Err(e) if tries > 10 => return Err(e),
                Err(_) => tries += 1,
            }
        };
        let addr = udp.local_addr()?;
        let task = tokio::spawn(async move {
            let mut set = JoinSet::new();
            let c = cfg.clone();
            set.spawn(serve_udp(udp, c));
            set.spawn(serve_tcp(tcp, cfg));
            while set.join_next().await.is_some() {}
        });
        Ok(Dns { addr, task })
    }
}

async fn serve_udp(socket: UdpSocket, cfg: DnsConfig) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = answer(&buf[..n], &cfg) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, cfg: DnsConfig) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let cfg = cfg.clone();
        conns.spawn(async move {
            loop {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
                if stream.read_exact(&mut msg).await.is_err() {
                    return;
                }
                let Some(reply) = answer(&msg, &cfg) else {
                    // silent: hold the connection without answering
                    let mut sink = [0u8; 512];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                    return;
                };
                let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                framed.extend(reply);
                if stream.write_all(&framed).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn name(s: &str) -> Option<Name> {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.'))).ok()
}

/// The answer to one query, or None to stay silent.
pub fn answer(query: &[u8], cfg: &DnsConfig) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    if cfg.fault == Some(DnsFault::Silent) {
        return None;
    }
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.authoritative = true;
    let Some(q) = request.queries.first().cloned() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response.to_vec().ok();
    };
    response.add_query(q.clone());
    if cfg.fault == Some(DnsFault::SilentTxt) && q.query_type() == RecordType::TXT {
        return None;
    }
    if cfg.fault == Some(DnsFault::RefuseSrv) && q.query_type() == RecordType::SRV {
        response.metadata.response_code = ResponseCode::Refused;
        return response.to_vec().ok();
    }
    if cfg.fault == Some(DnsFault::ServFail) {
        response.metadata.response_code = ResponseCode::ServFail;
        return response.to_vec().ok();
    }
    let asked = q
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let cluster = cfg.cluster.to_ascii_lowercase();
    let srv_name = format!("_{}._tcp.{cluster}", cfg.service.to_ascii_lowercase());
    let qname = q.name().clone();
    let ttl = 60;
    let mut known = false;
    if asked == srv_name {
        known = true;
        if q.query_type() == RecordType::SRV {
            for (i, (member, port)) in cfg.members.iter().enumerate() {
                let target = if cfg.fault == Some(DnsFault::Outside) {
                    format!("node{i}.attacker.test")
                } else {
                    member.clone()
                };
                let target = name(&target)?;
                response.add_answer(Record::from_rdata(
                    qname.clone(),
                    ttl,
                    RData::SRV(SRV::new(0, 0, *port, target)),
                ));
            }
        }
    } else if asked == cluster {
        known = true;
        if q.query_type() == RecordType::TXT {
            for record in &cfg.txt {
                response.add_answer(Record::from_rdata(
                    qname.clone(),
                    ttl,
                    RData::TXT(TXT::new(record.clone())),
                ));
            }
        }
    } else if let Some(_m) = cfg
        .members
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(&asked))
    {
        known = true;
        if q.query_type() == RecordType::A {
            response.add_answer(Record::from_rdata(
                qname.clone(),
                ttl,
                RData::A(A(Ipv4Addr::LOCALHOST)),
            ));
        }
    } else if asked == cfg.domain().to_ascii_lowercase() {
        known = true;
    }
    if response.answers.is_empty() {
        if !known {
            response.metadata.response_code = ResponseCode::NXDomain;
        }
        let zone = name(cfg.domain())?;
        let soa = SOA::new(
            name(&format!("ns.{}", cfg.domain()))?,
            name(&format!("admin.{}", cfg.domain()))?,
            1,
            3600,
            600,
            86_400,
            60,
        );
        response.add_authority(Record::from_rdata(zone, ttl, RData::SOA(soa)));
    }
    response.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn cfg(fault: Option<DnsFault>) -> DnsConfig {
        DnsConfig {
            cluster: "cluster0.ab12c.example.test".into(),
            service: "mongodb".into(),
            members: vec![("node0.ab12c.example.test".into(), 27017)],
            txt: vec![vec![
                "authSource=admin&replicaSet=atlas-ab12c-shard-0".into()
            ]],
            fault,
        }
    }

    fn ask(n: &str, t: RecordType, c: &DnsConfig) -> Option<Message> {
        let mut m = Message::query();
        m.add_query(Query::query(name(n).expect("name"), t));
        answer(&m.to_vec().expect("encode"), c).map(|r| Message::from_vec(&r).expect("decode"))
    }

    #[test]
    fn srv_txt_and_members_are_answered() {
        let c = cfg(None);
        let srv = ask(
            "_mongodb._tcp.cluster0.ab12c.example.test",
            RecordType::SRV,
            &c,
        )
        .expect("answer");
        assert_eq!(srv.answers.len(), 1);
        match &srv.answers[0].data {
            RData::SRV(s) => {
                assert_eq!(s.port, 27017);
                assert_eq!(s.target.to_ascii(), "node0.ab12c.example.test.");
            }
            other => panic!("not SRV: {other:?}"),
        }
        let txt = ask("cluster0.ab12c.example.test", RecordType::TXT, &c).expect("answer");
        assert_eq!(txt.answers.len(), 1);
        let a = ask("node0.ab12c.example.test", RecordType::A, &c).expect("answer");
        assert_eq!(a.answers.len(), 1);
    }

    #[test]
    fn other_names_are_nxdomain() {
        let r = ask(
            "_mongodb._tcp.wrong.ab12c.example.test",
            RecordType::SRV,
            &cfg(None),
        )
        .expect("answer");
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn faults() {
        let q = "_mongodb._tcp.cluster0.ab12c.example.test";
        assert!(ask(q, RecordType::SRV, &cfg(Some(DnsFault::Silent))).is_none());
        let r = ask(q, RecordType::SRV, &cfg(Some(DnsFault::ServFail))).expect("answer");
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        let r = ask(q, RecordType::SRV, &cfg(Some(DnsFault::Outside))).expect("answer");
        match &r.answers[0].data {
            RData::SRV(s) => assert_eq!(s.target.to_ascii(), "node0.attacker.test."),
            other => panic!("not SRV: {other:?}"),
        }
    }

    #[test]
    fn garbage_queries_get_no_answer() {
        assert!(answer(&[1, 2, 3], &cfg(None)).is_none());
    }
}
