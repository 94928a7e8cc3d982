//! Everyday use: shell completions and the man page, generated from the command-line definition.

use crate::common::atlas_iam;

/// Loads the bash completion in bash, then asks it to complete `atlas-iam WORDS`.
fn complete_in_bash(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source '{}' || exit 9\n\
         complete -p atlas-iam >/dev/null || exit 8\n\
         COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT={}\n\
         _atlas__iam atlas-iam \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.len() - 1,
        line.len()
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash is needed to load the completion (Debian: apt-get install bash)");
    assert!(
        out.status.success(),
        "bash: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_bash_completion_loads_and_completes_commands_and_flags() {
    let out = atlas_iam().args(["completions", "bash"]).run();
    assert_eq!(out.code, 0, "{}", out.all());
    let script = out.dir.path().join("atlas-iam.bash");
    std::fs::write(&script, &out.stdout).expect("write the script");

    let commands = complete_in_bash(&script, &["atlas-iam", "r"]);
    assert!(commands.contains(&"roundtrip".to_string()), "{commands:?}");
    assert!(!commands.contains(&"whoami".to_string()), "{commands:?}");
    let flags = complete_in_bash(&script, &["atlas-iam", "ping", "--role"]);
    assert!(flags.contains(&"--role-arn".to_string()), "{flags:?}");
    let shells = complete_in_bash(&script, &["atlas-iam", "completions", "z"]);
    assert_eq!(shells, vec!["zsh".to_string()]);
    let formats = complete_in_bash(&script, &["atlas-iam", "whoami", "--format", "j"]);
    assert_eq!(formats, vec!["json".to_string()]);
}

#[test]
fn every_shell_gets_a_script_and_the_man_page_documents_every_command() {
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = atlas_iam().args(["completions", shell]).run();
        assert_eq!(out.code, 0, "{shell}: {}", out.all());
        assert!(out.stdout.contains("atlas-iam"), "{shell}: {}", out.stdout);
        assert!(out.stdout.contains("roundtrip"), "{shell}");
    }
    let out = atlas_iam().args(["completions", "tcsh"]).run();
    assert_eq!(
        out.code,
        2,
        "an unknown shell is a usage error: {}",
        out.all()
    );

    let man = atlas_iam().args(["man"]).run();
    assert_eq!(man.code, 0, "{}", man.all());
    assert!(man.stdout.contains(".TH atlas-iam 1"), "{}", man.stdout);
    for command in [
        "assume",
        "whoami",
        "uri",
        "ping",
        "list-collections",
        "roundtrip",
    ] {
        let escaped = format!("atlas-iam-{command}").replace('-', "\\-");
        assert!(
            man.stdout.contains(&escaped),
            "the man page lists {command}"
        );
    }
    assert!(
        man.stdout.contains("\\-\\-role\\-arn"),
        "global flags are documented"
    );
}

/// An example program as `cargo test` built it (target/debug/examples/NAME).
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: `cargo test --workspace` builds the examples (or `cargo build --example {name}`)",
        path.display()
    );
    path
}

/// The local Atlas with TLS.
fn tls_stack() -> atlas_iam_testkit::Stack {
    atlas_iam_testkit::Stack::start(atlas_iam_testkit::StackOptions {
        tls: true,
        ..Default::default()
    })
    .expect("local Atlas stack (moto from `bash .ci/setup`)")
}

/// An example program with the stack's AWS environment (the IAM user's keys, the STS endpoint)
/// and nothing else.
fn example_command(s: &atlas_iam_testkit::Stack, name: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(example(name));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(s.env());
    cmd
}

/// The cached client: one client across invocations; its provider keeps credentials until they
/// near expiry and then fetches new ones, while the first credentials, fixed as a URI would fix
/// them, are refused once expired (the STS gate expires session tokens as STS does).
#[test]
fn the_cached_client_example_refreshes_expiring_credentials_under_one_client() {
    let s = tls_stack();
    let account = s.account.clone().expect("account");
    let mut cmd = example_command(&s, "cached_client");
    cmd // idle connections close after a second: each invocation authenticates anew
        .env("MONGODB_URI", format!("{}&maxIdleTimeMS=1000", s.uri()))
        .env("ROLE_ARN", &account.role_arn)
        .env("SESSION_SECONDS", "6")
        .env("REFRESH_BEFORE_SECONDS", "2")
        .env("PAUSE_SECONDS", "3")
        .env("INVOCATIONS", "3");
    let out = cmd.output().expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let key = |line: &str| {
        line.split("with key ")
            .nth(1)
            .and_then(|k| k.split(';').next())
            .map(str::to_string)
    };
    assert!(lines[0].contains("fetched 1 time"), "{stdout}");
    assert!(lines[1].contains("fetched 1 time"), "cached: {stdout}");
    assert_eq!(key(lines[0]), key(lines[1]), "{stdout}");
    assert!(lines[2].contains("fetched 2 time"), "refreshed: {stdout}");
    assert_ne!(key(lines[0]), key(lines[2]), "{stdout}");
    assert!(
        lines[3].contains("refused") && lines[3].contains("Authentication failed."),
        "{stdout}"
    );
    assert!(!stdout.contains(&account.client.secret));
}

#[test]
fn the_assume_role_example_connects_as_the_role() {
    let s = tls_stack();
    let account = s.account.clone().expect("account");
    let run = |role: &str| {
        example_command(&s, "assume_role")
            .env("MONGODB_URI", s.uri())
            .env("ROLE_ARN", role)
            .env("SESSION_NAME", "from-a-test")
            .output()
            .expect("run the example")
    };
    let out = run(&account.role_arn);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "connected as {} (session from-a-test): ping ok",
            account.role_arn
        )),
        "{stdout}"
    );
    // a role this identity may not assume: the example fails, it does not hang or connect
    let other = s.create_role("not-trusting", &[]).expect("role");
    let out = run(&other);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
