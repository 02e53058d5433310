//! A local Tranche network: the founding organisations' keys, genesis and node configurations, each node its own `tranche node` process.
//!
//! The first start creates everything in a folder; a later start on the
//! same folder resumes the same chain. The nodes are child processes of
//! the caller, described in `devnet.json` for scripts and tools.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use tranche_api::client::BlockingNodeClient;
use tranche_crypto::rand_core::{OsRng, RngCore as _};
use tranche_crypto::{KdfParams, KeyFile, Keypair};
use tranche_keystore::{read_keyfile, write_private_atomically};
use tranche_ledger::{Genesis, GenesisOrganisation};
use tranche_node::{NodeConfig, Peer};
use tranche_types::{ChainId, Role, Stake};

mod nodes;

/// The organisations of the devnet, with roles: the four validators first.
const ORGS: [(&str, &[Role], bool); 9] = [
    ("devnet-tsp", &[Role::Tsp, Role::Validator], true),
    ("devnet-issuer", &[Role::Issuer, Role::Validator], true),
    ("devnet-exchange", &[Role::Exchange, Role::Validator], true),
    (
        "devnet-regulator",
        &[Role::Regulator, Role::Validator],
        true,
    ),
    ("devnet-custodian", &[Role::Custodian], false),
    ("devnet-kyc", &[Role::ClaimIssuer], false),
    ("devnet-appraiser", &[Role::Appraiser], false),
    ("devnet-bank", &[Role::EscrowBank], false),
    ("devnet-registry", &[Role::AssetRegistry], false),
];
const VALIDATORS: usize = 4;
/// The issuer's staff the devnet makes: two operators, so that its
/// service's four-eyes approvals can be given.
pub const ISSUER_OPERATORS: [&str; 2] = ["issuer-operator-1", "issuer-operator-2"];
/// The bank's staff the devnet makes: one operator, who credits deposits.
pub const BANK_OPERATORS: [&str; 1] = ["bank-operator-1"];
/// The TSP's staff the devnet makes: one operator, who opens offerings and
/// declares distributions.
pub const TSP_OPERATORS: [&str; 1] = ["tsp-operator-1"];
/// The custodian's staff the devnet makes: one operator, who reads its
/// holders, instructions and events.
pub const CUSTODIAN_OPERATORS: [&str; 1] = ["custodian-operator-1"];
/// The exchange's staff the devnet makes: one operator, who credits and
/// debits traders' accounts.
pub const EXCHANGE_OPERATORS: [&str; 1] = ["exchange-operator-1"];
/// The regulator's staff the devnet makes: one operator, who publishes
/// the policy, links identities and reads findings and alerts.
pub const REGULATOR_OPERATORS: [&str; 1] = ["regulator-operator-1"];
/// The issuer's service listens this far above the base port.
const ISSUER_SERVICE_PORT_OFFSET: u16 = 201;
/// The escrow bank's service listens this far above the base port.
const BANK_SERVICE_PORT_OFFSET: u16 = 202;
/// The TSP's service listens this far above the base port.
const TSP_SERVICE_PORT_OFFSET: u16 = 203;
/// The custodian's service listens this far above the base port.
const CUSTODIAN_SERVICE_PORT_OFFSET: u16 = 204;
/// The exchange's service listens this far above the base port.
const EXCHANGE_SERVICE_PORT_OFFSET: u16 = 205;
/// The regulator's service listens this far above the base port.
const REGULATOR_SERVICE_PORT_OFFSET: u16 = 206;
/// The escrow bank's deposit token.
pub const DEPOSIT_TOKEN: &str = "USD-DEP";
/// How long a service may take to answer its health check.
const SERVICE_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The validators' nodes, then the custodian's, which follows the chain
/// (it reads it, for its own records, without voting).
const NODES: usize = 5;
/// The devnet's chain id.
pub const CHAIN_ID: &str = "tranche-devnet";
/// First ports a devnet may use: unprivileged, leaving room above for the
/// API ports (100 higher).
pub const BASE_PORTS: RangeInclusive<u16> = 1024..=65_000;
/// How long a node may take to finalize its first block.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a devnet lives and which ports it takes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Keys, genesis and each node's data.
    pub data_dir: PathBuf,
    /// The nodes' p2p ports are this and the next four (the validators,
    /// then the custodian's follower), their APIs 100 above. Used when the
    /// devnet is created.
    pub base_port: u16,
    /// Whether the role services (the issuer's, the bank's, the TSP's, the custodian's)
    /// start beside the nodes. Without them an organisation's key may sign
    /// by hand without taking a nonce its service's outbox counts on.
    pub services: bool,
}

