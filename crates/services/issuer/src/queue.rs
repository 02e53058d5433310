//! The approval queue: requests as the chain filed them, the staff's
//! decisions on them, and the execution the last needed approval records.

use crate::Issuer;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tranche_service::audit::Entry;
use tranche_service::auth::Principal;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::{
    Allocation, BoundedVec, ExecuteIssuance, ExecuteRevocation, IssueOffering, Payload,
    RequestIssuance, RequestRevocation, SetFrozen, Units, OFFERING_BATCH_MAX, REVOCATION_MOVES_MAX,
};

/// Longest reason a person may give.
pub const REASON_LEN_MAX: usize = 500;

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Issue a token (F5-4, F5-5).
    Issuance,
    /// Revoke units of a token (F5-10).
    Revocation,
    /// Issue a closed offering's allocations (F5-6), in batches.
    Offering,
    /// Freeze a wallet of the token, as a regulator asked.
    Freeze,
    /// An agent action on one of its tokens an operator proposed: new
    /// rules, suspended checks, trusted issuers, a document, an approved
    /// transfer, a pause, a freeze.
    Administration,
}

impl Kind {
    /// Its name in paths and the database.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Issuance => "issuance",
            Kind::Revocation => "revocation",
            Kind::Offering => "offering",
            Kind::Freeze => "freeze",
            Kind::Administration => "administration",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Result<Kind, ServiceError> {
        match s {
            "issuance" => Ok(Kind::Issuance),
            "revocation" => Ok(Kind::Revocation),
            "offering" => Ok(Kind::Offering),
            "freeze" => Ok(Kind::Freeze),
            "administration" => Ok(Kind::Administration),
            _ => Err(ServiceError::new(
                ServiceCode::BadRequest,
                format!("the kind is issuance, revocation, offering or freeze, not {s:?}"),
            )),
        }
    }
}

/// Where a request stands in the issuer's service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Filed on chain; waiting for the staff's decisions.
    Pending,
    /// A staff member refused it; it is never executed.
    Refused,
    /// Approved by enough staff; the execution is sent.
    Executing,
    /// Executed, and the chain shows what was executed equals the request.
    Checked,
    /// Executed, but the chain shows something other than the request.
    Mismatch,
    /// The chain rejected the execution (see `outcome`).
    Failed,
    /// The TSP withdrew it before it was executed.
    Withdrawn,
}

impl State {
    /// Its name in the database.
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Refused => "refused",
            State::Executing => "executing",
            State::Checked => "checked",
            State::Mismatch => "mismatch",
            State::Failed => "failed",
            State::Withdrawn => "withdrawn",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<State> {
        [
            State::Pending,
            State::Refused,
            State::Executing,
            State::Checked,
            State::Mismatch,
            State::Failed,
            State::Withdrawn,
        ]
        .into_iter()
        .find(|st| st.name() == s)
    }
}

/// Approve or refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Approve.
    Approve,
    /// Refuse.
    Refuse,
}

/// `POST /requests/{kind}/{request}/decisions`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Approve or refuse.
    pub decision: Verdict,
    /// Why, in a sentence (1 to 500 characters).
    pub reason: String,
    /// For a revocation: from which wallets how many units, adding up to the
    /// requested amount. The first approval fixes them; later approvals
    /// approve those (they may repeat them, not change them).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub moves: Option<Vec<Allocation>>,
}

/// A staff member's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionView {
    /// The staff member's DID.
    pub staff: String,
    /// `approve` or `refuse`.
    pub decision: String,
    /// Their reason.
    pub reason: String,
    /// When, ms since 1970.
    pub at_ms: u64,
}

