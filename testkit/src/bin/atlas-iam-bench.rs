//! atlas-iam-bench: atlas-iam against the Node driver and pymongo, side by side, at several round
//! trip times (a latency proxy in front of the local Atlas and of STS). Prints tables of median
//! wall times, connections and requests as the local Atlas counted them, peak RSS, and how far
//! each client is from the physical limit of a ping. Run by `bench/run`; never a test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use atlas_iam_testkit::{Event, Fault, Stack, StackOptions};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "atlas-iam-bench", about)]
struct Args {
    /// The atlas-iam binary to measure (a release build)
    #[arg(long)]
    atlas_iam: PathBuf,
    /// Round trip times to measure at, in milliseconds
    #[arg(long, value_delimiter = ',', default_value = "0,20,50")]
    rtt: Vec<u64>,
    /// Runs per measurement (the median is shown)
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The directory of the client scripts
    #[arg(long, default_value = "bench/clients")]
    clients: PathBuf,
    /// The Python with pymongo[aws]
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    /// Node.js
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// Skip the failure cases (refused login, refused connection, expired certificate)
    #[arg(long)]
    no_failures: bool,
}

/// TCP 1 + TLS 1 + hello 1 + saslStart 1 + saslContinue 1 + ping 1.
const PING_LIMIT_RTTS: f64 = 6.0;

struct Run {
    wall: Duration,
    rss_kb: i64,
}

struct Figures {
    wall_ms: f64,
    rss_mb: f64,
    connections: f64,
    requests: f64,
    /// MONGODB-AWS conversations begun (saslStart), the most of any run.
    attempts: f64,
    /// Connections the local Atlas accepted after its verdict (a refused authentication or a
    /// failed TLS handshake), the most of any run.
    after_verdict: f64,
}

/// Whether a run must pass or fail.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Pass,
    Fail,
}

