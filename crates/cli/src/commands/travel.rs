//! The travel rule on the holder's side: the parties file, and the digest
//! of the message it makes, which the authorization carries as its
//! reference.

use anyhow::{anyhow, Context, Result};
use std::path::Path;
use tranche_api::travel::{TravelRuleMessage, TravelRuleParties, TravelTransfer};
use tranche_crypto::Keypair;
use tranche_keystore::read_bounded;
use tranche_ledger::Ledger;
use tranche_types::{ChainId, OrgId, Reference};

/// The largest travel-rule parties file.
const TRAVEL_RULE_FILE_MAX: u64 = 64 * 1024;

/// The parties in the file at `path`.
pub fn read_parties(path: &Path) -> Result<TravelRuleParties> {
    let bytes = read_bounded(path, TRAVEL_RULE_FILE_MAX)?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not the travel rule's parties", path.display()))
}

/// The reference of `transfer` out of the wallet `custodian` keeps for
/// `holder`'s DID: the digest of the message the custodian will send.
pub fn reference(
    chain_id: &ChainId,
    custodian: &OrgId,
    holder: &Keypair,
    parties: &TravelRuleParties,
    mut transfer: TravelTransfer,
) -> Result<Reference> {
    let from = Ledger::custodial_wallet(custodian, &Ledger::did_of_key(&holder.public_key()));
    transfer.from = from.to_string();
    let message = TravelRuleMessage::new(chain_id.as_str(), custodian.as_str(), parties, transfer)
        .map_err(|e| anyhow!("the travel rule's parties: {e}"))?;
    message
        .digest()
        .to_hex()
        .parse()
        .map_err(|e| anyhow!("a digest as a reference: {e}"))
}
