//! The node API's answers as types: what `GET` and `POST` return, in the
//! JSON every client reads. Ids, keys, hashes and amounts are strings on
//! the wire (the schema says so); records the chain defines (blocks,
//! receipts, transfer records, token rules) keep their own JSON forms.

use crate::ErrorBody;
use serde::{Deserialize, Serialize};
use tranche_types::{
    AssetId, AssetKind, Block, ChainId, Currency, Date, Did, Hash, IssuanceCheck, Money,
    OffenceKind, OrgId, PublicKey, Receipt, RequestId, RequestIssuance, RevocationCheck, Role,
    Stake, Timestamp, TokenId, TokenRules, TokenSupply, TransferRecord, Units, WalletAddress,
};
use utoipa::ToSchema;

/// A ledger answer with the height and state root it was read at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct At<T> {
    /// The finalized height read.
    pub height: u64,
    /// The state root after that height.
    #[schema(value_type = String)]
    pub state_root: Hash,
    /// The answer.
    pub data: T,
}

/// One member of a committee: an organisation and its consensus key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    /// The organisation.
    #[schema(value_type = String)]
    pub org: OrgId,
    /// The key it signs votes with.
    #[schema(value_type = String)]
    pub key: PublicKey,
}

/// `GET /status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// The chain.
    #[schema(value_type = String)]
    pub chain_id: ChainId,
    /// This node's organisation, if its key is one's.
    #[schema(value_type = Option<String>)]
    pub org: Option<OrgId>,
    /// This node's key.
    #[schema(value_type = String)]
    pub key: PublicKey,
    /// The last finalized height.
    pub finalized_height: u64,
    /// That block's hash.
    #[schema(value_type = String)]
    pub block_hash: Hash,
    /// That block's time, in ms since 1970.
    #[schema(value_type = u64)]
    pub block_time: Timestamp,
    /// The state root after it.
    #[schema(value_type = String)]
    pub state_root: Hash,
    /// The epoch of the next block.
    pub epoch: u64,
    /// Whether this node is on that epoch's committee.
    pub validating: bool,
    /// That committee.
    pub validators: Vec<MemberView>,
}

/// Where a submitted transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubmitStatus {
    /// Accepted into the mempool; not final yet.
    Pending,
    /// Already in a finalized block.
    Finalized,
}

/// `POST /transactions`: where the transaction is now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Submitted {
    /// The transaction's id.
    #[schema(value_type = String)]
    pub hash: Hash,
    /// Pending, or finalized already.
    pub status: SubmitStatus,
    /// For a finalized one, its block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// For a finalized one, its position in the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

/// One transaction's answer in a batch: where it is, or why it was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchItem {
    /// The transaction's id.
    #[schema(value_type = String)]
    pub hash: Hash,
    /// Pending or finalized, if accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SubmitStatus>,
    /// For a finalized one, its block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// For a finalized one, its position in the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `POST /transactions/batch`: one answer per transaction, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchAnswer {
    /// How many were accepted (or were final already).
    pub accepted: usize,
    /// How many were refused.
    pub refused: usize,
    /// Each transaction's answer.
    pub results: Vec<BatchItem>,
}

/// `GET /transactions/{hash}`: a finalized transaction and its receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransactionRecord {
    /// The transaction's id.
    #[schema(value_type = String)]
    pub hash: Hash,
    /// Always finalized.
    pub status: SubmitStatus,
    /// Its block.
    pub height: u64,
    /// Its position in the block.
    pub index: u32,
    /// The block's time, in ms since 1970.
    #[schema(value_type = Option<u64>)]
    pub block_time: Option<Timestamp>,
    /// Applied, or rejected with a stable ledger code.
    #[schema(value_type = Object)]
    pub receipt: Receipt,
    /// For an applied `open_custodial_wallet`, the wallet it opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub custodial_wallet: Option<WalletAddress>,
}