/// A request in the queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestView {
    /// Issuance, revocation, offering, freeze or administration.
    pub kind: Kind,
    /// The request's id: on chain, or the regulator's for a freeze.
    pub request: String,
    /// The organisation that filed it: the TSP, or the regulator for a
    /// freeze.
    pub tsp: String,
    /// The token.
    pub token: String,
    /// Units requested (0 for a freeze: the whole wallet).
    pub amount: String,
    /// Where it stands.
    pub state: State,
    /// The block that filed it.
    pub filed_height: u64,
    /// Approvals so far.
    pub approvals: u32,
    /// Approvals it needs.
    pub approvals_required: u32,
    /// A revocation's moves, once the first approval fixed them.
    #[schema(value_type = Option<Vec<Object>>)]
    pub moves: Option<Vec<Allocation>>,
    /// The execution's transaction, once sent.
    pub execution_tx: Option<String>,
    /// The chain's outcome of the execution (`applied` or a reject code).
    pub outcome: Option<String>,
    /// The check against the chain, once made.
    pub checked: Option<String>,
    /// The staff's decisions, in order.
    pub decisions: Vec<DecisionView>,
    /// A freeze request's terms, as the regulator sent them.
    pub freeze: Option<tranche_api::freeze::FreezeRequest>,
    /// An administration request's transaction payload, as proposed.
    #[schema(value_type = Option<Object>)]
    pub administration: Option<Payload>,
}

fn bad(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ServiceCode::BadRequest, message)
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

const COLUMNS: &str = "kind, request, tsp, token, amount, state, filed_height, moves, execution_tx, outcome, checked, detail";

async fn view(
    conn: &mut AnyConnection,
    row: Row,
    approvals_required: u32,
) -> Result<RequestView, ServiceError> {
    let (
        kind,
        request,
        tsp,
        token,
        amount,
        state,
        height,
        moves,
        execution_tx,
        outcome,
        checked,
        detail,
    ) = row;
    let decisions: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT staff, decision, reason, at_ms FROM issuer_decisions
         WHERE kind = $1 AND request = $2 ORDER BY at_ms, staff",
    )
    .bind(kind.clone())
    .bind(request.clone())
    .fetch_all(&mut *conn)
    .await?;
    let decisions: Vec<DecisionView> = decisions
        .into_iter()
        .map(|(staff, decision, reason, at)| DecisionView {
            staff,
            decision,
            reason,
            at_ms: at as u64,
        })
        .collect();
    let kind = Kind::parse(&kind)?;
    let freeze = match kind {
        Kind::Freeze => Some(
            serde_json::from_str(&detail)
                .map_err(|e| ServiceError::internal("a queued freeze request", e))?,
        ),
        _ => None,
    };
    let administration = match kind {
        Kind::Administration => Some(
            serde_json::from_str(&detail)
                .map_err(|e| ServiceError::internal("a queued administration request", e))?,
        ),
        _ => None,
    };
    Ok(RequestView {
        administration,
        kind,
        approvals: decisions.iter().filter(|d| d.decision == "approve").count() as u32,
        request,
        tsp,
        token,
        amount,
        state: State::parse(&state)
            .ok_or_else(|| ServiceError::internal("a request's state", &state))?,
        filed_height: height as u64,
        approvals_required,
        moves: moves.and_then(|m| serde_json::from_str(&m).ok()),
        execution_tx,
        outcome,
        checked,
        decisions,
        freeze,
    })
}

/// One request, if the queue holds it.
pub async fn get(
    conn: &mut AnyConnection,
    kind: Kind,
    request: &str,
    approvals_required: u32,
) -> Result<Option<RequestView>, ServiceError> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM issuer_requests WHERE kind = $1 AND request = $2"
    )))
    .bind(kind.name())
    .bind(request.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(r) => Ok(Some(view(conn, r, approvals_required).await?)),
        None => Ok(None),
    }
}

