//! Instructions: a holder's signed authorization, checked against the
//! custodian's policy and, if it passes, carried in the custodian's own
//! transaction (SR-3, ST-3); each one's state, and a proof of where the
//! chain has it.

use crate::holders::{holder, HolderView};
use crate::Custodian;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tokio::sync::oneshot;
use tranche_api::travel::TravelRuleParties;
use tranche_ledger::Ledger;
use tranche_service::auth::Principal;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::commonware_codec::Encode as _;
use tranche_types::{CustodialTransfer, OrgId, Payload, Units, WalletAddress};

/// A day of the policy's daily limit, in ms (UTC days).
pub(crate) const DAY_MS: u64 = 86_400_000;

/// An instruction and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstructionView {
    /// Its id: the SHA-256 of the authorization as signed (the same
    /// authorization handed in again is the same instruction).
    pub id: String,
    /// The holder's DID.
    pub did: String,
    /// Their custodial wallet.
    pub wallet: String,
    /// The authorization's number.
    pub number: u64,
    /// The token.
    pub token: String,
    /// The beneficiary wallet.
    pub to: String,
    /// Units.
    #[schema(value_type = String)]
    pub amount: Units,
    /// The reference carried on chain.
    pub reference: Option<String>,
    /// The authorization's expiry, ms since 1970.
    pub valid_until_ms: u64,
    /// `refused` (see `reason`), `submitted`, then `applied` or `rejected`
    /// (the chain's code in `reason`).
    pub state: String,
    /// Why it was refused or rejected: a stable code (`forged`, `expired`,
    /// `not_next`, `sanctioned`, `over_transfer_limit`, `over_daily_limit`,
    /// `destination_not_allowed`, `insufficient_balance`,
    /// `would_be_rejected`, `travel_rule_required`, `travel_rule_invalid`,
    /// `travel_rule_unbound`, `beneficiary_vasp_unknown`,
    /// `beneficiary_vasp_refused`, or the ledger's reject code).
    pub reason: Option<String>,
    /// What the reason means here.
    pub message: Option<String>,
    /// The custodian's transaction carrying it.
    pub tx: Option<String>,
    /// The block that carried it.
    pub height: Option<u64>,
    /// When it was handed in, ms since 1970.
    pub at_ms: u64,
}

/// Where the chain has an instruction's transaction: enough to check it
/// against any node (`tranche verify inclusion`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Proof {
    /// The instruction.
    pub instruction: String,
    /// The transaction's hash.
    pub tx: String,
    /// Its block's height.
    pub height: u64,
    /// Its position in the block.
    pub index: u32,
    /// The block's hash.
    pub block_hash: String,
    /// The state root after the block.
    pub state_root: Option<String>,
    /// `applied`, or the ledger's reject code.
    pub outcome: String,
}

pub(crate) type InstructionRow = (
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
);

pub(crate) const INSTRUCTION_COLUMNS: &str =
    "id, did, wallet, number, token, dest, amount, reference, \
     valid_until_ms, state, reason, message, tx, height, at_ms FROM cus_instructions";

pub(crate) fn view(r: InstructionRow) -> Result<InstructionView, ServiceError> {
    Ok(InstructionView {
        amount: r
            .6
            .parse()
            .map_err(|_| ServiceError::internal("an instruction's amount", &r.6))?,
        id: r.0,
        did: r.1,
        wallet: r.2,
        number: r.3 as u64,
        token: r.4,
        to: r.5,
        reference: r.7,
        valid_until_ms: r.8 as u64,
        state: r.9,
        reason: r.10,
        message: r.11,
        tx: r.12,
        height: r.13.map(|h| h as u64),
        at_ms: r.14 as u64,
    })
}

pub(crate) async fn instruction(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<InstructionView>, ServiceError> {
    let row: Option<InstructionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INSTRUCTION_COLUMNS} WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(view).transpose()
}

