//! Loading the env file: `--env-file PATH`, or `.env` in the current directory when present.
//! Variables already in the environment win over the file; nothing is set when the file has an
//! error, and errors never quote a line or a value (it may be a secret).
//!
//! A `.env` found in the current directory may come with a freshly cloned repository, so it may
//! set only what atlas-iam documents as data (`variables::VARIABLES` marked implicit: the target, database, region,
//! format, the AWS key triple, role ARNs, the profile name). What chooses code to run or where
//! credentials go (config files with `credential_process`, endpoints, CA bundles, container and
//! web-identity sources, proxies) is refused from it with a warning; `--env-file PATH` is the
//! user's own choice and may set anything.

use std::path::{Path, PathBuf};

use crate::diagnosis::{Diagnosis, Kind};
use crate::files::{read_regular_text, MAX_FILE_BYTES};

#[derive(Debug, Clone)]
pub enum EnvFile {
    /// No file was given and there is no `.env` here.
    Absent,
    /// Loaded: the path, whether it was named with --env-file, and the names (never values) it
    /// set, that the environment already had, that were refused and that were ignored.
    Loaded {
        path: PathBuf,
        explicit: bool,
        set: Vec<String>,
        overridden: Vec<String>,
        refused: Vec<String>,
        ignored: Vec<String>,
        /// Names the file set whose value the user also gave on the command line.
        confirmed: Vec<String>,
    },
    Failed(Diagnosis),
}

/// Where a value came from: the user's own say-so (a flag, the real environment, a file named
/// with --env-file) or a `.env` found in the current directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Environment,
    /// `--env-file PATH`
    EnvFile(PathBuf),
    /// a `.env` found in the current directory
    DotEnv(PathBuf),
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::Flag => "flag".into(),
            Origin::Environment => "environment".into(),
            Origin::EnvFile(p) => format!("--env-file {}", p.display()),
            Origin::DotEnv(p) => format!("{} found in the current directory", p.display()),
        }
    }
}

pub const DEFAULT_ENV_FILE: &str = ".env";

pub use crate::variables::is_dangerous;

/// Reads the env file and sets the variables it has that the environment does not (for an
/// implicit `.env`, only the registry's data, `variables::implicit_env_may_set`). Call before any thread is started (it writes the
/// process environment).
pub fn load(explicit: Option<&Path>) -> EnvFile {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = PathBuf::from(DEFAULT_ENV_FILE);
            if std::fs::symlink_metadata(&p).is_err() {
                return EnvFile::Absent;
            }
            p
        }
    };
    let parsed = read(&path).and_then(|text| {
        if explicit.is_none() {
            refuse_substitution(&path, &text)?;
        }
        parse_text(&path, &text)
    });
    match parsed {
        Ok(vars) => {
            let (mut set, mut overridden, mut refused, mut ignored) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (key, value) in vars {
                if explicit.is_none() && !crate::variables::implicit_env_may_set(&key) {
                    if is_dangerous(&key) {
                        refused.push(key);
                    } else {
                        ignored.push(key);
                    }
                } else if std::env::var_os(&key).is_some() {
                    overridden.push(key);
                } else {
                    std::env::set_var(&key, value);
                    set.push(key);
                }
            }
            EnvFile::Loaded {
                path,
                explicit: explicit.is_some(),
                set,
                overridden,
                refused,
                ignored,
                confirmed: Vec::new(),
            }
        }
        Err(d) => EnvFile::Failed(d),
    }
}

impl EnvFile {
    /// The user also gave `name` on the command line (seen before the file was read): a value
    /// the file set for it is then the user's own, not the file's.
    pub fn confirm(&mut self, name: &str, given: bool) {
        if let EnvFile::Loaded { set, confirmed, .. } = self {
            if given && set.iter().any(|n| n == name) {
                confirmed.push(name.to_string());
            }
        }
    }

    /// Where the value `value` of `name` came from, `current` being what the environment holds
    /// for it now (after the file was applied).
    pub fn origin(&self, name: &str, value: &str, current: Option<&str>) -> Origin {
        let same = current.is_some_and(|c| c.trim() == value.trim());
        match self {
            EnvFile::Loaded {
                path,
                explicit,
                set,
                confirmed,
                ..
            } if same && set.iter().any(|n| n == name) && !confirmed.iter().any(|n| n == name) => {
                if *explicit {
                    Origin::EnvFile(path.clone())
                } else {
                    Origin::DotEnv(path.clone())
                }
            }
            EnvFile::Loaded { confirmed, .. } if confirmed.iter().any(|n| n == name) => {
                Origin::Flag
            }
            _ if same => Origin::Environment,
            _ => Origin::Flag,
        }
    }

    /// For the config stage's detail: the names taken, kept and ignored.
    pub fn describe(&self) -> Option<String> {
        let EnvFile::Loaded {
            path,
            set,
            overridden,
            ignored,
            ..
        } = self
        else {
            return None;
        };
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let mut s = format!(
            "env file {} (set {}; already in the environment: {}",
            path.display(),
            list(set),
            list(overridden)
        );
        if !ignored.is_empty() {
            s.push_str(&format!(
                "; ignored, not atlas-iam's: {}",
                ignored.join(", ")
            ));
        }
        s.push(')');
        Some(s)
    }

    /// For the config stage's warnings: what an implicit file was refused.
    pub fn warnings(&self) -> Vec<String> {
        match self {
            EnvFile::Loaded {
                path,
                explicit: false,
                refused,
                ..
            } if !refused.is_empty() => vec![format!(
                "{} was found in the current directory, and such a file may set only data \
                 (target, database, region, format, keys, role, profile): {} not taken from it, \
                 since they choose code to run or where credentials go; if the file is yours, \
                 pass --env-file {}",
                path.display(),
                refused.join(", "),
                path.display()
            )],
            _ => Vec::new(),
        }
    }
}