/// One node as `devnet.json` describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeEntry {
    /// The organisation running it.
    pub org: String,
    /// Whether it votes (the custodian's node only follows).
    pub validator: bool,
    /// Its process id.
    pub pid: u32,
    /// Its API's base URL.
    pub api: String,
    /// Its p2p address.
    pub p2p: String,
    /// Its configuration file.
    pub config: String,
    /// Its log file.
    pub log: String,
}

/// A member of a service's staff, with the key they log in with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StaffEntry {
    /// Their name in the keys folder.
    pub name: String,
    /// Their DID.
    pub did: String,
    /// Their key file (the devnet's password).
    pub key_file: String,
    /// Their staff credential.
    pub credential: String,
}

/// One role service as `devnet.json` describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceEntry {
    /// Its role, e.g. `issuer`.
    pub role: String,
    /// The organisation it serves.
    pub org: String,
    /// Its process id.
    pub pid: u32,
    /// Its API's base URL.
    pub api: String,
    /// Its configuration file.
    pub config: String,
    /// Its log file.
    pub log: String,
    /// Its staff.
    #[serde(default)]
    pub staff: Vec<StaffEntry>,
}

/// `devnet.json`: what a script needs to use a running devnet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevnetFile {
    /// False while the nodes start; true once every node has finalized a
    /// block, so a script that finds `"ready": true` may send at once.
    pub ready: bool,
    /// The chain id.
    pub chain_id: String,
    /// The file holding the password of every devnet key.
    pub password_file: String,
    /// The folder of the organisations' key files (`<org>.key`).
    pub keys: String,
    /// The nodes, validators first.
    pub nodes: Vec<NodeEntry>,
    /// The role services, each beside its organisation's node.
    #[serde(default)]
    pub services: Vec<ServiceEntry>,
}

impl DevnetFile {
    /// Opens the key of organisation `org` (e.g. `devnet-tsp`) with the
    /// devnet's password.
    pub fn open_key(&self, org: &str) -> Result<Keypair> {
        tranche_keystore::open_key_file(
            &Path::new(&self.keys).join(format!("{org}.key")),
            Some(Path::new(&self.password_file)),
        )
    }

    /// Reads `<dir>/devnet.json`.
    pub fn read(dir: &Path) -> Result<DevnetFile> {
        let path = dir.join("devnet.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a devnet file", path.display()))
    }

    /// The validators' API URLs.
    pub fn validator_apis(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.validator)
            .map(|n| n.api.clone())
            .collect()
    }
}

/// A running devnet: its nodes are this process's children.
#[derive(Debug)]
pub struct Devnet {
    dir: PathBuf,
    exe: PathBuf,
    file: DevnetFile,
    children: Vec<(String, Child)>,
    exited: Vec<bool>,
    services: Vec<(String, Child)>,
}

