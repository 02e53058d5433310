//! What the chain records and reports about itself: transfer records (C-3,
//! F6-7) and the checks each role reads (SR-1, SR-2, F5-7, F5-10).

use crate::{
    Date, Hash, Memo, OrgId, Reference, RequestId, Signature, TokenId, Units, WalletAddress,
};
use serde::{Deserialize, Serialize};

crate::unit_enum! {
    /// How tokens moved.
    pub enum TransferKind {
        /// Signed by the holder.
        Holder = 0,
        /// Out of a custodial wallet, by its custodian on the holder's authorization.
        Custodial = 1,
        /// Issued to an investor.
        Issuance = 2,
        /// Moved into the revocation wallet.
        Revocation = 3,
        /// Forced by the token's agent.
        Forced = 4,
        /// Recovery of a lost wallet.
        Recovery = 5,
        /// A leg of a settlement.
        Settlement = 6,
        /// Cash minted by a central bank or an escrow bank.
        Mint = 7,
        /// Money into or out of an offering's escrow: a subscription, a
        /// refund, the release of the proceeds.
        Escrow = 8,
        /// Cash given back to its bank for money, out of circulation.
        Redemption = 9,
    }
}

crate::record! {
    /// The record of a movement of tokens (C-3, F6-7): date, token, originator,
    /// beneficiary, amount and reference, plus how and by whose authority.
    /// Stored in the canonical encoding; served as JSON.
    pub struct TransferRecord {
        /// The block's day.
        pub date: Date,
        /// The block's height.
        pub height: u64,
        /// The transaction.
        pub tx: Hash,
        /// The token.
        pub token: TokenId,
        /// The originator wallet (`None` for issuance and minting).
        pub from: Option<WalletAddress>,
        /// The beneficiary wallet.
        pub to: WalletAddress,
        /// Units moved.
        pub amount: Units,
        /// The reference given, e.g. an exchange trade id.
        pub reference: Option<Reference>,
        /// How.
        pub kind: TransferKind,
        /// The holder's authorization signature, for a custodial transfer (SR-3).
        pub holder_authorization: Option<Signature>,
        /// The recorded reason, for a forced transfer.
        pub reason: Option<Memo>,
    }
}

impl TransferRecord {
    /// Whether the transfer is of `token` (if given) and from or to
    /// `wallet` (if given): the one filter every query and stream applies.
    pub fn matches(&self, token: Option<&TokenId>, wallet: Option<&WalletAddress>) -> bool {
        token.is_none_or(|k| *k == self.token)
            && wallet.is_none_or(|w| *w == self.to || self.from.as_ref() == Some(w))
    }
}

/// A TSP's check of an issuance (F5-7, SR-1): what it requested, of whom,
/// and what that issuer issued. (That issued equals requested is the
/// ledger's rule, ST-1; this is what the TSP reads to see it.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuanceCheck {
    /// The request.
    pub request: RequestId,
    /// The token.
    pub token: TokenId,
    /// The TSP that filed it.
    pub tsp: OrgId,
    /// The issuer it names: the only one that may carry it out.
    pub issuer: OrgId,
    /// Requested units.
    pub requested: Units,
    /// Issued units, once that issuer carried it out.
    pub issued: Option<Units>,
    /// Whether it was carried out.
    pub executed: bool,
    /// Withdrawn by the TSP before it was carried out: it never will be.
    pub withdrawn: bool,
}

/// A TSP's check of a revocation (F5-10, SR-1): requested against revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationCheck {
    /// The request.
    pub request: RequestId,
    /// The token.
    pub token: TokenId,
    /// Requested units.
    pub requested: Units,
    /// The TSP that filed it.
    pub tsp: OrgId,
    /// Revoked units, once carried out (by the token's issuer, the only
    /// one that may).
    pub revoked: Option<Units>,
    /// Whether it was carried out.
    pub executed: bool,
}

/// An exchange's check of a token (SR-2, F6-2): issued against revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSupply {
    /// The token.
    pub token: TokenId,
    /// Units issued.
    pub issued: Units,
    /// Units revoked.
    pub revoked: Units,
    /// Units circulating.
    pub circulating: Units,
    /// Revoked for good: delist it.
    pub revoked_for_good: bool,
}
