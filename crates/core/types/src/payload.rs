//! What transactions do: one record per kind of ledger operation, each with a
//! stable tag in the canonical encoding. Requirement ids refer to the service
//! model (SERVICE_MODEL.md).

use crate::admin::{
    ApproveTransfer, CastVote, ForcedMoves, OpenBallot, RemoveDocument, SetDocument,
    SetLimitExemption, SetRuleChecks, SetTokenRules, SetTrustedIssuers,
};
use crate::aml::PublishAmlPolicy;
use crate::codec::BoundedVec;
use crate::governance::Govern;
use crate::holds::{CreateHold, ExecuteHold, ReleaseHold};
use crate::instructions::{AffirmInstruction, CancelInstruction, CreateInstruction};
use crate::market::{
    ClaimDistribution, CloseOffering, FundDistribution, IssueOffering, OpenOffering,
    ReclaimDistribution, ReleaseProceeds, Subscribe,
};
use crate::{
    record, tagged, unit_enum, AssetId, ClaimTopic, Currency, Date, Did, Hash, IdError, Money,
    OrgId, PublicKey, Reference, RequestId, Signature, Stake, Timestamp, TokenId, TokenRules,
    Units, WalletAddress,
};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Most allocations in one issuance (investors of one offering).
pub const ALLOCATIONS_MAX: usize = 1_000;
/// The allocations of one issuance.
pub type AllocationsList = BoundedVec<Allocation, ALLOCATIONS_MAX>;

/// Most holder moves in one revocation.
pub const REVOCATION_MOVES_MAX: usize = 1_000;
/// Most subscriptions one close or issue transaction of an offering walks.
pub const OFFERING_BATCH_MAX: u32 = 1_000;
/// Most legs in one settlement.
pub const SETTLEMENT_LEGS_MAX: usize = 16;

unit_enum! {
    /// A role an organisation may hold (C-1).
    pub enum Role {
        /// Tokenization service provider (R-TSP).
        Tsp = 1,
        /// Issuer (R-ISS).
        Issuer = 2,
        /// Exchange (R-EXC).
        Exchange = 3,
        /// Custodian (R-CUS).
        Custodian = 4,
        /// AML regulator (R-REG).
        Regulator = 5,
        /// Asserts identity claims (KYC, accreditation, jurisdiction) about DIDs.
        ClaimIssuer = 6,
        /// Appraises assets (SR-6).
        Appraiser = 7,
        /// Holds investments in escrow (SR-6, REC-8).
        EscrowBank = 8,
        /// Issues a cash token (CBDC).
        CentralBank = 9,
        /// Runs a validator (C-2).
        Validator = 10,
        /// Keeps a register of who owns what, and attests it on chain (ST-6).
        AssetRegistry = 11,
    }
}

unit_enum! {
    /// What kind of asset backs a token (F5-1, REC-4).
    pub enum AssetKind {
        /// A building, a harvest in store, a work of art.
        Tangible = 1,
        /// A patent, a film's rights, a royalty stream.
        Intangible = 2,
        /// Something still to be made: a construction, a crop, a work in progress.
        ToBeCreated = 3,
    }
}

/// An ISO 3166-1 alpha-2 country code, e.g. `KR`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode(pub [u8; 2]);

impl CountryCode {
    /// Checks two uppercase letters.
    pub fn new(code: &str) -> Result<Self, IdError> {
        let b = code.as_bytes();
        if b.len() != 2 || !b.iter().all(u8::is_ascii_uppercase) {
            return Err(IdError {
                kind: "country code",
                value: code.chars().take(10).collect(),
                reason: "use two uppercase letters (ISO 3166-1 alpha-2), e.g. KR".into(),
            });
        }
        Ok(Self([b[0], b[1]]))
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.0[0] as char, self.0[1] as char)
    }
}
impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({self})")
    }
}
impl FromStr for CountryCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::new(s)
    }
}
impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
impl Write for CountryCode {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }
}
impl FixedSize for CountryCode {
    const SIZE: usize = 2;
}
impl Read for CountryCode {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let b = <[u8; 2]>::read_cfg(buf, &())?;
        if !b.iter().all(u8::is_ascii_uppercase) {
            return Err(CodecError::Invalid(
                "country code",
                "not two uppercase letters",
            ));
        }
        Ok(Self(b))
    }
}

