//! The audit log (REC-9): every decision a service makes, who made it on
//! whose authority, and which transaction carried it out, in an append-only,
//! hash-chained table. Its head is anchored on chain at intervals
//! (`AnchorAudit`), so anyone holding an export can prove against the chain
//! that no anchored entry was removed or changed.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sqlx::AnyConnection;

/// The head of an empty log.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What was decided. Holds ids (DIDs, organisation ids, request ids,
/// transaction hashes), never personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    /// Who decided: a DID, an organisation id, or `service` for the service's own steps.
    pub actor: String,
    /// On what authority: a credential id, `signed-request`, or `chain`.
    pub authority: String,
    /// What was done, e.g. `approve`, `execute`, `check`.
    pub action: String,
    /// What it was done to, e.g. `issuance/REQ-1`.
    pub subject: String,
    /// The outcome, e.g. `approved`, `refused`, `matches`.
    pub decision: String,
    /// Why, when a person gave a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The transaction that carried it out, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<String>,
}

impl Entry {
    /// What the service recorded on the chain's authority (a block it
    /// followed), for `actor`.
    pub fn by_chain(actor: &str, action: &str, subject: String, decision: String) -> Entry {
        Entry {
            actor: actor.into(),
            authority: "chain".into(),
            action: action.into(),
            subject,
            decision,
            reason: None,
            tx: None,
        }
    }

    /// A person's or staff member's decision, on the authority of the
    /// credential that earned them `role`.
    pub fn by_person(
        who: &crate::auth::Principal,
        role: &str,
        action: &str,
        subject: String,
        decision: String,
    ) -> Entry {
        Entry {
            actor: who.did.clone(),
            authority: who.credential_for(role),
            action: action.into(),
            subject,
            decision,
            reason: None,
            tx: None,
        }
    }

    /// The entry, carried out by (or seen in) transaction `tx`.
    pub fn with_tx(self, tx: &str) -> Entry {
        Entry {
            tx: Some(tx.to_string()),
            ..self
        }
    }
}

/// An entry as the log holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Record {
    /// Its place, from 1.
    pub seq: u64,
    /// When, in milliseconds since the epoch.
    pub at_ms: u64,
    /// What was decided.
    pub entry: Entry,
    /// The previous record's hash ([`GENESIS`] for the first).
    pub prev: String,
    /// This record's hash.
    pub hash: String,
}

/// An anchor of the log's head on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Anchor {
    /// How many entries it covers.
    pub entries: u64,
    /// The hash of the last of them.
    pub head: String,
    /// The `AnchorAudit` transaction's hash.
    pub tx_hash: String,
}

/// A log as exported, to be verified by anyone against the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Export {
    /// The organisation whose log it is.
    pub org: String,
    /// Every record, in order.
    pub records: Vec<Record>,
    /// Every anchor the service made, in order.
    pub anchors: Vec<Anchor>,
}

/// Why an exported log does not hold together.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A record is out of place.
    #[error("record {found} stands where record {expected} should")]
    OutOfOrder {
        /// The place expected.
        expected: u64,
        /// The place found.
        found: u64,
    },
    /// A record's link or hash does not match its content.
    #[error("record {0} was altered: its hash does not match its content or its predecessor")]
    Altered(u64),
    /// An anchor covers entries the export does not hold, or another head.
    #[error("the anchor at {entries} entries names head {anchored}, the log has {found}")]
    AnchorMismatch {
        /// Entries covered.
        entries: u64,
        /// The head anchored.
        anchored: String,
        /// The head the export holds there (or `nothing`).
        found: String,
    },
}

/// The hash of record `seq` made at `at_ms` holding `entry` after `prev`.
pub fn link(prev: &str, seq: u64, at_ms: u64, entry: &Entry) -> String {
    let json = serde_json_canonicalizer::to_vec(entry).expect("an entry serializes");
    let digest = Sha256::new()
        .chain_update(b"tranche/audit/v1\0")
        .chain_update(prev.as_bytes())
        .chain_update(seq.to_be_bytes())
        .chain_update(at_ms.to_be_bytes())
        .chain_update(&json)
        .finalize();
    hex::encode(digest)
}