/// `GET /blocks/{height}`: a finalized block, its receipts and the state root after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockRecord {
    /// The block's hash.
    #[schema(value_type = String)]
    pub hash: Hash,
    /// Its height.
    pub height: u64,
    /// The state root after it.
    #[schema(value_type = Option<String>)]
    pub state_root: Option<Hash>,
    /// The block.
    #[schema(value_type = Object)]
    pub block: Block,
    /// Its receipts, one per transaction.
    #[schema(value_type = Vec<Object>)]
    pub receipts: Vec<Receipt>,
    /// Every movement of units it made, in order: what a service that keeps
    /// wallets follows.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub transfers: Vec<TransferRecord>,
}

/// `GET /checks/transfer`: whether a holder's transfer would pass every
/// rule of the ledger now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransferCheck {
    /// True if it would be applied.
    pub ok: bool,
    /// Otherwise the ledger's reject code, e.g. `COUNTRY_NOT_ALLOWED`: the
    /// one a transaction sent now would be refused with.
    #[schema(value_type = Option<String>)]
    pub code: Option<tranche_types::RejectCode>,
    /// And what it says.
    pub message: Option<String>,
    /// Every rule the transfer breaks, first the one above (for
    /// `/checks/transfer`; `/checks/holder` gives the first only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
}

/// One broken rule: the ledger's stable code and what it says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reason {
    /// The reject code, e.g. `TRANSFER_NOT_APPROVED`.
    #[schema(value_type = String)]
    pub code: tranche_types::RejectCode,
    /// The specifics.
    pub message: String,
}

/// `GET /signers/{key}/nonce`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NextNonce {
    /// The nonce the signer's next transaction must carry.
    pub next_nonce: u64,
}

/// A bonded validator and its standing (C-2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidatorView {
    /// The organisation.
    #[schema(value_type = String)]
    pub org: OrgId,
    /// Its consensus key.
    #[schema(value_type = String)]
    pub consensus_key: PublicKey,
    /// Stake it bonded itself.
    #[schema(value_type = String)]
    pub bonded: Stake,
    /// Stake delegated to it.
    #[schema(value_type = String)]
    pub delegated: Stake,
    /// Caught equivocating: never elected again.
    pub tombstoned: bool,
    /// Whether an election held now would seat it.
    pub elected: bool,
}

/// An equivocation on record (C-2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EquivocationView {
    /// The offending organisation.
    #[schema(value_type = String)]
    pub org: OrgId,
    /// Its consensus key.
    #[schema(value_type = String)]
    pub key: PublicKey,
    /// The epoch of the offence.
    pub epoch: u64,
    /// The consensus view of the offence.
    pub view: u64,
    /// What it did.
    #[schema(value_type = String)]
    pub kind: OffenceKind,
    /// The block that recorded it.
    pub height: u64,
    /// The bonded stake it lost.
    #[schema(value_type = String)]
    pub slashed: Stake,
    /// The hash of the evidence.
    #[schema(value_type = String)]
    pub evidence: Hash,
}

/// `GET /policy`: the rules governance sets for everyone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// How far, in basis points of an asset's asking price, its appraisal
    /// may differ for the asset to be tokenized (SR-6).
    pub appraisal_tolerance_bps: u16,
}

/// One version of the AML policy (F6-1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AmlPolicyEntry {
    /// The version, from 1.
    pub version: u32,
    /// The regulator that published it.
    #[schema(value_type = String)]
    pub regulator: tranche_types::OrgId,
    /// The first block it governs.
    pub effective_height: u64,
    /// The block that published it.
    pub published_height: u64,
    /// The policy: `report_period_secs`, `limits` (per asset:
    /// `large_value`, `daily_value_max`, `travel_rule_value`, in the
    /// asset's minor units; 0 is no limit), `blocked_countries`,
    /// `sanctioned` DIDs.
    #[schema(value_type = Object)]
    pub policy: tranche_types::AmlPolicy,
}

/// `GET /aml-policy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AmlPolicyView {
    /// The version governing the next block, if any.
    pub in_force: Option<AmlPolicyEntry>,
    /// Every version published, oldest first, including those not yet in
    /// force.
    pub versions: Vec<AmlPolicyEntry>,
}

