//! The command line: clap derive only. Validation that needs more than one value, or the
//! environment aliases, lives in `config.rs`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::CommandName;

const ABOUT: &str =
    "Can this machine, with these AWS credentials, reach and use this MongoDB Atlas \
cluster through AWS IAM authentication (MONGODB-AWS)? And if not, exactly why?";

/// The long description, with the stage chain from `Stage::ALL`.
fn long_about() -> String {
    let chain: Vec<&str> = crate::diagnosis::Stage::ALL
        .iter()
        .map(|s| s.name())
        .collect();
    format!(
        "Can this machine, with these AWS credentials, reach and use this MongoDB Atlas cluster \
through AWS IAM authentication (MONGODB-AWS)? And if not, exactly why?

Every command runs as stages, each timed and, on failure, diagnosed with its cause and what to do \
(assume with a role only, atlas with --atlas only):
  {}
{LONG_ABOUT_REST}",
        chain.join(" -> ")
    )
}

const LONG_ABOUT_REST: &str = "
Credentials are resolved exactly as your application's AWS SDK would: environment keys, the \
profile (AWS_PROFILE or --profile, with role_arn/source_profile, SSO and credential_process), \
web identity, the container endpoint, EC2 instance metadata. With --role-arn, atlas-iam assumes \
that role on top. STS and IAM endpoints follow AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_STS and \
AWS_ENDPOINT_URL_IAM.

Values come from flags, then the environment, then an env file (.env in the current directory \
when present, or --env-file): the real environment wins over the file, flags win over both.";

const AFTER_HELP: &str = "\
Examples:
  atlas-iam whoami                                  who am I, and which Atlas user is that?
  atlas-iam whoami --role-arn arn:aws:iam::123456789012:role/app
  eval \"$(atlas-iam assume --role-arn arn:aws:iam::123456789012:role/app)\"
  atlas-iam uri --cluster cluster0.ab12c.mongodb.net --db orders
  atlas-iam uri --uri \"$MONGODB_URI\"                check an existing connection string
  atlas-iam ping --cluster cluster0.ab12c.mongodb.net --role-arn arn:aws:iam::123456789012:role/app
  atlas-iam roundtrip --uri \"$MONGODB_URI\" --count 5  cold against warm latency
  atlas-iam whoami --format json                    one JSON document on stdout, also on failure

Secrets (secret keys, session tokens, full access key ids) are never printed unless you pass \
--show-secrets, or run `assume`, whose job it is.
";

