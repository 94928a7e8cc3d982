//! Reading the files a user names (env files, CA files): only regular files, never more than a
//! cap, and never blocking on a FIFO or a device, so that a hostile path ends in a clear error
//! instead of a hang or unbounded memory.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Env files and CA bundles are small; a megabyte is far beyond any real one.
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a regular file of at most `cap` bytes. The error says why, without the content.
pub(crate) fn read_regular(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file (a directory, FIFO or device is never read)".into());
    }
    if meta.len() > cap {
        return Err(format!(
            "{} bytes, more than the {cap} bytes such a file may have",
            meta.len()
        ));
    }
    let file = open_nonblocking(path).map_err(|e| e.to_string())?;
    // The path may have been swapped between the check and the open: check what was opened.
    let opened = file.metadata().map_err(|e| e.to_string())?;
    if !opened.is_file() {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > cap {
        return Err(format!("more than the {cap} bytes such a file may have"));
    }
    Ok(bytes)
}

/// Whether a file that someone else will read (the AWS SDK, the driver) is safe to hand over: a
/// regular file of at most `cap` bytes, links followed. Only its metadata is read, so a FIFO or
/// a device never blocks here. None when there is no such path (the reader's own business).
pub(crate) fn unsafe_to_read(path: &Path, cap: u64) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return Some("not a regular file (a directory, FIFO or device is never read)".into());
    }
    (meta.len() > cap).then(|| {
        format!(
            "{} bytes, more than the {cap} bytes such a file may have",
            meta.len()
        )
    })
}

/// A regular file of at most `cap` bytes, as UTF-8.
pub(crate) fn read_regular_text(path: &Path, cap: u64) -> Result<String, String> {
    String::from_utf8(read_regular(path, cap)?).map_err(|_| "not UTF-8 text".to_string())
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("a");
        std::fs::write(&p, "x=1\n").expect("write");
        assert_eq!(read_regular_text(&p, 100).expect("read"), "x=1\n");
        assert!(read_regular(&p, 2)
            .expect_err("too big")
            .contains("more than"));
    }

    #[test]
    fn devices_directories_and_fifos_are_refused_at_once() {
        assert!(read_regular(Path::new("/dev/zero"), 100).is_err());
        assert!(read_regular(Path::new("/"), 100).is_err());
        assert!(read_regular(Path::new("/nonexistent/x"), 100).is_err());
        let dir = tempfile::tempdir().expect("dir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(
            made.is_ok_and(|s| s.success()),
            "mkfifo is needed for this test (coreutils)"
        );
        let e = read_regular(&fifo, 100).expect_err("a FIFO is refused");
        assert!(e.contains("not a regular file"), "{e}");
    }
}