impl AmlPolicyView {
    /// The version governing block `height`.
    pub fn at(&self, height: u64) -> Option<&AmlPolicyEntry> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.effective_height <= height)
    }
}

/// `GET /validators`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Validators {
    /// The epoch of the next block.
    pub epoch: u64,
    /// Blocks per epoch.
    pub epoch_blocks: u64,
    /// The height ending this epoch.
    pub next_epoch_at: u64,
    /// The committee voting now.
    pub committee: Vec<MemberView>,
    /// Every bonded validator.
    pub validators: Vec<ValidatorView>,
    /// Every equivocation recorded.
    pub equivocations: Vec<EquivocationView>,
}

/// `GET /organisations/{org}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrganisationView {
    /// The organisation.
    #[schema(value_type = String)]
    pub org: OrgId,
    /// The key its transactions are signed with.
    #[schema(value_type = String)]
    pub key: PublicKey,
    /// Its roles.
    #[schema(value_type = Vec<String>)]
    pub roles: Vec<Role>,
    /// Whether it governs.
    pub governor: bool,
    /// Its bond, if it is a bonded validator.
    pub validator: Option<ValidatorView>,
    /// The last head of its audit log it anchored on chain (REC-9).
    #[serde(default)]
    pub audit_anchor: Option<AuditAnchorView>,
}

/// `GET /offerings/{offering}`: an offering, where it stands, and its
/// subscriptions (at most the first 1,000).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfferingView {
    /// The TSP that opened it.
    #[schema(value_type = String)]
    pub tsp: OrgId,
    /// Its terms.
    #[schema(value_type = Object)]
    pub terms: tranche_types::OpenOffering,
    /// `open`, `refunding`, `allocating`, `refunded`, `allocated`, `issued` or `released`.
    pub phase: String,
    /// Units subscribed.
    #[schema(value_type = String)]
    pub subscribed: Units,
    /// Units allocated at the close.
    #[schema(value_type = String)]
    pub allocated: Units,
    /// How many subscriptions it took.
    pub subscriptions: u64,
    /// The escrow wallet holding the subscribers' money.
    #[schema(value_type = String)]
    pub escrow: WalletAddress,
    /// The number of the first subscription in `entries`.
    #[serde(default)]
    pub entries_from: u64,
    /// A page of the subscriptions, in order: at most
    /// [`crate::OFFERING_ENTRIES_MAX`] from `entries_from` (`?after=`).
    pub entries: Vec<SubscriptionView>,
}

/// One subscription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionView {
    /// The paying wallet, which receives the tokens.
    #[schema(value_type = String)]
    pub wallet: WalletAddress,
    /// Units subscribed.
    #[schema(value_type = String)]
    pub units: Units,
    /// Units allocated at the close.
    #[schema(value_type = String)]
    pub allocated: Units,
}

/// An audit log's head as anchored on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditAnchorView {
    /// How many entries the log held.
    pub entries: u64,
    /// The hash of its last entry.
    #[schema(value_type = String)]
    pub head: Hash,
    /// The block that anchored it.
    pub height: u64,
}

/// A wallet's balance of one token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Balance {
    /// The token.
    #[schema(value_type = String)]
    pub token: TokenId,
    /// Units held.
    #[schema(value_type = String)]
    pub units: Units,
    /// Units its issuance allocation locks up, and the first day they may
    /// move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<LockedUnits>,
}

/// Units locked up until a day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LockedUnits {
    /// The units.
    #[schema(value_type = String)]
    pub units: Units,
    /// The first day they may move.
    #[schema(value_type = String)]
    pub until: tranche_types::Date,
}

/// Who keeps a custodial wallet, for whom (SR-3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CustodyView {
    /// The custodian.
    #[schema(value_type = String)]
    pub custodian: OrgId,
    /// The holder's DID.
    #[schema(value_type = String)]
    pub holder: Did,
    /// The number the holder's next authorization must carry.
    pub next_authorization: u64,
}