#[derive(Debug, Parser)]
#[command(
    name = "atlas-iam",
    version,
    about = ABOUT,
    long_about = long_about(),
    after_help = AFTER_HELP,
    after_long_help = format!("{AFTER_HELP}\n{}", crate::diagnosis::exit_codes()),
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Assume --role-arn with STS and print its temporary credentials
    ///
    /// The credentials, and only they, go to stdout, so that
    /// `eval "$(atlas-iam assume --role-arn ARN)"` sets them in a shell; a summary (identity,
    /// expiry) goes to stderr. When AssumeRole is refused, atlas-iam says why: the caller is not
    /// named by the role's trust policy (read with iam:GetRole when allowed), the role does not
    /// exist, or the duration is above the role's maximum or the one-hour cap of role chaining.
    #[command(after_help = CommandName::Assume.exit_help())]
    Assume {
        /// How to print the credentials: `env` (export lines for eval), `json` (the
        /// credential_process version 1 shape), `dotenv` (KEY=value lines for a .env file)
        #[arg(long, value_enum, default_value_t = AssumeOutput::Env)]
        output: AssumeOutput,
        /// Write the credentials to this file instead of stdout, created with mode 0600; a
        /// symlink is never followed, an existing file is kept unless --force
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// With --out: replace an existing file
        #[arg(long, requires = "out")]
        force: bool,
    },
    /// Show the AWS identity in use and the Atlas database user it maps to
    ///
    /// Calls STS GetCallerIdentity with the resolved credentials (those of the assumed role with
    /// --role-arn) and prints the account, the ARN, the ARN of the database user Atlas will look
    /// up (an assumed-role session maps to its role) and the Atlas CLI command that creates it.
    /// With --atlas, asks the Atlas Admin API whether the project has that database user (right
    /// IAM type, and scoped to the --uri/--cluster target's cluster when one is given), and gives
    /// the exact fix when not.
    #[command(after_help = CommandName::Whoami.exit_help())]
    Whoami,
    /// Build a MONGODB-AWS connection string, or check an existing one (--uri)
    ///
    /// From --cluster, prints a credential-free string: the driver takes credentials from the
    /// environment or the AWS default chain, as current drivers require. --embed-credentials
    /// gives the legacy form with the key, secret and session token percent-encoded in the
    /// string, for older drivers only. Given --uri, reports its pitfalls: authSource missing or
    /// not $external, another mechanism, embedded credentials, unencoded reserved characters,
    /// username without password, TLS off for an Atlas host, an srv URI with a port or several
    /// hosts. The string goes to stdout, the stages and findings to stderr.
    #[command(after_help = CommandName::Uri.exit_help())]
    Uri {
        /// Put the resolved credentials into the string (legacy form; current drivers reject it)
        #[arg(long)]
        embed_credentials: bool,
    },
    /// Connect, authenticate with MONGODB-AWS, and run ping
    ///
    /// Runs every stage: config, credentials, assume (with --role-arn), identity (the ARN Atlas
    /// will see, and the clock offset from STS), dns (SRV and TXT for mongodb+srv), tcp and tls
    /// (every host; the tls stage ends with a hello), auth (the official driver with the resolved
    /// credentials, never those in the URI) and command. With --count, the command is repeated
    /// over one client: the first (cold) connection against the warm ones is why a Lambda creates
    /// its client once, outside the handler.
    #[command(after_help = CommandName::Ping.exit_help())]
    Ping {
        #[command(flatten)]
        repeat: Repeat,
        #[command(flatten)]
        wait: Wait,
    },
    /// Like ping, then listCollections on --db (needs the role read@DB)
    #[command(after_help = CommandName::ListCollections.exit_help())]
    ListCollections {
        #[command(flatten)]
        wait: Wait,
    },
    /// Like ping, then insert a tagged document (w: majority), read it back and delete it
    /// (needs readWrite@DB); the document is deleted however the run ends (--timeout, a lost
    /// connection, Ctrl-C), and a document that may remain is named by its _id
    #[command(after_help = CommandName::Roundtrip.exit_help())]
    Roundtrip {
        /// Collection for the probe document
        #[arg(long, default_value = "atlas_iam_probe", value_name = "NAME")]
        collection: String,
        #[command(flatten)]
        repeat: Repeat,
        #[command(flatten)]
        wait: Wait,
    },
    /// Print a shell completion script: bash, zsh, fish, powershell or elvish
    ///
    /// bash: `source <(atlas-iam completions bash)` in ~/.bashrc, or save it as
    /// /usr/share/bash-completion/completions/atlas-iam. zsh: save it as `_atlas-iam` in a
    /// directory of $fpath. fish: save it as ~/.config/fish/completions/atlas-iam.fish.
    /// PowerShell: add `atlas-iam completions powershell | Out-String | Invoke-Expression` to
    /// $PROFILE.
    #[command(after_help = CommandName::Completions.exit_help())]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `atlas-iam man > atlas-iam.1 && man ./atlas-iam.1`
    #[command(after_help = CommandName::Man.exit_help())]
    Man,
}

/// `completions` and `man`: printed from the clap definition, with no configuration, no
/// environment and no report. None for every other command.
pub fn print_generated(command: &Command) -> Option<std::io::Result<()>> {
    use clap::CommandFactory;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match command {
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "atlas-iam", &mut buf);
            if *shell == clap_complete::Shell::Bash {
                // clap_complete spells the state of a hyphenated binary's subcommands two ways
                // (`atlas__iam__subcmd__ping` in the loop, `atlas__subcmd__iam__subcmd__ping` in
                // the arms: clap-rs/clap#6421), so no subcommand option ever completes.
                let text =
                    String::from_utf8_lossy(&buf).replace("atlas__subcmd__iam", "atlas__iam");
                buf = text.into_bytes();
            }
            Some(out.write_all(&buf).and_then(|()| out.flush()))
        }
        Command::Man => {
            let mut buf = Vec::new();
            Some(
                clap_mangen::Man::new(Cli::command())
                    .render(&mut buf)
                    .and_then(|()| out.write_all(&buf))
                    .and_then(|()| out.flush()),
            )
        }
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, Args)]
pub struct Repeat {
    /// Run the command this many times over one client and report min, median and max latency
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,
    /// Seconds between runs with --count
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS", value_parser = parse_interval)]
    pub interval: f64,
}

#[derive(Clone, Copy, Debug, Default, Args)]
pub struct Wait {
    /// Try again every 5 s until the check passes, for up to SECONDS: for CI right after
    /// provisioning, when a new database user or access-list entry is not deployed yet. Stops
    /// early when trying again cannot help (a config or credentials error, or, with --atlas, a
    /// refusal while Atlas says every change is applied). Each try authenticates at most once;
    /// the exit code is the last try's
    #[arg(long, value_name = "SECONDS", value_parser = parse_wait, env = "ATLAS_IAM_WAIT")]
    pub wait: Option<u64>,
}

