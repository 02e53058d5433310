//! The travel rule, receiving side: a custodian or another exchange sends
//! the IVMS101 data of a transfer to one of this exchange's traders,
//! sealed to the exchange's on-chain key and signed with the sender's. The
//! exchange opens it, checks that it names the sender and itself, that its
//! digest is the message, and that the receiving wallet is a trader's
//! here, and keeps it in the vault with the decision; a regulator may ask
//! for it by digest.

use crate::Exchange;
use serde::{Deserialize, Serialize};
use tranche_api::travel::SealedTravelRule;
use tranche_service::audit::Entry;
use tranche_service::signed::Caller;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::Role;

/// What the exchange answers a travel-rule message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TravelRuleReceipt {
    /// The message's digest: the transfer's reference on chain.
    pub digest: String,
    /// The trader's wallet it is for.
    pub wallet: String,
    /// `received`.
    pub state: String,
}

fn refused(m: impl Into<String>) -> ServiceError {
    ServiceError::new(ServiceCode::Refused, m)
}

impl Exchange {
    /// Takes the sealed travel-rule message `body` from `caller`; the same
    /// message again answers the same.
    pub async fn receive_travel_rule(
        &self,
        caller: &Caller,
        body: &[u8],
    ) -> Result<TravelRuleReceipt, ServiceError> {
        if !caller.roles.contains(&Role::Custodian) && !caller.roles.contains(&Role::Exchange) {
            return Err(ServiceError::new(
                ServiceCode::Forbidden,
                "travel-rule messages come from custodians and exchanges",
            ));
        }
        let sealed: SealedTravelRule = serde_json::from_slice(body).map_err(|e| {
            ServiceError::new(
                ServiceCode::BadRequest,
                format!("the body is not a sealed travel-rule message: {e}"),
            )
        })?;
        let s = &self.service;
        let m = s.open_travel_rule(&sealed)?;
        let sender = &m.ivms101.originating_vasp.legal_person_name;
        if *sender != caller.org {
            return Err(refused(format!(
                "the message names {sender} as the sending organisation; {} sent it",
                caller.org
            )));
        }
        let receiver = &m.ivms101.beneficiary_vasp.legal_person_name;
        if *receiver != s.config.org {
            return Err(refused(format!(
                "the message is for {receiver}, not {}",
                s.config.org
            )));
        }
        let wallet = m.transfer.to.clone();
        let mut w = s.db.write().await?;
        let trader: Option<(String,)> =
            sqlx::query_as("SELECT did FROM ex_traders WHERE wallet = $1")
                .bind(wallet.clone())
                .fetch_optional(&mut *w.tx)
                .await?;
        if trader.is_none() {
            return Err(refused(format!(
                "{wallet} is not a wallet of this exchange's traders"
            )));
        }
        let new = sqlx::query(
            "INSERT INTO ex_travel (digest, sender, wallet, token, amount, received_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(sealed.digest.clone())
        .bind(caller.org.clone())
        .bind(wallet.clone())
        .bind(m.transfer.token.clone())
        .bind(m.transfer.amount.0.to_string())
        .bind(now_ms() as i64)
        .execute(&mut *w.tx)
        .await?
        .rows_affected()
            == 1;
        if new {
            s.keep_travel_rule(&mut w.tx, &m).await?;
            let e = Entry::by_chain(
                &caller.org,
                "travel_rule",
                format!("travel-rule/{}", sealed.digest),
                format!(
                    "taken: {} {} to trader wallet {wallet}",
                    m.transfer.amount, m.transfer.token
                ),
            );
            s.decide(&mut w.tx, None, e).await?;
        }
        w.commit().await?;
        Ok(TravelRuleReceipt {
            digest: sealed.digest,
            wallet,
            state: "received".into(),
        })
    }
}
