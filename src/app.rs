//! `--app DIR`: the application's own manifest decides the driver (and its version) and shows
//! whether the MONGODB-AWS add-on is there. Every file is read as a regular file with a cap;
//! a file that cannot be read or parsed is a note, never a failure.
//!
//! What each add-on is and what its absence does: ATLAS.md ("What each driver reads").

use std::path::Path;

use crate::diagnosis::{Diagnosis, Kind};
use crate::drivers::{Driver, Name};

/// The most a manifest or lock file may hold (a large package-lock.json is a few MB).
const MAX_MANIFEST: u64 = 32 << 20;

/// MAJOR, MINOR.
type Version = (u64, u64);

/// A manifest reader: the driver it names, and the file(s) that said so.
type Finder = fn(&Path, &mut AppScan) -> Option<(Driver, String)>;

/// A requirement: its name (normalised), extras and version.
type Requirement = (String, Vec<String>, Option<Version>);

/// What the application's directory said.
#[derive(Debug, Default)]
pub struct AppScan {
    /// The driver found, with what its manifests say of the add-ons.
    pub driver: Option<Driver>,
    /// The file that named it.
    pub manifest: Option<String>,
    /// Add-ons missing where the driver fails without them (before any network traffic).
    pub errors: Vec<Diagnosis>,
    /// Add-ons missing where the driver then reads fewer sources.
    pub warnings: Vec<String>,
    /// Files that could not be read, other drivers found.
    pub notes: Vec<String>,
}

const PRUNERS: &str = "keep it in the dependencies the deployment installs: dependency pruners, \
    bundlers and slim layers have removed these lazily required packages before";

/// Reads the manifests of `dir`, in this order, and takes the first that names a driver.
pub fn scan(dir: &Path) -> Result<AppScan, Diagnosis> {
    if !dir.is_dir() {
        return Err(Diagnosis::new(
            Kind::InvalidConfig,
            format!("--app {}: not a directory", dir.display()),
            "give the application's directory (where its package.json, requirements.txt, \
             pyproject.toml, *.csproj, go.mod, pom.xml, build.gradle, Cargo.toml or \
             composer.json is)",
        ));
    }
    let mut scan = AppScan::default();
    let finders: [Finder; 7] = [node, python, csharp, go, java, rust, php];
    for find in finders {
        if let Some((driver, manifest)) = find(dir, &mut scan) {
            match &scan.driver {
                None => {
                    scan.driver = Some(driver);
                    scan.manifest = Some(manifest);
                }
                Some(_) => scan.notes.push(format!(
                    "{manifest} names {} too; {} decides",
                    driver.label(),
                    scan.manifest.as_deref().unwrap_or("the first manifest"),
                )),
            }
        }
    }
    if scan.driver.is_none() {
        scan.notes.push(format!(
            "no MongoDB driver found in the manifests of {}",
            dir.display()
        ));
    }
    // the add-on findings of the driver that decides
    if let Some(d) = scan.driver.clone() {
        addon_findings(&d, &mut scan);
    }
    Ok(scan)
}

fn read(dir: &Path, name: &str, scan: &mut AppScan) -> Option<String> {
    let path = dir.join(name);
    if !path.exists() {
        return None;
    }
    match crate::files::read_regular_text(&path, MAX_MANIFEST) {
        Ok(text) => Some(text),
        Err(why) => {
            scan.notes.push(format!("{name} not read: {why}"));
            None
        }
    }
}