fn parse_wait(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(v) if v <= 3600 => Ok(v),
        _ => Err("a whole number of seconds from 0 to 3600".to_string()),
    }
}

impl Command {
    /// How long `--wait` may keep trying (None: one try).
    pub fn wait(&self) -> Option<std::time::Duration> {
        match self {
            Command::Ping { wait, .. }
            | Command::ListCollections { wait }
            | Command::Roundtrip { wait, .. } => wait.wait.filter(|w| *w > 0),
            _ => None,
        }
        .map(std::time::Duration::from_secs)
    }
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err("a number of seconds from 0 to 3600".to_string()),
    }
}

impl Command {
    pub fn name(&self) -> CommandName {
        match self {
            Command::Assume { .. } => CommandName::Assume,
            Command::Whoami => CommandName::Whoami,
            Command::Uri { .. } => CommandName::Uri,
            Command::Ping { .. } => CommandName::Ping,
            Command::ListCollections { .. } => CommandName::ListCollections,
            Command::Roundtrip { .. } => CommandName::Roundtrip,
            Command::Completions { .. } => CommandName::Completions,
            Command::Man => CommandName::Man,
        }
    }
}

impl Cli {
    /// The bound on the whole run.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.global.timeout)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AssumeOutput {
    Env,
    Json,
    Dotenv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    // ---- target ----
    /// Connection string of the cluster (mongodb:// or mongodb+srv://)
    #[arg(
        long,
        global = true,
        env = "MONGODB_URI",
        hide_env_values = true,
        value_name = "URI",
        help_heading = "Target"
    )]
    pub uri: Option<String>,

    /// Cluster host name, e.g. cluster0.ab12c.mongodb.net [also read from AWS_MONGO_CLUSTER_URL,
    /// MONGODB_CLUSTER_NAME]
    #[arg(
        long,
        global = true,
        env = "ATLAS_IAM_CLUSTER",
        hide_env_values = true,
        value_name = "HOST",
        help_heading = "Target"
    )]
    pub cluster: Option<String>,

    /// Database to use [also read from AWS_MONGO_DATABASE; default: test]
    #[arg(
        long,
        global = true,
        env = "ATLAS_IAM_DB",
        hide_env_values = true,
        value_name = "NAME",
        help_heading = "Target"
    )]
    pub db: Option<String>,

    /// CA certificate (PEM) to trust for the cluster's TLS, instead of the public web PKI roots
    /// (Mozilla's, which the driver trusts too)
    #[arg(long, global = true, value_name = "PATH", help_heading = "Target")]
    pub tls_ca_file: Option<PathBuf>,

    /// DNS server for the SRV and TXT lookups of mongodb+srv, instead of the system resolver
    #[arg(long, global = true, value_name = "IP[:PORT]", value_parser = parse_dns_server,
          help_heading = "Target")]
    pub dns_server: Option<SocketAddr>,

    // ---- credentials ----
    /// AWS profile of the shared config and credentials files
    #[arg(
        long,
        global = true,
        env = "AWS_PROFILE",
        hide_env_values = true,
        value_name = "NAME",
        help_heading = "Credentials"
    )]
    pub profile: Option<String>,

    /// AWS region for STS and IAM calls [default: from the profile, else us-east-1]
    #[arg(
        long,
        global = true,
        env = "AWS_REGION",
        hide_env_values = true,
        value_name = "REGION",
        help_heading = "Credentials"
    )]
    pub region: Option<String>,

    /// IAM role to assume on top of the resolved credentials [also read from
    /// MONGODB_ACCESS_ROLE_ARN]
    #[arg(
        long,
        global = true,
        env = "ATLAS_IAM_ROLE_ARN",
        hide_env_values = true,
        value_name = "ARN",
        help_heading = "Credentials"
    )]
    pub role_arn: Option<String>,

    /// Session name for AssumeRole [default: atlas-iam-<unix time>]
    #[arg(long, global = true, value_name = "NAME", value_parser = parse_session_name,
          help_heading = "Credentials")]
    pub role_session_name: Option<String>,

    /// External id the role's trust policy requires (sts:ExternalId)
    #[arg(long, global = true, value_name = "ID", value_parser = parse_external_id,
          help_heading = "Credentials")]
    pub external_id: Option<String>,

    /// Lifetime of the assumed-role credentials, 900 to 43200 seconds (role chaining caps it at
    /// 3600) [default: 3600]
    #[arg(long, global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(i32).range(900..=43200), help_heading = "Credentials")]
    pub duration: Option<i32>,

    /// Serial number (ARN) of the MFA device the role's trust policy requires
    #[arg(
        long,
        global = true,
        value_name = "ARN",
        requires = "mfa_token",
        help_heading = "Credentials"
    )]
    pub mfa_serial: Option<String>,

    /// Current code of that MFA device, six digits
    #[arg(long, global = true, value_name = "CODE", requires = "mfa_serial",
          value_parser = parse_mfa_token, help_heading = "Credentials")]
    pub mfa_token: Option<String>,

    /// Check as the application's driver does: its credential sources, in its order, with its
    /// rules (a source it does not read is shown as skipped, and when it would find none the
    /// credentials stage fails), and its URI rules. NAME is one of node, python, java, go,
    /// csharp, rust, c, php, mongosh; VERSION as MAJOR[.MINOR] (node@6.9). Node 6 and Java are
    /// checked with their built-in sources unless --app finds the AWS SDK add-on
    #[arg(long, global = true, env = "ATLAS_IAM_DRIVER", value_name = "NAME[@VERSION]",
          value_parser = parse_driver, help_heading = "Credentials")]
    pub driver: Option<crate::drivers::Driver>,

    /// The application's directory: its manifest (package.json with package-lock.json, yarn.lock
    /// or pnpm-lock.yaml, requirements*.txt,
    /// pyproject.toml with poetry.lock or uv.lock, *.csproj with packages.lock.json, go.mod,
    /// pom.xml or build.gradle(.kts), Cargo.toml with Cargo.lock, composer.json) decides the
    /// driver and its version (unless --driver is given), and shows whether its MONGODB-AWS
    /// add-on is there
    #[arg(
        long,
        global = true,
        env = "ATLAS_IAM_APP",
        value_name = "DIR",
        help_heading = "Credentials"
    )]
    pub app: Option<PathBuf>,

    // ---- the Atlas Admin API ----
    /// Cross-check with the Atlas Admin API, read-only: the project's AWS IAM database users
    /// (ARN, type, roles, cluster scopes), the target's cluster (paused? version?) and the IP
    /// access list. Needs a project id and an API key or a service account with Project Read
    /// Only; the Atlas CLI's variables are read (MONGODB_ATLAS_PROJECT_ID,
    /// MONGODB_ATLAS_PUBLIC_API_KEY + MONGODB_ATLAS_PRIVATE_API_KEY, or MONGODB_ATLAS_CLIENT_ID +
    /// MONGODB_ATLAS_CLIENT_SECRET). Its own failures never stop a probe
    #[arg(long, global = true, help_heading = "Atlas Admin API")]
    pub atlas: bool,

    /// Atlas project id (24 hex digits) [env: MONGODB_ATLAS_PROJECT_ID]
    #[arg(
        long,
        global = true,
        value_name = "ID",
        help_heading = "Atlas Admin API"
    )]
    pub atlas_project_id: Option<String>,

    /// Public part of a project API key (HTTP Digest) [env: MONGODB_ATLAS_PUBLIC_API_KEY]
    #[arg(
        long,
        global = true,
        value_name = "KEY",
        help_heading = "Atlas Admin API"
    )]
    pub atlas_public_key: Option<String>,

    /// Private part of that API key; prefer the variable (a flag shows in the process list)
    /// [env: MONGODB_ATLAS_PRIVATE_API_KEY]
    #[arg(
        long,
        global = true,
        value_name = "KEY",
        help_heading = "Atlas Admin API"
    )]
    pub atlas_private_key: Option<String>,

    /// Client id of a service account (OAuth2 client credentials) [env: MONGODB_ATLAS_CLIENT_ID]
    #[arg(
        long,
        global = true,
        value_name = "ID",
        help_heading = "Atlas Admin API"
    )]
    pub atlas_client_id: Option<String>,

    /// Client secret of that service account; prefer the variable [env:
    /// MONGODB_ATLAS_CLIENT_SECRET]
    #[arg(
        long,
        global = true,
        value_name = "SECRET",
        help_heading = "Atlas Admin API"
    )]
    pub atlas_client_secret: Option<String>,

    /// Where the Admin API is: https only, except on a loopback address (for tests)
    /// [default: https://cloud.mongodb.com] [env: ATLAS_IAM_ATLAS_BASE_URL]
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "Atlas Admin API"
    )]
    pub atlas_base_url: Option<String>,

    // ---- output ----
    /// Output format: human text, or one JSON document on stdout (also on failure)
    #[arg(long, global = true, value_enum, env = "ATLAS_IAM_FORMAT",
          default_value_t = Format::Human, help_heading = "Output")]
    pub format: Format,

    /// Colour: auto (only on a terminal, not with NO_COLOR or TERM=dumb), always, never
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto,
          help_heading = "Output")]
    pub color: ColorChoice,

    /// Bound on the whole run, in seconds; every network stage gets what is left of it
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = crate::timing::DEFAULT_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Output")]
    pub timeout: u64,

    /// Print secret keys, session tokens and full access key ids (never done otherwise)
    #[arg(long, global = true, help_heading = "Output")]
    pub show_secrets: bool,

    /// Env file to load [default: .env in the current directory, when present]
    #[arg(long, global = true, value_name = "PATH", help_heading = "Output")]
    pub env_file: Option<PathBuf>,
}

