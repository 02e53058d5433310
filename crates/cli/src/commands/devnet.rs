//! `tranche devnet`: the command line of `tranche-devnet`.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use tranche_devnet::{Devnet, Options, CHAIN_ID};

/// `tranche devnet` settings.
#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Where the devnet keeps its keys, genesis and each node's data.
    /// Started again on the same folder, it resumes the same chain.
    #[arg(long, default_value = "devnet")]
    pub data_dir: PathBuf,
    /// First port: the nodes' p2p ports are this and the next four (the
    /// validators, then the custodian's follower), their APIs 100 above.
    /// Used when the devnet is created.
    #[arg(long, default_value_t = 27000,
          value_parser = clap::value_parser!(u16).range(1024..=65_000))]
    pub base_port: u16,
    /// Start the nodes, print where they are, and return instead of staying
    /// in the foreground (stop them with the pids in devnet.json).
    #[arg(long)]
    pub detach: bool,
}

pub fn run(args: DevnetArgs) -> Result<std::process::ExitCode> {
    let dir = &args.data_dir;
    if tranche_devnet::exists(dir) {
        println!("resuming the devnet in {}", dir.display());
    } else {
        println!("creating a devnet in {}", dir.display());
    }
    let exe = std::env::current_exe().context("cannot find the tranche executable")?;
    let devnet = Devnet::start(
        &exe,
        &Options {
            data_dir: dir.clone(),
            base_port: args.base_port,
            services: true,
        },
    )?;
    let file = devnet.file();
    println!("devnet {CHAIN_ID} is finalizing blocks:");
    for n in &file.nodes {
        println!(
            "  {:<18} api {}  p2p {}  pid {}{}",
            n.org,
            n.api,
            n.p2p,
            n.pid,
            if n.validator { "" } else { "  (follows)" }
        );
    }
    for s in &file.services {
        println!(
            "  {:<18} {} service  api {}  pid {}",
            s.org, s.role, s.api, s.pid
        );
        for m in &s.staff {
            println!(
                "    staff {}: key {}, credential {}",
                m.name, m.key_file, m.credential
            );
        }
    }
    println!("keys in {} (password in {})", file.keys, file.password_file);
    println!("nodes described in {}", dir.join("devnet.json").display());
    if args.detach {
        devnet.detach();
        return Ok(std::process::ExitCode::SUCCESS);
    }
    println!("press Ctrl-C to stop; run again with the same --data-dir to resume");
    devnet.serve_until_interrupted()?;
    println!("stopped the nodes");
    Ok(std::process::ExitCode::SUCCESS)
}