/// Runs the command under GNU time (`/usr/bin/time`, Debian package `time`) for its peak RSS.
fn run_once(cmd: &mut Command, expect: Expect) -> anyhow::Result<Run> {
    let rss_file = tempfile::NamedTempFile::new()?;
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(rss_file.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    timed.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    let started = Instant::now();
    let out = timed
        .output()
        .context("run /usr/bin/time (install the Debian package `time`)")?;
    let wall = started.elapsed();
    if out.status.success() != (expect == Expect::Pass) {
        // the program and its arguments only: the environment holds the keys
        bail!(
            "{} {:?} ended with {} where it should {}: {}{}",
            cmd.get_program().to_string_lossy(),
            cmd.get_args().collect::<Vec<_>>(),
            out.status,
            if expect == Expect::Pass {
                "pass"
            } else {
                "fail"
            },
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rss_kb = std::fs::read_to_string(rss_file.path())?
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .context("no peak RSS from /usr/bin/time")?;
    Ok(Run { wall, rss_kb })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

fn measure(
    stack: &Stack,
    runs: usize,
    expect: Expect,
    mut make: impl FnMut() -> Command,
) -> anyhow::Result<Figures> {
    let mut walls = Vec::new();
    let mut rss = Vec::new();
    let mut conns = Vec::new();
    let mut reqs = Vec::new();
    let mut attempts: f64 = 0.0;
    let mut after_verdict: f64 = 0.0;
    for _ in 0..runs {
        let (c0, r0) = stack.atlas.counters();
        let (k0, t0) = (stack.atlas.commands().len(), stack.atlas.timeline().len());
        let run = run_once(&mut make(), expect)?;
        // the client has exited: what it left running is gone with it
        let (c1, r1) = stack.atlas.counters();
        let sasl = stack.atlas.commands()[k0..]
            .iter()
            .filter(|c| *c == "saslstart")
            .count();
        attempts = attempts.max(sasl as f64);
        let timeline = stack.atlas.timeline();
        let this_run = &timeline[t0..];
        if let Some(at) = this_run
            .iter()
            .position(|e| matches!(e, Event::AuthRefused | Event::TlsFailed))
        {
            let late = this_run[at..]
                .iter()
                .filter(|e| **e == Event::Connected)
                .count();
            after_verdict = after_verdict.max(late as f64);
        }
        walls.push(run.wall.as_secs_f64() * 1000.0);
        rss.push(run.rss_kb as f64 / 1024.0);
        conns.push((c1 - c0) as f64);
        reqs.push((r1 - r0) as f64);
    }
    Ok(Figures {
        wall_ms: median(walls),
        rss_mb: median(rss),
        connections: median(conns),
        requests: median(reqs),
        attempts,
        after_verdict,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let atlas_iam = std::fs::canonicalize(&args.atlas_iam).with_context(|| {
        format!(
            "{} (build it: cargo build --release)",
            args.atlas_iam.display()
        )
    })?;
    let clients = std::fs::canonicalize(&args.clients).context("the client scripts")?;
    let runs = args.runs.max(1);
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# atlas-iam-bench: median of {runs} runs; {machine}, {cpus} CPUs");

    let start = startup(&atlas_iam, runs)?;
    let mut last = Vec::new();
    for rtt in &args.rtt {
        last = at_rtt(
            &args,
            &atlas_iam,
            &clients,
            runs,
            Duration::from_millis(*rtt),
        )?;
    }
    let rtt = args.rtt.last().copied().unwrap_or(0);
    targets(&start, &last, rtt);
    if !args.no_failures {
        failures(
            &args,
            &atlas_iam,
            &clients,
            runs,
            Duration::from_millis(rtt),
        )?;
    }
    Ok(())
}

/// The failure cases: what each client does when Atlas refuses the login, when nothing listens,
/// and when the certificate has expired.
const CASES: [(&str, &str); 3] = [
    (
        "refused-auth",
        "Atlas refuses the login (no database user for the ARN)",
    ),
    ("refused-connection", "nothing listens on the port"),
    (
        "expired-certificate",
        "the server's certificate expired a year ago",
    ),
];

/// The drivers' server selection waits 30 s by default before it gives up on a server it
/// cannot connect to; the failure cases shorten it for them, so that the benchmark ends.
const DRIVER_SELECTION_MS: u64 = 3000;

fn failures(
    args: &Args,
    atlas_iam: &Path,
    clients: &Path,
    runs: usize,
    rtt: Duration,
) -> anyhow::Result<()> {
    println!(
        "\n## failures at {} ms round trip (the drivers with serverSelectionTimeoutMS={DRIVER_SELECTION_MS}; \
         their default is 30 s)\n",
        rtt.as_millis()
    );
    println!(
        "| case | command | client | wall | vs Node | MONGODB-AWS attempts | connections | after the verdict |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut rows: Vec<(String, String)> = Vec::new();
    for (case, _) in CASES {
        let mut options = StackOptions {
            tls: true,
            latency: (!rtt.is_zero()).then_some(rtt),
            ..Default::default()
        };
        match case {
            // a closed port answers at once: no proxy in front of it
            "refused-connection" => {
                options.fault = Some(Fault::Refuse);
                options.latency = None;
            }
            "expired-certificate" => {
                options.cert_fault = atlas_iam_testkit::pki::CertFault::Expired
            }
            _ => {}
        }
        let stack =
            Stack::start(options).context("the local Atlas (moto from `bash .ci/setup`)")?;
        let uri = stack.uri();
        let driver_uri = format!("{uri}&serverSelectionTimeoutMS={DRIVER_SELECTION_MS}");
        for which in COMMANDS {
            let command = which.0;
            let [ours, node, pymongo] = three_clients(
                args,
                &stack,
                atlas_iam,
                clients,
                runs,
                Expect::Fail,
                which,
                (&uri, &driver_uri),
            )?;
            for (client, f) in [
                ("atlas-iam", &ours),
                ("Node 6", &node),
                ("pymongo", &pymongo),
            ] {
                println!(
                    "| {case} | {command} | {client} | {:.0} ms | {:.2} | {:.0} | {:.0} | {:.0} |",
                    f.wall_ms,
                    f.wall_ms / node.wall_ms,
                    f.attempts,
                    f.connections,
                    f.after_verdict
                );
            }
            let met = |ok: bool| if ok { "met" } else { "missed" };
            rows.push((
                format!("{case} {command}: wall time / Node's"),
                format!(
                    "{:.2} (target <= 1): {}",
                    ours.wall_ms / node.wall_ms,
                    met(ours.wall_ms <= node.wall_ms)
                ),
            ));
            // a login refused is one attempt; where the handshake or the connection failed,
            // there is none to make
            let want = if case == "refused-auth" { 1.0 } else { 0.0 };
            rows.push((
                format!("{case} {command}: MONGODB-AWS attempts"),
                format!(
                    "{:.0} (target {want:.0}): {}",
                    ours.attempts,
                    met(ours.attempts == want)
                ),
            ));
            rows.push((
                format!("{case} {command}: connections after the verdict"),
                format!(
                    "{:.0} (target 0): {}",
                    ours.after_verdict,
                    met(ours.after_verdict == 0.0)
                ),
            ));
        }
    }
    println!("\n## failure targets\n\n| target | figure |\n|---|---|");
    for (what, text) in rows {
        println!("| {what} | {text} |");
    }
    Ok(())
}

/// The targets, checked on the figures of the last round trip time: met, or missed by how much.
fn targets(start: &[(&str, f64)], figures: &[(String, String, Figures)], rtt: u64) {
    let get = |command: &str, client: &str| {
        figures
            .iter()
            .find(|(c, k, _)| c == command && k == client)
            .map(|(_, _, f)| f)
    };
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut at_most = |what: String, value: f64, limit: f64, unit: &str| {
        let shown = format!("{value:.2}{unit} (target <= {limit}{unit})");
        let text = if value <= limit {
            format!("{shown}: met")
        } else {
            format!("{shown}: missed by {:.0}%", (value / limit - 1.0) * 100.0)
        };
        rows.push((what, text));
    };
    for command in ["ping", "roundtrip"] {
        if let (Some(ours), Some(node)) = (get(command, "atlas-iam"), get(command, "Node 6")) {
            at_most(
                format!("{command} wall time / Node's, at {rtt} ms"),
                ours.wall_ms / node.wall_ms,
                0.6,
                "",
            );
        }
    }
    if let (Some(ours), Some(node)) = (get("ping", "atlas-iam"), get("ping", "Node 6")) {
        at_most(
            "connections per ping (a driver's own + 1)".into(),
            ours.connections,
            node.connections + 1.0,
            "",
        );
        at_most("peak RSS of ping".into(), ours.rss_mb, 15.0, " MB");
    }
    for (name, wall) in start {
        let limit = if *name == "uri" { 10.0 } else { 5.0 };
        at_most(format!("start-up of {name}"), *wall, limit, " ms");
    }
    println!("\n## targets\n\n| target | figure |\n|---|---|");
    for (what, text) in rows {
        println!("| {what} | {text} |");
    }
}

fn startup(atlas_iam: &Path, runs: usize) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let uri = "mongodb://127.0.0.1:27017/?authSource=%24external&authMechanism=MONGODB-AWS";
    let mut lines = Vec::new();
    let mut medians = Vec::new();
    for (name, argv) in [
        ("--version", vec!["--version"]),
        ("uri", vec!["uri", "--uri", uri]),
    ] {
        let mut walls = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..runs {
            let mut c = Command::new(atlas_iam);
            c.args(&argv).env_clear().env("PATH", "/usr/bin:/bin");
            let run = run_once(&mut c, Expect::Pass)?;
            walls.push(run.wall.as_secs_f64() * 1000.0);
            rss.push(run.rss_kb as f64 / 1024.0);
        }
        let wall = median(walls);
        medians.push((name, wall));
        lines.push(format!(
            "| atlas-iam {name} | {wall:.1} ms | {:.1} MB |",
            median(rss)
        ));
    }
    println!("\n## start-up (no network)\n");
    println!("| command | wall | peak RSS |\n|---|---|---|");
    for l in lines {
        println!("{l}");
    }
    Ok(medians)
}

/// The commands each client runs: atlas-iam's, the Node script, pymongo's argument.
const COMMANDS: [(&str, &str, &str); 3] = [
    ("ping", "node_ping.js", "ping"),
    ("list-collections", "node_list.js", "list"),
    ("roundtrip", "node_roundtrip.js", "roundtrip"),
];

/// One command measured for atlas-iam, the Node script and pymongo, in that order. The drivers
/// get `driver_uri`, atlas-iam `uri`.
#[allow(clippy::too_many_arguments)]
fn three_clients(
    args: &Args,
    stack: &Stack,
    atlas_iam: &Path,
    clients: &Path,
    runs: usize,
    expect: Expect,
    (command, node_script, py_arg): (&str, &str, &str),
    (uri, driver_uri): (&str, &str),
) -> anyhow::Result<[Figures; 3]> {
    let env = stack.env();
    let with_env = |mut c: Command, uri: &str| {
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .env("MONGODB_URI", uri)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    };
    let node = measure(stack, runs, expect, || {
        let mut c = with_env(Command::new(&args.node), driver_uri);
        c.arg(clients.join(node_script));
        c
    })?;
    let pymongo = measure(stack, runs, expect, || {
        let mut c = with_env(Command::new(&args.python), driver_uri);
        c.arg(clients.join("pymongo_client.py")).arg(py_arg);
        c
    })?;
    let ours = measure(stack, runs, expect, || {
        let mut c = with_env(Command::new(atlas_iam), uri);
        c.args([command, "--uri", uri, "--format", "json"]);
        c
    })?;
    Ok([ours, node, pymongo])
}

fn at_rtt(
    args: &Args,
    atlas_iam: &Path,
    clients: &Path,
    runs: usize,
    rtt: Duration,
) -> anyhow::Result<Vec<(String, String, Figures)>> {
    let stack = Stack::start(StackOptions {
        tls: true,
        latency: (!rtt.is_zero()).then_some(rtt),
        ..Default::default()
    })
    .context("the local Atlas (moto from `bash .ci/setup`)")?;
    // The clients use the IAM user's keys: it is a database user too.
    let account = stack.account.clone().context("no provisioned account")?;
    stack.set_db_user(
        &account.client_arn,
        vec![atlas_iam_testkit::Role::ReadWrite("test".into())],
    );
    let uri = stack.uri();
    let rtt_ms = rtt.as_secs_f64() * 1000.0;
    println!(
        "\n## {} ms round trip (TLS; the physical limit of a ping: {} round trips = {:.0} ms)\n",
        rtt.as_millis(),
        PING_LIMIT_RTTS,
        PING_LIMIT_RTTS * rtt_ms
    );
    println!(
        "| command | client | wall | vs Node | round trips (wall / RTT) | connections | requests | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut all = Vec::new();
    for which in COMMANDS {
        let command = which.0;
        let [ours, node, pymongo] = three_clients(
            args,
            &stack,
            atlas_iam,
            clients,
            runs,
            Expect::Pass,
            which,
            (&uri, &uri),
        )?;
        for (client, f) in [
            ("atlas-iam", &ours),
            ("Node 6", &node),
            ("pymongo", &pymongo),
        ] {
            let trips = if rtt.is_zero() {
                "-".to_string()
            } else {
                let n = f.wall_ms / rtt_ms;
                if command == "ping" {
                    format!("{n:.1} ({:+.1} from the limit)", n - PING_LIMIT_RTTS)
                } else {
                    format!("{n:.1}")
                }
            };
            println!(
                "| {command} | {client} | {:.0} ms | {:.2} | {trips} | {:.0} | {:.0} | {:.1} MB |",
                f.wall_ms,
                f.wall_ms / node.wall_ms,
                f.connections,
                f.requests,
                f.rss_mb
            );
        }
        for (client, f) in [("atlas-iam", ours), ("Node 6", node), ("pymongo", pymongo)] {
            all.push((command.to_string(), client.to_string(), f));
        }
    }
    Ok(all)
}