/// A custodial wallet kept for a wallet's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CustodialWallet {
    /// The custodial wallet.
    #[schema(value_type = String)]
    pub wallet: WalletAddress,
    /// Who keeps it.
    #[schema(value_type = String)]
    pub custodian: OrgId,
}

/// `GET /wallets/{address}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalletView {
    /// The wallet.
    #[schema(value_type = String)]
    pub address: WalletAddress,
    /// The DID it is bound to.
    #[schema(value_type = Option<String>)]
    pub did: Option<Did>,
    /// For a custodial wallet, who keeps it for whom.
    pub custody: Option<CustodyView>,
    /// Balances by token.
    pub balances: Vec<Balance>,
    /// Tokens for which it is frozen, wholly or in part.
    #[schema(value_type = Vec<String>)]
    pub frozen_tokens: Vec<TokenId>,
    /// The custodial wallets kept for the same DID.
    pub custodial_wallets: Vec<CustodialWallet>,
}

/// Security token or cash token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKindView {
    /// Backed by an asset; issued on a TSP's request.
    Security,
    /// A CBDC issued by a central bank.
    Cash,
}

/// A token and its life-cycle state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenRecord {
    /// Security or cash.
    pub kind: TokenKindView,
    /// The issuer, also the token's agent.
    #[schema(value_type = String)]
    pub issuer: OrgId,
    /// The TSP, for a security token.
    #[schema(value_type = Option<String>)]
    pub tsp: Option<OrgId>,
    /// The asset, for a security token.
    #[schema(value_type = Option<String>)]
    pub asset: Option<AssetId>,
    /// The issuance request it came from.
    #[schema(value_type = Option<String>)]
    pub request: Option<RequestId>,
    /// SP, for a security token.
    #[schema(value_type = Option<Object>)]
    pub unit_price: Option<Money>,
    /// The currency, for a cash token.
    #[schema(value_type = Option<Object>)]
    pub currency: Option<Currency>,
    /// Issue date (L-3).
    #[schema(value_type = String)]
    pub issue_date: Date,
    /// Expiry date (L-3); none for cash.
    #[schema(value_type = Option<String>)]
    pub expiry_date: Option<Date>,
    /// Units ever issued.
    #[schema(value_type = String)]
    pub issued: Units,
    /// Units in the revocation wallet.
    #[schema(value_type = String)]
    pub revoked: Units,
    /// Transfers paused by the agent.
    pub paused: bool,
    /// Compliance rules.
    #[schema(value_type = Object)]
    pub rules: TokenRules,
    /// Wallets holding it, the revocation wallet aside.
    pub holders: u32,
    /// Checkpoints taken.
    pub checkpoints: u64,
    /// The rules' version: 0 as issued, one more each time its agent
    /// replaced them (`GET /tokens/{token}/rules` has them all).
    #[serde(default)]
    pub rules_version: u32,
    /// The height the rules in force took effect at.
    #[serde(default)]
    pub rules_since: u64,
    /// Whether its agent suspended the rule checks.
    #[serde(default)]
    pub rules_suspended: bool,
    /// Identities holding it in any of their wallets (what the maximum
    /// number of holders counts).
    #[serde(default)]
    pub holder_identities: u32,
}

/// `GET /tokens/{token}`: the token, its supply and its revocation wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// The token.
    pub token: TokenRecord,
    /// Issued against revoked (SR-2).
    #[schema(value_type = Object)]
    pub supply: Option<TokenSupply>,
    /// Where revoked units go (L-2).
    #[schema(value_type = String)]
    pub revocation_wallet: WalletAddress,
}

