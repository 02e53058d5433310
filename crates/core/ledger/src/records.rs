//! The records the ledger's state holds: organisations, claims, assets,
//! requests, tokens, freezes, custody, checkpoints, distributions,
//! validators, equivocations and the chain's parameters and committees.

use serde::{Deserialize, Serialize};
use tranche_types::commonware_codec::Write;
use tranche_types::{
    record, AmlPolicy, AssetId, AssetKind, BoundedVec, CountryCode, Currency, Date, Did,
    DocumentName, DocumentUri, Hash, Label, Money, NetworkPolicy, OffenceKind, OpenOffering, OrgId,
    PublicKey, RequestId, RequestIssuance, Role, Stake, Timestamp, TokenId, TokenRules, Units,
    WalletAddress, BALLOT_CHOICES_MAX,
};

/// A set of roles as a bit mask: bit `r` for the role with code `r`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles(pub u16);

impl Roles {
    /// Whether `role` is in the set.
    pub fn has(self, role: Role) -> bool {
        self.0 & (1 << role as u8) != 0
    }
    /// The set with `role` added.
    pub fn with(self, role: Role) -> Roles {
        Roles(self.0 | (1 << role as u8))
    }
    /// The set with `role` removed.
    pub fn without(self, role: Role) -> Roles {
        Roles(self.0 & !(1 << role as u8))
    }
    /// The roles in the set, in code order.
    pub fn list(self) -> Vec<Role> {
        Role::ALL.iter().copied().filter(|r| self.has(*r)).collect()
    }
}

impl Write for Roles {
    fn write(&self, buf: &mut impl tranche_types::codec::BufMut) {
        self.0.write(buf);
    }
}

impl tranche_types::commonware_codec::FixedSize for Roles {
    const SIZE: usize = 2;
}

impl tranche_types::commonware_codec::Read for Roles {
    type Cfg = ();
    fn read_cfg(
        buf: &mut impl tranche_types::commonware_codec::Buf,
        _: &(),
    ) -> Result<Self, tranche_types::commonware_codec::Error> {
        Ok(Roles(u16::read_cfg(buf, &())?))
    }
}

record! {
    /// An admitted organisation (C-1).
    pub struct Organisation {
        /// The key its transactions are signed with.
        pub key: PublicKey,
        /// Its roles.
        pub roles: Roles,
        /// Whether it votes on governance.
        pub governor: bool,
    }
}

record! {
    /// A claim on record: its digest, never the credential.
    pub struct Claim {
        /// For a jurisdiction claim, the country.
        pub country: Option<CountryCode>,
        /// Digest of the credential.
        pub digest: Hash,
        /// Last valid day.
        pub expiry_date: Date,
        /// Withdrawn by its issuer.
        pub revoked: bool,
    }
}

record! {
    /// A registered asset (F5-1) and its appraisal (SR-6).
    pub struct Asset {
        /// The TSP that registered it.
        pub tsp: OrgId,
        /// The owner's DID.
        pub owner: Did,
        /// Its kind.
        pub kind: AssetKind,
        /// Digest of its description.
        pub description: Hash,
        /// Asking price AP.
        pub price: Money,
        /// Who made the latest appraisal.
        pub appraiser: Option<OrgId>,
        /// The latest appraised value.
        pub appraisal: Option<Money>,
    }
}

record! {
    /// An issuance request and what came of it (F5-4, F5-7).
    pub struct IssuanceRequest {
        /// The TSP that filed it.
        pub tsp: OrgId,
        /// The request as filed.
        pub terms: RequestIssuance,
        /// Issued amount, once carried out.
        pub issued: Option<Units>,
        /// Withdrawn by its TSP before it was carried out.
        pub withdrawn: bool,
    }
}

record! {
    /// A revocation request and what came of it (F5-10).
    pub struct RevocationRequest {
        /// The TSP that filed it.
        pub tsp: OrgId,
        /// The token.
        pub token: TokenId,
        /// Requested amount.
        pub amount: Units,
        /// Revoked amount, once carried out.
        pub revoked: Option<Units>,
        /// What each holder is paid per unit revoked, if it is a redemption.
        pub redemption: Option<tranche_types::Redemption>,
    }
}

tranche_types::unit_enum! {
    /// Security token or cash token.
    pub enum TokenKind {
        /// Backed by an asset; issued on a TSP's request.
        Security = 1,
        /// A CBDC issued by a central bank.
        Cash = 2,
    }
}

