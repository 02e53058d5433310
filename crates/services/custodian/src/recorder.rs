//! The instruction recorder: the decisions that arrived together, recorded
//! in one database transaction (a group commit) with a few statements for
//! the lot — the instructions already recorded, the holders' numbers, the
//! outbox, the audit log and the instructions each read or written once —
//! instead of several statements per decision, each a hand-off to the
//! database's thread inside the write turn the follower waits for.

use crate::instructions::{answer, InstructionRow, InstructionView, Refusal, DAY_MS};
use crate::Custodian;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tranche_api::travel::TravelRuleMessage;
use tranche_service::audit::{self, Entry};
use tranche_service::auth::Principal;
use tranche_service::db::{params, values};
use tranche_service::{now_ms, ServiceError};
use tranche_types::{CustodialTransfer, Payload};

/// The most decisions recorded in one database transaction.
pub(crate) const RECORD_BATCH_MAX: usize = 256;
/// The most decisions waiting for the recorder.
pub(crate) const RECORD_QUEUE_MAX: usize = 4_096;
/// Instructions inserted per statement (16 columns each).
const ROWS_PER_INSERT: usize = 50;

/// A decision on one instruction, waiting to be recorded.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) who: Principal,
    pub(crate) p: CustodialTransfer,
    pub(crate) id: String,
    pub(crate) wallet: String,
    pub(crate) refusal: Option<Refusal>,
    /// The travel-rule message the receiving organisation took, kept with
    /// the instruction.
    pub(crate) travel: Option<TravelRuleMessage>,
    pub(crate) at_ms: u64,
    pub(crate) reply: oneshot::Sender<Result<InstructionView, ServiceError>>,
}

impl Custodian {
    /// Records decisions until the service stops: whatever has arrived
    /// together (up to [`RECORD_BATCH_MAX`]) in one database transaction,
    /// then answers each.
    pub(crate) async fn record_decisions(self: Arc<Self>, mut queue: mpsc::Receiver<Decision>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH_MAX);
        while queue.recv_many(&mut batch, RECORD_BATCH_MAX).await > 0 {
            let decisions = std::mem::take(&mut batch);
            match self.record(&decisions).await {
                Ok(answers) => {
                    for (d, a) in decisions.into_iter().zip(answers) {
                        let _ = d.reply.send(a);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e.message, n = decisions.len(), "recording instructions failed");
                    for d in decisions {
                        let _ = d
                            .reply
                            .send(Err(ServiceError::new(e.code, e.message.clone())));
                    }
                }
            }
        }
    }

    /// Records `decisions` in one transaction, in order: a refusal, or the
    /// holder's number taken and the custodian's transaction in the
    /// outbox, each with its audit entry; what was recorded already for the
    /// same authorization (before, or earlier in the lot) wins. The answer
    /// to each.
    async fn record(
        &self,
        decisions: &[Decision],
    ) -> Result<Vec<Result<InstructionView, ServiceError>>, ServiceError> {
        let s = &self.service;
        let mut w = s.db.write().await?;
        let now = now_ms();
        let ids: Vec<String> = decisions.iter().map(|d| d.id.clone()).collect();
        let mut known = recorded(&mut w.tx, &ids).await?;
        // Numbers are taken in order, even by concurrent requests: the
        // holders' next numbers, read once and counted here under the
        // write turn.
        let dids: Vec<String> = decisions
            .iter()
            .filter(|d| d.refusal.is_none())
            .map(|d| d.who.did.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let taken_before = next_numbers(&mut w.tx, &dids).await?;
        let mut next = taken_before.clone();
        // Each new decision's refusal, in order; a repeat in the lot is
        // answered by the first.
        let mut fresh: Vec<(&Decision, Option<Refusal>)> = Vec::new();
        let mut in_lot: HashSet<&str> = HashSet::new();
        for d in decisions {
            if known.contains_key(&d.id) || !in_lot.insert(&d.id) {
                continue;
            }
            let refusal = d
                .refusal
                .clone()
                .or_else(|| match next.get_mut(&d.who.did) {
                    Some(n) if *n == d.p.authorization.number as i64 => {
                        *n += 1;
                        None
                    }
                    _ => Some((
                        "not_next",
                        "another authorization took this number a moment ago".to_string(),
                    )),
                });
            fresh.push((d, refusal));
        }
        let builds: Vec<_> = fresh
            .iter()
            .filter(|(_, r)| r.is_none())
            .map(|(d, _)| {
                let payload = Payload::CustodialTransfer(d.p.clone());
                move |_nonce: u64| payload
            })
            .collect();
        let mut sent = s
            .outbox
            .record_built_many(&mut w.tx, builds, now)
            .await?
            .into_iter();
        let mut entries = Vec::with_capacity(fresh.len());
        let mut views = Vec::with_capacity(fresh.len());
        for (d, refusal) in &fresh {
            let (who, p) = (&d.who, &d.p);
            let subject = format!("{}/{}", who.did, d.id);
            let (state, nonce, tx) = match refusal {
                Some((code, message)) => {
                    let mut e = Entry::by_person(
                        who,
                        crate::KYC,
                        "custodial_transfer",
                        subject,
                        format!("refused ({code})"),
                    );
                    e.reason = Some(message.clone());
                    entries.push(e);
                    ("refused", None, None)
                }
                None => {
                    let (nonce, hash) = sent
                        .next()
                        .expect("one transaction recorded per co-signed instruction");
                    let e = Entry::by_person(
                        who,
                        crate::KYC,
                        "custodial_transfer",
                        subject,
                        format!(
                            "co-signed: {} {} to {} (authorization {})",
                            p.amount, p.token, p.to, p.authorization.number
                        ),
                    );
                    entries.push(e.with_tx(&hash.to_hex()));
                    if let Some(m) = &d.travel {
                        s.keep_travel_rule(&mut w.tx, m).await?;
                    }
                    ("submitted", Some(nonce as i64), Some(hash.to_hex()))
                }
            };
            let v = InstructionView {
                id: d.id.clone(),
                did: who.did.clone(),
                wallet: d.wallet.clone(),
                number: p.authorization.number,
                token: p.token.to_string(),
                to: p.to.to_string(),
                amount: p.amount,
                reference: p.reference.as_ref().map(|r| r.to_string()),
                valid_until_ms: p.authorization.valid_until.0,
                state: state.into(),
                reason: refusal.as_ref().map(|(c, _)| c.to_string()),
                message: refusal.as_ref().map(|(_, m)| m.clone()),
                tx,
                height: None,
                at_ms: d.at_ms,
            };
            tracing::info!(instruction = %d.id, state, "instruction decided");
            views.push((v, nonce));
        }
        audit::append_many(&mut w.tx, now, entries).await?;
        insert(&mut w.tx, &views).await?;
        take_numbers(&mut w.tx, &taken_before, &next).await?;
        w.commit().await?;
        if views.iter().any(|(v, _)| v.tx.is_some()) {
            s.send_soon();
        }
        for (v, _) in views {
            known.insert(v.id.clone(), v);
        }
        Ok(decisions
            .iter()
            .map(|d| {
                let v = known
                    .get(&d.id)
                    .cloned()
                    .expect("every decision of the lot is recorded");
                answer(&d.who, v)
            })
            .collect())
    }
}