/// `GET /assets/{asset}`: a registered asset and its latest appraisal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssetView {
    /// The TSP that registered it.
    #[schema(value_type = String)]
    pub tsp: OrgId,
    /// The owner's DID.
    #[schema(value_type = String)]
    pub owner: Did,
    /// Its kind.
    #[schema(value_type = String)]
    pub kind: AssetKind,
    /// Digest of its description.
    #[schema(value_type = String)]
    pub description: Hash,
    /// Asking price AP.
    #[schema(value_type = Object)]
    pub price: Money,
    /// Who made the latest appraisal.
    #[schema(value_type = Option<String>)]
    pub appraiser: Option<OrgId>,
    /// The latest appraised value.
    #[schema(value_type = Option<Object>)]
    pub appraisal: Option<Money>,
}

/// `GET /ownerships/{asset}`: who an asset registry attested as the owner (ST-6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OwnershipView {
    /// The owner's DID.
    #[schema(value_type = String)]
    pub owner: Did,
    /// The registry that attested it.
    #[schema(value_type = String)]
    pub registry: OrgId,
    /// The digest of the ownership credential it issued.
    #[schema(value_type = String)]
    pub credential: Hash,
}

/// An issuance request as filed, and what came of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IssuanceRequestView {
    /// The TSP that filed it.
    #[schema(value_type = String)]
    pub tsp: OrgId,
    /// The request as filed.
    #[schema(value_type = Object)]
    pub terms: RequestIssuance,
    /// Issued units, once carried out.
    #[schema(value_type = Option<String>)]
    pub issued: Option<Units>,
    /// Withdrawn by its TSP.
    pub withdrawn: bool,
}

/// `GET /issuances/{request}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IssuanceView {
    /// The request.
    pub request: IssuanceRequestView,
    /// What the TSP checks (SR-1).
    #[schema(value_type = Object)]
    pub check: Option<IssuanceCheck>,
}

/// A revocation request and what came of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevocationRequestView {
    /// The TSP that filed it.
    #[schema(value_type = String)]
    pub tsp: OrgId,
    /// The token.
    #[schema(value_type = String)]
    pub token: TokenId,
    /// Requested units.
    #[schema(value_type = String)]
    pub amount: Units,
    /// Revoked units, once carried out.
    #[schema(value_type = Option<String>)]
    pub revoked: Option<Units>,
    /// What each holder is paid per unit revoked, if it is a redemption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub redemption: Option<tranche_types::Redemption>,
}

/// `GET /revocations/{request}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevocationView {
    /// The request.
    pub request: RevocationRequestView,
    /// What the TSP checks (SR-1).
    #[schema(value_type = Object)]
    pub check: Option<RevocationCheck>,
}

/// `GET /proofs/...`: one record of the state (or its absence) with the
/// Merkle proof that it is in the state whose root `At` names. Check it
/// with `tranche verify` against a root you trust, not the node's word.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProofView {
    /// The chain.
    #[schema(value_type = String)]
    pub chain_id: ChainId,
    /// The state's table the record is in (`balances`, `issuances`, ...).
    pub table: String,
    /// The record's key, canonical bytes in hex.
    pub key: String,
    /// The record's value, canonical bytes in hex; absent proves absence.
    pub value: Option<String>,
    /// The root of the state's Merkle tree; with the chain id it gives the
    /// state root.
    #[schema(value_type = String)]
    pub tree_root: Hash,
    /// The Merkle path (a sparse Merkle tree proof).
    #[schema(value_type = Object)]
    pub proof: serde_json::Value,
    /// The key as text, for a person to read.
    pub key_text: String,
    /// The value as text, for a person to read.
    pub value_text: Option<String>,
}

/// `GET /transfers`: finalized transfers, oldest first (C-3, F6-9).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Transfers {
    /// The transfers found.
    #[schema(value_type = Vec<Object>)]
    pub transfers: Vec<TransferRecord>,
    /// The first height searched.
    pub from_height: u64,
    /// The last height searched.
    pub to_height: u64,
}

/// One `transfer` event of `GET /events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransferEvent {
    /// The transfer.
    #[schema(value_type = Object)]
    pub transfer: TransferRecord,
    /// Its block's time, in ms since 1970.
    #[schema(value_type = u64)]
    pub block_time: Timestamp,
    /// The state root after its block.
    #[schema(value_type = String)]
    pub state_root: Hash,
}
