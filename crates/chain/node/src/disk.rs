//! Free space on the disk of a node's data directory. A node stops, saying
//! why, while a few hundred megabytes are still free: a write that fails
//! for want of space would leave the chain store or the consensus journal
//! unable to go on, and with the disk full nothing else (logs, a restart)
//! goes well either. Started again once space is freed, the node resumes
//! from the last block it stored.

use std::path::Path;
use std::time::Duration;

/// The free space a node keeps on its data directory's disk unless its
/// configuration says otherwise (`min_free_disk_mb`).
pub const MIN_FREE_DISK_MB_DEFAULT: u64 = 256;

/// How often a running node looks at the free space.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The space free for the node's use on the disk holding `path`, in MiB.
pub fn free_mb(path: &Path) -> Result<u64, String> {
    let s = rustix::fs::statvfs(path)
        .map_err(|e| format!("cannot read the free space of {}: {e}", path.display()))?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize) / (1024 * 1024))
}

/// Why the node must not run with `min_mb` to keep free on `path`'s disk,
/// if it must not.
pub fn short_of_space(path: &Path, min_mb: u64) -> Option<String> {
    match free_mb(path) {
        Ok(free) if free < min_mb => Some(format!(
            "the disk holding {} has {free} MiB free, under the {min_mb} MiB this node keeps free \
             (min_free_disk_mb): free some space and start the node again; it resumes from the \
             last block it stored",
            path.display()
        )),
        Ok(_) => None,
        Err(e) => Some(e),
    }
}

/// Returns once the disk holding `path` has less than `min_mb` free (or its
/// free space cannot be read), with why.
pub async fn until_short_of_space(path: &Path, min_mb: u64) -> String {
    loop {
        if let Some(why) = short_of_space(path, min_mb) {
            return why;
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_with_less_free_than_kept_is_named_with_its_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_mb(dir.path()).unwrap();
        assert!(short_of_space(dir.path(), 0).is_none());
        let why = short_of_space(dir.path(), free + 1024).expect("short of space");
        assert!(why.contains("MiB free, under the"), "{why}");
        assert!(why.contains("min_free_disk_mb"), "{why}");
        let missing = dir.path().join("nowhere");
        assert!(
            short_of_space(&missing, 0).is_some(),
            "an unreadable disk is no disk to run on"
        );
    }
}
