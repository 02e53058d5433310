//! Where a key's password comes from: a file, the environment, or a prompt.

use anyhow::{bail, Context, Result};
use std::io::IsTerminal as _;
use std::path::Path;
use zeroize::Zeroizing;

/// The environment variable read for a password when no file is given.
pub const PASSWORD_ENV: &str = "TRANCHE_PASSWORD";

/// The shortest password accepted for a new key.
pub const PASSWORD_LEN_MIN: usize = 8;

/// The password from `--password-file`, else `TRANCHE_PASSWORD`, else a prompt.
pub fn obtain(password_file: Option<&Path>, confirm: bool) -> Result<Zeroizing<String>> {
    if let Some(path) = password_file {
        let bytes = Zeroizing::new(crate::read_bounded(path, 4096)?);
        let text = std::str::from_utf8(&bytes)
            .with_context(|| format!("password file {} is not UTF-8 text", path.display()))?;
        let line = text.lines().next().unwrap_or("");
        return Ok(Zeroizing::new(line.to_string()));
    }
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        return Ok(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password given: pass --password-file FILE or set {PASSWORD_ENV}");
    }
    let first = Zeroizing::new(rpassword::prompt_password("Key password: ")?);
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("Repeat password: ")?);
        if *first != *again {
            bail!("the two passwords differ; nothing was written");
        }
    }
    Ok(first)
}

/// Refuses passwords too short to protect a key.
pub fn check_new(password: &str) -> Result<()> {
    if password.chars().count() < PASSWORD_LEN_MIN {
        bail!(
            "the password is shorter than {PASSWORD_LEN_MIN} characters; choose a longer one (a passphrase of several words is best)"
        );
    }
    Ok(())
}