record! {
    /// A token and its life-cycle state.
    pub struct Token {
        /// Security or cash.
        pub kind: TokenKind,
        /// The issuer (the central bank for cash); also the token's agent.
        pub issuer: OrgId,
        /// The TSP, for a security token.
        pub tsp: Option<OrgId>,
        /// The asset, for a security token.
        pub asset: Option<AssetId>,
        /// The issuance request it came from.
        pub request: Option<RequestId>,
        /// SP, for a security token.
        pub unit_price: Option<Money>,
        /// The currency, for a cash token.
        pub currency: Option<Currency>,
        /// Issue date (L-3).
        pub issue_date: Date,
        /// Expiry date (L-3); `None` for cash.
        pub expiry_date: Option<Date>,
        /// Units ever issued (minted).
        pub issued: Units,
        /// Units moved into the revocation wallet.
        pub revoked: Units,
        /// Transfers paused by the agent.
        pub paused: bool,
        /// Compliance rules.
        pub rules: TokenRules,
        /// Wallets other than the revocation wallet with a balance.
        pub holders: u32,
        /// Checkpoints taken so far.
        pub checkpoints: u64,
        /// The version of `rules`: 0 as issued, one more each time the
        /// agent replaces them (earlier versions are in `rule_versions`).
        pub rules_version: u32,
        /// The height `rules` took effect at.
        pub rules_since: u64,
        /// The agent suspended the rule checks (never the identity binding,
        /// the freezes, the pause or revocation).
        pub rules_suspended: bool,
        /// Document changes so far (the length of its document history).
        pub document_changes: u64,
        /// Identities (DIDs) with a balance in any of their wallets: what
        /// the maximum number of holders counts, kept by the ledger.
        pub holder_identities: u32,
    }
}

impl Token {
    /// Whether the token is revoked for good: every issued unit sits in the
    /// revocation wallet (L-2).
    pub fn is_revoked(&self) -> bool {
        self.kind == TokenKind::Security && !self.issued.is_zero() && self.revoked == self.issued
    }

    /// Units outside the revocation wallet.
    pub fn circulating(&self) -> Units {
        self.issued
            .checked_sub(self.revoked)
            .expect("revoked never exceeds issued")
    }
}

record! {
    /// A token's rules as they stood until the agent replaced them.
    pub struct RuleVersion {
        /// The rules.
        pub rules: TokenRules,
        /// The height they took effect at.
        pub since: u64,
        /// The height the next version took effect at.
        pub until: u64,
    }
}

record! {
    /// A document attached to a token (ERC-1643's job).
    pub struct Document {
        /// Where it can be read.
        pub uri: DocumentUri,
        /// SHA-256 of its bytes.
        pub digest: Hash,
        /// The height it was attached or last replaced at.
        pub height: u64,
    }
}

record! {
    /// One change to a token's documents, kept for good.
    pub struct DocumentChange {
        /// The document's name.
        pub name: DocumentName,
        /// What it became; `None`: removed.
        pub document: Option<Document>,
        /// The height of the change.
        pub height: u64,
    }
}

record! {
    /// A ballot of a token's holders and its running tally.
    pub struct Ballot {
        /// The agent that opened it.
        pub agent: OrgId,
        /// The token.
        pub token: TokenId,
        /// The checkpoint whose balances weigh the votes.
        pub checkpoint: u64,
        /// The choices.
        pub choices: BoundedVec<Label, BALLOT_CHOICES_MAX>,
        /// The weight cast for each choice, in the same order.
        pub tally: BoundedVec<Units, BALLOT_CHOICES_MAX>,
        /// Votes count from this block time on.
        pub opens: Timestamp,
        /// Votes count before this block time.
        pub closes: Timestamp,
        /// Wallets that voted.
        pub voters: u64,
        /// The height it was opened at.
        pub height: u64,
    }
}

record! {
    /// One wallet's vote in a ballot.
    pub struct Vote {
        /// The choice's position.
        pub choice: u8,
        /// Its weight: the wallet's balance at the checkpoint.
        pub weight: Units,
        /// The height it was cast at.
        pub height: u64,
    }
}