/// Files in `dir` whose name satisfies `pick`, sorted (bounded: the first 50 entries that match).
fn files(dir: &Path, pick: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| pick(n))
                .take(50)
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn version_of(text: &str) -> Option<(u64, u64)> {
    // the first MAJOR.MINOR in a range or a pin: "^6.9.0", ">=4.6,<5", "v1.17.1", "[5.0,6)"
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let mut parts = rest[..end].split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

fn driver(name: Name, version: Option<(u64, u64)>) -> Driver {
    Driver {
        name,
        version,
        sdk: None,
        sso: None,
        process: None,
    }
}

fn node(dir: &Path, scan: &mut AppScan) -> Option<(Driver, String)> {
    let text = read(dir, "package.json", scan)?;
    let Ok(pkg) = serde_json::from_str::<serde_json::Value>(&text) else {
        scan.notes.push("package.json is not JSON".to_string());
        return None;
    };
    let dep = |name: &str| {
        ["dependencies", "optionalDependencies", "peerDependencies"]
            .iter()
            .find_map(|section| pkg[section][name].as_str().map(str::to_string))
    };
    let range = dep("mongodb")?;
    let lock = read(dir, "package-lock.json", scan)
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let yarn = read(dir, "yarn.lock", scan);
    let pnpm = read(dir, "pnpm-lock.yaml", scan);
    let locked = |name: &str| {
        lock.as_ref()
            .and_then(|l| {
                l["packages"][format!("node_modules/{name}")]["version"]
                    .as_str()
                    .or_else(|| l["dependencies"][name]["version"].as_str())
                    .map(str::to_string)
            })
            .or_else(|| yarn.as_deref().and_then(|t| yarn_locked(t, name)))
            .or_else(|| pnpm.as_deref().and_then(|t| pnpm_locked(t, name)))
    };
    let version = locked("mongodb")
        .as_deref()
        .and_then(version_of)
        .or_else(|| version_of(&range));
    let has = |name: &str| dep(name).is_some() || locked(name).is_some();
    let mut d = driver(Name::Node, version);
    d.sdk = Some(has("@aws-sdk/credential-providers"));
    // aws4: the Node driver before 7.1 signs with it
    if d.version.is_some_and(|v| v < (7, 1)) && !has("aws4") {
        scan.errors.push(Diagnosis::new(
            Kind::DriverAddonMissing,
            format!(
                "{} signs MONGODB-AWS with `aws4`, which package.json does not list: it fails \
                 before any network traffic (\"Optional module `aws4` not found\")",
                d.label()
            ),
            format!("npm install aws4; {PRUNERS}"),
        ));
    }
    let from = match (lock.is_some(), yarn.is_some(), pnpm.is_some()) {
        (true, _, _) => "package.json and package-lock.json",
        (_, true, _) => "package.json and yarn.lock",
        (_, _, true) => "package.json and pnpm-lock.yaml",
        _ => "package.json",
    };
    Some((d, from.to_string()))
}

/// A package's version in a yarn.lock (v1: `mongodb@^6.9.0:` then `  version "6.10.0"`; berry:
/// `"mongodb@npm:^6.9.0":` then `  version: 6.10.0`).
fn yarn_locked(text: &str, name: &str) -> Option<String> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with(' ') || !line.trim_end().ends_with(':') {
            continue;
        }
        let names_it = line
            .trim_end_matches(':')
            .split(", ")
            .any(|spec| spec.trim_matches('"').starts_with(&format!("{name}@")));
        if !names_it {
            continue;
        }
        for entry in lines.by_ref().take_while(|l| l.starts_with(' ')) {
            if let Some(v) = entry.trim().strip_prefix("version") {
                return Some(
                    v.trim_start_matches(':')
                        .trim()
                        .trim_matches('"')
                        .to_string(),
                );
            }
        }
    }
    None
}

/// A package's version in a pnpm-lock.yaml (`  mongodb@6.10.0:`, `  /mongodb@6.10.0:`, with or
/// without quotes and a peer suffix in parentheses).
fn pnpm_locked(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let key = line.trim().trim_end_matches(':').trim_matches(['\'', '"']);
        let key = key.strip_prefix('/').unwrap_or(key);
        let version = key.strip_prefix(name)?.strip_prefix('@')?;
        let version = version.split('(').next().unwrap_or(version);
        version
            .starts_with(|c: char| c.is_ascii_digit())
            .then(|| version.to_string())
    })
}

