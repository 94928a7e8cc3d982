//! Everyday use: shell completions and the man page, generated from the command-line definition.

mod common;

use common::atlas_iam;

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
