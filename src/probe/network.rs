//! The network path on its own: dns, then tcp, then tls over the tcp stage's connections, each
//! bounded by what the drivers give a connection (connectTimeoutMS) and never past the run's
//! deadline. No driver is needed: a probe starts the driver beside tcp and tls once dns has
//! given the seed list (see `commands::probe`), and anything else that needs the path checked
//! (a Lambda function, a benchmark) calls these in turn.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::dns::Seedlist;
use super::{Destination, HostPort};
use crate::runner::{timed, Timed};
use crate::timing::{DRIVER_CONNECT_TIMEOUT, MARGIN};

/// The connections the tcp stage opened, handed to the tls stage.
pub(crate) type Connections = Vec<(HostPort, TcpStream)>;

/// The checks of one target under one deadline.
#[derive(Clone)]
pub(crate) struct Network {
    pub(crate) target: Destination,
    pub(crate) dns_server: Option<SocketAddr>,
    pub(crate) deadline: Instant,
}

impl Network {
    /// What one stage may take: connectTimeoutMS, less the margin that lets its own bound fire
    /// before the run's.
    pub(crate) fn stage_budget(&self) -> Duration {
        self.left().min(DRIVER_CONNECT_TIMEOUT)
    }

    /// What is left of the run, less the margin (the driver's connection and command get it).
    pub(crate) fn left(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(MARGIN)
    }

    /// SRV and TXT for mongodb+srv, each host name otherwise: the seed list.
    pub(crate) async fn dns(&self) -> Timed<Seedlist> {
        timed(super::dns::stage(
            &self.target,
            self.dns_server,
            self.stage_budget(),
        ))
        .await
    }

    /// Every host of the seed list, concurrently; the connections are kept for `tls`.
    pub(crate) async fn tcp(&self, seedlist: &Seedlist) -> (Timed<()>, Option<Connections>) {
        match timed(super::tcp::tcp_stage(&seedlist.hosts, self.stage_budget())).await {
            (Ok(p), took) => {
                let (connections, passed) = p.split();
                ((Ok(passed), took), Some(connections))
            }
            (Err(d), took) => ((Err(d), took), None),
        }
    }

    /// TLS and a hello over the tcp stage's connections.
    pub(crate) async fn tls(&self, seedlist: &Seedlist, connections: Connections) -> Timed<()> {
        let target = &self.target;
        // the driver follows the hello's hosts unless the connection is direct or load-balanced
        let txt_true = |name: &str| {
            seedlist
                .txt_options
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(name) && v.eq_ignore_ascii_case("true"))
        };
        let load_balanced = match target.uri_options.get("loadBalanced") {
            Some(v) => v.eq_ignore_ascii_case("true"),
            None => txt_true("loadBalanced"),
        };
        let discovers = !target.uri_options.is_true("directConnection") && !load_balanced;
        timed(super::tls::tls_stage(
            connections,
            target.tls,
            target.ca_file.as_deref(),
            discovers,
            self.stage_budget(),
        ))
        .await
    }
}