/// A short free text kept on the record, e.g. the reason for a forced
/// transfer. Printable, at most 256 bytes, and never personal data.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Memo(String);

impl Memo {
    /// The longest memo.
    pub const MAX_LEN: usize = 256;

    /// Checks length and printability.
    pub fn new(text: impl Into<String>) -> Result<Self, IdError> {
        let text = text.into();
        if text.is_empty() || text.len() > Self::MAX_LEN || text.chars().any(char::is_control) {
            return Err(IdError {
                kind: "memo",
                value: text.chars().take(40).collect(),
                reason: format!("must be 1 to {} bytes of printable text", Self::MAX_LEN),
            });
        }
        Ok(Self(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Memo({:?})", self.0)
    }
}
impl<'de> Deserialize<'de> for Memo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
impl Write for Memo {
    fn write(&self, buf: &mut impl BufMut) {
        crate::codec::write_bytes(self.0.as_bytes(), buf);
    }
}
impl EncodeSize for Memo {
    fn encode_size(&self) -> usize {
        crate::codec::bytes_size(self.0.as_bytes())
    }
}
impl Read for Memo {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let s = crate::codec::read_string(buf, Self::MAX_LEN, "memo")?;
        Self::new(s).map_err(|_| CodecError::Invalid("memo", "not printable"))
    }
}

record! {
    /// Move security tokens from the signer's wallet to another (L-1, F6-7).
    pub struct Transfer {
        /// The token moved.
        pub token: TokenId,
        /// The beneficiary wallet.
        pub to: WalletAddress,
        /// How many units.
        pub amount: Units,
        /// An optional reference, e.g. the exchange trade this settles.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reference: Option<Reference>,
    }
}

record! {
    /// Bind a wallet to a DID (SR-5): sent by the organisation that onboarded
    /// the person (TSP, exchange, custodian or claim issuer), carrying the
    /// person's consent: the wallet key's signature over the binding and the
    /// DID key's proof of control of the DID (the same key may be both).
    /// `tranche did bind-wallet` makes this payload.
    pub struct RegisterWallet {
        /// The wallet: the address of `wallet_key`.
        pub wallet: WalletAddress,
        /// Its owner's DID, a did:key.
        pub did: Did,
        /// The wallet's public key.
        pub wallet_key: PublicKey,
        /// The wallet key's signature over the binding (domain `wallet-binding`).
        pub wallet_signature: Signature,
        /// The DID key's signature over the binding (domain `did-control`).
        pub did_signature: Signature,
    }
}

record! {
    /// A claim issuer asserts a claim about a DID. Only its digest goes on
    /// chain; the credential itself stays with the holder.
    pub struct AddClaim {
        /// Who the claim is about.
        pub did: Did,
        /// What it asserts.
        pub topic: ClaimTopic,
        /// For a jurisdiction claim, the country.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub country: Option<CountryCode>,
        /// Digest of the credential behind it.
        pub digest: Hash,
        /// The last day it is valid.
        pub expiry_date: Date,
    }
}

record! {
    /// A claim issuer withdraws its claim of `topic` about `did`.
    pub struct RevokeClaim {
        /// Who the claim is about.
        pub did: Did,
        /// Which claim.
        pub topic: ClaimTopic,
    }
}

record! {
    /// A TSP registers an owner's asset (F5-1).
    pub struct RegisterAsset {
        /// The asset's id.
        pub asset: AssetId,
        /// The owner's DID.
        pub owner: Did,
        /// Tangible, intangible or to be created (REC-4).
        pub kind: AssetKind,
        /// Digest of the asset's description and documents.
        pub description: Hash,
        /// The owner's asking price AP; how far an appraisal may differ
        /// from it is the network's policy (SR-6), not the TSP's choice.
        pub price: Money,
    }
}

record! {
    /// An asset registry attests on chain who owns an asset (ST-6): the
    /// digest of the ownership credential it issued to the owner's DID.
    pub struct RecordOwnership {
        /// The asset.
        pub asset: AssetId,
        /// The owner's DID (a did:key).
        pub owner: Did,
        /// The digest of the ownership credential (no personal data).
        pub credential: Hash,
    }
}

record! {
    /// An appraiser records its valuation of an asset (SR-6).
    pub struct RecordAppraisal {
        /// The asset.
        pub asset: AssetId,
        /// The appraised value, in AP's currency.
        pub value: Money,
    }
}

record! {
    /// Tokens for one investor wallet.
    pub struct Allocation {
        /// The wallet.
        pub wallet: WalletAddress,
        /// How many tokens.
        pub amount: Units,
        /// In an issuance: these units cannot move before this day (the
        /// wallet's other units can). Never in a revocation's moves.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub lockup_until: Option<Date>,
    }
}

record! {
    /// A TSP asks an issuer to issue tokens for an asset (F5-2, F5-4).
    pub struct RequestIssuance {
        /// The request's id.
        pub request: RequestId,
        /// The asset tokenized.
        pub asset: AssetId,
        /// The token to create.
        pub token: TokenId,
        /// The price of one token, SP.
        pub unit_price: Money,
        /// First day of the token's life (L-3).
        pub issue_date: Date,
        /// Last day of the token's life (L-3).
        pub expiry_date: Date,
        /// AP / SP tokens.
        pub amount: Units,
        /// The issuer asked to issue.
        pub issuer: OrgId,
        /// Who gets how many, in proportion to their investment (F5-6).
        pub allocations: AllocationsList,
        /// The token's compliance rules.
        pub rules: TokenRules,
    }
}

record! {
    /// The TSP withdraws an issuance request it filed that was not carried
    /// out, freeing its token id; the request id stays used.
    pub struct WithdrawIssuance {
        /// The request withdrawn.
        pub request: RequestId,
    }
}

record! {
    /// The issuer issues what was requested (F5-5, F5-6); the amount and every
    /// allocation must equal the request exactly (ST-1).
    pub struct ExecuteIssuance {
        /// The request carried out.
        pub request: RequestId,
        /// The amount issued.
        pub amount: Units,
        /// The allocations made.
        pub allocations: AllocationsList,
    }
}

record! {
    /// A custodian opens the custodial wallet of one holder (SR-3), with the
    /// holder's consent. `tranche did consent-custody` makes this payload.
    pub struct OpenCustodialWallet {
        /// The holder's DID, a did:key.
        pub holder: Did,
        /// The holder's DID key's signature over (custodian, holder)
        /// (domain `custody-consent`).
        pub consent: Signature,
    }
}

record! {
    /// A holder's signed instruction to move tokens out of the custodial
    /// wallet a custodian keeps for them (SR-3, ST-3). Made offline by
    /// `tranche custody authorize`; the custodian carries it in its own
    /// transaction, so neither moves the wallet alone.
    pub struct HolderAuthorization {
        /// The key that signs: the holder's DID key, or a wallet key bound
        /// to the holder's DID.
        pub key: PublicKey,
        /// The authorization's number for this custodial wallet: each is
        /// used once, in order, from 0 (the chain shows the next).
        pub number: u64,
        /// The last block time at which it may be carried out.
        pub valid_until: Timestamp,
        /// The key's signature (domain `custody-authorization`) over the
        /// custodian, the instruction, the number and the expiry.
        pub signature: Signature,
    }
}

record! {
    /// A custodian moves tokens out of the custodial wallet it keeps for a
    /// holder, on the holder's signed authorization (SR-3, ST-3). The
    /// custodian is the transaction's signer.
    pub struct CustodialTransfer {
        /// The token moved.
        pub token: TokenId,
        /// The beneficiary wallet.
        pub to: WalletAddress,
        /// How many units.
        pub amount: Units,
        /// An optional reference.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reference: Option<Reference>,
        /// The holder's authorization of exactly this move.
        pub authorization: HolderAuthorization,
    }
}

record! {
    /// Freeze or unfreeze a wallet for a token (agent power).
    pub struct SetFrozen {
        /// The token.
        pub token: TokenId,
        /// The wallet.
        pub wallet: WalletAddress,
        /// Frozen or not.
        pub frozen: bool,
    }
}

record! {
    /// Freeze part of a wallet's balance (agent power); 0 unfreezes it.
    pub struct FreezePartial {
        /// The token.
        pub token: TokenId,
        /// The wallet.
        pub wallet: WalletAddress,
        /// How many units stay frozen.
        pub amount: Units,
    }
}

record! {
    /// Pause or resume all transfers of a token (agent power).
    pub struct SetPaused {
        /// The token.
        pub token: TokenId,
        /// Paused or not.
        pub paused: bool,
    }
}

record! {
    /// The issuer moves tokens without the holder, with a recorded reason
    /// (agent power, e.g. a court order). The receiver must pass the checks.
    pub struct ForcedTransfer {
        /// The token.
        pub token: TokenId,
        /// From this wallet.
        pub from: WalletAddress,
        /// To this wallet.
        pub to: WalletAddress,
        /// How many units.
        pub amount: Units,
        /// Why.
        pub reason: Memo,
    }
}

record! {
    /// Move a lost wallet's tokens to a new wallet of the same DID, carrying
    /// its frozen state (agent power).
    pub struct RecoverWallet {
        /// The token.
        pub token: TokenId,
        /// The lost wallet.
        pub lost: WalletAddress,
        /// The new wallet, bound to the same DID.
        pub new: WalletAddress,
    }
}

record! {
    /// Record every holder's balance of a token as of now (F5-9).
    pub struct CreateCheckpoint {
        /// The token.
        pub token: TokenId,
    }
}

record! {
    /// The TSP declares a profit distribution over a checkpoint (F5-9).
    pub struct DeclareDistribution {
        /// The distribution's id.
        pub distribution: RequestId,
        /// The token.
        pub token: TokenId,
        /// The checkpoint whose balances count.
        pub checkpoint: u64,
        /// The total to distribute.
        pub total: Money,
    }
}

record! {
    /// The TSP pays a wallet's entitlement: out of the pool of a funded
    /// distribution, else recorded as paid off chain.
    pub struct RecordPayment {
        /// The distribution.
        pub distribution: RequestId,
        /// The wallet paid.
        pub wallet: WalletAddress,
    }
}

record! {
    /// The TSP asks the token's issuer to revoke tokens (F5-10).
    pub struct RequestRevocation {
        /// The request's id.
        pub request: RequestId,
        /// The token.
        pub token: TokenId,
        /// How many units to revoke.
        pub amount: Units,
        /// A redemption: the sale proceeds each holder is paid, per unit, in
        /// the transaction that revokes its units. The TSP's wallet pays
        /// amount × price into a pool no key controls when it files.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub redemption: Option<Redemption>,
    }
}

record! {
    /// What a redemption pays per unit revoked.
    pub struct Redemption {
        /// The cash (deposit) token paid.
        pub cash_token: TokenId,
        /// The price of one unit.
        pub unit_price: Money,
    }
}

record! {
    /// The issuer revokes: moves tokens from holders into the token's
    /// revocation wallet, exactly the requested amount (ST-2, L-2).
    pub struct ExecuteRevocation {
        /// The request carried out.
        pub request: RequestId,
        /// From which wallets, how many.
        pub moves: BoundedVec<Allocation, REVOCATION_MOVES_MAX>,
    }
}

record! {
    /// A central bank creates a cash token (CBDC).
    pub struct IssueCashToken {
        /// The cash token's id.
        pub token: TokenId,
        /// The currency it carries.
        pub currency: Currency,
    }
}

record! {
    /// A central bank mints cash tokens to a wallet.
    pub struct MintCash {
        /// The cash token.
        pub token: TokenId,
        /// The wallet.
        pub to: WalletAddress,
        /// Minor units.
        pub amount: Units,
    }
}

record! {
    /// A holder gives cash tokens back to the bank that issues them, to be
    /// paid out in money: signed by the holding wallet's key, the units go
    /// out of circulation into the token's revocation wallet (counted as
    /// `revoked`), and the bank, seeing it final, pays the holder's DID.
    pub struct RedeemCash {
        /// The cash token (a CBDC or an escrow bank's deposit token).
        pub token: TokenId,
        /// Minor units.
        pub amount: Units,
    }
}

record! {
    /// One leg of a settlement.
    pub struct Leg {
        /// The token (security or cash).
        pub token: TokenId,
        /// From this wallet.
        pub from: WalletAddress,
        /// To this wallet.
        pub to: WalletAddress,
        /// How many units.
        pub amount: Units,
    }
}

record! {
    /// A wallet owner's approval of a settlement they are not the signer of.
    pub struct Approval {
        /// The approving key; its address is the wallet.
        pub key: PublicKey,
        /// Its signature over the settlement digest.
        pub signature: Signature,
    }
}

record! {
    /// Delivery versus payment: every leg or none (settlement).
    pub struct Settle {
        /// The legs.
        pub legs: BoundedVec<Leg, SETTLEMENT_LEGS_MAX>,
        /// Approvals from the owners of `from` wallets other than the signer;
        /// left out of a payload file, none until `tranche tx approve` adds them.
        #[serde(default)]
        pub approvals: BoundedVec<Approval, SETTLEMENT_LEGS_MAX>,
    }
}

record! {
    /// A validator organisation bonds stake behind its consensus key (C-2).
    pub struct BondValidator {
        /// The key it votes with.
        pub consensus_key: PublicKey,
        /// Stake units bonded, from the organisation's stake balance.
        pub amount: Stake,
    }
}

record! {
    /// An organisation delegates stake to a validator (C-2).
    pub struct Delegate {
        /// The validator organisation.
        pub validator: OrgId,
        /// Stake units.
        pub amount: Stake,
    }
}

record! {
    /// An organisation anchors the head of its service's hash-chained audit
    /// log (REC-9): after `entries` entries the chain's head is `head`.
    /// Each anchor must cover more entries than the last, so a log cannot be
    /// cut back or rewritten without the chain showing it.
    pub struct AnchorAudit {
        /// How many entries the log holds.
        pub entries: u64,
        /// The hash of its last entry.
        pub head: Hash,
    }
}

tagged! {
    /// What a transaction does. Tags are stable; new kinds get new tags.
    pub enum Payload {
        /// Move tokens.
        Transfer(Transfer) = 1,
        /// Vote for a governance action.
        Govern(Govern) = 2,
        /// Bind a wallet to a DID.
        RegisterWallet(RegisterWallet) = 3,
        /// Assert a claim.
        AddClaim(AddClaim) = 4,
        /// Withdraw a claim.
        RevokeClaim(RevokeClaim) = 5,
        /// Register an asset.
        RegisterAsset(RegisterAsset) = 6,
        /// Record an appraisal.
        RecordAppraisal(RecordAppraisal) = 7,
        /// Ask for issuance.
        RequestIssuance(RequestIssuance) = 8,
        /// Issue.
        ExecuteIssuance(ExecuteIssuance) = 9,
        /// Open a custodial wallet.
        OpenCustodialWallet(OpenCustodialWallet) = 10,
        /// Move tokens out of custody.
        CustodialTransfer(CustodialTransfer) = 11,
        /// Freeze or unfreeze a wallet.
        SetFrozen(SetFrozen) = 12,
        /// Freeze part of a balance.
        FreezePartial(FreezePartial) = 13,
        /// Pause or resume a token.
        SetPaused(SetPaused) = 14,
        /// Forced transfer.
        ForcedTransfer(ForcedTransfer) = 15,
        /// Recover a lost wallet.
        RecoverWallet(RecoverWallet) = 16,
        /// Snapshot balances.
        CreateCheckpoint(CreateCheckpoint) = 17,
        /// Declare a profit distribution.
        DeclareDistribution(DeclareDistribution) = 18,
        /// Record a payment of an entitlement.
        RecordPayment(RecordPayment) = 19,
        /// Ask for revocation.
        RequestRevocation(RequestRevocation) = 20,
        /// Revoke.
        ExecuteRevocation(ExecuteRevocation) = 21,
        /// Create a cash token.
        IssueCashToken(IssueCashToken) = 22,
        /// Mint cash.
        MintCash(MintCash) = 23,
        /// Delivery versus payment.
        Settle(Settle) = 24,
        /// Bond a validator.
        BondValidator(BondValidator) = 25,
        /// Delegate stake.
        Delegate(Delegate) = 26,
        /// Withdraw delegated stake.
        Undelegate(Delegate) = 27,
        /// Withdraw an issuance request.
        WithdrawIssuance(WithdrawIssuance) = 28,
        /// Anchor an audit log's head.
        AnchorAudit(AnchorAudit) = 29,
        /// Open an offering.
        OpenOffering(OpenOffering) = 30,
        /// Subscribe to an offering.
        Subscribe(Subscribe) = 31,
        /// Close an offering.
        CloseOffering(CloseOffering) = 32,
        /// Issue a closed offering.
        IssueOffering(IssueOffering) = 33,
        /// Release an offering's proceeds.
        ReleaseProceeds(ReleaseProceeds) = 34,
        /// Fund a distribution.
        FundDistribution(FundDistribution) = 35,
        /// Claim an entitlement.
        ClaimDistribution(ClaimDistribution) = 36,
        /// Reclaim what was not claimed.
        ReclaimDistribution(ReclaimDistribution) = 37,
        /// Attest an asset's owner.
        RecordOwnership(RecordOwnership) = 38,
        /// Give cash back to its bank for money.
        RedeemCash(RedeemCash) = 39,
        /// Publish the AML policy.
        PublishAmlPolicy(PublishAmlPolicy) = 40,
        /// Replace a token's rules.
        SetTokenRules(SetTokenRules) = 41,
        /// Suspend or resume a token's rule checks.
        SetRuleChecks(SetRuleChecks) = 42,
        /// Name a token's trusted claim issuers for a topic.
        SetTrustedIssuers(SetTrustedIssuers) = 43,
        /// Attach or replace a token's document.
        SetDocument(SetDocument) = 44,
        /// Remove a token's document.
        RemoveDocument(RemoveDocument) = 45,
        /// Pre-approve one transfer.
        ApproveTransfer(ApproveTransfer) = 46,
        /// Open a ballot of a token's holders.
        OpenBallot(OpenBallot) = 47,
        /// Vote in a ballot.
        CastVote(CastVote) = 48,
        /// Forced moves, all or none.
        ForcedMoves(ForcedMoves) = 49,
        /// Hold part of a balance for a notary.
        CreateHold(CreateHold) = 50,
        /// The notary executes a hold.
        ExecuteHold(ExecuteHold) = 51,
        /// Release a hold.
        ReleaseHold(ReleaseHold) = 52,
        /// Create a settlement instruction.
        CreateInstruction(CreateInstruction) = 53,
        /// Affirm a settlement instruction.
        AffirmInstruction(AffirmInstruction) = 54,
        /// Cancel a settlement instruction.
        CancelInstruction(CancelInstruction) = 55,
        /// Exempt an identity from a token's limits.
        SetLimitExemption(SetLimitExemption) = 56,
    }
}
