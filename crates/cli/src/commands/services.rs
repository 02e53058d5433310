//! `tranche issuer`, `tranche bank`, `tranche tsp`, `tranche custodian` and
//! `tranche exchange`:
//! run an issuer's, an escrow bank's, a TSP's, a custodian's or an exchange's service and
//! keep its staff credentials. `tranche service`: calls any role service — as a person
//! logged in with a DID and a presentation, or as an organisation with
//! requests signed by its on-chain key.

use super::{open_key, print_json, KeyArgs, NotFound, Refused, Usage};
use crate::Ctx;
use anyhow::{anyhow, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tranche_bank::{Bank, BankConfig};
use tranche_custodian::{Custodian, CustodianConfig};
use tranche_exchange::{Exchange, ExchangeConfig};
use tranche_identity::present;
use tranche_issuer::{Issuer, IssuerConfig};
use tranche_keystore::{read_bounded, write_private_atomically};
use tranche_regulator::{Regulator, RegulatorConfig};
use tranche_service::Service;
use tranche_tsp::{Tsp, TspConfig};
use tranche_types::ChainId;

/// The largest document (credential, body, session) read.
const DOC_BYTES_MAX: u64 = 1 << 20;

/// `tranche issuer` settings.
#[derive(Debug, Args)]
pub struct IssuerArgs {
    /// The service's config file (TOML; see the example above).
    #[arg(long)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<AdminCommand>,
}

/// `tranche bank` and `tranche tsp` settings.
#[derive(Debug, Args)]
pub struct RoleArgs {
    /// The service's config file (TOML; see the example above).
    #[arg(long)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<AdminCommand>,
}

/// What to do instead of running the service.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// The organisation's staff credentials: how its people log in.
    #[command(subcommand)]
    Staff(StaffCommand),
}

