//! Token administration by a token's agent over its life: compliance rules
//! replaced and suspended, trusted claim issuers per topic, documents,
//! pre-approved transfers, and ballots of its holders. Part of
//! [`crate::Payload`].

use crate::codec::BoundedVec;
use crate::{
    record, ClaimTopic, DocumentName, DocumentUri, Hash, Label, Leg, Memo, OrgId, RequestId,
    Timestamp, TokenId, TokenRules, Units, WalletAddress,
};

/// Most claim issuers a token trusts for one topic.
pub const TRUSTED_ISSUERS_MAX: usize = 16;

record! {
    /// The agent replaces a token's compliance rules; transfers from the
    /// next transaction on are checked against them. Every version is kept
    /// with the height it took effect.
    pub struct SetTokenRules {
        /// The token.
        pub token: TokenId,
        /// The rules in force from now on.
        pub rules: TokenRules,
    }
}

record! {
    /// The agent suspends or resumes a token's rule checks (claims,
    /// countries, limits, lock-up, pre-approval). The identity binding, the
    /// freezes, the pause and revocation are never suspended.
    pub struct SetRuleChecks {
        /// The token.
        pub token: TokenId,
        /// Suspended (true) or in force (false).
        pub suspended: bool,
    }
}

record! {
    /// The agent names the claim issuers whose claims of one topic count for
    /// the token; a claim from anyone else does not. An empty list goes back
    /// to every organisation holding the claim-issuer role.
    pub struct SetTrustedIssuers {
        /// The token.
        pub token: TokenId,
        /// The claim topic.
        pub topic: ClaimTopic,
        /// The trusted issuers, each an organisation with the claim-issuer role.
        pub issuers: BoundedVec<OrgId, TRUSTED_ISSUERS_MAX>,
    }
}

record! {
    /// The agent attaches a document to a token, or replaces the one of the
    /// same name (ERC-1643's job): its name, where to read it, its digest.
    pub struct SetDocument {
        /// The token.
        pub token: TokenId,
        /// The document's name, unique per token.
        pub name: DocumentName,
        /// Where it can be read.
        pub uri: DocumentUri,
        /// SHA-256 of its bytes: what binds.
        pub digest: Hash,
    }
}

record! {
    /// The agent removes a token's document; its history stays.
    pub struct RemoveDocument {
        /// The token.
        pub token: TokenId,
        /// The document's name.
        pub name: DocumentName,
    }
}

record! {
    /// The agent pre-approves one transfer of a token whose rules require
    /// it: this sender, this receiver, this amount, used once.
    pub struct ApproveTransfer {
        /// The token.
        pub token: TokenId,
        /// The sending wallet.
        pub from: WalletAddress,
        /// The receiving wallet.
        pub to: WalletAddress,
        /// The exact amount.
        pub amount: Units,
    }
}

record! {
    /// The agent exempts an identity from the token's limits (holder count,
    /// per-identity and category caps, ownership share, transfer limit), or
    /// ends its exemption: e.g. a market maker, a treasury.
    pub struct SetLimitExemption {
        /// The token.
        pub token: TokenId,
        /// The identity.
        pub did: crate::Did,
        /// Exempt (true) or not.
        pub exempt: bool,
    }
}

/// Most choices on one ballot.
pub const BALLOT_CHOICES_MAX: usize = 16;

record! {
    /// The agent opens a ballot of the token's holders: each votes once,
    /// inside the window, with the weight of its balance at the checkpoint.
    pub struct OpenBallot {
        /// The ballot's id, unique on the chain.
        pub ballot: RequestId,
        /// The token whose holders vote.
        pub token: TokenId,
        /// The checkpoint whose balances weigh the votes; `None`: one taken
        /// now, by this transaction.
        pub checkpoint: Option<u64>,
        /// The choices, 2 to 16, each named once.
        pub choices: BoundedVec<Label, BALLOT_CHOICES_MAX>,
        /// Votes count from this block time on.
        pub opens: Timestamp,
        /// Votes count before this block time.
        pub closes: Timestamp,
    }
}

record! {
    /// A holder votes in a ballot with the signer's wallet, once.
    pub struct CastVote {
        /// The ballot.
        pub ballot: RequestId,
        /// The choice, by its position on the ballot (from 0).
        pub choice: u8,
    }
}

/// Most moves in one `forced_moves`.
pub const FORCED_MOVES_MAX: usize = 16;

record! {
    /// The agent moves tokens without their holders, several moves in one
    /// transaction, all or none (agent power: seize and return in one step,
    /// e.g. from a holder to the agent's wallet and on to a new one). Each
    /// receiver must pass the token's identity rules; a move that takes
    /// frozen units reduces the freeze by what it took beyond the free
    /// balance.
    pub struct ForcedMoves {
        /// The moves, in order, each of a token the signer is the agent of.
        pub moves: BoundedVec<Leg, FORCED_MOVES_MAX>,
        /// Why (a court order, a lost key), kept with each transfer.
        pub reason: Memo,
    }
}
