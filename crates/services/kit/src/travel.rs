//! The travel rule's part every organisation shares: sealing a message to
//! another organisation's on-chain key, opening one sealed to ours (and
//! checking it is the message its digest names), keeping messages in the
//! vault, and handing one to a regulator that asks, sealed to its key.

use crate::signed::Caller;
use crate::{Service, ServiceCode, ServiceError};
use tranche_api::travel::{SealedTravelRule, TravelRuleMessage};
use tranche_crypto::{seal, Sealed};
use tranche_types::Role;

/// The vault's owner id of travel-rule messages (each record is a digest).
pub const TRAVEL_RULE_OWNER: &str = "travel-rule";

fn unprocessable(m: impl Into<String>) -> ServiceError {
    ServiceError::new(ServiceCode::Refused, m)
}

impl Service {
    /// `message`, sealed to organisation `org`'s key on chain and bound to
    /// its digest.
    pub async fn seal_travel_rule(
        &self,
        org: &str,
        message: &TravelRuleMessage,
    ) -> Result<SealedTravelRule, ServiceError> {
        let key = self
            .node
            .organisation(org)
            .await
            .map_err(ServiceError::unavailable)?
            .ok_or_else(|| unprocessable(format!("no organisation {org} is on chain")))?
            .data
            .key;
        let digest = message.digest().to_hex();
        let json = serde_json::to_vec(message).expect("a travel-rule message serializes");
        let sealed = seal(
            &key,
            &self.chain_id,
            digest.as_bytes(),
            &json,
            &mut tranche_crypto::rand_core::OsRng,
        )
        .map_err(|e| unprocessable(format!("sealing to {org}: {e}")))?;
        Ok(SealedTravelRule {
            digest,
            ephemeral: sealed.ephemeral,
            ciphertext: sealed.ciphertext,
        })
    }

    /// Opens `sealed`, sealed to this organisation's key: the message, if
    /// it is the one its digest names on this chain.
    pub fn open_travel_rule(
        &self,
        sealed: &SealedTravelRule,
    ) -> Result<TravelRuleMessage, ServiceError> {
        sealed
            .check()
            .map_err(|m| ServiceError::new(ServiceCode::BadRequest, m))?;
        let plain = self
            .key
            .open(
                &self.chain_id,
                sealed.digest.as_bytes(),
                &Sealed {
                    recipient: self.key.public_key(),
                    ephemeral: sealed.ephemeral.clone(),
                    ciphertext: sealed.ciphertext.clone(),
                },
            )
            .map_err(|e| unprocessable(format!("the message does not open: {e}")))?;
        let message: TravelRuleMessage = serde_json::from_slice(&plain).map_err(|e| {
            unprocessable(format!(
                "the sealed message is not a travel-rule message: {e}"
            ))
        })?;
        if message.chain_id != self.chain_id.as_str() {
            return Err(unprocessable(format!(
                "the message is for chain {}, not {}",
                message.chain_id, self.chain_id
            )));
        }
        if message.digest().to_hex() != sealed.digest {
            return Err(unprocessable("the message is not the one its digest names"));
        }
        Ok(message)
    }

    /// Keeps `message` in the vault under its digest, in the caller's
    /// transaction.
    pub async fn keep_travel_rule(
        &self,
        conn: &mut sqlx::AnyConnection,
        message: &TravelRuleMessage,
    ) -> Result<(), ServiceError> {
        let json = serde_json::to_vec(message).expect("a travel-rule message serializes");
        self.vault
            .put_in(
                conn,
                TRAVEL_RULE_OWNER,
                &message.digest().to_hex(),
                &json,
                &[],
            )
            .await
            .map_err(|e| ServiceError::internal("keeping a travel-rule message", e))
    }

    /// The message with `digest`, sealed to `caller`'s key: only for an
    /// organisation the chain records as a regulator.
    pub async fn travel_rule_for(
        &self,
        caller: &Caller,
        digest: &str,
    ) -> Result<SealedTravelRule, ServiceError> {
        caller.require(Role::Regulator)?;
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ServiceError::new(
                ServiceCode::BadRequest,
                "a travel-rule message is named by its digest, 64 hex digits",
            ));
        }
        let json = self
            .vault
            .get(TRAVEL_RULE_OWNER, digest)
            .await
            .map_err(|e| ServiceError::internal("reading a travel-rule message", e))?
            .ok_or_else(|| {
                ServiceError::new(
                    ServiceCode::NotFound,
                    format!("this organisation holds no travel-rule message {digest}"),
                )
            })?;
        let message: TravelRuleMessage = serde_json::from_slice(&json)
            .map_err(|e| ServiceError::internal("a kept travel-rule message", e))?;
        let sealed = self.seal_travel_rule(&caller.org, &message).await?;
        tracing::info!(regulator = %caller.org, digest, "travel-rule message handed to a regulator");
        Ok(sealed)
    }
}