/// Staff credentials, signed with the organisation's key.
#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Issue a staff credential to a person's DID (`tranche did new`).
    ///
    /// Example:
    ///   tranche issuer --config issuer.toml staff add --subject did:key:z6Mk... --role operator --out op.json
    #[command(verbatim_doc_comment)]
    Add {
        /// The staff member's DID (a did:key).
        #[arg(long)]
        subject: String,
        /// Their role: `operator` decides (approves requests at an issuer; credits
        /// deposits and marks payouts paid at a bank); `auditor` reads the audit log.
        #[arg(long, default_value = "operator")]
        role: String,
        /// Days it stays valid.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u64).range(1..=3650))]
        days: u64,
        /// Write it here (else standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Revoke a staff credential by its id: its sessions end, its logins are refused.
    Revoke {
        /// The credential's id (urn:tranche:<org>:staff:<n>).
        #[arg(long)]
        credential: String,
    },
    /// List the staff credentials issued.
    List,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `tranche issuer`.
pub fn issuer(ctx: &Ctx, args: IssuerArgs) -> Result<ExitCode> {
    let config = IssuerConfig::load(&args.config)?;
    super::node::init_logging();
    runtime()?.block_on(async move {
        match args.command {
            None => {
                Issuer::open(config).await?.run().await?;
                Ok(ExitCode::SUCCESS)
            }
            Some(AdminCommand::Staff(c)) => {
                staff(ctx, config.service, tranche_issuer::MIGRATIONS, c).await
            }
        }
    })
}

/// `tranche bank`.
pub fn bank(ctx: &Ctx, args: RoleArgs) -> Result<ExitCode> {
    let config = BankConfig::load(&args.config)?;
    super::node::init_logging();
    runtime()?.block_on(async move {
        match args.command {
            None => {
                Bank::open(config).await?.run().await?;
                Ok(ExitCode::SUCCESS)
            }
            Some(AdminCommand::Staff(c)) => {
                staff(ctx, config.service, tranche_bank::MIGRATIONS, c).await
            }
        }
    })
}

/// `tranche custodian`.
pub fn custodian(ctx: &Ctx, args: RoleArgs) -> Result<ExitCode> {
    let config = CustodianConfig::load(&args.config)?;
    super::node::init_logging();
    runtime()?.block_on(async move {
        match args.command {
            None => {
                Custodian::open(config).await?.run().await?;
                Ok(ExitCode::SUCCESS)
            }
            Some(AdminCommand::Staff(c)) => {
                staff(ctx, config.service, tranche_custodian::MIGRATIONS, c).await
            }
        }
    })
}

/// `tranche exchange`.
pub fn exchange(ctx: &Ctx, args: RoleArgs) -> Result<ExitCode> {
    let config = ExchangeConfig::load(&args.config)?;
    super::node::init_logging();
    runtime()?.block_on(async move {
        match args.command {
            None => {
                Exchange::open(config).await?.run().await?;
                Ok(ExitCode::SUCCESS)
            }
            Some(AdminCommand::Staff(c)) => {
                staff(ctx, config.service, tranche_exchange::MIGRATIONS, c).await
            }
        }
    })
}

/// `tranche regulator`.
pub fn regulator(ctx: &Ctx, args: RoleArgs) -> Result<ExitCode> {
    let config = RegulatorConfig::load(&args.config)?;
    super::node::init_logging();
    runtime()?.block_on(async move {
        match args.command {
            None => {
                Regulator::open(config).await?.run().await?;
                Ok(ExitCode::SUCCESS)
            }
            Some(AdminCommand::Staff(c)) => {
                staff(ctx, config.service, tranche_regulator::MIGRATIONS, c).await
            }
        }
    })
}

/// `tranche tsp`.
pub fn tsp(ctx: &Ctx, args: RoleArgs) -> Result<ExitCode> {
    let config = TspConfig::load(&args.config)?;
    super::node::init_logging();
    runtime()?.block_on(async move {
        match args.command {
            None => {
                Tsp::open(config).await?.run().await?;
                Ok(ExitCode::SUCCESS)
            }
            Some(AdminCommand::Staff(c)) => {
                staff(ctx, config.service, tranche_tsp::MIGRATIONS, c).await
            }
        }
    })
}

async fn staff(
    ctx: &Ctx,
    config: tranche_service::ServiceConfig,
    migrations: &[tranche_service::Migration],
    command: StaffCommand,
) -> Result<ExitCode> {
    let service: Arc<Service> = Service::open(config, migrations).await?;
    let now = tranche_service::now_ms();
    match command {
        StaffCommand::Add {
            subject,
            role,
            days,
            out,
        } => {
            let vc = service
                .auth
                .issue_staff(&service.db, &subject, &role, now + days * 86_400_000, now)
                .await
                .map_err(|e| Usage(e.message))?;
            let text = serde_json::to_string_pretty(&vc)? + "\n";
            match out {
                Some(p) => write_private_atomically(&p, text.as_bytes())?,
                None => print!("{text}"),
            }
        }
        StaffCommand::Revoke { credential } => {
            if !service
                .auth
                .revoke_staff(&service.db, &credential, now)
                .await?
            {
                return Err(NotFound(format!("no staff credential {credential}")).into());
            }
            if !ctx.json {
                println!("revoked {credential}");
            }
        }
        StaffCommand::List => print_json(&service.auth.staff(&service.db).await?),
    }
    Ok(ExitCode::SUCCESS)
}

/// `tranche service` commands.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Log in to a role service with your DID: it asks for a challenge,
    /// presents your credentials over it and its domain, and writes the
    /// session (a bearer token, valid 15 minutes).
    ///
    /// Example:
    ///   tranche service login http://127.0.0.1:28101 --key op-1 --credential op-1.json --out op-1.session
    #[command(verbatim_doc_comment)]
    Login {
        /// The service's base URL.
        url: String,
        #[command(flatten)]
        key: KeyArgs,
        /// A credential to present (repeat for several).
        #[arg(long = "credential")]
        credentials: Vec<PathBuf>,
        /// Write the session here (private file); else print it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Trust this PEM CA certificate for the service's TLS (a private CA).
        #[arg(long)]
        ca_cert: Option<PathBuf>,
    },
    /// Call a role service: GET, or POST with --body (PUT with --put).
    /// Authenticated by --session (a person) or --sign-as (an organisation's
    /// signed request).
    ///
    /// Examples:
    ///   tranche service call http://127.0.0.1:28101 /requests?state=pending --session op-1.session
    ///   tranche service call http://127.0.0.1:28101 /requests/issuance/R-1/decisions --session op-1.session \
    ///       --body '{"decision":"approve","reason":"terms match the appraisal"}'
    ///   tranche service call http://127.0.0.1:28101 /requests/issuance/R-1 --sign-as devnet-tsp \
    ///       --key-file keys/devnet-tsp.key --chain-id tranche-devnet
    ///   tranche service call http://127.0.0.1:28103 /me/profile --session me.session --put \
    ///       --body '{"name":"Kim Minji","address":"9 Teheran-ro, Seoul"}'
    ///
    /// Exit 3 when the service refuses (its code and message are printed), 4 when it has no such thing.
    #[command(verbatim_doc_comment)]
    Call {
        /// The service's base URL.
        url: String,
        /// The path, with its query.
        path: String,
        /// POST this JSON body (a file, `-` for standard input, or the JSON itself).
        #[arg(long)]
        body: Option<String>,
        /// PUT the body instead of POSTing it (replacing what is there, e.g.
        /// /me/profile).
        #[arg(long, requires = "body")]
        put: bool,
        /// A session written by `tranche service login`.
        #[arg(long, conflicts_with = "sign_as")]
        session: Option<PathBuf>,
        /// Sign the request as this organisation (with --key or --key-file).
        #[arg(long, requires = "chain_id")]
        sign_as: Option<String>,
        /// The chain the organisation's key is on.
        #[arg(long)]
        chain_id: Option<ChainId>,
        /// The organisation's key.
        #[arg(long)]
        key: Option<String>,
        /// The organisation's key file.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Its password file.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Trust this PEM CA certificate for the service's TLS (a private CA).
        #[arg(long)]
        ca_cert: Option<PathBuf>,
    },
    /// Sign an exchange's report to the AML regulator (F6-6, F6-8) with the
    /// exchange's on-chain key: its hash (SHA-256 over
    /// `tranche/exchange-report/v1` and its JSON) and the key's signature
    /// over the hash in the `exchange-report` domain. The exchange's service
    /// signs its own; this is for an exchange reporting by other means.
    ///
    /// Example:
    ///   tranche service sign-report report.json --key-file keys/devnet-exchange.key \
    ///       --chain-id tranche-devnet --out signed.json
    ///   tranche service call http://127.0.0.1:27206 /reports --body signed.json \
    ///       --sign-as devnet-exchange --key-file keys/devnet-exchange.key --chain-id tranche-devnet
    #[command(verbatim_doc_comment)]
    SignReport {
        /// The report (`{"exchange","seq","from_ms","to_ms","prev",
        /// "after_height","through_height","trades","transfers"}`).
        report: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        /// The chain the exchange's key is on.
        #[arg(long)]
        chain_id: ChainId,
        /// Write the signed report here; else print it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// An HTTP client, trusting `ca_cert` (PEM) besides the system's roots.
fn http(ca_cert: Option<&Path>) -> Result<reqwest::blocking::Client> {
    let mut b = reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(30));
    if let Some(path) = ca_cert {
        let pem = read_bounded(path, DOC_BYTES_MAX)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| Usage(format!("{} is not a PEM certificate: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Usage(format!("{} holds no PEM certificate", path.display())).into());
        }
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().context("an HTTP client")
}

/// The answer's JSON, or the exit that fits the refusal.
fn answer(path: &str, response: reqwest::blocking::Response) -> Result<Value> {
    let status = response.status();
    let text = response.text().unwrap_or_default();
    let body: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    if status.is_success() {
        return Ok(body);
    }
    let code = body["code"].as_str().unwrap_or("").to_string();
    let message = body["message"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_string);
    let what = format!(
        "the service refused {path} ({} {code}): {message}",
        status.as_u16()
    );
    Err(match status.as_u16() {
        404 => NotFound(what).into(),
        400..=499 => Refused(what).into(),
        _ => anyhow!(what),
    })
}

fn read_doc(arg: &Path, what: &str) -> Result<Value> {
    let bytes = read_bounded(arg, DOC_BYTES_MAX)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Usage(format!("{} is not {what} in JSON: {e}", arg.display())).into())
}

/// `tranche service`.
pub fn service(ctx: &Ctx, command: ServiceCommand) -> Result<ExitCode> {
    match command {
        ServiceCommand::Login {
            url,
            key,
            credentials,
            out,
            ca_cert,
        } => {
            let holder = open_key(ctx, &key)?;
            let base = url.trim_end_matches('/');
            let client = http(ca_cert.as_deref())?;
            let challenge = answer(
                "/auth/challenge",
                client
                    .post(format!("{base}/auth/challenge"))
                    .send()
                    .with_context(|| format!("reaching {base}"))?,
            )?;
            let (Some(nonce), Some(domain)) = (
                challenge["challenge"].as_str(),
                challenge["domain"].as_str(),
            ) else {
                return Err(anyhow!("{base} answered no challenge: {challenge}"));
            };
            let creds = credentials
                .iter()
                .map(|p| read_doc(p, "a credential"))
                .collect::<Result<Vec<_>>>()?;
            let vp = present(&holder, creds, nonce, domain, super::now())?;
            let session = answer(
                "/auth/session",
                client
                    .post(format!("{base}/auth/session"))
                    .json(&json!({ "challenge": nonce, "presentation": vp }))
                    .send()?,
            )?;
            let text = serde_json::to_string_pretty(&session)? + "\n";
            match out {
                Some(p) => write_private_atomically(&p, text.as_bytes())?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        ServiceCommand::SignReport {
            report,
            key,
            chain_id,
            out,
        } => {
            let k = open_key(ctx, &key)?;
            let report: tranche_api::report::ExchangeReport =
                serde_json::from_slice(&read_bounded(&report, DOC_BYTES_MAX)?).map_err(|e| {
                    Usage(format!(
                        "{} is not an exchange report: {e}",
                        report.display()
                    ))
                })?;
            let hash = report.hash();
            let signed = tranche_api::report::SignedReport {
                signature: k.sign(tranche_crypto::Domain::ExchangeReport, &chain_id, &hash.0),
                hash: hash.to_hex(),
                report,
            };
            let text = serde_json::to_string_pretty(&signed)? + "\n";
            match out {
                Some(p) => std::fs::write(&p, text)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        ServiceCommand::Call {
            url,
            path,
            body,
            put,
            session,
            sign_as,
            chain_id,
            key,
            key_file,
            password_file,
            ca_cert,
        } => {
            if !path.starts_with('/') {
                return Err(Usage(format!("the path starts with /, not {path:?}")).into());
            }
            let body = match body {
                None => None,
                Some(b) if b.trim_start().starts_with(['{', '[']) => Some(b.into_bytes()),
                Some(b) => Some(read_bounded(Path::new(&b), DOC_BYTES_MAX)?),
            };
            if let Some(b) = &body {
                serde_json::from_slice::<Value>(b)
                    .map_err(|e| Usage(format!("--body is not JSON: {e}")))?;
            }
            let base = url.trim_end_matches('/');
            let method = if put {
                reqwest::Method::PUT
            } else if body.is_some() {
                reqwest::Method::POST
            } else {
                reqwest::Method::GET
            };
            let mut request =
                http(ca_cert.as_deref())?.request(method.clone(), format!("{base}{path}"));
            if let Some(s) = session {
                let s = read_doc(&s, "a session from `tranche service login`")?;
                let token = s["token"]
                    .as_str()
                    .ok_or_else(|| Usage("the session has no token".into()))?;
                request = request.bearer_auth(token);
            }
            if let Some(org) = sign_as {
                let k = open_key(
                    ctx,
                    &KeyArgs {
                        key,
                        key_file,
                        password_file,
                    },
                )?;
                let chain = chain_id.ok_or_else(|| Usage("--sign-as needs --chain-id".into()))?;
                let signed_path = path.split('?').next().unwrap_or(&path);
                let h = tranche_service::signed::sign(
                    &k,
                    &chain,
                    &org,
                    method.as_str(),
                    signed_path,
                    body.as_deref().unwrap_or(b""),
                    tranche_service::now_ms() / 1000,
                    &tranche_service::random_hex()[..32],
                );
                request = request
                    .header("content-digest", h.content_digest)
                    .header("signature-input", h.signature_input)
                    .header("signature", h.signature);
            }
            if let Some(b) = body {
                request = request.header("content-type", "application/json").body(b);
            }
            let value = answer(
                &path,
                request.send().with_context(|| format!("reaching {base}"))?,
            )?;
            print_json(&value);
            Ok(ExitCode::SUCCESS)
        }
    }
}
