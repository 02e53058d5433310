//! `tranche node`: runs one validator from its configuration file.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use tranche_node::NodeConfig;

/// `tranche node` settings.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's configuration file (TOML).
    #[arg(long)]
    pub config: PathBuf,
}

/// Logs to standard error; `RUST_LOG` refines what is shown.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,commonware=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

pub fn run_node(args: NodeArgs) -> Result<()> {
    let config = NodeConfig::load(&args.config)?;
    let key = config.open_key()?;
    init_logging();
    tranche_node::run(&config, key)?;
    Ok(())
}
