//! local-atlas: a local stand-in for a MongoDB Atlas cluster with AWS IAM authentication.
//! Starts moto behind the STS gate (unless --sts-endpoint), provisions an IAM user, a role that
//! trusts it and a database user for the role (readWrite on test), starts the server (and DNS
//! with --dns), prints ONE JSON line on stdout and runs until killed.

use std::io::Write;

use anyhow::Context;
use atlas_iam_testkit::dns::DnsFault;
use atlas_iam_testkit::{Fault, Mode, Role, Stack, StackOptions};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "local-atlas", version, about, long_about = None)]
struct Args {
    /// Port on 127.0.0.1 (0: a free one)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// TLS with a CA and server certificate generated at start; plaintext clients are closed
    #[arg(long)]
    tls: bool,
    /// With --tls, also serve plaintext clients
    #[arg(long, requires = "tls")]
    allow_plaintext: bool,
    /// How refusals are worded: dedicated (codes 18 and 13) or proxy (the shared tier's 8000)
    #[arg(long, default_value = "dedicated")]
    mode: Mode,
    /// refuse, silent, close-after-accept, garbage, slow:MS, bad-nonce, tls-alert
    #[arg(long, value_name = "NAME[:ARG]")]
    fault: Option<Fault>,
    /// A database user: ARN=ROLES, ROLES as read@DB, readWrite@DB, readAnyDatabase,
    /// readWriteAnyDatabase (comma-separated) or none (repeatable)
    #[arg(long, value_name = "ARN=ROLE@DB", value_parser = parse_user)]
    user: Vec<(String, Vec<Role>)>,
    /// An STS endpoint of your own (http://HOST:PORT): no moto, no provisioning
    #[arg(long, value_name = "URL")]
    sts_endpoint: Option<String>,
    /// The STS host named to clients and kept as Host in the replay
    #[arg(long, value_name = "HOST")]
    sts_host: Option<String>,
    /// Serve SRV and TXT records for the cluster on a local DNS server
    #[arg(long)]
    dns: bool,
    /// A DNS fault: servfail, silent, outside (an SRV target outside the cluster's domain)
    #[arg(long, requires = "dns")]
    dns_fault: Option<DnsFault>,
    /// The cluster name served by --dns
    #[arg(long, default_value = atlas_iam_testkit::stack::CLUSTER)]
    cluster: String,
    /// Add this round trip (milliseconds) to the Atlas port in `uri` and to the STS endpoint
    /// clients are given, with a proxy on 127.0.0.1 (for benchmarks; not with --dns)
    #[arg(long, value_name = "MS", conflicts_with = "dns")]
    latency: Option<u64>,
    /// Also serve the Atlas Admin API for the project (its users are this server's); `env` then
    /// has the variables `atlas-iam --atlas` reads
    #[arg(long)]
    admin: bool,
}

fn parse_user(s: &str) -> Result<(String, Vec<Role>), String> {
    let (arn, roles) = s.split_once('=').ok_or("expected ARN=ROLE@DB")?;
    if !arn.starts_with("arn:") {
        return Err(format!("`{arn}` is not an ARN"));
    }
    Ok((arn.to_string(), Role::parse_list(roles)?))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stack = Stack::start(StackOptions {
        port: args.port,
        tls: args.tls,
        allow_plaintext: args.allow_plaintext,
        mode: args.mode,
        fault: args.fault,
        users: args.user,
        sts_endpoint: args.sts_endpoint,
        sts_host: args.sts_host,
        dns: args.dns,
        dns_fault: args.dns_fault,
        cluster: args.cluster,
        cert_fault: Default::default(),
        latency: args.latency.map(std::time::Duration::from_millis),
        admin: args.admin,
    })
    .context("local-atlas could not start")?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", stack.info())?;
    out.flush()?;
    stack.wait_for_signal();
    Ok(())
}