fn parse_dns_server(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(
        "expected an IP address with an optional port, e.g. 1.1.1.1, 127.0.0.1:5353, [::1]:53"
            .to_string(),
    )
}

/// STS's rule for names: `min..=max` characters, letters, digits and `extra`.
fn sts_chars(s: &str, min: usize, max: usize, extra: &str) -> Result<String, String> {
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if (min..=max).contains(&s.len()) && ok_chars {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{min} to {max} characters: letters, digits and {extra}"
        ))
    }
}

/// STS: 2 to 64 characters of `[\w+=,.@-]`; the error names the character refused.
fn parse_driver(s: &str) -> Result<crate::drivers::Driver, String> {
    crate::drivers::Driver::parse(s)
}

fn parse_session_name(s: &str) -> Result<String, String> {
    crate::identity::check_session_name(s).map(|()| s.to_string())
}

/// STS: 2 to 1224 characters of `[\w+=,.@:/-]`.
fn parse_external_id(s: &str) -> Result<String, String> {
    sts_chars(s, 2, 1224, "_+=,.@:/-")
}

fn parse_mfa_token(s: &str) -> Result<String, String> {
    if s.len() == 6 && s.chars().all(|c| c.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err("six digits".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// The subcommands clap knows are the commands of `report::COMMANDS`, each once, by the same
    /// name, and each one's `--help` ends with its exit codes.
    #[test]
    fn subcommands_are_the_command_table() {
        let cmd = Cli::command();
        let clap_names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
        let table: Vec<&str> = crate::report::COMMANDS.iter().map(|c| c.name).collect();
        assert_eq!(clap_names, table);
        for c in crate::report::COMMANDS {
            assert_eq!(c.command.name(), c.name);
            assert_eq!(
                crate::report::COMMANDS
                    .iter()
                    .filter(|o| o.command == c.command)
                    .count(),
                1
            );
            let sub = cmd
                .find_subcommand(c.name)
                .unwrap_or_else(|| panic!("{}", c.name));
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert_eq!(help, c.command.exit_help(), "{}", c.name);
            assert_eq!(
                crate::report::CommandName::from_name(c.name).is_some(),
                c.reports
            );
        }
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli =
            Cli::try_parse_from(["atlas-iam", "whoami", "--format", "json", "--timeout", "5"])
                .expect("parses");
        assert_eq!(cli.global.format, Format::Json);
        assert_eq!(cli.global.timeout, 5);
    }

    #[test]
    fn duration_is_bounded() {
        assert!(Cli::try_parse_from(["atlas-iam", "assume", "--duration", "899"]).is_err());
        assert!(Cli::try_parse_from(["atlas-iam", "assume", "--duration", "43201"]).is_err());
        assert!(Cli::try_parse_from(["atlas-iam", "assume", "--duration", "900"]).is_ok());
    }

    #[test]
    fn dns_server_takes_an_ip_with_optional_port() {
        assert_eq!(
            parse_dns_server("127.0.0.1").expect("ip"),
            "127.0.0.1:53".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(parse_dns_server("[::1]:5353").expect("ip6").port(), 5353);
        assert!(parse_dns_server("dns.example").is_err());
    }

    #[test]
    fn session_names_follow_sts_rules() {
        assert!(parse_session_name("atlas-iam-1").is_ok());
        assert!(parse_session_name("a").is_err());
        assert!(parse_session_name("has space").is_err());
    }

    #[test]
    fn mfa_token_needs_its_serial() {
        assert!(Cli::try_parse_from(["atlas-iam", "assume", "--mfa-token", "123456"]).is_err());
        assert!(Cli::try_parse_from([
            "atlas-iam",
            "assume",
            "--mfa-token",
            "12345a",
            "--mfa-serial",
            "arn:aws:iam::123456789012:mfa/me"
        ])
        .is_err());
    }
}