/// A requirement line or dependency string: its name (normalised), extras and version.
fn requirement(line: &str) -> Option<Requirement> {
    let line = line.split('#').next()?.trim();
    if line.is_empty() || line.starts_with('-') {
        return None;
    }
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(line.len());
    let name = line[..end].to_ascii_lowercase().replace('_', "-");
    let rest = &line[end..];
    let extras = match (rest.trim_start().strip_prefix('['), rest.find(']')) {
        (Some(inner), Some(_)) => inner
            .split(']')
            .next()
            .unwrap_or_default()
            .split(',')
            .map(|e| e.trim().to_ascii_lowercase())
            .collect(),
        _ => Vec::new(),
    };
    let version = rest.split(']').next_back().and_then(version_of);
    Some((name, extras, version))
}

fn python(dir: &Path, scan: &mut AppScan) -> Option<(Driver, String)> {
    let mut found: Option<(Option<Version>, bool, String)> = None;
    let mut addon = false;
    let mut note = |name: &str, extras: &[String], version, from: &str| {
        if name == "pymongo-auth-aws" {
            addon = true;
        }
        if name == "pymongo" && found.is_none() {
            found = Some((version, extras.iter().any(|e| e == "aws"), from.to_string()));
        }
    };
    for file in files(dir, |n| {
        n.starts_with("requirements") && n.ends_with(".txt")
    }) {
        if let Some(text) = read(dir, &file, scan) {
            for (name, extras, version) in text.lines().filter_map(requirement) {
                note(&name, &extras, version, &file);
            }
        }
    }
    if let Some(text) = read(dir, "pyproject.toml", scan) {
        match text.parse::<toml::Table>() {
            Ok(t) => {
                let listed = t
                    .get("project")
                    .and_then(|p| p.get("dependencies"))
                    .and_then(toml::Value::as_array);
                for dep in listed.into_iter().flatten().filter_map(toml::Value::as_str) {
                    if let Some((name, extras, version)) = requirement(dep) {
                        note(&name, &extras, version, "pyproject.toml");
                    }
                }
                let poetry = t
                    .get("tool")
                    .and_then(|p| p.get("poetry"))
                    .and_then(|p| p.get("dependencies"))
                    .and_then(toml::Value::as_table);
                for (name, spec) in poetry.into_iter().flatten() {
                    let name = name.to_ascii_lowercase().replace('_', "-");
                    let (version, extras) = match spec {
                        toml::Value::String(v) => (version_of(v), Vec::new()),
                        toml::Value::Table(t) => (
                            t.get("version")
                                .and_then(|v| v.as_str())
                                .and_then(version_of),
                            t.get("extras")
                                .and_then(|e| e.as_array())
                                .map(|e| {
                                    e.iter()
                                        .filter_map(|x| x.as_str().map(str::to_ascii_lowercase))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        ),
                        _ => (None, Vec::new()),
                    };
                    note(&name, &extras, version, "pyproject.toml");
                }
            }
            Err(_) => scan.notes.push("pyproject.toml is not TOML".to_string()),
        }
    }
    // the lock files say what is installed: pymongo's version, and whether the add-on is there
    let mut locked_version = None;
    let mut from_lock = None;
    for lock in ["poetry.lock", "uv.lock"] {
        let Some(text) = read(dir, lock, scan) else {
            continue;
        };
        let Ok(t) = text.parse::<toml::Table>() else {
            scan.notes.push(format!("{lock} is not TOML"));
            continue;
        };
        let packages = t.get("package").and_then(toml::Value::as_array);
        for p in packages.into_iter().flatten() {
            let name = p.get("name").and_then(|n| n.as_str()).unwrap_or_default();
            let version = p.get("version").and_then(|v| v.as_str());
            match name {
                "pymongo" => {
                    locked_version = version.and_then(version_of);
                    from_lock = Some(lock);
                }
                "pymongo-auth-aws" => addon = true,
                _ => {}
            }
        }
    }
    let (version, extra, from) = found?;
    let mut d = driver(Name::Python, locked_version.or(version));
    d.sdk = Some(extra || addon);
    let from = match from_lock {
        Some(lock) => format!("{from} and {lock}"),
        None => from,
    };
    Some((d, from))
}

fn xml_packages(text: &str) -> Option<Vec<(String, Option<String>)>> {
    let doc = roxmltree::Document::parse(text).ok()?;
    Some(
        doc.descendants()
            .filter(|n| n.has_tag_name("PackageReference"))
            .filter_map(|n| {
                let name = n.attribute("Include").or_else(|| n.attribute("Update"))?;
                let version = n.attribute("Version").map(str::to_string).or_else(|| {
                    n.children()
                        .find(|c| c.has_tag_name("Version"))
                        .and_then(|c| c.text())
                        .map(str::to_string)
                });
                Some((name.to_string(), version))
            })
            .collect(),
    )
}

fn csharp(dir: &Path, scan: &mut AppScan) -> Option<(Driver, String)> {
    for file in files(dir, |n| n.ends_with(".csproj")) {
        let Some(text) = read(dir, &file, scan) else {
            continue;
        };
        let Some(packages) = xml_packages(&text) else {
            scan.notes.push(format!("{file} is not XML"));
            continue;
        };
        let get = |name: &str| {
            packages
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let Some(version) = get("MongoDB.Driver") else {
            continue;
        };
        // packages.lock.json: what was resolved
        let resolved = read(dir, "packages.lock.json", scan)
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|l| {
                l["dependencies"].as_object()?.values().find_map(|fw| {
                    fw["MongoDB.Driver"]["resolved"]
                        .as_str()
                        .map(str::to_string)
                })
            });
        let mut d = driver(
            Name::Csharp,
            resolved
                .as_deref()
                .and_then(version_of)
                .or_else(|| version.as_deref().and_then(version_of)),
        );
        d.sdk = Some(get("MongoDB.Driver.Authentication.AWS").is_some());
        d.sso = Some(get("AWSSDK.SSO").is_some() && get("AWSSDK.SSOOIDC").is_some());
        return Some((d, file));
    }
    None
}

fn go(dir: &Path, scan: &mut AppScan) -> Option<(Driver, String)> {
    let text = read(dir, "go.mod", scan)?;
    let version = text.lines().find_map(|l| {
        let l = l.trim().trim_start_matches("require").trim();
        let (module, version) = l.split_once(char::is_whitespace)?;
        (module == "go.mongodb.org/mongo-driver" || module == "go.mongodb.org/mongo-driver/v2")
            .then(|| version_of(version))
    })?;
    Some((driver(Name::Go, version), "go.mod".to_string()))
}

fn java(dir: &Path, scan: &mut AppScan) -> Option<(Driver, String)> {
    const ARTIFACTS: [&str; 4] = [
        "mongodb-driver-sync",
        "mongodb-driver-reactivestreams",
        "mongodb-driver-core",
        "mongodb-driver-kotlin-coroutine",
    ];
    if let Some(text) = read(dir, "pom.xml", scan) {
        match roxmltree::Document::parse(&text) {
            Ok(doc) => {
                let child = |n: roxmltree::Node<'_, '_>, tag: &str| {
                    n.children()
                        .find(|c| c.has_tag_name(tag))
                        .and_then(|c| c.text())
                        .map(str::trim)
                        .map(str::to_string)
                };
                let deps: Vec<(String, String, Option<String>)> = doc
                    .descendants()
                    .filter(|n| n.has_tag_name("dependency"))
                    .filter_map(|n| {
                        Some((
                            child(n, "groupId")?,
                            child(n, "artifactId")?,
                            child(n, "version"),
                        ))
                    })
                    .collect();
                if let Some((_, _, version)) = deps
                    .iter()
                    .find(|(g, a, _)| g == "org.mongodb" && ARTIFACTS.contains(&a.as_str()))
                {
                    let mut d = driver(Name::Java, version.as_deref().and_then(version_of));
                    d.sdk =
                        Some(deps.iter().any(|(g, _, _)| {
                            g == "software.amazon.awssdk" || g == "com.amazonaws"
                        }));
                    return Some((d, "pom.xml".to_string()));
                }
            }
            Err(_) => scan.notes.push("pom.xml is not XML".to_string()),
        }
    }
    for file in ["build.gradle.kts", "build.gradle"] {
        let Some(text) = read(dir, file, scan) else {
            continue;
        };
        let coordinate = ARTIFACTS.iter().find_map(|a| {
            let key = format!("org.mongodb:{a}");
            let at = text.find(&key)?;
            Some(text[at + key.len()..].chars().take(40).collect::<String>())
        });
        let Some(after) = coordinate else {
            continue;
        };
        let version = after.strip_prefix(':').and_then(version_of);
        let mut d = driver(Name::Java, version);
        d.sdk = Some(text.contains("software.amazon.awssdk") || text.contains("com.amazonaws"));
        return Some((d, file.to_string()));
    }
    None
}

fn rust(dir: &Path, scan: &mut AppScan) -> Option<(Driver, String)> {
    let text = read(dir, "Cargo.toml", scan)?;
    let Ok(t) = text.parse::<toml::Table>() else {
        scan.notes.push("Cargo.toml is not TOML".to_string());
        return None;
    };
    let deps = t.get("dependencies").and_then(toml::Value::as_table)?;
    let spec = deps.get("mongodb")?;
    let features = |spec: &toml::Value| -> Vec<String> {
        spec.get("features")
            .and_then(toml::Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let declared = match spec {
        toml::Value::String(v) => version_of(v),
        other => other
            .get("version")
            .and_then(|v| v.as_str())
            .and_then(version_of),
    };
    let locked = read(dir, "Cargo.lock", scan)
        .and_then(|l| l.parse::<toml::Table>().ok())
        .and_then(|l| {
            l.get("package")?.as_array()?.iter().find_map(|p| {
                (p.get("name")?.as_str()? == "mongodb")
                    .then(|| p.get("version")?.as_str().and_then(version_of))
                    .flatten()
            })
        });
    let mut d = driver(Name::Rust, locked.or(declared));
    d.sdk = Some(features(spec).iter().any(|f| f == "aws-auth"));
    // aws-config's own features, where the application depends on it (its defaults include both)
    if let Some(aws) = deps.get("aws-config") {
        let defaults = aws
            .get("default-features")
            .and_then(toml::Value::as_bool)
            .unwrap_or(true);
        let f = features(aws);
        d.sso = Some(defaults || f.iter().any(|x| x == "sso"));
        d.process = Some(defaults || f.iter().any(|x| x == "credentials-process"));
    }
    let from = if locked.is_some() {
        "Cargo.toml and Cargo.lock"
    } else {
        "Cargo.toml"
    };
    Some((d, from.to_string()))
}

fn php(dir: &Path, scan: &mut AppScan) -> Option<(Driver, String)> {
    let text = read(dir, "composer.json", scan)?;
    let json = serde_json::from_str::<serde_json::Value>(&text).ok()?;
    let version = json["require"]["mongodb/mongodb"].as_str()?;
    Some((
        driver(Name::Php, version_of(version)),
        "composer.json".to_string(),
    ))
}

/// The add-on findings of the driver found.
fn addon_findings(d: &Driver, scan: &mut AppScan) {
    let label = d.label();
    match d.name {
        Name::Node if d.sdk == Some(false) => {
            if d.major().is_none_or(|m| m >= 7) {
                scan.errors.push(Diagnosis::new(
                    Kind::DriverAddonMissing,
                    format!(
                        "{label} requires @aws-sdk/credential-providers for MONGODB-AWS, which \
                         package.json does not list: it fails before any network traffic \
                         (\"Optional module `@aws-sdk/credential-providers` not found\")"
                    ),
                    format!("npm install @aws-sdk/credential-providers; {PRUNERS}"),
                ));
            } else {
                scan.warnings.push(format!(
                    "{label} reads only the environment's keys, ECS and EC2: no profiles, web \
                     identity or Pod Identity; npm install @aws-sdk/credential-providers to have \
                     it read the AWS SDK's chain ({PRUNERS})"
                ));
            }
        }
        Name::Python if d.sdk == Some(false) => scan.errors.push(Diagnosis::new(
            Kind::DriverAddonMissing,
            "pymongo is installed without its aws extra: `MONGODB-AWS authentication requires \
             pymongo-auth-aws: install with: python -m pip install 'pymongo[aws]'`",
            format!(
                "depend on pymongo[aws] (requirements: `pymongo[aws]`; poetry: `poetry add \
                 'pymongo[aws]'`; uv: `uv add 'pymongo[aws]'`); {PRUNERS}"
            ),
        )),
        Name::Csharp if d.sdk == Some(false) && d.major().is_none_or(|m| m >= 3) => {
            let version = d
                .version
                .map(|(a, b)| format!(" --version {a}.{b}.*"))
                .unwrap_or_default();
            scan.errors.push(Diagnosis::new(
                Kind::DriverAddonMissing,
                format!(
                    "{label} reads MONGODB-AWS only through the package \
                     MongoDB.Driver.Authentication.AWS, which the project does not reference: \
                     `System.NotSupportedException: Unable to create an authenticator.`"
                ),
                format!(
                    "dotnet add package MongoDB.Driver.Authentication.AWS{version} (the same \
                     version as MongoDB.Driver); {PRUNERS}"
                ),
            ));
        }
        Name::Rust if d.sdk == Some(false) => scan.errors.push(Diagnosis::new(
            Kind::DriverAddonMissing,
            format!("{label} is built without its `aws-auth` feature: MONGODB-AWS is not in it"),
            "cargo add mongodb --features aws-auth",
        )),
        Name::Java if d.sdk == Some(false) => scan.warnings.push(format!(
            "{label}: without the AWS SDK on the classpath the driver reads only the \
             environment's keys, ECS and EC2, not web identity (EKS IRSA) or Pod Identity; add \
             software.amazon.awssdk:sts (and :auth) to have it read the SDK's chain"
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(files: &[(&str, &str)]) -> (tempfile::TempDir, AppScan) {
        let dir = tempfile::tempdir().expect("dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let scan = scan(dir.path()).expect("scan");
        (dir, scan)
    }

    #[test]
    fn node_manifests_decide_the_driver_and_its_add_ons() {
        let (_d, s) = app(&[
            ("package.json", r#"{"dependencies":{"mongodb":"^6.9.0"}}"#),
            (
                "package-lock.json",
                r#"{"packages":{"node_modules/mongodb":{"version":"6.10.0"}}}"#,
            ),
        ]);
        let d = s.driver.expect("driver");
        assert_eq!(
            (d.name, d.version, d.sdk),
            (Name::Node, Some((6, 10)), Some(false))
        );
        assert!(
            s.errors.iter().any(|e| e.hint.contains("npm install aws4")),
            "{:?}",
            s.errors
        );
        assert!(s
            .warnings
            .iter()
            .any(|w| w.contains("@aws-sdk/credential-providers")));
        let (_d, s) = app(&[(
            "package.json",
            r#"{"dependencies":{"mongodb":"7.1.0","@aws-sdk/credential-providers":"^3"}}"#,
        )]);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        let (_d, s) = app(&[("package.json", r#"{"dependencies":{"mongodb":"7.1.0"}}"#)]);
        assert!(s
            .errors
            .iter()
            .any(|e| e.cause.contains("requires @aws-sdk/credential-providers")));
    }

    #[test]
    fn yarn_and_pnpm_locks_give_the_version() {
        let yarn = "# yarn lockfile v1\n\nmongodb-connection-string-url@^3.0.0:\n  version \"3.0.1\"\n\nmongodb@^6.9.0, mongodb@^6.10.0:\n  version \"6.10.0\"\n  resolved \"x\"\n";
        assert_eq!(yarn_locked(yarn, "mongodb").as_deref(), Some("6.10.0"));
        let berry = "\"mongodb@npm:^6.9.0\":\n  version: 6.12.0\n";
        assert_eq!(yarn_locked(berry, "mongodb").as_deref(), Some("6.12.0"));
        let pnpm = "packages:\n\n  mongodb-connection-string-url@3.0.1:\n    resolution: {}\n  mongodb@6.11.0(@aws-sdk/credential-providers@3.600.0):\n    resolution: {}\n";
        assert_eq!(pnpm_locked(pnpm, "mongodb").as_deref(), Some("6.11.0"));
        assert_eq!(pnpm_locked(pnpm, "aws4"), None);
        let (_d, s) = app(&[
            (
                "package.json",
                r#"{"dependencies":{"mongodb":"^6.9.0","aws4":"^1"}}"#,
            ),
            ("yarn.lock", yarn),
        ]);
        assert_eq!(s.driver.expect("driver").version, Some((6, 10)));
        assert_eq!(s.manifest.as_deref(), Some("package.json and yarn.lock"));
    }

    #[test]
    fn python_manifests_and_locks() {
        let (_d, s) = app(&[("requirements.txt", "flask==3.0\npymongo==4.10.1\n")]);
        let d = s.driver.expect("driver");
        assert_eq!(
            (d.name, d.version, d.sdk),
            (Name::Python, Some((4, 10)), Some(false))
        );
        assert!(s.errors.iter().any(|e| e.hint.contains("pymongo[aws]")));
        let (_d, s) = app(&[("requirements-prod.txt", "pymongo[aws]>=4.6  # the driver\n")]);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        let (_d, s) = app(&[
            (
                "pyproject.toml",
                "[tool.poetry.dependencies]\npython = \"^3.11\"\npymongo = \"^4.6\"\n",
            ),
            (
                "poetry.lock",
                "[[package]]\nname = \"pymongo\"\nversion = \"4.8.0\"\n\n[[package]]\nname = \"pymongo-auth-aws\"\nversion = \"1.3.0\"\n",
            ),
        ]);
        let d = s.driver.expect("driver");
        assert_eq!((d.version, d.sdk), (Some((4, 8)), Some(true)));
    }

    #[test]
    fn csharp_go_java_rust_php() {
        let (_d, s) = app(&[(
            "Api.csproj",
            r#"<Project><ItemGroup><PackageReference Include="MongoDB.Driver" Version="3.1.0" /></ItemGroup></Project>"#,
        )]);
        assert!(s.errors.iter().any(|e| e
            .hint
            .contains("dotnet add package MongoDB.Driver.Authentication.AWS --version 3.1.*")));
        let (_d, s) = app(&[(
            "go.mod",
            "module x\n\nrequire (\n\tgo.mongodb.org/mongo-driver/v2 v2.1.0\n)\n",
        )]);
        assert_eq!(
            s.driver.map(|d| (d.name, d.version)),
            Some((Name::Go, Some((2, 1))))
        );
        let (_d, s) = app(&[(
            "pom.xml",
            "<project><dependencies><dependency><groupId>org.mongodb</groupId>\
             <artifactId>mongodb-driver-sync</artifactId><version>5.2.0</version></dependency>\
             </dependencies></project>",
        )]);
        let d = s.driver.expect("java");
        assert_eq!((d.name, d.sdk), (Name::Java, Some(false)));
        assert!(s
            .warnings
            .iter()
            .any(|w| w.contains("software.amazon.awssdk:sts")));
        let (_d, s) = app(&[(
            "build.gradle.kts",
            "dependencies {\n implementation(\"org.mongodb:mongodb-driver-sync:5.1.4\")\n implementation(\"software.amazon.awssdk:sts:2.25.0\")\n}\n",
        )]);
        let d = s.driver.expect("gradle");
        assert_eq!((d.version, d.sdk), (Some((5, 1)), Some(true)));
        let (_d, s) = app(&[("Cargo.toml", "[dependencies]\nmongodb = \"3.3\"\n")]);
        assert!(s
            .errors
            .iter()
            .any(|e| e.hint.contains("cargo add mongodb --features aws-auth")));
        let (_d, s) = app(&[(
            "Cargo.toml",
            "[dependencies]\nmongodb = { version = \"3.3\", features = [\"aws-auth\"] }\n",
        )]);
        assert!(s.errors.is_empty());
        let (_d, s) = app(&[(
            "composer.json",
            r#"{"require":{"mongodb/mongodb":"^1.19"}}"#,
        )]);
        assert_eq!(s.driver.map(|d| d.name), Some(Name::Php));
        // nothing: a note, no driver
        let (_d, s) = app(&[("README.md", "hello")]);
        assert!(s.driver.is_none() && !s.notes.is_empty());
    }
}