/// Requests in `state` (all if `None`), of `tsp` (all if `None`), oldest first.
pub async fn list(
    conn: &mut AnyConnection,
    state: Option<State>,
    tsp: Option<&str>,
    approvals_required: u32,
) -> Result<Vec<RequestView>, ServiceError> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM issuer_requests
         WHERE ($1 = '' OR state = $1) AND ($2 = '' OR tsp = $2)
         ORDER BY filed_height, kind, request LIMIT 1000"
    )))
    .bind(state.map_or("", State::name))
    .bind(tsp.unwrap_or("").to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(view(conn, r, approvals_required).await?);
    }
    Ok(out)
}

/// Queues a request the chain filed at `height` (once: a block applied
/// again after a crash finds it queued).
#[allow(clippy::too_many_arguments)]
pub async fn file(
    conn: &mut AnyConnection,
    kind: Kind,
    request: &str,
    tsp: &str,
    token: &str,
    amount: Units,
    detail: String,
    height: u64,
) -> Result<bool, ServiceError> {
    let n = sqlx::query(
        "INSERT INTO issuer_requests (kind, request, tsp, token, amount, detail, state, filed_height, updated_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(kind.name())
    .bind(request.to_string())
    .bind(tsp.to_string())
    .bind(token.to_string())
    .bind(amount.0.to_string())
    .bind(detail)
    .bind(State::Pending.name())
    .bind(height as i64)
    .bind(now_ms() as i64)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Moves a request to `state`, noting what the chain said.
pub async fn settle(
    conn: &mut AnyConnection,
    kind: Kind,
    request: &str,
    state: State,
    outcome: Option<&str>,
    checked: Option<&str>,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE issuer_requests SET state = $1, outcome = COALESCE($2, outcome),
            checked = COALESCE($3, checked), updated_ms = $4
         WHERE kind = $5 AND request = $6",
    )
    .bind(state.name())
    .bind(outcome.map(str::to_string))
    .bind(checked.map(str::to_string))
    .bind(now_ms() as i64)
    .bind(kind.name())
    .bind(request.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The next batch of an offering's issuance: the ledger walks its
/// subscriptions from where the last batch stopped.
pub(crate) fn issue_batch(offering: &str) -> Result<Payload, ServiceError> {
    Ok(Payload::IssueOffering(IssueOffering {
        offering: offering
            .parse()
            .map_err(|_| ServiceError::internal("a queued offering's id", offering))?,
        max: OFFERING_BATCH_MAX,
    }))
}

/// The last of the transactions sent for `request`'s execution, if a group
/// of them is in flight.
pub(crate) async fn pending_nonce(
    conn: &mut AnyConnection,
    kind: Kind,
    request: &str,
) -> Result<Option<u64>, sqlx::Error> {
    let row: Option<(Option<i64>,)> = sqlx::query_as(
        "SELECT pending_nonce FROM issuer_requests WHERE kind = $1 AND request = $2",
    )
    .bind(kind.name())
    .bind(request.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.and_then(|(n,)| n).map(|n| n as u64))
}

fn check_moves(moves: &[Allocation], amount: Units) -> Result<(), ServiceError> {
    if moves.is_empty() || moves.len() > REVOCATION_MOVES_MAX {
        return Err(bad(format!(
            "a revocation moves units from 1 to {REVOCATION_MOVES_MAX} wallets"
        )));
    }
    let mut total: u128 = 0;
    for m in moves {
        total = total
            .checked_add(m.amount.0)
            .ok_or_else(|| bad("the moves add up to more than a token can hold"))?;
    }
    if total != amount.0 {
        return Err(bad(format!(
            "the moves add up to {total} units; the request revokes {}",
            amount.0
        )));
    }
    Ok(())
}

impl Issuer {
    /// A staff member's decision on a pending request; the approval that
    /// completes the quorum records the execution with it.
    pub async fn decide(
        &self,
        kind: Kind,
        request: &str,
        who: &Principal,
        decision: Decision,
    ) -> Result<RequestView, ServiceError> {
        who.require(crate::OPERATOR)?;
        let reason = decision.reason.trim().to_string();
        if reason.is_empty() || reason.chars().count() > REASON_LEN_MAX {
            return Err(bad(format!(
                "give a reason of 1 to {REASON_LEN_MAX} characters"
            )));
        }
        let s = &self.service;
        let mut w = s.db.write().await?;
        let row: Option<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT state, amount, detail, moves FROM issuer_requests WHERE kind = $1 AND request = $2",
        )
        .bind(kind.name())
        .bind(request.to_string())
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some((state, amount, detail, fixed)) = row else {
            return Err(ServiceError::new(
                ServiceCode::NotFound,
                format!("no {} request {request} names this issuer", kind.name()),
            ));
        };
        if state != State::Pending.name() {
            return Err(ServiceError::new(
                ServiceCode::Conflict,
                format!("the request is {state}; only pending requests are decided"),
            ));
        }
        let (already,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM issuer_decisions WHERE kind = $1 AND request = $2 AND staff = $3",
        )
        .bind(kind.name())
        .bind(request.to_string())
        .bind(who.did.clone())
        .fetch_one(&mut *w.tx)
        .await?;
        if already > 0 {
            return Err(ServiceError::new(
                ServiceCode::Conflict,
                format!(
                    "you decided this request already; {} distinct operators must approve it",
                    self.approvals_required
                ),
            ));
        }
        let amount = Units(
            amount
                .parse()
                .map_err(|_| ServiceError::internal("a request's amount", &amount))?,
        );
        let subject = format!("{}/{request}", kind.name());
        let credential = who.credential_for(crate::OPERATOR);
        let now = now_ms();
        let entry = |action: &str, decided: &str| Entry {
            actor: who.did.clone(),
            authority: credential.clone(),
            action: action.into(),
            subject: subject.clone(),
            decision: decided.into(),
            reason: Some(reason.clone()),
            tx: None,
        };
        let verdict = match decision.decision {
            Verdict::Approve => "approve",
            Verdict::Refuse => "refuse",
        };
        // The moves a revocation executes: fixed by its first approval.
        let mut moves: Option<Vec<Allocation>> = fixed.and_then(|m| serde_json::from_str(&m).ok());
        if decision.decision == Verdict::Approve {
            match (kind, &moves, decision.moves) {
                (Kind::Issuance | Kind::Offering | Kind::Freeze | Kind::Administration, _, Some(_)) => {
                    return Err(bad(
                        "an issuance executes exactly its request, an offering its allocations, a freeze its wallet, an administration request its payload; they take no moves",
                    ))
                }
                (Kind::Revocation, None, None) => {
                    return Err(bad(format!(
                        "the first approval of a revocation names its moves: [{{\"wallet\": \"tr1...\", \"amount\": \"N\"}}, ...] adding up to {}",
                        amount.0
                    )))
                }
                (Kind::Revocation, None, Some(m)) => {
                    check_moves(&m, amount)?;
                    sqlx::query("UPDATE issuer_requests SET moves = $1 WHERE kind = $2 AND request = $3")
                        .bind(serde_json::to_string(&m).expect("moves serialize"))
                        .bind(kind.name())
                        .bind(request.to_string())
                        .execute(&mut *w.tx)
                        .await?;
                    moves = Some(m);
                }
                (Kind::Revocation, Some(f), Some(m)) if *f != m => {
                    return Err(ServiceError::new(
                        ServiceCode::Conflict,
                        "these moves differ from the ones the first approval fixed; approve those, or refuse",
                    ))
                }
                _ => {}
            }
        }
        sqlx::query(
            "INSERT INTO issuer_decisions (kind, request, staff, credential, decision, reason, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(kind.name())
        .bind(request.to_string())
        .bind(who.did.clone())
        .bind(credential.clone())
        .bind(verdict)
        .bind(reason.clone())
        .bind(now as i64)
        .execute(&mut *w.tx)
        .await?;
        match decision.decision {
            Verdict::Refuse => {
                s.decide(&mut w.tx, None, entry("refuse", "refused"))
                    .await?;
                settle(&mut w.tx, kind, request, State::Refused, None, None).await?;
            }
            Verdict::Approve => {
                s.decide(&mut w.tx, None, entry("approve", "approved"))
                    .await?;
                let (approvals,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM issuer_decisions WHERE kind = $1 AND request = $2 AND decision = 'approve'",
                )
                .bind(kind.name())
                .bind(request.to_string())
                .fetch_one(&mut *w.tx)
                .await?;
                if approvals as u64 >= u64::from(self.approvals_required) {
                    let payloads = match kind {
                        Kind::Issuance => {
                            let terms: RequestIssuance = serde_json::from_str(&detail)
                                .map_err(|e| ServiceError::internal("a queued issuance", e))?;
                            vec![Payload::ExecuteIssuance(ExecuteIssuance {
                                request: terms.request,
                                amount: terms.amount,
                                allocations: terms.allocations,
                            })]
                        }
                        Kind::Revocation => {
                            let terms: RequestRevocation = serde_json::from_str(&detail)
                                .map_err(|e| ServiceError::internal("a queued revocation", e))?;
                            vec![Payload::ExecuteRevocation(ExecuteRevocation {
                                request: terms.request,
                                moves: BoundedVec(moves.clone().unwrap_or_default()),
                            })]
                        }
                        // Every batch the allocations need, at once: the
                        // ledger walks them in nonce order.
                        Kind::Offering => {
                            let subscriptions = s
                                .node
                                .offering(request)
                                .await
                                .map_err(ServiceError::unavailable)?
                                .map_or(0, |v| v.data.subscriptions);
                            vec![
                                issue_batch(request)?;
                                tranche_service::outbox::batches(subscriptions, OFFERING_BATCH_MAX)
                            ]
                        }
                        Kind::Freeze => {
                            let terms: tranche_api::freeze::FreezeRequest =
                                serde_json::from_str(&detail).map_err(|e| {
                                    ServiceError::internal("a queued freeze request", e)
                                })?;
                            vec![Payload::SetFrozen(SetFrozen {
                                token: terms.token.parse().map_err(|_| {
                                    ServiceError::internal("a queued freeze's token", &terms.token)
                                })?,
                                wallet: terms.wallet.parse().map_err(|_| {
                                    ServiceError::internal(
                                        "a queued freeze's wallet",
                                        &terms.wallet,
                                    )
                                })?,
                                frozen: true,
                            })]
                        }
                        Kind::Administration => {
                            vec![serde_json::from_str(&detail).map_err(|e| {
                                ServiceError::internal("a queued administration request", e)
                            })?]
                        }
                    };
                    let (last, hashes) = s
                        .decide_txs(
                            &mut w.tx,
                            payloads,
                            Entry {
                                actor: s.config.org.clone(),
                                authority: format!("{approvals} approvals"),
                                action: "execute".into(),
                                subject: subject.clone(),
                                decision: "sent".into(),
                                reason: None,
                                tx: None,
                            },
                        )
                        .await?;
                    let hash = hashes.last().expect("a decision sends one at least");
                    sqlx::query(
                        "UPDATE issuer_requests SET state = $1, execution_tx = $2, pending_nonce = $3, updated_ms = $4
                         WHERE kind = $5 AND request = $6",
                    )
                    .bind(State::Executing.name())
                    .bind(hash.to_hex())
                    .bind(last as i64)
                    .bind(now as i64)
                    .bind(kind.name())
                    .bind(request.to_string())
                    .execute(&mut *w.tx)
                    .await?;
                }
            }
        }
        let out = get(&mut w.tx, kind, request, self.approvals_required)
            .await?
            .expect("the request was just read");
        w.commit().await?;
        tracing::info!(request, kind = kind.name(), staff = %who.did, decision = verdict, state = out.state.name(), "decided");
        Ok(out)
    }
}
