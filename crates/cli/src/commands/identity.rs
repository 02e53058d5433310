//! `tranche did`, `tranche vc`, `tranche vp`: decentralized identifiers,
//! verifiable credentials and presentations (SR-5).

use super::{now, open_key, print_json, KeyArgs};
use crate::Ctx;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tranche_api::travel::TravelTransfer;
use tranche_identity::*;
use tranche_keystore::{read_bounded, write_private_atomically, Keystore};
use tranche_ledger::Ledger;
use tranche_types::{
    ChainId, CountryCode, OrgId, Payload, Reference, Timestamp, TokenId, Units, WalletAddress,
};

/// The largest credential, presentation or status list read.
const DOC_BYTES_MAX: u64 = 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum DidCommand {
    /// Make a new key and print its did:key DID and DID document.
    ///
    /// The key is stored like `tranche key new` stores one (password-encrypted);
    /// the DID is derived from its public key, so nothing else is kept.
    ///
    /// Example:
    ///   tranche did new alice --password-file alice.pw
    #[command(verbatim_doc_comment)]
    New {
        /// A name for the key.
        name: String,
        /// Read the password from the first line of this file (else TRANCHE_PASSWORD, else a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Print the did:key DID and DID document of a key in the keystore.
    ///
    /// Example:
    ///   tranche did show alice
    #[command(verbatim_doc_comment)]
    Show {
        /// The key's name.
        name: String,
    },
    /// Consent to binding your wallet to your DID (SR-5): writes the
    /// register_wallet payload an onboarding organisation sends.
    ///
    /// The chain binds a wallet to a DID only with two signatures: the
    /// wallet key's, agreeing to the binding, and the DID key's, proving
    /// control of the DID (the same key may be both). Both are made here,
    /// offline if you like (REC-5); hand the file to your TSP, exchange or
    /// custodian, who sends it with `tranche send`.
    ///
    /// Example:
    ///   tranche did new alice-id
    ///   tranche key new alice
    ///   tranche did bind-wallet --chain-id tranche-devnet --key alice --did-key alice-id --out bind.json
    ///   tranche send bind.json --key-file devnet/keys/devnet-tsp.key --password-file devnet/password
    #[command(verbatim_doc_comment)]
    BindWallet {
        /// The chain the binding is for.
        #[arg(long, env = "TRANCHE_CHAIN_ID")]
        chain_id: ChainId,
        /// The wallet's key.
        #[command(flatten)]
        key: KeyArgs,
        /// The keystore name of the key behind your DID (default: the wallet's own key).
        #[arg(long)]
        did_key: Option<String>,
        /// Write the payload here (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Consent to binding a wallet someone keeps for you (an exchange's
    /// trader wallet, F6-11) to your DID: writes the consent that
    /// organisation adds the wallet key's signature to.
    ///
    /// Signed offline with the key behind your DID, for one wallet on one
    /// chain; hand the file to the exchange (`PUT /traders/me/wallet`).
    ///
    /// Example:
    ///   tranche did consent-wallet --chain-id tranche-devnet --wallet tr1... --key alice-id --out consent.json
    ///   tranche service call http://127.0.0.1:28103/traders/me/wallet --put --session alice.session --body consent.json
    #[command(verbatim_doc_comment)]
    ConsentWallet {
        /// The chain the binding is for.
        #[arg(long, env = "TRANCHE_CHAIN_ID")]
        chain_id: ChainId,
        /// The wallet the organisation gave you.
        #[arg(long)]
        wallet: WalletAddress,
        /// The key behind your DID.
        #[command(flatten)]
        key: KeyArgs,
        /// Write the consent here (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Consent to a custodian keeping a wallet for you (SR-3): writes the
    /// open_custodial_wallet payload the custodian sends.
    ///
    /// Signed with the key behind your DID, for one custodian on one chain.
    ///
    /// Example:
    ///   tranche did consent-custody --chain-id tranche-devnet --custodian devnet-custodian \
    ///       --key alice-id --out custody.json
    ///   tranche send custody.json --key-file devnet/keys/devnet-custodian.key --password-file devnet/password
    #[command(verbatim_doc_comment)]
    ConsentCustody {
        /// The chain the consent is for.
        #[arg(long, env = "TRANCHE_CHAIN_ID")]
        chain_id: ChainId,
        /// The custodian's organisation id.
        #[arg(long)]
        custodian: OrgId,
        /// The key behind your DID.
        #[command(flatten)]
        key: KeyArgs,
        /// Write the payload here (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Authorize your custodian to move tokens out of the custodial wallet
    /// it keeps for you (SR-3): writes the custodial_transfer payload the
    /// custodian checks against its policy and sends.
    ///
    /// Signed offline with the key behind your DID (or a wallet key bound
    /// to it), for one custodian, one instruction, one chain. Each
    /// authorization of a wallet carries the next number (the custodian's
    /// `GET /holders/me`, or the node's `GET /wallets/{wallet}` custody,
    /// shows it) and is used once, in order; after --valid-for it is void.
    ///
    /// Example:
    ///   tranche did authorize-transfer --chain-id tranche-devnet --custodian devnet-custodian \
    ///       --token ACME --to <wallet> --amount 30 --number 0 --key alice-id --out move.json
    ///   tranche service call http://127.0.0.1:28104/instructions --session alice.session --body move.json
    ///
    /// A transfer of the AML policy's travel-rule value or more to a wallet
    /// another organisation keeps carries who sends and who receives
    /// (IVMS101): give them in a file with --travel-rule, and the
    /// authorization's reference becomes the message's digest, so the
    /// custodian can send only the message you signed for. The file:
    ///   {"originator": {"primary_identifier": "Doe", "secondary_identifier": "Alice",
    ///                   "country_of_residence": "DE"},
    ///    "beneficiary": {"primary_identifier": "Roe", "secondary_identifier": "Bob"},
    ///    "beneficiary_vasp": "devnet-exchange"}
    /// Sign it with the key behind your DID: the message names the custodial
    /// wallet the custodian keeps for that DID.
    #[command(verbatim_doc_comment)]
    AuthorizeTransfer {
        /// The chain the authorization is for.
        #[arg(long, env = "TRANCHE_CHAIN_ID")]
        chain_id: ChainId,
        /// The custodian's organisation id.
        #[arg(long)]
        custodian: OrgId,
        /// The token to move.
        #[arg(long)]
        token: TokenId,
        /// The wallet to move it to.
        #[arg(long)]
        to: WalletAddress,
        /// How many whole units.
        #[arg(long)]
        amount: Units,
        /// A reference carried on chain (e.g. an invoice number).
        #[arg(long, conflicts_with = "travel_rule")]
        reference: Option<Reference>,
        /// The travel rule's parties (JSON: originator, beneficiary,
        /// beneficiary_vasp); the reference becomes the message's digest.
        #[arg(long, value_name = "FILE")]
        travel_rule: Option<PathBuf>,
        /// The wallet's next authorization number.
        #[arg(long)]
        number: u64,
        /// How long from now it stays valid: e.g. 30m, 12h, 7d.
        #[arg(long, default_value = "1h", value_parser = super::tx::parse_duration_ms)]
        valid_for: u64,
        /// The key behind your DID, or a wallet key bound to it.
        #[command(flatten)]
        key: KeyArgs,
        /// Write the payload here (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Know-your-customer checks passed (needs --level).
    Kyc,
    /// A professional or accredited investor.
    AccreditedInvestor,
    /// Country of residence (needs --country).
    Jurisdiction,
    /// A legal person (needs --lei).
    LegalPerson,
    /// The owner of an asset, attested by an asset registry (needs --asset).
    AssetOwnership,
}

/// What a verifier brings: whom it trusts, the status lists, and the time.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A trusted issuer's DID; repeat for several. Without it, any issuer whose proof verifies passes.
    #[arg(long)]
    trusted_issuer: Vec<String>,
    /// A status list credential file a credential's status may point to; repeat for several.
    #[arg(long)]
    status_list: Vec<PathBuf>,
    /// Verify as of this time instead of now, e.g. 2027-01-01T00:00:00Z.
    #[arg(long)]
    at: Option<String>,
}

impl VerifyArgs {
    /// Runs `f` with verification options built from these arguments.
    fn with_options<T>(&self, f: impl FnOnce(&VerifyOptions<'_>) -> T) -> Result<T> {
        let lists: Vec<Value> = self
            .status_list
            .iter()
            .map(|p| read_json(p, "status list credential"))
            .collect::<Result<_>>()?;
        let fetch = |url: &str| lists.iter().find(|l| l["id"] == url).cloned();
        let opts = VerifyOptions {
            now: time_arg("--at", self.at.as_deref())?,
            trusted_issuers: (!self.trusted_issuer.is_empty())
                .then_some(self.trusted_issuer.as_slice()),
            status_lists: &fetch,
        };
        Ok(f(&opts))
    }
}

#[derive(Debug, Subcommand)]
pub enum VcCommand {
    /// Issue a credential about a subject, signed with eddsa-jcs-2022.
    ///
    /// Example:
    ///   tranche vc issue --key kyc-co --subject did:key:z6Mk... --kind kyc --level high \
    ///       --valid-until 2027-12-31T00:00:00Z --out alice-kyc.json
    #[command(verbatim_doc_comment)]
    Issue {
        #[command(flatten)]
        key: KeyArgs,
        /// The subject's DID.
        #[arg(long)]
        subject: String,
        /// What the credential asserts.
        #[arg(long, value_enum)]
        kind: Kind,
        /// KYC assurance level: low, substantial or high.
        #[arg(long)]
        level: Option<String>,
        /// Country of residence, ISO 3166-1 alpha-2 (e.g. KR).
        #[arg(long)]
        country: Option<CountryCode>,
        /// Legal Entity Identifier (20 characters).
        #[arg(long)]
        lei: Option<String>,
        /// The asset's id on chain, for --kind asset-ownership.
        #[arg(long)]
        asset: Option<String>,
        /// The credential's id, e.g. urn:uuid:...
        #[arg(long)]
        id: Option<String>,
        /// Valid from (default: now), e.g. 2026-01-01T00:00:00Z.
        #[arg(long)]
        valid_from: Option<String>,
        /// Valid until, e.g. 2027-01-01T00:00:00Z.
        #[arg(long)]
        valid_until: Option<String>,
        /// URL of the status list that can revoke it (with --status-index).
        #[arg(long, requires = "status_index")]
        status_list: Option<String>,
        /// Its entry in that status list.
        #[arg(long, requires = "status_list")]
        status_index: Option<usize>,
        /// Write it here (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The digest of a credential (SHA-256 of its JCS form, hex): what an
    /// asset registry records on chain as the "credential" of its
    /// record_ownership payload for the ownership credential it issued (ST-6).
    ///
    /// Example:
    ///   tranche vc digest owner-a1.json
    #[command(verbatim_doc_comment)]
    Digest {
        /// The credential file ('-' reads standard input).
        file: PathBuf,
    },
    /// Verify a credential: proof, issuer binding, validity dates and status.
    ///
    /// Exits 0 only if it is valid, else prints why and exits 1. The issuer is
    /// checked against a trusted list only when --trusted-issuer is given.
    ///
    /// Example:
    ///   tranche vc verify alice-kyc.json --trusted-issuer did:key:z6Mk... --status-list list.json
    #[command(verbatim_doc_comment)]
    Verify {
        /// The credential file ('-' reads standard input).
        file: PathBuf,
        #[command(flatten)]
        verifier: VerifyArgs,
    },
    /// Publish or update a revocation status list, signed by the issuer.
    ///
    /// Example:
    ///   tranche vc status-list --key kyc-co --url https://kyc.example/status/1 --revoke 7 \
    ///       --from list.json --out list.json
    #[command(verbatim_doc_comment)]
    StatusList {
        #[command(flatten)]
        key: KeyArgs,
        /// The list's URL (its id, which credentials point to).
        #[arg(long)]
        url: String,
        /// Start from this existing list instead of an empty one.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Revoke this entry; repeat for several.
        #[arg(long)]
        revoke: Vec<usize>,
        /// Reinstate this entry; repeat for several.
        #[arg(long)]
        reinstate: Vec<usize>,
        /// Write it here (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum VpCommand {
    /// Present credentials to a verifier, answering its challenge.
    ///
    /// Example:
    ///   tranche vp present --key alice --challenge 3f9a... --domain exchange.example \
    ///       alice-kyc.json --out alice-vp.json
    #[command(verbatim_doc_comment)]
    Present {
        #[command(flatten)]
        key: KeyArgs,
        /// The verifier's challenge (a fresh random value it chose).
        #[arg(long)]
        challenge: String,
        /// The verifier's domain.
        #[arg(long)]
        domain: String,
        /// Credential files to present.
        credentials: Vec<PathBuf>,
        /// Write it here (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify a presentation: the holder's proof for this challenge and domain,
    /// and every credential in it.
    ///
    /// Example:
    ///   tranche vp verify alice-vp.json --challenge 3f9a... --domain exchange.example \
    ///       --trusted-issuer did:key:z6Mk...
    #[command(verbatim_doc_comment)]
    Verify {
        /// The presentation file ('-' reads standard input).
        file: PathBuf,
        /// The challenge you issued.
        #[arg(long)]
        challenge: String,
        /// Your domain.
        #[arg(long)]
        domain: String,
        #[command(flatten)]
        verifier: VerifyArgs,
    },
}

fn time_arg(flag: &str, text: Option<&str>) -> Result<Timestamp> {
    match text {
        None => Ok(now()),
        Some(t) => parse_datetime(t).map_err(|e| anyhow!("{flag}: {}", e.0)),
    }
}

fn read_json(path: &Path, what: &str) -> Result<Value> {
    let bytes = read_bounded(path, DOC_BYTES_MAX)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| anyhow!("{}: not a {what} in JSON: {e}", path.display()))
}

fn write_out(ctx: &Ctx, out: Option<&Path>, doc: &Value, what: &str) -> Result<()> {
    let text = serde_json::to_string_pretty(doc)? + "\n";
    match out {
        Some(path) => {
            write_private_atomically(path, text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            if !ctx.json {
                println!("wrote {what} to {}", path.display());
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn report(ctx: &Ctx, result: Result<Value, VerifyError>) -> Result<ExitCode> {
    match result {
        Ok(details) => {
            if ctx.json {
                print_json(&json!({ "valid": true, "details": details }));
            } else {
                println!("valid: {}", serde_json::to_string_pretty(&details)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if ctx.json {
                print_json(&json!({ "valid": false, "error": e.to_string() }));
            } else {
                println!("INVALID: {e}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn credential_json(c: &VerifiedCredential) -> Value {
    json!({
        "issuer": c.issuer,
        "signer": c.signer,
        "issuer_bound_to_key": c.issuer_bound,
        "subject": c.subject,
        "types": c.types,
    })
}

/// Writes a payload that carries a person's consent to `out` (or standard output).
fn write_consent(ctx: &Ctx, payload: &Payload, out: Option<&Path>, what: &str) -> Result<()> {
    write_payload(ctx, payload, out, what, "the organisation")
}

/// Writes a payload another party sends: `who` is told how.
fn write_payload(
    ctx: &Ctx,
    payload: &Payload,
    out: Option<&Path>,
    what: &str,
    who: &str,
) -> Result<()> {
    write_for(ctx, payload, out, what, &|file| {
        format!("{who} sends it with: tranche send {file} --key-file ORG.key")
    })
}

/// Writes `value` as JSON to `out` (or standard output), saying what it
/// is and, by `next` of the file's name, what to do with it.
fn write_for(
    ctx: &Ctx,
    value: &impl serde::Serialize,
    out: Option<&Path>,
    what: &str,
    next: &dyn Fn(&str) -> String,
) -> Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    match out {
        Some(path) => {
            write_private_atomically(path, text.as_bytes())?;
            if ctx.json {
                print_json(&json!({ "file": path.display().to_string() }));
            } else {
                println!("{what} written to {}", path.display());
                println!("{}", next(&path.display().to_string()));
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}

pub fn run_did(ctx: &Ctx, cmd: DidCommand) -> Result<ExitCode> {
    let (name, file) = match cmd {
        DidCommand::BindWallet {
            chain_id,
            key,
            did_key,
            out,
        } => {
            let wallet = open_key(ctx, &key)?;
            let did = match did_key {
                Some(name) => open_key(
                    ctx,
                    &KeyArgs {
                        key: Some(name),
                        key_file: None,
                        password_file: key.password_file.clone(),
                    },
                )?,
                None => wallet.clone(),
            };
            let p = Payload::RegisterWallet(Ledger::sign_binding(&chain_id, &wallet, &did));
            write_consent(
                ctx,
                &p,
                out.as_deref(),
                "binding of your wallet to your DID",
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        DidCommand::ConsentCustody {
            chain_id,
            custodian,
            key,
            out,
        } => {
            let holder = open_key(ctx, &key)?;
            let p = Payload::OpenCustodialWallet(Ledger::sign_custody_consent(
                &chain_id, &custodian, &holder,
            ));
            write_consent(ctx, &p, out.as_deref(), "consent to custody")?;
            return Ok(ExitCode::SUCCESS);
        }
        DidCommand::ConsentWallet {
            chain_id,
            wallet,
            key,
            out,
        } => {
            let holder = open_key(ctx, &key)?;
            let did = Ledger::did_of_key(&holder.public_key());
            let message = Ledger::binding_message(&wallet, &did);
            let consent = json!({
                "wallet": wallet,
                "did": did,
                "did_signature": holder.sign(tranche_crypto::Domain::DidControl, &chain_id, &message),
            });
            let text = serde_json::to_string_pretty(&consent)? + "\n";
            match out {
                Some(path) => {
                    write_private_atomically(&path, text.as_bytes())?;
                    if ctx.json {
                        print_json(&json!({ "file": path.display().to_string() }));
                    } else {
                        println!("consent to binding {wallet} written to {}", path.display());
                    }
                }
                None => print!("{text}"),
            }
            return Ok(ExitCode::SUCCESS);
        }
        DidCommand::AuthorizeTransfer {
            chain_id,
            custodian,
            token,
            to,
            amount,
            reference,
            travel_rule,
            number,
            valid_for,
            key,
            out,
        } => {
            let holder = open_key(ctx, &key)?;
            let parties = travel_rule
                .as_deref()
                .map(super::travel::read_parties)
                .transpose()?;
            let reference = match &parties {
                Some(parties) => Some(super::travel::reference(
                    &chain_id,
                    &custodian,
                    &holder,
                    parties,
                    TravelTransfer {
                        token: token.to_string(),
                        from: String::new(),
                        to: to.to_string(),
                        amount,
                        authorization: number,
                    },
                )?),
                None => reference,
            };
            let p = Payload::CustodialTransfer(Ledger::sign_authorization(
                &chain_id,
                &custodian,
                &holder,
                (token, to, amount),
                reference,
                number,
                now().plus_ms(valid_for),
            ));
            let Some(parties) = parties else {
                write_payload(ctx, &p, out.as_deref(), "authorization", "the custodian")?;
                return Ok(ExitCode::SUCCESS);
            };
            // Not a payload alone: the custodian takes both, and sends the
            // parties to the receiving organisation, sealed.
            write_for(
                ctx,
                &json!({ "authorization": p, "travel_rule": parties }),
                out.as_deref(),
                "authorization with the travel rule",
                &|file| {
                    format!("hand it to your custodian: tranche service call <custodian's API> /instructions --session FILE --body {file}")
                },
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        DidCommand::New {
            name,
            password_file,
        } => {
            let (_, file) = super::key::create(ctx, &name, password_file.as_deref())?;
            (name, file)
        }
        DidCommand::Show { name } => {
            let (_, file) = Keystore::new(&ctx.home).load(&name)?;
            (name, file)
        }
    };
    let did = DidKey::from_public_key(&file.public_key);
    if ctx.json {
        print_json(&json!({ "name": name, "did": did.did(), "document": did.document() }));
    } else {
        println!("{}", did.did());
        println!("{}", serde_json::to_string_pretty(&did.document())?);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_vc(ctx: &Ctx, cmd: VcCommand) -> Result<ExitCode> {
    match cmd {
        VcCommand::Issue {
            key,
            subject,
            kind,
            level,
            country,
            lei,
            asset,
            id,
            valid_from,
            valid_until,
            status_list,
            status_index,
            out,
        } => {
            if !subject.starts_with("did:") {
                super::usage!("--subject must be a DID such as did:key:z6Mk...");
            }
            let kind = match kind {
                Kind::Kyc => CredentialKind::Kyc {
                    assurance_level: level
                        .ok_or_else(|| anyhow!("--kind kyc needs --level low|substantial|high"))?,
                },
                Kind::AccreditedInvestor => CredentialKind::AccreditedInvestor,
                Kind::Jurisdiction => CredentialKind::Jurisdiction {
                    country: country
                        .ok_or_else(|| anyhow!("--kind jurisdiction needs --country, e.g. KR"))?,
                },
                Kind::LegalPerson => CredentialKind::LegalPerson {
                    lei: lei.ok_or_else(|| anyhow!("--kind legal-person needs --lei"))?,
                },
                Kind::AssetOwnership => CredentialKind::AssetOwnership {
                    asset: asset
                        .ok_or_else(|| anyhow!("--kind asset-ownership needs --asset, e.g. A-1"))?,
                },
            };
            let valid_from = time_arg("--valid-from", valid_from.as_deref())?;
            let valid_until = match valid_until {
                Some(t) => Some(time_arg("--valid-until", Some(&t))?),
                None => None,
            };
            let issuer = open_key(ctx, &key)?;
            let vc = issue_credential(&CredentialRequest {
                id,
                issuer: &issuer,
                subject,
                kind,
                valid_from,
                valid_until,
                status: status_list
                    .zip(status_index)
                    .map(|(list, index)| StatusEntry { list, index }),
            })?;
            write_out(ctx, out.as_deref(), &vc, "the credential")?;
            Ok(ExitCode::SUCCESS)
        }
        VcCommand::Digest { file } => {
            let vc = read_json(&file, "credential")?;
            let digest = hex::encode(tranche_identity::credential_digest(&vc)?);
            if ctx.json {
                println!("{}", serde_json::json!({ "digest": digest }));
            } else {
                println!("{digest}");
            }
            Ok(ExitCode::SUCCESS)
        }
        VcCommand::Verify { file, verifier } => {
            let vc = read_json(&file, "credential")?;
            let result = verifier.with_options(|opts| verify_credential(&vc, opts))?;
            report(ctx, result.map(|c| credential_json(&c)))
        }
        VcCommand::StatusList {
            key,
            url,
            from,
            revoke,
            reinstate,
            out,
        } => {
            let mut list = match &from {
                None => StatusList::new(),
                Some(path) => {
                    let existing = read_json(path, "status list credential")?;
                    if existing["id"] != url.as_str() {
                        bail!(
                            "{} is the list {}, not {url}",
                            path.display(),
                            existing["id"]
                        );
                    }
                    let encoded = existing["credentialSubject"]["encodedList"]
                        .as_str()
                        .ok_or_else(|| {
                            anyhow!("{}: no credentialSubject.encodedList", path.display())
                        })?;
                    StatusList::decode(encoded)?
                }
            };
            for (indexes, value) in [(&revoke, true), (&reinstate, false)] {
                for i in indexes {
                    if !list.set(*i, value) {
                        bail!("index {i} is past the list's end ({} entries)", list.len());
                    }
                }
            }
            let issuer = open_key(ctx, &key)?;
            let vc = status_list_credential(&issuer, &url, &list, now())?;
            write_out(ctx, out.as_deref(), &vc, "the status list")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn run_vp(ctx: &Ctx, cmd: VpCommand) -> Result<ExitCode> {
    match cmd {
        VpCommand::Present {
            key,
            challenge,
            domain,
            credentials,
            out,
        } => {
            let vcs = credentials
                .iter()
                .map(|f| read_json(f, "credential"))
                .collect::<Result<Vec<_>>>()?;
            let holder = open_key(ctx, &key)?;
            let vp = present(&holder, vcs, &challenge, &domain, now())?;
            write_out(ctx, out.as_deref(), &vp, "the presentation")?;
            Ok(ExitCode::SUCCESS)
        }
        VpCommand::Verify {
            file,
            challenge,
            domain,
            verifier,
        } => {
            let vp = read_json(&file, "presentation")?;
            let result = verifier
                .with_options(|opts| verify_presentation(&vp, &challenge, &domain, opts))?;
            report(
                ctx,
                result.map(|p| {
                    json!({
                        "holder": p.holder,
                        "credentials": p.credentials.iter().map(credential_json).collect::<Vec<_>>(),
                    })
                }),
            )
        }
    }
}
