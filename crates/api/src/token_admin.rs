//! The node API's views of a token's administration: its rules over time,
//! the claim issuers it trusts, the transfers its agent approved, and its
//! documents with their history.

use serde::{Deserialize, Serialize};
use tranche_types::{ClaimTopic, DocumentName, DocumentUri, Hash, Label, OrgId, RequestId};
use tranche_types::{Timestamp, TokenId, TokenRules, Units, WalletAddress};
use utoipa::ToSchema;

/// `GET /tokens/{token}/rules`: the rules in force and every earlier version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenRulesView {
    /// The token.
    #[schema(value_type = String)]
    pub token: TokenId,
    /// The rules in force.
    #[schema(value_type = Object)]
    pub rules: TokenRules,
    /// Their version: 0 as issued.
    pub version: u32,
    /// The height they took effect at.
    pub since: u64,
    /// Whether the agent suspended the rule checks (claims, countries,
    /// limits, lock-up, pre-approval; never the identity binding, freezes,
    /// pause or revocation).
    pub suspended: bool,
    /// Every earlier version, oldest first.
    pub earlier: Vec<RuleVersionView>,
    /// The claim issuers the token trusts, by topic; a topic not listed
    /// trusts every organisation with the claim-issuer role.
    pub trusted_issuers: Vec<TrustedIssuersView>,
    /// The agent's outstanding approvals of transfers, when the rules
    /// require them.
    pub approvals: Vec<ApprovalView>,
    /// Identities the agent exempted from the token's limits.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub exempt: Vec<tranche_types::Did>,
}

/// One earlier version of a token's rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleVersionView {
    /// The version.
    pub version: u32,
    /// The rules.
    #[schema(value_type = Object)]
    pub rules: TokenRules,
    /// The height they took effect at.
    pub since: u64,
    /// The height the next version took effect at.
    pub until: u64,
}

/// The claim issuers a token trusts for one topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TrustedIssuersView {
    /// The claim topic (1 KYC, 2 accredited investor, 3 jurisdiction, 4
    /// legal person, or another number).
    #[schema(value_type = u16)]
    pub topic: ClaimTopic,
    /// The organisations whose claims of it count.
    #[schema(value_type = Vec<String>)]
    pub issuers: Vec<OrgId>,
}

/// An approval of one transfer, usable `remaining` more times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    /// The sending wallet.
    #[schema(value_type = String)]
    pub from: WalletAddress,
    /// The receiving wallet.
    #[schema(value_type = String)]
    pub to: WalletAddress,
    /// The exact amount.
    #[schema(value_type = String)]
    pub amount: Units,
    /// Transfers it still allows.
    pub remaining: u32,
}

/// `GET /tokens/{token}/documents`: the documents attached now and every
/// change, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentsView {
    /// The token.
    #[schema(value_type = String)]
    pub token: TokenId,
    /// The documents attached now, by name.
    pub documents: Vec<DocumentView>,
    /// Every change, oldest first.
    pub history: Vec<DocumentChangeView>,
}

/// A document attached to a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentView {
    /// Its name.
    #[schema(value_type = String)]
    pub name: DocumentName,
    /// Where it can be read.
    #[schema(value_type = String)]
    pub uri: DocumentUri,
    /// SHA-256 of its bytes.
    #[schema(value_type = String)]
    pub digest: Hash,
    /// The height it was attached or last replaced at.
    pub height: u64,
}

/// One change to a token's documents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentChangeView {
    /// The height of the change.
    pub height: u64,
    /// The document's name.
    #[schema(value_type = String)]
    pub name: DocumentName,
    /// What it became; absent: removed.
    #[schema(value_type = Option<String>)]
    pub uri: Option<DocumentUri>,
    /// Its digest; absent: removed.
    #[schema(value_type = Option<String>)]
    pub digest: Option<Hash>,
}

