//! What each role verifies on chain.

use crate::compliance::balance;
use crate::state::{Organisation, Token};
use crate::Ledger;
use serde::{Deserialize, Serialize};
use tranche_types::{Did, OrgId, PublicKey, RequestId, TokenId, Units, WalletAddress};

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

impl Ledger {
    /// Requested against issued, for a TSP.
    pub fn issuance_check(&self, request: &RequestId) -> Option<IssuanceCheck> {
        let r = self.state().issuances.get(request)?;
        Some(IssuanceCheck {
            request: request.clone(),
            token: r.terms.token.clone(),
            requested: r.terms.amount,
            issued: r.issued,
            tsp: r.tsp.clone(),
            issuer: r.terms.issuer.clone(),
            executed: r.issued.is_some(),
            withdrawn: r.withdrawn,
        })
    }

    /// Requested against revoked, for a TSP.
    pub fn revocation_check(&self, request: &RequestId) -> Option<RevocationCheck> {
        let r = self.state().revocations.get(request)?;
        Some(RevocationCheck {
            request: request.clone(),
            token: r.token.clone(),
            requested: r.amount,
            tsp: r.tsp.clone(),
            revoked: r.revoked,
            executed: r.revoked.is_some(),
        })
    }

    /// Issued against revoked, for an exchange or a regulator (REC-2).
    pub fn supply(&self, token: &TokenId) -> Option<TokenSupply> {
        let t = self.state().tokens.get(token)?;
        Some(TokenSupply {
            token: token.clone(),
            issued: t.issued,
            revoked: t.revoked,
            circulating: t.circulating(),
            revoked_for_good: t.is_revoked(),
        })
    }

    /// A wallet's balance of a token.
    pub fn balance(&self, token: &TokenId, wallet: &WalletAddress) -> Units {
        balance(self.state(), token, wallet)
    }

    /// A token's record.
    pub fn token(&self, token: &TokenId) -> Option<&Token> {
        self.state().tokens.get(token)
    }

    /// An organisation's record.
    pub fn organisation(&self, org: &OrgId) -> Option<&Organisation> {
        self.state().orgs.get(org)
    }

    /// The DID a wallet is bound to.
    pub fn identity(&self, wallet: &WalletAddress) -> Option<&Did> {
        self.state().wallets.get(wallet)
    }

    /// The signer's next nonce.
    pub fn next_nonce(&self, signer: &PublicKey) -> u64 {
        self.state().nonces.get(signer).copied().unwrap_or(0) + 1
    }

    /// The revocation wallet of a token.
    pub fn revocation_wallet(token: &TokenId) -> WalletAddress {
        crate::apply::revocation_wallet(token)
    }

    /// The custodial wallet a custodian keeps for a holder.
    pub fn custodial_wallet(custodian: &OrgId, holder: &Did) -> WalletAddress {
        crate::apply::custodial_wallet(custodian, holder)
    }

    /// What a custodian co-signs for a holder's instruction (SR-3).
    pub fn cosign_message(
        signer: &PublicKey,
        nonce: u64,
        p: &tranche_types::CustodialTransfer,
    ) -> Vec<u8> {
        crate::apply::cosign_message(signer, nonce, p)
    }

    /// What the owners of a settlement's wallets sign to approve it.
    pub fn settlement_digest(
        signer: &PublicKey,
        nonce: u64,
        legs: &[tranche_types::Leg],
    ) -> Vec<u8> {
        crate::apply::settlement_digest(signer, nonce, legs)
    }

    /// What a wallet key and a DID key sign to bind the wallet to the DID
    /// (domains `wallet-binding` and `did-control`; SR-5).
    pub fn binding_message(wallet: &WalletAddress, did: &Did) -> Vec<u8> {
        crate::consent::binding_message(wallet, did)
    }

    /// What a holder's DID key signs to let a custodian keep a wallet for
    /// them (domain `custody-consent`; SR-3).
    pub fn custody_message(custodian: &OrgId, holder: &Did) -> Vec<u8> {
        crate::consent::custody_message(custodian, holder)
    }

    /// A wallet's binding to the DID of `did_key`, both consents signed
    /// (the same key may be both); see [`Ledger::binding_message`].
    pub fn sign_binding(
        chain_id: &tranche_types::ChainId,
        wallet: &tranche_crypto::Keypair,
        did_key: &tranche_crypto::Keypair,
    ) -> tranche_types::RegisterWallet {
        crate::consent::sign_binding(chain_id, wallet, did_key)
    }

    /// The consent of `holder_key`'s DID to `custodian` keeping a wallet for it.
    pub fn sign_custody_consent(
        chain_id: &tranche_types::ChainId,
        custodian: &OrgId,
        holder_key: &tranche_crypto::Keypair,
    ) -> tranche_types::OpenCustodialWallet {
        crate::consent::sign_custody_consent(chain_id, custodian, holder_key)
    }

    /// The did:key of a key.
    pub fn did_of_key(key: &PublicKey) -> Did {
        crate::consent::did_of_key(key)
    }

    /// The key controlling a DID, or why the ledger refuses it (`INVALID_DID`).
    pub fn did_key(did: &Did) -> Result<PublicKey, tranche_types::Rejection> {
        crate::consent::did_key(did)
    }

    /// The epoch's validator set (C-2): the top `n` bonded validators by
    /// bonded plus delegated stake, ties broken by organisation id; one vote
    /// each. Tombstoned validators are never elected.
    pub fn elect(&self, n: usize) -> Vec<(OrgId, PublicKey, u128)> {
        let mut all: Vec<(OrgId, PublicKey, u128)> = self
            .state()
            .validators
            .iter()
            .filter(|(_, v)| !v.tombstoned)
            .map(|(org, v)| {
                (
                    org.clone(),
                    v.consensus_key,
                    v.bonded.saturating_add(v.delegated),
                )
            })
            .collect();
        all.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}