/// The instructions of `ids` recorded already, by id.
async fn recorded(
    conn: &mut sqlx::AnyConnection,
    ids: &[String],
) -> Result<HashMap<String, InstructionView>, ServiceError> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(RECORD_BATCH_MAX) {
        let mut q = sqlx::query_as::<_, InstructionRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {} WHERE id IN ({})",
            crate::instructions::INSTRUCTION_COLUMNS,
            params(conn, 1, chunk.len())
        )));
        for id in chunk {
            q = q.bind(id.clone());
        }
        for row in q.fetch_all(&mut *conn).await? {
            let v = crate::instructions::view(row)?;
            found.insert(v.id.clone(), v);
        }
    }
    Ok(found)
}

/// The next authorization number of each holder of `dids`.
async fn next_numbers(
    conn: &mut sqlx::AnyConnection,
    dids: &[String],
) -> Result<HashMap<String, i64>, ServiceError> {
    let mut next = HashMap::new();
    for chunk in dids.chunks(RECORD_BATCH_MAX) {
        let mut q = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(format!(
            "SELECT did, next_number FROM cus_holders WHERE did IN ({})",
            params(conn, 1, chunk.len())
        )));
        for did in chunk {
            q = q.bind(did.clone());
        }
        next.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(next)
}

/// Moves each holder's next number from `before` to `after`: one statement
/// per distinct step (a lot usually takes one number per holder).
async fn take_numbers(
    conn: &mut sqlx::AnyConnection,
    before: &HashMap<String, i64>,
    after: &HashMap<String, i64>,
) -> Result<(), ServiceError> {
    let mut by_step: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (did, n) in after {
        let step = n - before.get(did).copied().unwrap_or(*n);
        if step > 0 {
            by_step.entry(step).or_default().push(did.clone());
        }
    }
    for (step, dids) in by_step {
        for chunk in dids.chunks(RECORD_BATCH_MAX) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE cus_holders SET next_number = next_number + {} WHERE did IN ({})",
                params(conn, 1, 1),
                params(conn, 2, chunk.len())
            )))
            .bind(step);
            for did in chunk {
                q = q.bind(did.clone());
            }
            q.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Inserts the lot's instructions, with the nonce of each one sent.
async fn insert(
    conn: &mut sqlx::AnyConnection,
    views: &[(InstructionView, Option<i64>)],
) -> Result<(), ServiceError> {
    for chunk in views.chunks(ROWS_PER_INSERT) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO cus_instructions (id, did, wallet, number, token, dest, amount, reference,
                 valid_until_ms, day, state, reason, message, nonce, tx, at_ms) VALUES {}",
            values(&*conn, chunk.len(), 16)
        )));
        for (v, nonce) in chunk {
            q = q
                .bind(v.id.clone())
                .bind(v.did.clone())
                .bind(v.wallet.clone())
                .bind(v.number as i64)
                .bind(v.token.clone())
                .bind(v.to.clone())
                .bind(v.amount.to_string())
                .bind(v.reference.clone())
                .bind(v.valid_until_ms.min(i64::MAX as u64) as i64)
                .bind((v.at_ms / DAY_MS) as i64)
                .bind(v.state.clone())
                .bind(v.reason.clone())
                .bind(v.message.clone())
                .bind(*nonce)
                .bind(v.tx.clone())
                .bind(v.at_ms as i64);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
