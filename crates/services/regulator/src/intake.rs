//! Reports in (F6-6, F6-8): an exchange POSTs each report, the request
//! signed by its on-chain key. A report is taken only from an organisation
//! the chain records as an exchange, about itself, with a valid signature
//! of its hash by the same key; a report received again unchanged is
//! answered as before (the exchange's retry), one rewritten is refused.
//! A skipped number or a report naming another predecessor than the one
//! received is a finding, and the report is kept. Reports go to the vault:
//! they carry the identities of both sides of every trade.

use crate::packed::{pack_report, unpack_report, REPORT_MAGIC};
use crate::Regulator;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tranche_api::report::SignedReport;
use tranche_api::report_binary::{
    hash_canonical, read_head, split_binary, ReportHead, SIGNED_REPORT_HEAD,
};
use tranche_service::audit::{self, Entry};
use tranche_service::db::Write;
use tranche_service::signed::{Caller, Nonce};
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::{Hash, Role};
use tranche_vault::Sealed;

/// The most bytes of one report the vault keeps in one record.
const CHUNK_BYTES: usize = 1_000_000;
/// The vault's owner id for reports.
pub(crate) const VAULT_OWNER: &str = "exchange-reports";

/// What the regulator answers to a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    /// The exchange.
    pub exchange: String,
    /// The report's number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// `received` (to be reconciled once the regulator's node has its
    /// blocks) or `reconciled`.
    pub state: String,
    /// Findings its arrival raised (a gap before it, a broken link).
    pub findings: Vec<String>,
}

/// How a zstd frame begins (a JSON report begins with `{`): reports were
/// kept compressed before they were kept packed.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

fn vault_record(exchange: &str, seq: u64, chunk: usize) -> String {
    format!("{exchange}/{seq}/{chunk}")
}

/// Which report a finding is about, and who records it.
pub(crate) struct About<'a> {
    /// The regulator's organisation.
    pub actor: &'a str,
    /// The exchange.
    pub exchange: &'a str,
    /// The report's number.
    pub seq: u64,
}

