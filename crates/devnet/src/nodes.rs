//! A devnet's node processes: started, killed as a crash would, restarted.

use super::*;

/// Starts the node of organisation `name` from `config_path`, appending its
/// output to `log_path`.
pub(crate) fn spawn_node(
    tranche_exe: &Path,
    name: &str,
    config_path: &Path,
    log_path: &Path,
) -> Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    Command::new(tranche_exe)
        .arg("node")
        .arg("--config")
        .arg(config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start the node of {name}"))
}

impl Devnet {
    /// Kills node `i` with SIGKILL, as a crash or a power cut would (it
    /// writes nothing more), and waits until it is gone.
    pub fn kill_node(&mut self, i: usize) -> Result<()> {
        let (org, child) = self
            .children
            .get_mut(i)
            .with_context(|| format!("the devnet has no node {i}"))?;
        child
            .kill()
            .with_context(|| format!("cannot kill the node of {org}"))?;
        child.wait()?;
        self.exited[i] = true;
        Ok(())
    }

    /// Stops node `i` as an operator would, with SIGTERM, and waits until
    /// it is gone (SIGKILL after ten seconds); its exit status.
    pub fn stop_node(&mut self, i: usize) -> Result<ExitStatus> {
        let (org, child) = self
            .children
            .get_mut(i)
            .with_context(|| format!("the devnet has no node {i}"))?;
        signal(u64::from(child.id()), "TERM");
        for _ in 0..100 {
            if let Some(status) = child.try_wait()? {
                self.exited[i] = true;
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child
            .kill()
            .with_context(|| format!("cannot kill the node of {org}"))?;
        let status = child.wait()?;
        self.exited[i] = true;
        bail!("the node of {org} did not stop within 10 s of SIGTERM ({status})")
    }

    /// Starts node `i` again from its data directory (after
    /// [`Self::kill_node`] or [`Self::stop_node`]); returns at once, without waiting for it to
    /// catch up.
    pub fn restart_node(&mut self, i: usize) -> Result<()> {
        let entry = self
            .file
            .nodes
            .get(i)
            .with_context(|| format!("the devnet has no node {i}"))?;
        let child = spawn_node(
            &self.exe,
            &entry.org,
            Path::new(&entry.config),
            Path::new(&entry.log),
        )?;
        self.file.nodes[i].pid = child.id();
        self.children[i].1 = child;
        self.exited[i] = false;
        self.write_file()
    }
}
