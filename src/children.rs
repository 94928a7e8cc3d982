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