tranche_types::unit_enum! {
    /// Where a hold stands.
    pub enum HoldState {
        /// Holding until executed, released or expired.
        Open = 0,
        /// Its units went to the receiver.
        Executed = 1,
        /// Its units are free again.
        Released = 2,
    }
}

record! {
    /// Part of a holder's balance held for a notary until an expiry.
    pub struct Hold {
        /// The token.
        pub token: TokenId,
        /// The holder's wallet.
        pub wallet: WalletAddress,
        /// The units held.
        pub amount: Units,
        /// The wallet whose key executes or releases it.
        pub notary: WalletAddress,
        /// Where the units go if it is executed, if the holder named it.
        pub receiver: Option<WalletAddress>,
        /// Executable before this block time.
        pub expiry: Timestamp,
        /// Where it stands.
        pub state: HoldState,
        /// The height it was created at.
        pub height: u64,
    }
}

tranche_types::unit_enum! {
    /// Where a settlement instruction stands.
    pub enum InstructionState {
        /// Waiting for affirmations (void once its deadline passes).
        Pending = 0,
        /// Carried out: every leg moved.
        Executed = 1,
        /// The last affirmation found a leg the rules refuse; nothing moved.
        Failed = 2,
        /// Cancelled by a party; nothing moved.
        Cancelled = 3,
    }
}

record! {
    /// A settlement instruction and its affirmations.
    pub struct Instruction {
        /// The wallet that created it.
        pub creator: WalletAddress,
        /// Its legs.
        pub legs: BoundedVec<tranche_types::Leg, { tranche_types::INSTRUCTION_LEGS_MAX }>,
        /// Affirmed in the order its givers first give.
        pub ordered: bool,
        /// Affirmations count before this block time.
        pub deadline: Timestamp,
        /// The giving wallets that affirmed, in order.
        pub affirmed: BoundedVec<WalletAddress, { tranche_types::INSTRUCTION_LEGS_MAX }>,
        /// Where it stands.
        pub state: InstructionState,
        /// Why it failed, if it did.
        pub failure: Option<tranche_types::Rejection>,
        /// The height it was created at.
        pub height: u64,
    }
}

record! {
    /// Units of a wallet's balance locked up until a day, as its issuance
    /// allocation said.
    pub struct Lockup {
        /// The first day they may move.
        pub until: Date,
        /// The units locked (never more than the balance).
        pub units: Units,
    }
}

record! {
    /// A wallet's freeze for one token.
    pub struct Freeze {
        /// The whole wallet is frozen.
        pub all: bool,
        /// Units of its balance frozen.
        pub amount: Units,
    }
}

record! {
    /// A custodial wallet's keeper and holder (SR-3).
    pub struct Custody {
        /// The custodian.
        pub custodian: OrgId,
        /// The holder's DID.
        pub holder: Did,
        /// The number the holder's next authorization must carry.
        pub next_authorization: u64,
    }
}

record! {
    /// A checkpoint of a token's balances (F5-9).
    pub struct Checkpoint {
        /// The height it was taken at.
        pub height: u64,
        /// Units held outside the revocation wallet then.
        pub total: Units,
    }
}

record! {
    /// A profit distribution (F5-9).
    pub struct Distribution {
        /// The TSP that declared it.
        pub tsp: OrgId,
        /// The token.
        pub token: TokenId,
        /// The checkpoint.
        pub checkpoint: u64,
        /// The total declared.
        pub total: Money,
        /// What the rounding left undistributed, returned to the TSP.
        pub remainder: Money,
    }
}

record! {
    /// Who owns an asset, as an asset registry attested (ST-6).
    pub struct Ownership {
        /// The owner's DID.
        pub owner: Did,
        /// The registry that attested it.
        pub registry: OrgId,
        /// The digest of the ownership credential.
        pub credential: Hash,
    }
}

record! {
    /// A distribution's money on chain (F5-9).
    pub struct DistributionFunds {
        /// The cash token it is paid in.
        pub cash_token: TokenId,
        /// Claims until this block time.
        pub deadline: tranche_types::Timestamp,
        /// Whether the TSP took back what was not claimed.
        pub reclaimed: bool,
    }
}

record! {
    /// One wallet's entitlement in a distribution.
    pub struct Entitlement {
        /// Minor units of the distribution's currency.
        pub amount: Units,
        /// Whether its payment is recorded.
        pub paid: bool,
    }
}