/// Records finding `kind` about `subject` of a report, once, with its
/// audit entry. True if it is new.
pub(crate) async fn finding(
    conn: &mut AnyConnection,
    about: &About<'_>,
    (kind, subject, detail): (&str, &str, &str),
    evidence: &serde_json::Value,
) -> Result<bool, ServiceError> {
    let (exchange, seq) = (about.exchange, about.seq);
    let (next,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM rg_findings")
        .fetch_one(&mut *conn)
        .await?;
    let done = sqlx::query(
        "INSERT INTO rg_findings (id, exchange, seq, kind, subject, detail, evidence, at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (exchange, seq, kind, subject) DO NOTHING",
    )
    .bind(next)
    .bind(exchange.to_string())
    .bind(seq as i64)
    .bind(kind.to_string())
    .bind(subject.to_string())
    .bind(detail.to_string())
    .bind(evidence.to_string())
    .bind(now_ms() as i64)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if done {
        audit::append(
            conn,
            now_ms(),
            Entry {
                actor: about.actor.to_string(),
                authority: "reconciliation".into(),
                action: "finding".into(),
                subject: format!("finding/{next}"),
                decision: format!("{kind} in report {seq} of {exchange}: {detail}"),
                reason: None,
                tx: None,
            },
        )
        .await?;
    }
    Ok(done)
}

/// Records a finding about a report that is refused, and the refusal.
async fn refuse(
    mut w: Write<'_>,
    about: &About<'_>,
    finding_of: (&str, &str, &str),
    evidence: &serde_json::Value,
    code: ServiceCode,
) -> Result<Receipt, ServiceError> {
    finding(&mut w.tx, about, finding_of, evidence).await?;
    w.commit().await?;
    Err(ServiceError::new(
        code,
        format!("report {}: {}", about.seq, finding_of.2),
    ))
}

impl Regulator {
    /// Takes report `body` from `caller`, whose signed request the kit
    /// verified but for its `nonce`, claimed here in the write turn: the
    /// signed report's binary form if `binary` (hashed and kept as it
    /// came), else its JSON.
    pub async fn receive(
        &self,
        caller: &Caller,
        nonce: Nonce,
        binary: bool,
        body: &[u8],
    ) -> Result<Receipt, ServiceError> {
        caller.require(Role::Exchange)?;
        // The report's head, its hash as stated (JSON) or as its bytes give
        // it (binary), its signature, and its JSON form if it came so. A
        // binary report is checked whole but only its head is read: its
        // bytes are what the vault keeps.
        let (head, stated, signature, json) = if binary {
            let bad = |e: tranche_api::packing::PackError| {
                ServiceError::new(
                    ServiceCode::BadRequest,
                    format!("the body is not a signed report's binary form: {e}"),
                )
            };
            let (signature, canonical) = split_binary(body).map_err(bad)?;
            let head = read_head(canonical).map_err(bad)?;
            (head, hash_canonical(canonical).to_hex(), signature, None)
        } else {
            let r: SignedReport = serde_json::from_slice(body).map_err(|e| {
                ServiceError::new(
                    ServiceCode::BadRequest,
                    format!("the body is not a signed report: {e}"),
                )
            })?;
            (r.report.head(), r.hash.clone(), r.signature, Some(r))
        };
        let exchange = caller.org.clone();
        if head.exchange != exchange {
            return Err(ServiceError::new(
                ServiceCode::Forbidden,
                format!(
                    "{exchange} sent a report of {}; an exchange reports for itself",
                    head.exchange
                ),
            ));
        }
        let s = &self.service;
        // The key the chain records for the exchange signed the request.
        let key = caller.key;
        let hash = Hash::from_hex(&stated).map_err(|e| {
            ServiceError::new(
                ServiceCode::BadRequest,
                format!("the report's hash does not read: {e}"),
            )
        })?;
        if tranche_crypto::verify(
            &key,
            tranche_crypto::Domain::ExchangeReport,
            &s.chain_id,
            &hash.0,
            &signature,
        )
        .is_err()
        {
            return Err(ServiceError::new(
                ServiceCode::Refused,
                format!(
                    "report {} is not signed by {exchange}'s key on chain",
                    head.seq
                ),
            ));
        }
        let seq = head.seq;
        let evidence = serde_json::json!({
            "exchange": exchange, "seq": seq, "hash": stated,
            "prev": head.prev, "signature": signature,
        });
        let about = About {
            actor: &s.config.org,
            exchange: &exchange,
            seq,
        };
        // The work that needs no database before the write turn, so a
        // large report does not hold up the follower and reconciliation:
        // a JSON report's content hashed (encoded again), and the report
        // packed (a binary one is kept as it came) and encrypted for the
        // vault. A binary report's hash is its bytes', taken as it was read.
        let intact = json.as_ref().is_none_or(SignedReport::hash_is_content);
        let sealed = if intact {
            self.seal_report(&head, json.as_ref(), body)?
        } else {
            Vec::new()
        };
        let mut w = s.db.write().await?;
        // The request is taken, and its nonce spent, with whatever this
        // turn commits.
        nonce.claim(&mut w.tx).await?;
        if !intact {
            // Signed by the exchange, but not what it signed: edited.
            let detail = format!(
                "its content hashes to {}, not to the signed {}",
                json.as_ref()
                    .map_or(String::new(), |r| r.report.hash().to_hex()),
                stated
            );
            return refuse(
                w,
                &about,
                ("edited", &stated, &detail),
                &evidence,
                ServiceCode::Refused,
            )
            .await;
        }
        let known: Option<(String, String)> =
            sqlx::query_as("SELECT hash, state FROM rg_reports WHERE exchange = $1 AND seq = $2")
                .bind(exchange.clone())
                .bind(seq as i64)
                .fetch_optional(&mut *w.tx)
                .await?;
        if let Some((held, state)) = known {
            if held == stated {
                // The exchange's retry of what was received: nothing new
                // but the request's nonce.
                w.commit().await?;
                return Ok(Receipt {
                    exchange,
                    seq,
                    hash: held,
                    state,
                    findings: Vec::new(),
                });
            }
            let detail = format!(
                "report {seq} was received as {held}; now it comes as {}",
                stated
            );
            return refuse(
                w,
                &about,
                ("edited", &stated, &detail),
                &evidence,
                ServiceCode::Conflict,
            )
            .await;
        }
        let known: Option<(i64, String)> =
            sqlx::query_as("SELECT last_seq, last_hash FROM rg_exchanges WHERE exchange = $1")
                .bind(exchange.clone())
                .fetch_optional(&mut *w.tx)
                .await?;
        if known.is_none() {
            // The first report the regulator has from this exchange sets
            // where its reconciliation starts (a regulator may join a
            // running network); reports numbered before it are missing.
            sqlx::query(
                "INSERT INTO rg_exchanges (exchange, last_seq, last_hash, reconciled_through)
                 VALUES ($1, 0, $2, $3)",
            )
            .bind(exchange.clone())
            .bind(Hash([0; 32]).to_hex())
            .bind(head.after_height as i64)
            .execute(&mut *w.tx)
            .await?;
        }
        let (last_seq, last_hash) = known.unwrap_or((0, Hash([0; 32]).to_hex()));
        let last_seq = last_seq as u64;
        let mut found = Vec::new();
        if seq < last_seq {
            let detail = format!("report {seq} arrived after report {last_seq}");
            let of = ("repeated", stated.as_str(), detail.as_str());
            return refuse(w, &about, of, &evidence, ServiceCode::Conflict).await;
        }
        if seq > last_seq + 1 {
            let detail = format!("reports {} to {} never arrived", last_seq + 1, seq - 1);
            finding(&mut w.tx, &about, ("missing", "before", &detail), &evidence).await?;
            found.push(format!("missing: {detail}"));
        } else if last_seq > 0 && head.prev != last_hash {
            let detail = format!(
                "it names {} as the report before it; report {last_seq} was received as {last_hash}",
                head.prev
            );
            finding(&mut w.tx, &about, ("edited", "prev", &detail), &evidence).await?;
            found.push(format!("edited: {detail}"));
        }
        for record in &sealed {
            s.vault.put_sealed(&mut w.tx, record).await?;
        }
        sqlx::query(
            "INSERT INTO rg_reports (exchange, seq, hash, after_height, through_height, from_ms,
                 to_ms, trades, transfers, chunks, received_ms, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'received')",
        )
        .bind(exchange.clone())
        .bind(seq as i64)
        .bind(stated.clone())
        .bind(head.after_height as i64)
        .bind(head.through_height as i64)
        .bind(head.from_ms as i64)
        .bind(head.to_ms as i64)
        .bind(head.trades as i64)
        .bind(head.transfers as i64)
        .bind(sealed.len() as i64)
        .bind(now_ms() as i64)
        .execute(&mut *w.tx)
        .await?;
        sqlx::query("UPDATE rg_exchanges SET last_seq = $1, last_hash = $2 WHERE exchange = $3")
            .bind(seq as i64)
            .bind(stated.clone())
            .bind(exchange.clone())
            .execute(&mut *w.tx)
            .await?;
        audit::append(
            &mut w.tx,
            now_ms(),
            Entry::by_chain(
                &exchange,
                "report",
                format!("report/{exchange}/{seq}"),
                format!(
                    "received: {} trades, {} transfers, blocks {}..={}, hash {}",
                    head.trades,
                    head.transfers,
                    head.after_height + 1,
                    head.through_height,
                    stated
                ),
            ),
        )
        .await?;
        w.commit().await?;
        self.arrived.notify_one();
        Ok(Receipt {
            exchange,
            seq,
            hash: stated,
            state: "received".into(),
            findings: found,
        })
    }

    /// The report, identities and all, sealed for the vault: its binary
    /// form as it came, or (one that came as JSON) packed (see
    /// [`crate::packed`]); either reads back without parsing JSON. In
    /// records of at most [`CHUNK_BYTES`].
    fn seal_report(
        &self,
        head: &ReportHead,
        json: Option<&SignedReport>,
        binary: &[u8],
    ) -> Result<Vec<Sealed>, ServiceError> {
        let (exchange, seq) = (&head.exchange, head.seq);
        let packed;
        let bytes = match json {
            None => binary,
            Some(r) => {
                packed = pack_report(r);
                &packed
            }
        };
        bytes
            .chunks(CHUNK_BYTES)
            .enumerate()
            .map(|(i, c)| {
                Ok(self
                    .service
                    .vault
                    .seal(VAULT_OWNER, &vault_record(exchange, seq, i), c, &[])?)
            })
            .collect()
    }

    /// Report `seq` of `exchange` as received, from the vault.
    pub(crate) async fn stored_report(
        &self,
        exchange: &str,
        seq: u64,
        chunks: usize,
    ) -> Result<SignedReport, ServiceError> {
        let mut bytes = Vec::with_capacity(
            chunks.min(crate::api::REPORT_BYTES_MAX / CHUNK_BYTES + 1) * CHUNK_BYTES,
        );
        for i in 0..chunks {
            let part = self
                .service
                .vault
                .get(VAULT_OWNER, &vault_record(exchange, seq, i))
                .await?
                .ok_or_else(|| ServiceError::internal("a stored report", "a part is missing"))?;
            bytes.extend_from_slice(&part);
        }
        // As it came in binary, or packed; kept before as JSON as it
        // came, compressed or not. Decoded on a blocking thread: a report
        // of megabytes would hold an async worker for milliseconds.
        if bytes.starts_with(SIGNED_REPORT_HEAD) {
            return tokio::task::spawn_blocking(move || SignedReport::from_binary(&bytes))
                .await
                .map_err(|e| ServiceError::internal("a stored report", e))?
                .map_err(|e| ServiceError::internal("a stored report", e));
        }
        if bytes.starts_with(REPORT_MAGIC) {
            return unpack_report(&bytes);
        }
        if bytes.starts_with(&ZSTD_MAGIC) {
            bytes = zstd::bulk::decompress(&bytes, crate::api::REPORT_BYTES_MAX)
                .map_err(|e| ServiceError::internal("a stored report", e))?;
        }
        serde_json::from_slice(&bytes).map_err(|e| ServiceError::internal("a stored report", e))
    }
}