/// The log's length and head.
pub async fn head(conn: &mut AnyConnection) -> Result<(u64, String), sqlx::Error> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM kit_audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match row {
        Some((seq, hash)) => (u64::try_from(seq).unwrap_or(0), hash),
        None => (0, GENESIS.to_string()),
    })
}

/// Appends `entry` in the caller's transaction, so it commits with the
/// decision it records or not at all.
pub async fn append(
    conn: &mut AnyConnection,
    at_ms: u64,
    entry: Entry,
) -> Result<Record, sqlx::Error> {
    let mut records = append_many(conn, at_ms, vec![entry]).await?;
    Ok(records.pop().expect("one record for one entry"))
}

/// Entries appended together per statement.
const ROWS_PER_INSERT: usize = 100;

/// [`append`] for several entries, in order: one read of the head and
/// multi-row inserts, where one append each would read the head and insert
/// once per entry (a service recording a lot of decisions in one write turn
/// appends them so).
pub async fn append_many(
    conn: &mut AnyConnection,
    at_ms: u64,
    entries: Vec<Entry>,
) -> Result<Vec<Record>, sqlx::Error> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let (mut last, mut prev) = head(conn).await?;
    let mut records = Vec::with_capacity(entries.len());
    for entry in entries {
        let seq = last + 1;
        let hash = link(&prev, seq, at_ms, &entry);
        records.push(Record {
            seq,
            at_ms,
            entry,
            prev: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
        last = seq;
    }
    for chunk in records.chunks(ROWS_PER_INSERT) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO kit_audit (seq, at_ms, entry, prev, hash) VALUES {}",
            crate::db::values(&*conn, chunk.len(), 5)
        )));
        for r in chunk {
            let json = serde_json::to_string(&r.entry).expect("an entry serializes");
            q = q
                .bind(r.seq as i64)
                .bind(r.at_ms as i64)
                .bind(json)
                .bind(r.prev.clone())
                .bind(r.hash.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(records)
}

/// The records from `after + 1` on, at most `limit` of them.
pub async fn records(
    conn: &mut AnyConnection,
    after: u64,
    limit: u32,
) -> Result<Vec<Record>, sqlx::Error> {
    let rows: Vec<(i64, i64, String, String, String)> = sqlx::query_as(
        "SELECT seq, at_ms, entry, prev, hash FROM kit_audit WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after as i64)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(seq, at_ms, entry, prev, hash)| {
            Ok(Record {
                seq: seq as u64,
                at_ms: at_ms as u64,
                entry: serde_json::from_str(&entry).map_err(|e| sqlx::Error::Decode(e.into()))?,
                prev,
                hash,
            })
        })
        .collect()
}

/// Every anchor made, in order.
pub async fn anchors(conn: &mut AnyConnection) -> Result<Vec<Anchor>, sqlx::Error> {
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT entries, head, tx_hash FROM kit_anchors ORDER BY entries")
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(entries, head, tx_hash)| Anchor {
            entries: entries as u64,
            head,
            tx_hash,
        })
        .collect())
}

/// Checks that the records chain from [`GENESIS`] without a gap or an
/// alteration and that every anchor names the head the records have there.
pub fn check_chain(export: &Export) -> Result<(), ChainError> {
    let mut prev = GENESIS.to_string();
    for (i, r) in export.records.iter().enumerate() {
        let expected = i as u64 + 1;
        if r.seq != expected {
            return Err(ChainError::OutOfOrder {
                expected,
                found: r.seq,
            });
        }
        if r.prev != prev || link(&prev, r.seq, r.at_ms, &r.entry) != r.hash {
            return Err(ChainError::Altered(r.seq));
        }
        prev = r.hash.clone();
    }
    for a in &export.anchors {
        let found = usize::try_from(a.entries)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| export.records.get(i))
            .map(|r| r.hash.clone());
        if found.as_deref() != Some(a.head.as_str()) {
            return Err(ChainError::AnchorMismatch {
                entries: a.entries,
                anchored: a.head.clone(),
                found: found.unwrap_or_else(|| "nothing".into()),
            });
        }
    }
    Ok(())
}
