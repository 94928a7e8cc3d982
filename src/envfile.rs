//! Loading the env file: `--env-file PATH`, or `.env` in the current directory when present.
//! Variables already in the environment win over the file; nothing is set when the file has an
//! error, and errors never quote a value (it may be a secret).

use std::path::{Path, PathBuf};

use crate::diagnosis::{Diagnosis, Kind};

#[derive(Debug, Clone)]
pub enum EnvFile {
    /// No file was given and there is no `.env` here.
    Absent,
    /// Loaded: the path, how many variables it set, how many the environment already had.
    Loaded {
        path: PathBuf,
        set: usize,
        overridden: usize,
    },
    Failed(Diagnosis),
}

pub const DEFAULT_ENV_FILE: &str = ".env";

/// Reads the env file and sets the variables it has that the environment does not.
/// Call before any thread is started (it writes the process environment).
pub fn load(explicit: Option<&Path>) -> EnvFile {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = PathBuf::from(DEFAULT_ENV_FILE);
            if !p.exists() {
                return EnvFile::Absent;
            }
            p
        }
    };
    match parse(&path) {
        Ok(vars) => {
            let mut set = 0;
            let mut overridden = 0;
            for (key, value) in vars {
                if std::env::var_os(&key).is_some() {
                    overridden += 1;
                } else {
                    std::env::set_var(&key, value);
                    set += 1;
                }
            }
            EnvFile::Loaded {
                path,
                set,
                overridden,
            }
        }
        Err(d) => EnvFile::Failed(d),
    }
}

/// Parses the file without touching the environment.
pub fn parse(path: &Path) -> Result<Vec<(String, String)>, Diagnosis> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnosis::new(
            Kind::EnvFile,
            format!("cannot read env file {shown}: {e}"),
            "give a readable file with --env-file, or remove the flag",
        )
    })?;
    let iter = dotenvy::from_read_iter(text.as_bytes());
    let mut vars = Vec::new();
    for item in iter {
        match item {
            Ok(kv) => vars.push(kv),
            Err(dotenvy::Error::LineParse(line, _)) => {
                let number = text
                    .lines()
                    .position(|l| l.contains(line.trim()))
                    .map(|i| format!(" at line {}", i + 1))
                    .unwrap_or_default();
                let key: String = line
                    .split('=')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .chars()
                    .take(40)
                    .collect();
                return Err(Diagnosis::new(
                    Kind::EnvFile,
                    format!(
                        "cannot parse env file {shown}{number} (entry `{key}`; value not shown)"
                    ),
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