record! {
    /// A bonded validator (C-2).
    pub struct Validator {
        /// Its consensus key.
        pub consensus_key: PublicKey,
        /// Stake it bonded itself.
        pub bonded: Stake,
        /// Stake delegated to it.
        pub delegated: Stake,
        /// Whether it was caught equivocating: it is never elected again.
        pub tombstoned: bool,
    }
}

record! {
    /// An equivocation recorded against a validator (C-2).
    pub struct Equivocation {
        /// The offending organisation.
        pub org: OrgId,
        /// What it did.
        pub kind: OffenceKind,
        /// The block that recorded it.
        pub height: u64,
        /// The bonded stake it lost.
        pub slashed: Stake,
        /// The hash of the evidence's canonical encoding; the block at
        /// `height` carries the evidence itself.
        pub evidence: Hash,
    }
}

tranche_types::unit_enum! {
    /// Where an offering stands.
    pub enum OfferingPhase {
        /// Taking subscriptions (inside its window).
        Open = 0,
        /// Closing below its soft cap: refunds under way.
        Refunding = 1,
        /// Closing at or above its soft cap: allocations under way.
        Allocating = 2,
        /// Closed, everyone refunded; nothing is issued.
        Refunded = 3,
        /// Closed with its allocations fixed: the issuer may issue them.
        Allocated = 4,
        /// Issued in full (SR-1): the bank may release the proceeds.
        Issued = 5,
        /// The proceeds are with the owner.
        Released = 6,
    }
}

record! {
    /// An offering and where it stands (F5-3..F5-8).
    pub struct Offering {
        /// The TSP that opened it.
        pub tsp: OrgId,
        /// Its terms.
        pub terms: OpenOffering,
        /// Where it stands.
        pub phase: OfferingPhase,
        /// Units subscribed in all.
        pub subscribed: Units,
        /// Subscriptions taken, numbered from 0.
        pub subscriptions: u64,
        /// Subscriptions the close has walked.
        pub processed: u64,
        /// Units allocated in all (what will be issued).
        pub allocated: Units,
        /// Subscriptions the issuer has walked.
        pub issued: u64,
    }
}

record! {
    /// One subscription to an offering.
    pub struct Subscription {
        /// The paying wallet, which receives the tokens.
        pub wallet: WalletAddress,
        /// Its identity.
        pub did: Did,
        /// Units subscribed.
        pub units: Units,
        /// Units allocated at the close.
        pub allocated: Units,
    }
}

record! {
    /// The last audit-log head an organisation anchored (REC-9).
    pub struct AuditAnchor {
        /// How many entries the log held.
        pub entries: u64,
        /// The hash of its last entry.
        pub head: Hash,
        /// The block that anchored it.
        pub height: u64,
    }
}

record! {
    /// A version of the AML policy as the chain keeps it (F6-1).
    pub struct AmlPolicyVersion {
        /// The regulator that published it.
        pub regulator: OrgId,
        /// The first block it governs.
        pub effective_height: u64,
        /// The block that published it.
        pub published_height: u64,
        /// The policy.
        pub policy: AmlPolicy,
    }
}

record! {
    /// The chain's parameters: consensus parameters fixed at genesis (C-2)
    /// and the network policy governance changes.
    pub struct ChainParams {
        /// Blocks per epoch: the committee changes after every block whose
        /// height is a multiple of this.
        pub epoch_blocks: u64,
        /// The most validators in a committee.
        pub committee_max: u32,
        /// The network's policy.
        pub policy: NetworkPolicy,
    }
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            epoch_blocks: crate::EPOCH_BLOCKS_DEFAULT,
            committee_max: crate::COMMITTEE_MAX as u32,
            policy: NetworkPolicy::default(),
        }
    }
}

record! {
    /// One member of a committee: an organisation and the key it signs
    /// consensus votes with.
    pub struct Member {
        /// The organisation.
        pub org: OrgId,
        /// Its consensus key.
        pub key: PublicKey,
    }
}

record! {
    /// The validators that vote on the blocks of one epoch (C-2). Epoch `e`
    /// holds heights `e * epoch_blocks + 1` to `(e + 1) * epoch_blocks`.
    #[derive(Default)]
    pub struct Committee {
        /// The epoch.
        pub epoch: u64,
        /// Its members, one vote each.
        pub members: BoundedVec<Member, { crate::COMMITTEE_MAX }>,
    }
}
