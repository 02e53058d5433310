//! The `tranche` binary in a folder of its own, driven as a person would.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub mod services;

/// The password of every key a test makes.
pub const PASSWORD: &str = "correct horse battery";

/// A home folder of its own and a password file, for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
    /// Whether commands get TRANCHE_PASSWORD (else each gives --password-file).
    pub password_env: bool,
}

impl Env {
    pub fn new() -> Self {
        let env = Self {
            dir: tempfile::tempdir().unwrap(),
            password_env: false,
        };
        std::fs::write(env.path("pw"), format!("{PASSWORD}\n")).unwrap();
        std::fs::write(env.path("wrong-pw"), "not the password\n").unwrap();
        env
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tranche"))
            .args(args)
            .env("TRANCHE_HOME", self.path("home"))
            .env_remove("TRANCHE_PASSWORD")
            .env_remove("TRANCHE_CHAIN_ID")
            .envs(self.password_env.then_some(("TRANCHE_PASSWORD", PASSWORD)))
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tranche {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "tranche {args:?} should fail");
        String::from_utf8(out.stderr).unwrap() + &String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Writes `payload` to payload.json and builds it into the unsigned
    /// transaction `out`, on chain `alpha`, signed by `key` with `nonce`.
    pub fn build_payload(&self, payload: &str, key: &str, nonce: &str, out: &str) {
        std::fs::write(self.path("payload.json"), payload).unwrap();
        self.ok(&[
            "tx",
            "build",
            "payload",
            "payload.json",
            "--chain-id",
            "alpha",
            "--key",
            key,
            "--nonce",
            nonce,
            "--out",
            out,
        ]);
    }

    /// Runs a command that must fail with exit `code`; its error output.
    pub fn fails_with(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "tranche {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Makes keys `alice` and `bob` and an unsigned transfer from alice to bob.
    pub fn transfer_file(&self) -> PathBuf {
        self.ok(&["key", "new", "alice", "--password-file", "pw"]);
        self.ok(&["key", "new", "bob", "--password-file", "pw"]);
        let bob = self.json(&["key", "show", "bob"])["address"]
            .as_str()
            .unwrap()
            .to_string();
        self.ok(&[
            "tx",
            "build",
            "transfer",
            "--chain-id",
            "alpha",
            "--key",
            "alice",
            "--nonce",
            "1",
            "--token",
            "SEOUL-TOWER-1",
            "--to",
            &bob,
            "--amount",
            "10",
            "--out",
            "t.json",
        ]);
        self.path("t.json")
    }
}

/// A devnet a test started (detached) in `dir`, and other processes the
/// test started beside it: all are killed when the test ends, however it ends.
pub struct Running {
    pub dir: PathBuf,
    pub children: Vec<std::process::Child>,
}

/// Processes a test started, killed when it ends, or fails.
pub struct Killed(pub Vec<std::process::Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Kills process `pid`; it may be gone already.
pub fn kill(pid: u32) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s KILL {pid}"))
        .stderr(std::process::Stdio::null())
        .status();
}

impl Drop for Running {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Ok(d) = tranche_devnet::DevnetFile::read(&self.dir) {
            for pid in d
                .nodes
                .iter()
                .map(|n| n.pid)
                .chain(d.services.iter().map(|s| s.pid))
            {
                kill(pid);
            }
        }
    }
}

/// Starts a devnet in `dir` on ports from `base`, detached, and waits until
/// it is ready.
pub fn devnet_up(dir: &std::path::Path, base: u16) -> Running {
    let running = Running {
        dir: dir.to_path_buf(),
        children: Vec::new(),
    };
    let up = Command::new(env!("CARGO_BIN_EXE_tranche"))
        .args([
            "devnet",
            "--detach",
            "--base-port",
            &base.to_string(),
            "--data-dir",
        ])
        .arg(dir)
        .status()
        .unwrap();
    assert!(up.success(), "the devnet comes up");
    running
}