/// `GET /ballots/{ballot}`: a ballot of a token's holders and its tally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BallotView {
    /// The ballot.
    #[schema(value_type = String)]
    pub ballot: RequestId,
    /// The token whose holders vote.
    #[schema(value_type = String)]
    pub token: TokenId,
    /// The agent that opened it.
    #[schema(value_type = String)]
    pub agent: OrgId,
    /// The checkpoint whose balances weigh the votes.
    pub checkpoint: u64,
    /// Each choice with the weight cast for it, in ballot order.
    pub choices: Vec<ChoiceView>,
    /// Votes count from this block time on (ms since 1970).
    #[schema(value_type = u64)]
    pub opens: Timestamp,
    /// Votes count before this block time.
    #[schema(value_type = u64)]
    pub closes: Timestamp,
    /// Whether the last finalized block's time is inside the window.
    pub open: bool,
    /// Wallets that voted.
    pub voters: u64,
    /// The height it was opened at.
    pub height: u64,
    /// The vote of the wallet asked about (`?wallet=`), if it voted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote: Option<VoteView>,
}

/// One choice of a ballot and the weight cast for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChoiceView {
    /// Its position (what a vote names).
    pub choice: u8,
    /// Its label.
    #[schema(value_type = String)]
    pub label: Label,
    /// The checkpoint units cast for it.
    #[schema(value_type = String)]
    pub weight: Units,
}

/// `GET /holds/{hold}`: part of a holder's balance held for a notary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldView {
    /// The hold.
    #[schema(value_type = String)]
    pub hold: RequestId,
    /// The token.
    #[schema(value_type = String)]
    pub token: TokenId,
    /// The holder's wallet.
    #[schema(value_type = String)]
    pub wallet: WalletAddress,
    /// The units held.
    #[schema(value_type = String)]
    pub amount: Units,
    /// The wallet whose key executes or releases it.
    #[schema(value_type = String)]
    pub notary: WalletAddress,
    /// Where the units go if it is executed, if the holder named it.
    #[schema(value_type = Option<String>)]
    pub receiver: Option<WalletAddress>,
    /// Executable before this block time (ms since 1970).
    #[schema(value_type = u64)]
    pub expiry: Timestamp,
    /// `open`, `expired` (open past its expiry: it holds nothing),
    /// `executed` or `released`.
    pub state: String,
    /// The height it was created at.
    pub height: u64,
    /// Units of the wallet's balance all its open holds of the token hold now.
    #[schema(value_type = String)]
    pub wallet_held: Units,
}

/// A wallet's vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VoteView {
    /// The wallet.
    #[schema(value_type = String)]
    pub wallet: WalletAddress,
    /// Its choice's position.
    pub choice: u8,
    /// Its weight.
    #[schema(value_type = String)]
    pub weight: Units,
    /// The height it was cast at.
    pub height: u64,
}

/// `GET /instructions/{instruction}`: a settlement instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstructionView {
    /// The instruction.
    #[schema(value_type = String)]
    pub instruction: RequestId,
    /// The wallet that created it.
    #[schema(value_type = String)]
    pub creator: WalletAddress,
    /// Its legs, carried out in order, all or none.
    #[schema(value_type = Vec<Object>)]
    pub legs: Vec<tranche_types::Leg>,
    /// Affirmed in the order its givers first give.
    pub ordered: bool,
    /// Affirmations count before this block time (ms since 1970).
    #[schema(value_type = u64)]
    pub deadline: Timestamp,
    /// The giving wallets that affirmed, in order.
    #[schema(value_type = Vec<String>)]
    pub affirmed: Vec<WalletAddress>,
    /// The giving wallets still to affirm (in turn, if ordered).
    #[schema(value_type = Vec<String>)]
    pub awaiting: Vec<WalletAddress>,
    /// `pending`, `expired` (pending past its deadline: void), `executed`,
    /// `failed` or `cancelled`.
    pub state: String,
    /// Why it failed, if it did: the reject code of the leg refused.
    pub failure: Option<crate::node::Reason>,
    /// The height it was created at.
    pub height: u64,
}