/// Whether a service's `GET /healthz` answers 200, by a bare HTTP/1.0
/// request on loopback.
fn healthy(api: &str) -> bool {
    use std::io::{Read as _, Write as _};
    let Some(addr) = api.strip_prefix("http://") else {
        return false;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(format!("GET /healthz HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

fn port_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Whether `dir` holds a devnet (its genesis is written last).
pub fn exists(dir: &Path) -> bool {
    dir.join("genesis.json").exists()
}

/// Creates keys, genesis and node configurations in `dir`.
fn create(dir: &Path, base_port: u16) -> Result<()> {
    if !BASE_PORTS.contains(&base_port) {
        bail!(
            "the base port must be {} to {}",
            BASE_PORTS.start(),
            BASE_PORTS.end()
        );
    }
    let ports = (0..NODES as u16)
        .flat_map(|i| [base_port + i, base_port + 100 + i])
        .chain([
            base_port + ISSUER_SERVICE_PORT_OFFSET,
            base_port + BANK_SERVICE_PORT_OFFSET,
            base_port + TSP_SERVICE_PORT_OFFSET,
            base_port + CUSTODIAN_SERVICE_PORT_OFFSET,
            base_port + EXCHANGE_SERVICE_PORT_OFFSET,
            base_port + REGULATOR_SERVICE_PORT_OFFSET,
        ]);
    for port in ports {
        if !port_free(port) {
            bail!("port {port} is in use: pick another base port");
        }
    }
    std::fs::create_dir_all(dir.join("keys"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut secret = [0u8; 24];
    OsRng.fill_bytes(&mut secret);
    let password = hex::encode(secret);
    write_private_atomically(&dir.join("password"), password.as_bytes())?;
    let mut organisations = Vec::new();
    let mut keys = Vec::new();
    for (name, roles, validator) in ORGS {
        let key = Keypair::generate(&mut OsRng);
        let file = KeyFile::seal(&key, password.as_bytes(), KdfParams::DEFAULT, &mut OsRng)?;
        write_private_atomically(&key_path(dir, name), file.to_json().as_bytes())?;
        organisations.push(GenesisOrganisation {
            org: name.parse()?,
            key: key.public_key(),
            roles: roles.to_vec(),
            governor: validator,
            stake: Stake(if validator { 1_000 } else { 0 }),
            bond: Stake(if validator { 1_000 } else { 0 }),
        });
        keys.push(key.public_key());
    }
    for name in ISSUER_OPERATORS
        .iter()
        .chain(&BANK_OPERATORS)
        .chain(&TSP_OPERATORS)
        .chain(&CUSTODIAN_OPERATORS)
        .chain(&EXCHANGE_OPERATORS)
        .chain(&REGULATOR_OPERATORS)
    {
        let key = Keypair::generate(&mut OsRng);
        let file = KeyFile::seal(&key, password.as_bytes(), KdfParams::DEFAULT, &mut OsRng)?;
        write_private_atomically(&key_path(dir, name), file.to_json().as_bytes())?;
    }
    let genesis = Genesis {
        // Epochs of 100 blocks (about a minute when idle), so a devnet
        // shows committees being elected.
        epoch_blocks: Some(100),
        committee_max: None,
        appraisal_tolerance_bps: None,
        chain_id: CHAIN_ID.parse::<ChainId>()?,
        organisations,
    };
    tranche_ledger::Ledger::genesis(&genesis)?;
    let p2p = |i: usize| SocketAddr::from((Ipv4Addr::LOCALHOST, base_port + i as u16));
    let api = |i: usize| SocketAddr::from((Ipv4Addr::LOCALHOST, base_port + 100 + i as u16));
    for (i, (name, _, _)) in ORGS.iter().take(NODES).enumerate() {
        let config = NodeConfig {
            genesis: "../genesis.json".into(),
            key: format!("../keys/{name}.key").into(),
            password_file: Some("../password".into()),
            data_dir: "data".into(),
            p2p_listen: p2p(i),
            api_listen: api(i),
            peers: (0..NODES)
                .filter(|j| *j != i)
                .map(|j| Peer {
                    key: keys[j],
                    address: p2p(j),
                })
                .collect(),
            // Loopback only; see docs/OPERATIONS.md for serving TLS.
            tls: None,
            min_free_disk_mb: None,
        };
        let node_dir = dir.join(name);
        std::fs::create_dir_all(&node_dir)?;
        std::fs::write(node_dir.join("node.toml"), config.to_toml())?;
    }
    let did_of = |org: &str| {
        genesis
            .organisations
            .iter()
            .find(|o| o.org.as_str() == org)
            .map(|o| tranche_identity::DidKey::from_public_key(&o.key).did())
            .expect("one of the devnet's organisations")
    };
    let (kyc, registry) = (did_of("devnet-kyc"), did_of("devnet-registry"));
    // Each service's `[service]` table, then what its role adds; audit
    // anchors every few seconds so a devnet shows them.
    let service = |role: &str, org: &str, node: SocketAddr, offset: u16, rest: String| {
        let org_dir = dir.join(org);
        std::fs::create_dir_all(&org_dir)?;
        std::fs::write(
            org_dir.join(format!("{role}.toml")),
            format!(
                "[service]\norg = \"{org}\"\nkey_file = \"../keys/{org}.key\"\npassword_file = \"../password\"\n\
                 node = \"http://{node}\"\nlisten = \"127.0.0.1:{}\"\ndata_dir = \"service\"\nanchor_interval_secs = 5\n{rest}",
                base_port + offset
            ),
        )
    };
    // The issuer's, beside the issuer's node.
    service(
        "issuer",
        "devnet-issuer",
        api(1),
        ISSUER_SERVICE_PORT_OFFSET,
        "\n[issuer]\napprovals_required = 2\n".into(),
    )?;
    // The escrow bank's, on the TSP's node (the bank runs none): accounts
    // for people with the devnet KYC provider's credentials.
    service(
        "bank",
        "devnet-bank",
        api(0),
        BANK_SERVICE_PORT_OFFSET,
        format!(
            "trusted_issuers = [\"{kyc}\"]\n\n[bank]\ntoken = \"{DEPOSIT_TOKEN}\"\ncurrency = \"USD\"\n"
        ),
    )?;
    // The TSP's, on its node: owners prove ownership with the registry's
    // credentials, investors their identity with the KYC provider's.
    service(
        "tsp",
        "devnet-tsp",
        api(0),
        TSP_SERVICE_PORT_OFFSET,
        format!("trusted_issuers = [\"{registry}\", \"{kyc}\"]\n"),
    )?;
    // The custodian's, beside its following node: custodial wallets for
    // people with the KYC provider's credentials, under a policy a devnet
    // user will not run into by accident; travel-rule messages go to the
    // exchange.
    service(
        "custodian",
        "devnet-custodian",
        api(4),
        CUSTODIAN_SERVICE_PORT_OFFSET,
        format!(
            "trusted_issuers = [\"{kyc}\"]\n\n[custodian]\ntransfer_max = \"1000000\"\ndaily_max = \"10000000\"\n\n\
             [service.peers]\n\"devnet-exchange\" = \"http://127.0.0.1:{}\"\n",
            base_port + EXCHANGE_SERVICE_PORT_OFFSET
        ),
    )?;
    // The exchange's, beside its node: traders with the KYC provider's
    // credentials, tokens quoted in the bank's deposit token and in the
    // currencies its own ledger keeps.
    service(
        "exchange",
        "devnet-exchange",
        api(2),
        EXCHANGE_SERVICE_PORT_OFFSET,
        format!(
            "trusted_issuers = [\"{kyc}\"]\n\n[exchange]\ncurrencies = [\"USD\", \"EUR\", \"KRW\", \"BTC\", \"ETH\"]\n\
             quote_tokens = [\"{DEPOSIT_TOKEN}\"]\nfee_bps = 10\norder_units_max = \"1000000\"\norder_value_max = \"100000000000\"\n\
             report_url = \"http://127.0.0.1:{}/reports\"\n",
            base_port + REGULATOR_SERVICE_PORT_OFFSET
        ),
    )?;
    // The regulator's, beside its node: it publishes a first AML policy
    // (reports every 10 s, so a devnet shows reconciliations), takes the
    // exchange's reports, sends freeze requests to the issuer's service and
    // asks the custodian and the exchange for travel-rule messages.
    service(
        "regulator",
        "devnet-regulator",
        api(3),
        REGULATOR_SERVICE_PORT_OFFSET,
        format!(
            "\n[regulator]\npolicy_delay_blocks = 5\n\n[regulator.policy]\nreport_period_secs = 10\n\
             blocked_countries = [\"KP\"]\nsanctioned = []\nlimits = [\
             {{ asset = \"USD\", large_value = \"1000000\", daily_value_max = \"0\", travel_rule_value = \"100000\" }}, \
             {{ asset = \"{DEPOSIT_TOKEN}\", large_value = \"1000000\", daily_value_max = \"0\", travel_rule_value = \"100000\" }}]\n\n\
             [service.peers]\n\"devnet-issuer\" = \"http://127.0.0.1:{}\"\n\
             \"devnet-custodian\" = \"http://127.0.0.1:{}\"\n\"devnet-exchange\" = \"http://127.0.0.1:{}\"\n",
            base_port + ISSUER_SERVICE_PORT_OFFSET,
            base_port + CUSTODIAN_SERVICE_PORT_OFFSET,
            base_port + EXCHANGE_SERVICE_PORT_OFFSET,
        ),
    )?;
    // Written last: its presence means the devnet is complete.
    std::fs::write(
        dir.join("genesis.json"),
        serde_json::to_string_pretty(&genesis)? + "\n",
    )?;
    Ok(())
}

fn key_path(dir: &Path, org: &str) -> PathBuf {
    dir.join("keys").join(format!("{org}.key"))
}

fn wait_ready(api: &str, child: &mut Child, org: &str, log: &Path) -> Result<()> {
    let client = BlockingNodeClient::new(api, None)?;
    let tries = READY_TIMEOUT.as_millis() / 100;
    for _ in 0..tries {
        if let Some(status) = child.try_wait()? {
            bail!(
                "node {org} exited ({status}) while starting; see {}",
                log.display()
            );
        }
        if client
            .run(|c| c.status())
            .is_ok_and(|s| s.finalized_height > 0)
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "node {org} did not finalize a block within {} s; see {}",
        READY_TIMEOUT.as_secs(),
        log.display()
    )
}

/// Sends `signal` (e.g. "TERM", "KILL") to process `pid`; true if it was
/// delivered. Through the shell's own `kill`, so no extra package is needed
/// and no unsafe code.
pub fn signal(pid: u64, signal: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s {signal} {pid}"))
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Devnet {
    /// Starts the devnet in `options.data_dir`, creating it first if the
    /// folder holds none, with `tranche` (the executable at `tranche_exe`)
    /// running each node; returns once every node has finalized a block.
    pub fn start(tranche_exe: &Path, options: &Options) -> Result<Devnet> {
        let dir = &options.data_dir;
        if !exists(dir) {
            create(dir, options.base_port)?;
        }
        let mut children: Vec<(String, Child)> = Vec::new();
        let mut nodes = Vec::new();
        for (i, (name, _, _)) in ORGS.iter().take(NODES).enumerate() {
            let config_path = dir.join(name).join("node.toml");
            let config = NodeConfig::load(&config_path)?;
            // Fail here, not in four logs, if the key cannot be read.
            read_keyfile(&config.key)?;
            let log_path = dir.join(name).join("node.log");
            let child = nodes::spawn_node(tranche_exe, name, &config_path, &log_path)?;
            nodes.push(NodeEntry {
                org: name.to_string(),
                validator: i < VALIDATORS,
                pid: child.id(),
                api: format!("http://{}", config.api_listen),
                p2p: config.p2p_listen.to_string(),
                config: config_path.display().to_string(),
                log: log_path.display().to_string(),
            });
            children.push((name.to_string(), child));
        }
        let mut devnet = Devnet {
            dir: dir.clone(),
            exe: tranche_exe.to_path_buf(),
            file: DevnetFile {
                ready: false,
                chain_id: CHAIN_ID.into(),
                password_file: dir.join("password").display().to_string(),
                keys: dir.join("keys").display().to_string(),
                nodes,
                services: Vec::new(),
            },
            exited: vec![false; children.len()],
            children,
            services: Vec::new(),
        };
        // Written at once, so the pids are known while the nodes start, and
        // again with "ready": true once all of them finalize.
        devnet.write_file()?;
        for i in 0..devnet.children.len() {
            let entry = &devnet.file.nodes[i];
            let (org, child) = &mut devnet.children[i];
            if let Err(e) = wait_ready(&entry.api, child, org, Path::new(&entry.log)) {
                devnet.stop();
                return Err(e);
            }
        }
        if options.services {
            let started = devnet
                .start_service("issuer", "devnet-issuer", &ISSUER_OPERATORS)
                .and_then(|()| devnet.start_service("bank", "devnet-bank", &BANK_OPERATORS))
                .and_then(|()| devnet.start_service("tsp", "devnet-tsp", &TSP_OPERATORS))
                .and_then(|()| {
                    devnet.start_service("custodian", "devnet-custodian", &CUSTODIAN_OPERATORS)
                })
                .and_then(|()| {
                    devnet.start_service("exchange", "devnet-exchange", &EXCHANGE_OPERATORS)
                })
                .and_then(|()| {
                    devnet.start_service("regulator", "devnet-regulator", &REGULATOR_OPERATORS)
                });
            if let Err(e) = started {
                devnet.stop();
                return Err(e);
            }
        }
        devnet.file.ready = true;
        devnet.write_file()?;
        Ok(devnet)
    }

    /// Gives `operators` their staff credentials at `org`'s `role` service
    /// (once) and starts it; returns once it answers.
    fn start_service(&mut self, role: &str, org: &str, operators: &[&str]) -> Result<()> {
        let org_dir = self.dir.join(org);
        let config = org_dir.join(format!("{role}.toml"));
        let credentials = self.dir.join("credentials");
        std::fs::create_dir_all(&credentials)?;
        let mut staff = Vec::new();
        for name in operators {
            let key = tranche_keystore::open_key_file(
                &key_path(&self.dir, name),
                Some(Path::new(&self.file.password_file)),
            )?;
            let did = tranche_identity::DidKey::from_public_key(&key.public_key()).did();
            let credential = credentials.join(format!("{name}.json"));
            if !credential.exists() {
                let out = Command::new(&self.exe)
                    .arg(role)
                    .arg("--config")
                    .arg(&config)
                    .args([
                        "staff",
                        "add",
                        "--role",
                        "operator",
                        "--subject",
                        &did,
                        "--out",
                    ])
                    .arg(&credential)
                    .stdin(Stdio::null())
                    .output()
                    .with_context(|| format!("cannot run tranche {role} staff add"))?;
                if !out.status.success() {
                    bail!(
                        "issuing {name}'s staff credential failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            staff.push(StaffEntry {
                name: (*name).into(),
                did,
                key_file: key_path(&self.dir, name).display().to_string(),
                credential: credential.display().to_string(),
            });
        }
        let service = tranche_service::config::read_service(&config)?;
        let log_path = org_dir.join("service.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let mut child = Command::new(&self.exe)
            .arg(role)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start the {role}'s service"))?;
        let api = format!("http://{}", service.listen);
        let entry = ServiceEntry {
            role: role.into(),
            org: org.into(),
            pid: child.id(),
            api: api.clone(),
            config: config.display().to_string(),
            log: log_path.display().to_string(),
            staff,
        };
        let tries = SERVICE_READY_TIMEOUT.as_millis() / 100;
        let mut up = false;
        for _ in 0..tries {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the {role}'s service exited ({status}) while starting; see {}",
                    log_path.display()
                );
            }
            if healthy(&api) {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.services.push((role.into(), child));
        if !up {
            bail!(
                "the {role}'s service did not answer within {} s; see {}",
                SERVICE_READY_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        self.file.services.retain(|s| s.role != role);
        self.file.services.push(entry);
        Ok(())
    }

    fn write_file(&self) -> Result<()> {
        write_private_atomically(
            &self.dir.join("devnet.json"),
            (serde_json::to_string_pretty(&self.file)? + "\n").as_bytes(),
        )
    }

    /// What `devnet.json` says.
    pub fn file(&self) -> &DevnetFile {
        &self.file
    }

    /// Opens the key of organisation `org` (e.g. `devnet-tsp`).
    pub fn open_key(&self, org: &str) -> Result<Keypair> {
        self.file.open_key(org)
    }

    /// Nodes that exited since the last call, each with the command that
    /// restarts it.
    pub fn newly_exited(&mut self) -> Vec<(String, ExitStatus, String)> {
        let mut out = Vec::new();
        for (i, (org, child)) in self.children.iter_mut().enumerate() {
            if !self.exited[i] {
                if let Ok(Some(status)) = child.try_wait() {
                    self.exited[i] = true;
                    let restart = format!(
                        "{} node --config {}",
                        self.exe.display(),
                        self.file.nodes[i].config
                    );
                    out.push((org.clone(), status, restart));
                }
            }
        }
        out
    }

    /// Runs until Ctrl-C or SIGTERM, telling on standard error of any node
    /// that exits meanwhile; then stops the nodes.
    pub fn serve_until_interrupted(mut self) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    _ = term.recv() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        for (org, status, restart) in self.newly_exited() {
                            eprintln!(
                                "node {org} exited ({status}); the others go on while 3 of the 4 validators run. Restart it with:\n  {restart}"
                            );
                        }
                    }
                }
            }
            Ok::<(), std::io::Error>(())
        })?;
        self.stop();
        Ok(())
    }

    /// Leaves the nodes running after this process exits (stop them with
    /// the pids in `devnet.json`).
    pub fn detach(mut self) {
        self.children.clear();
        self.services.clear();
    }

    /// Stops every node: SIGTERM, and SIGKILL for one still running after
    /// five seconds. Waits until they are gone, so their ports are free.
    pub fn stop(&mut self) {
        // Services first: they follow their nodes.
        for (_, child) in self.services.iter_mut() {
            signal(u64::from(child.id()), "TERM");
            for _ in 0..50 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.services.clear();
        for (_, child) in self.children.iter() {
            signal(u64::from(child.id()), "TERM");
        }
        for (org, child) in self.children.iter_mut() {
            for _ in 0..50 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if !matches!(child.try_wait(), Ok(Some(_))) {
                eprintln!("node {org} did not stop; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.children.clear();
    }
}

impl Drop for Devnet {
    /// A devnet dropped without `detach` takes its nodes with it, however
    /// the caller ends.
    fn drop(&mut self) {
        self.stop();
    }
}
