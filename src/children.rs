//! Child processes (a profile's `credential_process`, started by the AWS SDK) must not outlive
//! the run: when --timeout cuts a stage, the SDK's future is dropped but its child keeps
//! running. At exit, every descendant of this process is killed.

/// Kills every process descended from this one (Linux: read from /proc); elsewhere nothing.
pub fn kill_descendants() -> usize {
    let mut killed = 0;
    #[cfg(target_os = "linux")]
    {
        let mut todo = children_of(std::process::id());
        let mut all = Vec::new();
        while let Some(pid) = todo.pop() {
            if all.contains(&pid) {
                continue;
            }
            all.push(pid);
            todo.extend(children_of(pid));
        }
        for pid in all {
            if let Ok(pid) = i32::try_from(pid) {
                if kill_process(pid) {
                    killed += 1;
                }
            }
        }
    }
    killed
}

#[cfg(target_os = "linux")]
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let path = task.path().join("children");
        if let Ok(text) = std::fs::read_to_string(path) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

#[cfg(target_os = "linux")]
fn kill_process(pid: i32) -> bool {
    // `kill -KILL PID` through the system's kill(1) keeps this crate free of unsafe code.
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// SIGINT, SIGTERM, SIGHUP (a closed terminal) and SIGQUIT, caught for the whole run, so that an
/// interrupted run still ends its children and prints its report. A roundtrip catches them from
/// before the driver's speculative work starts (its insert may come before the earlier stages are
/// reported), so that, interrupted after its insert, it still deletes its document.
pub struct Signals {
    on: bool,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    quit: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub fn install(on: bool) -> Signals {
        #[cfg(unix)]
        let listen = |kind| {
            if on {
                tokio::signal::unix::signal(kind).ok()
            } else {
                None
            }
        };
        Signals {
            on,
            #[cfg(unix)]
            int: listen(tokio::signal::unix::SignalKind::interrupt()),
            #[cfg(unix)]
            term: listen(tokio::signal::unix::SignalKind::terminate()),
            #[cfg(unix)]
            hup: listen(tokio::signal::unix::SignalKind::hangup()),
            #[cfg(unix)]
            quit: listen(tokio::signal::unix::SignalKind::quit()),
        }
    }

    pub async fn received(mut self) -> &'static str {
        if !self.on {
            return std::future::pending().await;
        }
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.int) => "SIGINT",
                _ = next(&mut self.term) => "SIGTERM",
                _ = next(&mut self.hup) => "SIGHUP",
                _ = next(&mut self.quit) => "SIGQUIT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