/// An implicit `.env` may not pull other variables into its values (`X=${AWS_SECRET_ACCESS_KEY}`
/// would carry a secret into a connection string's options, and so to a server).
fn refuse_substitution(path: &Path, text: &str) -> Result<(), Diagnosis> {
    for (i, line) in text.lines().enumerate() {
        let Some((_, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim_start();
        if line.trim_start().starts_with('#') || value.starts_with('\'') {
            continue;
        }
        let b = value.as_bytes();
        let substitutes = b
            .windows(2)
            .any(|w| w[0] == b'$' && (w[1] == b'{' || w[1] == b'_' || w[1].is_ascii_alphabetic()));
        if substitutes {
            return Err(Diagnosis::new(
                Kind::EnvFile,
                format!(
                    "{} line {} refers to another variable with $: an env file found in the \
                     current directory may not copy variables into its values (line not shown)",
                    path.display(),
                    i + 1
                ),
                "write a literal $ as %24 in a connection string (authSource=%24external) or \
                 single-quote the value; or name the file with --env-file if it is yours",
            ));
        }
    }
    Ok(())
}

/// The file's text: a regular file under the size cap.
fn read(path: &Path) -> Result<String, Diagnosis> {
    read_regular_text(path, MAX_FILE_BYTES).map_err(|e| {
        Diagnosis::new(
            Kind::EnvFile,
            format!("cannot read env file {}: {e}", path.display()),
            "give a readable file with --env-file, or remove the flag",
        )
    })
}

/// Parses the file without touching the environment.
pub fn parse(path: &Path) -> Result<Vec<(String, String)>, Diagnosis> {
    parse_text(path, &read(path)?)
}

fn parse_text(path: &Path, text: &str) -> Result<Vec<(String, String)>, Diagnosis> {
    let shown = path.display();
    let iter = dotenvy::from_read_iter(text.as_bytes());
    let mut vars = Vec::new();
    for item in iter {
        match item {
            Ok((k, v)) => {
                // the process environment cannot hold a NUL or a name with `=`: refused here,
                // never handed to set_var (whose panic would print the value)
                let name_ok = !k.is_empty() && !k.contains(['=', '\0']);
                if !name_ok || v.contains('\0') {
                    let which = if name_ok && looks_like_a_name(&k) {
                        format!("the value of `{k}`")
                    } else {
                        "a variable's name".to_string()
                    };
                    return Err(Diagnosis::new(
                        Kind::EnvFile,
                        format!(
                            "env file {shown}: {which} holds a NUL byte (or a name an `=`), which \
                             no environment variable can hold (value not shown)"
                        ),
                        "save the file as plain text (a UTF-16 file, or a binary pasted into it, \
                         has NUL bytes) and set the value again",
                    ));
                }
                vars.push((k, v))
            }
            Err(dotenvy::Error::LineParse(line, _)) => {
                let number = text
                    .lines()
                    .position(|l| !line.trim().is_empty() && l.contains(line.trim()))
                    .map(|i| format!(" at line {}", i + 1))
                    .unwrap_or_default();
                // The name only when it is one (a secret pasted alone on a line is not).
                let key = line
                    .split_once('=')
                    .map(|(k, _)| k.trim().trim_start_matches("export ").trim())
                    .filter(|k| {
                        !k.is_empty()
                            && k.len() <= 64
                            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                            && crate::envfile::looks_like_a_name(k)
                    })
                    .map(|k| format!("entry `{k}`; "))
                    .unwrap_or_default();
                return Err(Diagnosis::new(
                    Kind::EnvFile,
                    format!("cannot parse env file {shown}{number} ({key}line not shown)"),
                    "each line must be KEY=value; quote values with spaces or # in them",
                ));
            }
            Err(e) => {
                return Err(Diagnosis::new(
                    Kind::EnvFile,
                    format!("cannot read env file {shown}: {}", describe(&e)),
                    "each line must be KEY=value; quote values with spaces or # in them",
                ));
            }
        }
    }
    Ok(vars)
}

/// A variable name as people write them (upper case, digits, underscores), not a random token
/// that happens to be alphanumeric.
pub fn looks_like_a_name(k: &str) -> bool {
    let key_id = (k.starts_with("AKIA") || k.starts_with("ASIA")) && !k.contains('_');
    !key_id
        && k.chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn describe(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::Io(io) => io.to_string(),
        dotenvy::Error::EnvVar(v) => v.to_string(),
        // LineParse carries the line, which may hold a secret.
        _ => "malformed line".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(content.as_bytes()).expect("write");
        f
    }

    #[test]
    fn parses_plain_and_quoted_values() {
        let f = file("A=1\n# comment\nB=\"two words\"\nexport C=x+y/z=\n");
        let vars = parse(f.path()).expect("parses");
        assert_eq!(
            vars,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x+y/z=".into())
            ]
        );
    }

    #[test]
    fn a_bad_line_is_reported_without_its_value() {
        let f = file("A=1\nAWS_SECRET_ACCESS_KEY='unterminated-secret-value\n");
        let d = parse(f.path()).expect_err("must fail");
        assert_eq!(d.kind, Kind::EnvFile);
        assert!(
            !d.cause.contains("unterminated-secret-value"),
            "{}",
            d.cause
        );
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let d = parse(Path::new("/nonexistent/atlas-iam.env")).expect_err("must fail");
        assert!(d.cause.contains("cannot read env file"), "{}", d.cause);
    }
}
