//! The local keystore: one password-encrypted key file per name, in a folder
//! only its owner can read.

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use tranche_crypto::KeyFile;

/// The largest key file read; real ones are under 1 KiB.
const KEYFILE_BYTES_MAX: u64 = 64 * 1024;

/// What a keystore holds: readable key files by name, and why others were skipped.
#[derive(Debug, Default)]
pub struct Listing {
    /// Key files by name, sorted.
    pub keys: Vec<(String, KeyFile)>,
    /// One line per file that could not be read.
    pub problems: Vec<String>,
}

/// A folder of key files named `<name>.json`.
#[derive(Debug)]
pub struct Keystore {
    dir: PathBuf,
}

/// Checks a key name: it becomes a file name, so keep it plain.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!(
            "invalid key name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
        );
    }
    Ok(())
}

impl Keystore {
    /// The keystore under `home` (`<home>/keys`).
    pub fn new(home: &Path) -> Self {
        Self {
            dir: home.join("keys"),
        }
    }

    /// Where the key named `name` lives.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Stores a new key file; never overwrites one.
    pub fn create(&self, name: &str, file: &KeyFile) -> Result<PathBuf> {
        check_name(name)?;
        create_private_dir(&self.dir)?;
        let path = self.path(name);
        if path.exists() {
            bail!(
                "a key named {name:?} already exists at {}; choose another name (keys are never overwritten)",
                path.display()
            );
        }
        write_private_atomically(&path, file.to_json().as_bytes())?;
        Ok(path)
    }

    /// Reads the key file named `name` (not opening it).
    pub fn load(&self, name: &str) -> Result<(PathBuf, KeyFile)> {
        check_name(name)?;
        let path = self.path(name);
        if !path.exists() {
            bail!(
                "no key named {name:?} in {}; list keys with `tranche key list` or make one with `tranche key new {name}`",
                self.dir.display()
            );
        }
        let file = read_keyfile(&path)?;
        Ok((path, file))
    }

    /// Every readable key file, by name; unreadable ones are reported apart.
    pub fn list(&self) -> Result<Listing> {
        let mut listing = Listing::default();
        if !self.dir.exists() {
            return Ok(listing);
        }
        let entries = fs::read_dir(&self.dir)
            .with_context(|| format!("cannot read keystore {}", self.dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            match read_keyfile(&path) {
                Ok(file) => listing.keys.push((name.to_string(), file)),
                Err(e) => listing.problems.push(format!("{e:#}")),
            }
        }
        listing.keys.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(listing)
    }
}

/// Reads and checks a key file at any path.
pub fn read_keyfile(path: &Path) -> Result<KeyFile> {
    let text = read_bounded(path, KEYFILE_BYTES_MAX)?;
    let text = String::from_utf8(text)
        .map_err(|_| anyhow::anyhow!("key file {} is not UTF-8 text", path.display()))?;
    KeyFile::from_json(&text).with_context(|| format!("key file {}", path.display()))
}

/// Reads at most `max` bytes of `path` (`-` is standard input), refusing larger files.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    let what = path.display();
    if path == Path::new("-") {
        std::io::stdin()
            .take(max + 1)
            .read_to_end(&mut out)
            .context("cannot read standard input")?;
    } else {
        let f = fs::File::open(path).with_context(|| format!("cannot open {what}"))?;
        f.take(max + 1)
            .read_to_end(&mut out)
            .with_context(|| format!("cannot read {what}"))?;
    }
    if out.len() as u64 > max {
        bail!("{what} is larger than {max} bytes; is it the right file?");
    }
    Ok(out)
}

fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the
/// whole new one: a private temporary file, synced, then renamed into place.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("cannot move key file into {}", path.display()))?;
    if let Ok(d) = fs::File::open(dir) {
        // Persist the rename itself; not every platform lets a folder be synced.
        let _ = d.sync_all();
    }
    Ok(())
}