/// The newest instructions, of `did` if given, at most 1,000.
pub(crate) async fn instructions(
    conn: &mut AnyConnection,
    did: Option<&str>,
) -> Result<Vec<InstructionView>, ServiceError> {
    let rows: Vec<InstructionRow> = match did {
        Some(d) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {INSTRUCTION_COLUMNS} WHERE did = $1 ORDER BY at_ms DESC, id LIMIT 1000"
            )))
            .bind(d.to_string())
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {INSTRUCTION_COLUMNS} ORDER BY at_ms DESC, id LIMIT 1000"
            )))
            .fetch_all(&mut *conn)
            .await?
        }
    };
    rows.into_iter().map(view).collect()
}

/// A refusal: its stable code and what it means here.
pub(crate) type Refusal = (&'static str, String);

impl Custodian {
    fn org(&self) -> Result<OrgId, ServiceError> {
        let org = &self.service.config.org;
        org.parse()
            .map_err(|_| ServiceError::internal("the organisation id", org))
    }

    /// Takes a holder's authorization (the `custodial_transfer` payload
    /// `tranche did authorize-transfer` writes), with the travel rule's
    /// parties when it covers the transfer: refused with a reason, on the
    /// record, or recorded for sending in the custodian's transaction. The
    /// same authorization again answers the same instruction.
    pub async fn instruct(
        &self,
        who: &Principal,
        payload: Payload,
        parties: Option<TravelRuleParties>,
    ) -> Result<InstructionView, ServiceError> {
        let Payload::CustodialTransfer(p) = payload else {
            return Err(ServiceError::new(
                ServiceCode::BadRequest,
                "the body is your authorization: the custodial_transfer payload `tranche did authorize-transfer` writes",
            ));
        };
        let s = &self.service;
        let id = tranche_service::sha256_hex(&Payload::CustodialTransfer(p.clone()).encode());
        let mut conn = s.db.pool().acquire().await?;
        if let Some(known) = instruction(&mut conn, &id).await? {
            return answer(who, known);
        }
        let Some(h) = holder(&mut conn, &who.did).await? else {
            return Err(ServiceError::new(
                ServiceCode::NotFound,
                "you hold no custodial wallet here; hand in your consent with POST /holders first",
            ));
        };
        drop(conn);
        if h.state != "open" {
            return Err(ServiceError::new(
                ServiceCode::Conflict,
                format!("your custodial wallet is {}, not open", h.state),
            ));
        }
        // The key must be the holder's: their DID's, or a wallet bound to it.
        let key = p.authorization.key;
        let holders_key = Ledger::did_of_key(&key).as_str() == who.did
            || s.node
                .wallet(&key.address())
                .await
                .map_err(ServiceError::unavailable)?
                .data
                .did
                .is_some_and(|d| d.as_str() == who.did);
        if !holders_key {
            return Err(ServiceError::new(
                ServiceCode::Forbidden,
                format!(
                    "the authorization is signed by {key}, which is neither your DID's key nor a wallet bound to it"
                ),
            ));
        }
        let now = now_ms();
        let (refusal, travel) = match self.policy(&h, &p, now).await? {
            Some(r) => (Some(r), None),
            None => match self.travel_rule(&h, &p, parties.as_ref()).await? {
                Ok(m) => (None, m),
                Err(r) => (Some(r), None),
            },
        };
        // Recorded with what else arrived at the same moment, in one
        // database transaction (a group commit), by the recorder.
        let (reply, answered) = oneshot::channel();
        let decision = crate::recorder::Decision {
            who: who.clone(),
            p,
            id,
            wallet: h.wallet,
            refusal,
            travel,
            at_ms: now,
            reply,
        };
        self.decisions
            .send(decision)
            .await
            .map_err(|_| ServiceError::internal("the instruction recorder", "stopped"))?;
        answered
            .await
            .map_err(|_| ServiceError::internal("the instruction recorder", "gave no answer"))?
    }

    /// Why the custodian's policy refuses `p` from holder `h` at `now`, or
    /// `None` if it passes.
    async fn policy(
        &self,
        h: &HolderView,
        p: &CustodialTransfer,
        now: u64,
    ) -> Result<Option<Refusal>, ServiceError> {
        let s = &self.service;
        let a = &p.authorization;
        let message = Ledger::authorization_message(&self.org()?, p);
        if tranche_crypto::verify(
            &a.key,
            tranche_crypto::Domain::CustodyAuthorization,
            &s.chain_id,
            &message,
            &a.signature,
        )
        .is_err()
        {
            return Ok(Some((
                "forged",
                format!(
                    "the signature is not {}'s over this instruction to {} on {}",
                    a.key, s.config.org, s.chain_id
                ),
            )));
        }
        if a.valid_until.0 < now {
            return Ok(Some((
                "expired",
                format!(
                    "the authorization expired at {} ms; sign a new one",
                    a.valid_until.0
                ),
            )));
        }
        if a.number > h.next_authorization {
            // Early, not wrong: nothing is recorded, so the same
            // authorization can be handed in again once its turn comes.
            return Err(ServiceError::new(
                ServiceCode::Conflict,
                format!(
                    "authorization {} is not your next ({}): hand it in after the ones before it",
                    a.number, h.next_authorization
                ),
            ));
        }
        if a.number < h.next_authorization {
            return Ok(Some((
                "not_next",
                format!(
                    "authorization {} is used already; your next is {}",
                    a.number, h.next_authorization
                ),
            )));
        }
        // The AML regulator's policy in force (F6-1): nothing moves for a
        // sanctioned identity, nor to one.
        let aml = s.aml.get(&s.node).await?;
        if let Some(aml) = aml.as_deref().map(|v| &v.policy) {
            if aml.is_sanctioned(&h.did) {
                return Ok(Some((
                    "sanctioned",
                    "the AML regulator's sanctions list names your identity".into(),
                )));
            }
            let to = s
                .node
                .wallet(&p.to)
                .await
                .map_err(ServiceError::unavailable)?
                .data
                .did;
            if to.is_some_and(|d| aml.is_sanctioned(d.as_str())) {
                return Ok(Some((
                    "sanctioned",
                    format!(
                        "the AML regulator's sanctions list names the identity {} is bound to",
                        p.to
                    ),
                )));
            }
        }
        let policy = &self.policy;
        if p.amount.is_zero() || p.amount > policy.transfer_max {
            return Ok(Some((
                "over_transfer_limit",
                format!(
                    "one instruction moves 1 to {} units; this one {}",
                    policy.transfer_max, p.amount
                ),
            )));
        }
        let mut conn = s.db.pool().acquire().await?;
        // The balance first: a holder's own funds, then the limits on them.
        let pending: Vec<(String,)> = sqlx::query_as(
            "SELECT amount FROM cus_instructions WHERE did = $1 AND token = $2 AND state = 'submitted'",
        )
        .bind(h.did.clone())
        .bind(p.token.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let pending = sum(pending)?;
        // The wallet's balance as the follower last recorded it: every
        // movement of a custodial wallet passes through it.
        let held: Option<(String,)> =
            sqlx::query_as("SELECT units FROM cus_balances WHERE wallet = $1 AND token = $2")
                .bind(h.wallet.clone())
                .bind(p.token.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        let held = match held {
            Some((u,)) => u
                .parse::<u128>()
                .map_err(|_| ServiceError::internal("a holder's balance", &u))?,
            None => 0,
        };
        let free = held.saturating_sub(pending);
        if free < p.amount.0 {
            return Ok(Some((
                "insufficient_balance",
                format!(
                    "your wallet holds {held} {}, of which {pending} are on their way out; {} asked",
                    p.token, p.amount
                ),
            )));
        }
        let today: Vec<(String,)> = sqlx::query_as(
            "SELECT amount FROM cus_instructions WHERE did = $1 AND day = $2 AND state IN ('submitted', 'applied')",
        )
        .bind(h.did.clone())
        .bind((now / DAY_MS) as i64)
        .fetch_all(&mut *conn)
        .await?;
        let today = sum(today)?;
        if today.saturating_add(p.amount.0) > policy.daily_max.0 {
            return Ok(Some((
                "over_daily_limit",
                format!(
                    "you may move {} units a day; {today} are moved or on their way today",
                    policy.daily_max
                ),
            )));
        }
        drop(conn);
        let wallet: WalletAddress = h
            .wallet
            .parse()
            .map_err(|_| ServiceError::internal("a holder's wallet", &h.wallet))?;
        if !policy.destinations.is_empty() && !policy.destinations.contains(&p.to) {
            let own = s
                .node
                .wallet(&p.to)
                .await
                .map_err(ServiceError::unavailable)?
                .data
                .did
                .is_some_and(|d| d.as_str() == h.did);
            if !own {
                return Ok(Some((
                    "destination_not_allowed",
                    format!(
                        "{} is neither one of your own wallets nor a destination this custodian allows",
                        p.to
                    ),
                )));
            }
        }
        let check = s
            .node
            .check_transfer(&p.token, &wallet, &p.to, p.amount)
            .await
            .map_err(ServiceError::unavailable)?
            .data;
        if !check.ok {
            let code = check.code.map(|c| c.name().to_string()).unwrap_or_default();
            return Ok(Some((
                "would_be_rejected",
                format!(
                    "the chain would reject it: {code}: {}",
                    check.message.unwrap_or_default()
                ),
            )));
        }
        Ok(None)
    }

    /// Where the chain has instruction `id`'s transaction (the holder or
    /// staff).
    pub async fn proof(&self, who: &Principal, id: &str) -> Result<Proof, ServiceError> {
        let s = &self.service;
        let mut conn = s.db.pool().acquire().await?;
        let Some(v) = instruction(&mut conn, id).await? else {
            return Err(not_found(id));
        };
        drop(conn);
        let v = visible(who, v)?;
        let (Some(tx), Some(_)) = (&v.tx, v.height) else {
            return Err(ServiceError::new(
                ServiceCode::Conflict,
                format!(
                    "instruction {id} is {}: nothing of it is final on chain",
                    v.state
                ),
            ));
        };
        let hash = tx
            .parse()
            .map_err(|_| ServiceError::internal("an instruction's transaction", tx))?;
        let record = s
            .node
            .transaction(&hash)
            .await
            .map_err(ServiceError::unavailable)?
            .ok_or_else(|| ServiceError::internal("a final transaction the node lacks", tx))?;
        let block = s
            .node
            .block(record.height)
            .await
            .map_err(ServiceError::unavailable)?
            .ok_or_else(|| ServiceError::internal("a final block the node lacks", tx))?;
        Ok(Proof {
            instruction: v.id,
            tx: tx.clone(),
            height: record.height,
            index: record.index,
            block_hash: block.hash.to_hex(),
            state_root: block.state_root.map(|r| r.to_hex()),
            outcome: match record.receipt.outcome {
                tranche_types::Outcome::Applied => "applied".into(),
                tranche_types::Outcome::Rejected(r) => r.code.name().into(),
            },
        })
    }
}

fn sum(rows: Vec<(String,)>) -> Result<u128, ServiceError> {
    let mut sum: u128 = 0;
    for (a,) in rows {
        let a: u128 = a
            .parse()
            .map_err(|_| ServiceError::internal("an instruction's amount", &a))?;
        sum = sum.saturating_add(a);
    }
    Ok(sum)
}

pub(crate) fn not_found(id: &str) -> ServiceError {
    ServiceError::new(ServiceCode::NotFound, format!("no instruction {id} here"))
}

/// `v` if `who` may read it: its holder or staff.
pub(crate) fn visible(
    who: &Principal,
    v: InstructionView,
) -> Result<InstructionView, ServiceError> {
    let staff = crate::is_staff(who);
    if v.did == who.did || staff {
        Ok(v)
    } else {
        Err(not_found(&v.id))
    }
}

/// The answer to handing in an instruction: refused ones as a refusal.
pub(crate) fn answer(who: &Principal, v: InstructionView) -> Result<InstructionView, ServiceError> {
    let v = visible(who, v)?;
    match (&v.state[..], &v.reason, &v.message) {
        ("refused", Some(code), Some(message)) => Err(ServiceError::new(
            ServiceCode::Refused,
            format!("instruction {} refused ({code}): {message}", v.id),
        )),
        _ => Ok(v),
    }
}
