//! What each role verifies on chain.

use crate::compliance::balance;
use crate::state::{
    AmlPolicyVersion, Asset, AuditAnchor, Custody, Equivocation, IssuanceRequest, Offering,
    Organisation, Ownership, RevocationRequest, Subscription, Token, Validator,
};
use crate::{compliance, BlockContext, HolderSide, Ledger};
use std::collections::BTreeSet;
use tranche_types::{
    AssetId, Did, IssuanceCheck, OrgId, Outcome, PublicKey, Rejection, RequestId, RevocationCheck,
    SignedTransaction, TokenId, TokenSupply, Units, WalletAddress,
};

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

    /// The escrow wallet of an offering (REC-8).
    pub fn escrow_wallet(offering: &RequestId) -> WalletAddress {
        crate::address::escrow_wallet(offering)
    }

    /// The pool wallet of a funded distribution (F5-9).
    pub fn distribution_pool(distribution: &RequestId) -> WalletAddress {
        crate::address::distribution_pool(distribution)
    }

    /// The pool wallet of a redemption's proceeds (F5-10).
    pub fn redemption_pool(request: &RequestId) -> WalletAddress {
        crate::address::redemption_pool(request)
    }

    /// An offering, if there is one.
    pub fn offering(&self, offering: &RequestId) -> Option<&Offering> {
        self.state().offerings.get(offering)
    }

    /// The subscriptions to an offering, in order, from the `from`-th.
    pub fn subscriptions<'a>(
        &'a self,
        offering: &RequestId,
        from: u64,
    ) -> impl Iterator<Item = &'a Subscription> + 'a {
        let id = offering.clone();
        self.state()
            .subscriptions
            .range((id.clone(), from)..)
            .take_while(move |((o, _), _)| *o == id)
            .map(|(_, s)| s)
    }

    /// The custodial wallet a custodian keeps for a holder.
    pub fn custodial_wallet(custodian: &OrgId, holder: &Did) -> WalletAddress {
        crate::apply::custodial_wallet(custodian, holder)
    }

    /// What a holder signs to authorize `p` out of the wallet `custodian`
    /// keeps for them (SR-3).
    pub fn authorization_message(
        custodian: &OrgId,
        p: &tranche_types::CustodialTransfer,
    ) -> Vec<u8> {
        crate::apply::authorization_message(custodian, p)
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

    /// `key`'s authorization for `custodian` to move `amount` of `token`
    /// to `to` (with `reference`) out of the custodial wallet it keeps for
    /// the key's holder, as authorization `number`, until `valid_until`
    /// (SR-3): the payload the custodian sends.
    pub fn sign_authorization(
        chain_id: &tranche_types::ChainId,
        custodian: &OrgId,
        key: &tranche_crypto::Keypair,
        (token, to, amount): (TokenId, WalletAddress, tranche_types::Units),
        reference: Option<tranche_types::Reference>,
        number: u64,
        valid_until: tranche_types::Timestamp,
    ) -> tranche_types::CustodialTransfer {
        let mut p = tranche_types::CustodialTransfer {
            token,
            to,
            amount,
            reference,
            authorization: tranche_types::HolderAuthorization {
                key: key.public_key(),
                number,
                valid_until,
                signature: tranche_types::Signature::unset(),
            },
        };
        let message = crate::apply::authorization_message(custodian, &p);
        p.authorization.signature = key.sign(
            tranche_crypto::Domain::CustodyAuthorization,
            chain_id,
            &message,
        );
        p
    }

    /// The did:key of a key.
    pub fn did_of_key(key: &PublicKey) -> Did {
        crate::consent::did_of_key(key)
    }

    /// The key controlling a DID, or why the ledger refuses it (`INVALID_DID`).
    pub fn did_key(did: &Did) -> Result<PublicKey, tranche_types::Rejection> {
        crate::consent::did_key(did)
    }

    /// The organisation that signs with `key`, if any.
    pub fn organisation_of_key(&self, key: &PublicKey) -> Option<&OrgId> {
        self.state().org_by_key.get(key)
    }

    /// A registered asset.
    pub fn asset(&self, asset: &AssetId) -> Option<&Asset> {
        self.state().assets.get(asset)
    }

    /// Who an asset registry attested as an asset's owner (ST-6).
    pub fn ownership(&self, asset: &AssetId) -> Option<&Ownership> {
        self.state().ownerships.get(asset)
    }

    /// An issuance request and what came of it.
    pub fn issuance(&self, request: &RequestId) -> Option<&IssuanceRequest> {
        self.state().issuances.get(request)
    }

    /// A revocation request and what came of it.
    pub fn revocation(&self, request: &RequestId) -> Option<&RevocationRequest> {
        self.state().revocations.get(request)
    }

    /// A bonded validator.
    pub fn validator(&self, org: &OrgId) -> Option<&Validator> {
        self.state().validators.get(org)
    }

    /// Every bonded validator, by organisation.
    pub fn validators(&self) -> impl Iterator<Item = (&OrgId, &Validator)> {
        self.state().validators.iter()
    }

    /// Every equivocation recorded, by offender key, epoch and view.
    pub fn equivocations(&self) -> impl Iterator<Item = (&(PublicKey, u64, u64), &Equivocation)> {
        self.state().equivocations.iter()
    }

    /// The last audit-log head `org` anchored, if any (REC-9).
    pub fn audit_anchor(&self, org: &OrgId) -> Option<&AuditAnchor> {
        self.state().audit_anchors.get(org)
    }

    /// Every version of the AML policy, oldest first (F6-1).
    pub fn aml_policies(&self) -> impl DoubleEndedIterator<Item = (&u32, &AmlPolicyVersion)> {
        self.state().aml_policies.iter()
    }

    /// The AML policy governing block `height`: the latest version whose
    /// effective height is at or below it.
    pub fn aml_policy_at(&self, height: u64) -> Option<(u32, &AmlPolicyVersion)> {
        self.state()
            .aml_policies
            .iter()
            .rev()
            .find(|(_, v)| v.effective_height <= height)
            .map(|(n, v)| (*n, v))
    }

    /// Who keeps `wallet` for whom, if it is a custodial wallet.
    pub fn custody(&self, wallet: &WalletAddress) -> Option<&Custody> {
        self.state().custody.get(wallet)
    }

    /// The custodial wallets kept for `did`, with their custody.
    pub fn custodial_wallets_of<'a>(
        &'a self,
        did: &'a Did,
    ) -> impl Iterator<Item = (WalletAddress, &'a Custody)> + 'a {
        let state = self.state();
        state
            .did_wallets
            .range((did.clone(), WalletAddress([0; 20]))..)
            .take_while(move |((d, _), ())| d == did)
            .filter_map(move |((_, w), ())| state.custody.get(w).map(|c| (*w, c)))
    }

    /// `wallet`'s balance of every token it holds. Looks the wallet up once
    /// per token on the chain, never reads every balance.
    pub fn balances_of<'a>(
        &'a self,
        wallet: &'a WalletAddress,
    ) -> impl Iterator<Item = (&'a TokenId, Units)> + 'a {
        let state = self.state();
        state.tokens.keys().filter_map(move |t| {
            state
                .balances
                .get(&(t.clone(), *wallet))
                .map(|units| (t, *units))
        })
    }

    /// The tokens for which `wallet` is frozen, wholly or in part: one look-up
    /// per token on the chain.
    pub fn frozen_tokens_of<'a>(
        &'a self,
        wallet: &'a WalletAddress,
    ) -> impl Iterator<Item = &'a TokenId> + 'a {
        let state = self.state();
        state
            .tokens
            .keys()
            .filter(move |t| state.freezes.contains_key(&((*t).clone(), *wallet)))
    }

    /// The epoch's validator set (C-2): the top `n` bonded validators by
    /// bonded plus delegated stake, ties broken by organisation id; one vote
    /// each. Tombstoned validators are never elected, nor those whose
    /// organisation governance has taken the validator role from (C-1).
    pub fn elect(&self, n: usize) -> Vec<(OrgId, PublicKey, u128)> {
        let state = self.state();
        let mut all: Vec<(OrgId, PublicKey, u128)> = state
            .validators
            .iter()
            .filter(|(org, v)| {
                !v.tombstoned
                    && state
                        .orgs
                        .get(*org)
                        .is_some_and(|o| o.roles.has(tranche_types::Role::Validator))
            })
            .map(|(org, v)| {
                (
                    org.clone(),
                    v.consensus_key,
                    v.bonded.0.saturating_add(v.delegated.0),
                )
            })
            .collect();
        all.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }

    /// The keys the network admits as peers (C-1): this epoch's validators,
    /// and the signing and consensus keys of every organisation that holds
    /// a role or governs. Revoking all of an organisation's roles removes it
    /// from the network (its node is dropped), once its validator, if it
    /// has one, is off the committee.
    pub fn admitted_peers(&self) -> BTreeSet<PublicKey> {
        let state = self.state();
        let mut keys: BTreeSet<PublicKey> =
            state.committee.members.0.iter().map(|m| m.key).collect();
        for (org, o) in state.orgs.iter() {
            if o.roles.0 == 0 && !o.governor {
                continue;
            }
            keys.insert(o.key);
            if let Some(v) = state.validators.get(org) {
                keys.insert(v.consensus_key);
            }
        }
        keys
    }

    /// What applying the transaction would give, without changing anything.
    /// Works on a copy of the state, so it costs a copy of the state.
    pub fn dry_run(&self, ctx: &BlockContext, stx: &SignedTransaction) -> Outcome {
        let mut copy = self.clone();
        copy.apply(ctx, stx).outcome
    }

    /// Checks a holder transfer against every rule, without a transaction and
    /// without changing anything: the same checks and codes as a transfer.
    pub fn check_transfer(
        &self,
        ctx: &BlockContext,
        token: &TokenId,
        from: &WalletAddress,
        to: &WalletAddress,
        amount: Units,
    ) -> Result<(), Rejection> {
        compliance::check(
            &self.state,
            ctx,
            token,
            from,
            to,
            amount,
            compliance::Mode::Holder,
        )
    }

    /// Checks the rules of `token` that concern `wallet` alone, as the
    /// giver or the receiver of `amount` (identity and claims, country,
    /// per-identity and holder limits, freezes, pause, lock-up, expiry),
    /// without a counterparty: an exchange's check before an order enters
    /// its book. The balance is not checked.
    pub fn check_holder(
        &self,
        ctx: &BlockContext,
        token: &TokenId,
        wallet: &WalletAddress,
        side: HolderSide,
        amount: Units,
    ) -> Result<(), Rejection> {
        compliance::check_holder(&self.state, ctx, token, wallet, side, amount)
    }
}
