//! Business rejections: a stable numeric code, a stable name, and a message a
//! person can act on. A rejected transaction is data in its receipt, not an
//! error: the block that carries it is still valid.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! reject_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $summary:literal; )*) => {
        /// Why a transaction was refused. Codes and names never change meaning
        /// once released; new reasons get new codes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u16)]
        pub enum RejectCode {
            $( $(#[$doc])* $variant = $code, )*
        }

        impl RejectCode {
            /// Every code, in numeric order.
            pub const ALL: &'static [RejectCode] = &[$(RejectCode::$variant,)*];

            /// The stable numeric code.
            pub fn code(self) -> u16 {
                self as u16
            }

            /// The stable name, e.g. `WRONG_CHAIN`.
            pub fn name(self) -> &'static str {
                match self { $(RejectCode::$variant => $name,)* }
            }

            /// What the code means and what to do about it, in general terms;
            /// a [`Rejection`] adds the specifics.
            pub fn summary(self) -> &'static str {
                match self { $(RejectCode::$variant => $summary,)* }
            }

            /// The code with this number, if there is one.
            pub fn from_code(code: u16) -> Option<RejectCode> {
                match code { $($code => Some(RejectCode::$variant),)* _ => None }
            }

            /// The code with this name, if there is one.
            pub fn from_name(name: &str) -> Option<RejectCode> {
                match name { $($name => Some(RejectCode::$variant),)* _ => None }
            }
        }
    };
}

reject_codes! {
    /// The transaction names another chain.
    WrongChain = 1, "WRONG_CHAIN", "the transaction was signed for another chain; sign it again with this chain's id";
    /// The signature does not verify for the signer's key.
    BadSignature = 2, "BAD_SIGNATURE", "the signature does not match the transaction and its signer; sign it again";
    /// The block time is past the transaction's validity bound.
    Expired = 3, "EXPIRED", "the transaction's valid_until has passed; build and sign a new one";
    /// The nonce is not the signer's next one.
    BadNonce = 4, "BAD_NONCE", "the nonce is not the signer's next one; query the account and use its next nonce";
    /// The signer's wallet lacks the tokens moved.
    InsufficientBalance = 5, "INSUFFICIENT_BALANCE", "the wallet holds fewer tokens than the amount; lower the amount";
    /// The token is not known to the chain.
    UnknownToken = 6, "UNKNOWN_TOKEN", "no token with this id has been issued; check the token id";
    /// The amount is zero where a positive amount is required.
    ZeroAmount = 7, "ZERO_AMOUNT", "the amount must be at least one unit";
    /// An amount would overflow.
    Overflow = 8, "OVERFLOW", "the amounts involved are too large to be added up";
    /// The signer is not an admitted organisation.
    NotAdmitted = 9, "NOT_ADMITTED", "only an admitted organisation may send this; ask the governing organisations to admit yours";
    /// The organisation lacks the role this needs.
    MissingRole = 10, "MISSING_ROLE", "the organisation does not hold the role this needs; ask governance to grant it";
    /// The roles would break separation of duties (SR-1, SR-2, REC-1).
    SeparationOfDuties = 11, "SEPARATION_OF_DUTIES", "an issuer may not also be a TSP or an exchange, and a token's TSP and issuer must differ";
    /// The signer is not a governing organisation.
    NotGovernor = 12, "NOT_GOVERNOR", "only governing organisations vote on governance";
    /// The organisation already voted for this action.
    AlreadyVoted = 13, "ALREADY_VOTED", "this organisation already voted for this action; wait for the others";
    /// No organisation has this id.
    UnknownOrganisation = 14, "UNKNOWN_ORGANISATION", "no admitted organisation has this id; check it";
    /// Something with this id exists already.
    AlreadyExists = 15, "ALREADY_EXISTS", "something with this id or key exists already; choose another";
    /// The wallet is not bound to a DID.
    WalletNotRegistered = 16, "WALLET_NOT_REGISTERED", "the wallet is not bound to an identity; have it registered by a TSP, exchange or custodian";
    /// A required claim is missing, expired, revoked or from an untrusted issuer.
    IdentityNotVerified = 17, "IDENTITY_NOT_VERIFIED", "an identity lacks a valid claim the token requires; renew it with a trusted claim issuer";
    /// The holder's jurisdiction is not allowed for this token.
    CountryNotAllowed = 18, "COUNTRY_NOT_ALLOWED", "the token may not be held by residents of this jurisdiction";
    /// The token has its most holders.
    MaxHoldersReached = 19, "MAX_HOLDERS_REACHED", "the token has the most holders its rules allow; only existing holders may receive it";
    /// The receiver's identity would hold more than allowed.
    MaxBalanceExceeded = 20, "MAX_BALANCE_EXCEEDED", "the receiving identity would hold more than the token's rules allow; lower the amount";
    /// The token is in its lock-up period.
    LockedUp = 21, "LOCKED_UP", "the token cannot be transferred before its lock-up date";
    /// The wallet, or the part of its balance needed, is frozen.
    WalletFrozen = 22, "WALLET_FROZEN", "the wallet or the needed part of its balance is frozen by the token's agent";
    /// The token is paused.
    TokenPaused = 23, "TOKEN_PAUSED", "the token's transfers are paused by its agent; wait until they resume";
    /// The token is revoked.
    TokenRevoked = 24, "TOKEN_REVOKED", "the token is revoked; revoked tokens never move again (REC-6)";
    /// The token is past its expiry date.
    TokenExpired = 25, "TOKEN_EXPIRED", "the token is past its expiry date; only revocation may move it";
    /// No asset has this id.
    UnknownAsset = 26, "UNKNOWN_ASSET", "no asset with this id is registered; check it";
    /// The asset has no appraisal.
    AppraisalMissing = 27, "APPRAISAL_MISSING", "the asset has not been appraised; an appraiser must record a value first";
    /// The appraisal is too far from the asking price.
    AppraisalOutOfTolerance = 28, "APPRAISAL_OUT_OF_TOLERANCE", "the appraised value differs from the asking price by more than the network's tolerance";
    /// AP / SP is not a whole number of tokens, or the amount differs from it.
    NotWholeTokens = 29, "NOT_WHOLE_TOKENS", "the asset price divided by the token price must be a whole number equal to the amount";
    /// Amounts in different currencies.
    CurrencyMismatch = 30, "CURRENCY_MISMATCH", "the amounts must be in the same currency";
    /// Allocations do not add up to the amount.
    AllocationMismatch = 31, "ALLOCATION_MISMATCH", "the allocations must add up exactly to the amount";
    /// No request has this id.
    UnknownRequest = 32, "UNKNOWN_REQUEST", "no request with this id exists; check it";
    /// The signer is not the issuer the request names.
    NotTheNamedIssuer = 33, "NOT_THE_NAMED_ISSUER", "only the issuer named by the TSP's request may carry it out";
    /// What was issued differs from what was requested (ST-1).
    IssuanceMismatch = 34, "ISSUANCE_MISMATCH", "the issuance must equal the request exactly: the same amount and the same allocations";
    /// The request was carried out already.
    RequestAlreadyExecuted = 35, "REQUEST_ALREADY_EXECUTED", "this request has been carried out already";
    /// What is revoked differs from what was requested (ST-2).
    RevocationMismatch = 36, "REVOCATION_MISMATCH", "the revocation must move exactly the requested amount";
    /// Tokens in a revocation wallet never move (L-2, REC-6).
    RevocationWalletLocked = 37, "REVOCATION_WALLET_LOCKED", "nothing ever leaves a revocation wallet";
    /// No such custodial wallet.
    UnknownCustodialWallet = 38, "UNKNOWN_CUSTODIAL_WALLET", "this custodian keeps no wallet for the identity of the key that signed the authorization";
    /// The holder did not authorize the move (ST-3).
    HolderAuthorizationMissing = 39, "HOLDER_AUTHORIZATION_MISSING", "a custodial wallet moves only on its holder's authorization; the key that signed it is neither the holder's DID key nor a wallet bound to it";
    /// The holder's authorization does not verify (SR-3).
    BadHolderAuthorization = 40, "BAD_HOLDER_AUTHORIZATION", "the holder's authorization does not verify for this custodian and instruction; have the holder sign it with `tranche did authorize-transfer`";
    /// The signer is not the token's agent (its issuer).
    NotTokenAgent = 41, "NOT_TOKEN_AGENT", "only the token's issuer may use agent powers on it";
    /// The signer is not the TSP responsible.
    NotTheTsp = 42, "NOT_THE_TSP", "only the TSP responsible for this asset or token may do this";
    /// The wallets belong to different identities.
    DifferentIdentity = 43, "DIFFERENT_IDENTITY", "recovery moves tokens only to a wallet of the same identity";
    /// No checkpoint with this number.
    UnknownCheckpoint = 44, "UNKNOWN_CHECKPOINT", "no checkpoint with this number exists for the token";
    /// No distribution with this id.
    UnknownDistribution = 45, "UNKNOWN_DISTRIBUTION", "no distribution with this id exists";
    /// The entitlement was paid already.
    AlreadyPaid = 46, "ALREADY_PAID", "this entitlement has been paid already";
    /// The wallet has no entitlement.
    NoEntitlement = 47, "NO_ENTITLEMENT", "the wallet held nothing at the checkpoint, so it is entitled to nothing";
    /// Not enough free stake.
    InsufficientStake = 48, "INSUFFICIENT_STAKE", "the organisation has less free stake than the amount";
    /// No validator with this id.
    UnknownValidator = 49, "UNKNOWN_VALIDATOR", "no bonded validator has this id";
    /// A wallet's owner did not approve the settlement.
    MissingApproval = 50, "MISSING_APPROVAL", "every wallet a settlement takes from must be the signer's or carry its owner's approval";
    /// A field's value is not allowed.
    InvalidField = 51, "INVALID_FIELD", "a field has a value that is not allowed; see the message";
    /// No such claim.
    UnknownClaim = 52, "UNKNOWN_CLAIM", "this claim issuer has no claim of this topic about this DID";
    /// The validator was caught equivocating.
    Tombstoned = 53, "TOMBSTONED", "this validator was slashed for equivocating and can never be bonded to or elected again";
    /// The offence is already on the chain.
    OffenceRecorded = 54, "OFFENCE_RECORDED", "this validator's offence in this view is already recorded; it is punished once";
    /// Another organisation signs with this consensus key.
    ConsensusKeyTaken = 55, "CONSENSUS_KEY_TAKEN", "another organisation already uses this key; bond behind a key of your own";
    /// The DID is not a did:key of a usable ed25519 key.
    InvalidDid = 56, "INVALID_DID", "the chain accepts only did:key DIDs of ed25519 keys, whose control it can check; make one with `tranche did new`";
    /// A person's signed consent is missing or does not verify (SR-3, SR-5).
    ConsentMissing = 57, "CONSENT_MISSING", "binding a wallet needs the wallet key's and the DID key's signatures, opening a custodial wallet the holder's; have the person sign with `tranche did bind-wallet` or `tranche did consent-custody`";
    /// The request was withdrawn by its TSP.
    RequestWithdrawn = 58, "REQUEST_WITHDRAWN", "the TSP withdrew this request; it can no longer be carried out";
    /// An audit anchor that does not cover more entries than the last one.
    AuditAnchorNotAfter = 59, "AUDIT_ANCHOR_NOT_AFTER", "an audit log's anchor must cover more entries than its last anchor; a log is never cut back";
    /// The offering takes no subscriptions now.
    OfferingClosed = 60, "OFFERING_CLOSED", "the offering takes subscriptions only inside its window; check its opening and closing times";
    /// The offering is not at the stage this needs.
    OfferingNotDone = 61, "OFFERING_NOT_DONE", "the offering's window has not ended or its close is not complete; wait for the end, then send close_offering until it is";
    /// A subscription outside the offering's bounds per investor.
    SubscriptionOutOfBounds = 62, "SUBSCRIPTION_OUT_OF_BOUNDS", "an investor subscribes, in total, between the offering's minimum and maximum units";
    /// Money in an offering's escrow moves only by the offering's rules.
    EscrowLocked = 63, "ESCROW_LOCKED", "escrowed money moves only by the offering's rules: refunds at its close, the proceeds on release after issuance (REC-8)";
    /// The offering is not issued in full.
    NotYetIssued = 64, "NOT_YET_ISSUED", "the proceeds are released only once the issuer issued exactly what the offering allocated (SR-1)";
    /// The distribution's claim period is over.
    ClaimPeriodOver = 65, "CLAIM_PERIOD_OVER", "claims on this distribution ended at its deadline; what was unclaimed went back to the TSP";
    /// The distribution's claim period is still running.
    ClaimPeriodOpen = 66, "CLAIM_PERIOD_OPEN", "unclaimed entitlements are reclaimed only after the distribution's deadline";
    /// The distribution has no money on chain.
    NotFunded = 67, "NOT_FUNDED", "this distribution has no money on chain; its TSP funds it with fund_distribution (or pays off chain)";
    /// No asset registry the network trusts attested this owner.
    OwnershipUnproven = 68, "OWNERSHIP_UNPROVEN", "an asset is registered only for the owner an asset registry attested on chain (record_ownership); have the owner's registry record it";
    /// The holder's authorization is past its expiry.
    AuthorizationExpired = 69, "AUTHORIZATION_EXPIRED", "the holder's authorization expired before it was carried out; have the holder sign a new one";
    /// The holder's authorization is used already, or not the next.
    AuthorizationNotNext = 70, "AUTHORIZATION_NOT_NEXT", "each authorization of a custodial wallet is used once, in order; the chain shows the wallet's next authorization number";
    /// An AML policy version out of order, or taking effect in the past.
    AmlPolicyOutOfOrder = 71, "AML_POLICY_OUT_OF_ORDER", "each AML policy is the next version after the last published and takes effect at a height after the block carrying it; GET /aml-policy shows the last";
    /// A token requiring pre-approval moved without one.
    TransferNotApproved = 72, "TRANSFER_NOT_APPROVED", "this token's transfers each need its agent's approval of that sender, receiver and amount (approve_transfer); ask the agent, then send exactly what was approved";
    /// A document to remove does not exist.
    UnknownDocument = 73, "UNKNOWN_DOCUMENT", "the token has no document of this name; GET /tokens/{id}/documents lists them";
    /// A trusted claim issuer named without the role.
    NotClaimIssuer = 74, "NOT_CLAIM_ISSUER", "a token trusts only organisations the chain records as claim issuers; check the names";
    /// No ballot with this id.
    UnknownBallot = 75, "UNKNOWN_BALLOT", "no ballot with this id exists; check it";
    /// A vote outside the ballot's window.
    BallotClosed = 76, "BALLOT_CLOSED", "votes count only inside the ballot's window; check its opening and closing times";
    /// A vote from a wallet that held nothing at the checkpoint.
    NoVotingWeight = 77, "NO_VOTING_WEIGHT", "the wallet held none of the token at the ballot's checkpoint, so it has no vote";
    /// A second vote from one wallet.
    VoteCast = 78, "VOTE_CAST", "this wallet has voted in this ballot already; each votes once";
    /// No hold with this id.
    UnknownHold = 79, "UNKNOWN_HOLD", "no hold with this id exists; check it";
    /// The hold was executed or released already.
    HoldClosed = 80, "HOLD_CLOSED", "the hold was executed or released already; it holds nothing";
    /// Only the hold's notary may do this.
    NotTheNotary = 81, "NOT_THE_NOTARY", "only the hold's notary executes it, or releases it before it expires";
    /// The hold expired before it was executed.
    HoldExpired = 82, "HOLD_EXPIRED", "the hold expired, which released its units; the holder may hold them again";
    /// The units are held for a notary.
    FundsHeld = 83, "FUNDS_HELD", "part of the balance is held for a notary until its hold is executed, released or expires; lower the amount";
    /// No settlement instruction with this id.
    UnknownInstruction = 84, "UNKNOWN_INSTRUCTION", "no settlement instruction with this id exists; check it";
    /// The signer's wallet has no part in the instruction that allows this.
    NotAParty = 85, "NOT_A_PARTY", "only a wallet that gives in an instruction affirms it, and only its parties or creator cancel it";
    /// The wallet affirmed already.
    AlreadyAffirmed = 86, "ALREADY_AFFIRMED", "this wallet affirmed the instruction already; the others must affirm";
    /// An ordered instruction's affirmation out of turn.
    NotYourTurn = 87, "NOT_YOUR_TURN", "this instruction is affirmed in the order its givers first give; wait for the one before you";
    /// The instruction was carried out, failed or was cancelled.
    InstructionClosed = 88, "INSTRUCTION_CLOSED", "the instruction was carried out, failed or was cancelled; create a new one";
    /// The instruction's deadline passed.
    InstructionExpired = 89, "INSTRUCTION_EXPIRED", "the instruction's deadline passed before every party affirmed it; create a new one";
    /// An identity over its investor category's cap.
    CategoryLimitExceeded = 90, "CATEGORY_LIMIT_EXCEEDED", "the receiving identity's investor category may hold no more of this token; lower the amount";
    /// An identity over the token's transfer limit for the period.
    TransferLimitExceeded = 91, "TRANSFER_LIMIT_EXCEEDED", "the sending identity has sent as much of this token as its rules allow in the period; wait for the period to move on or lower the amount";
    /// An identity over the token's ownership share.
    OwnershipLimitExceeded = 92, "OWNERSHIP_LIMIT_EXCEEDED", "the receiving identity would own a larger share of the supply than the token's rules allow; lower the amount";
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl Serialize for RejectCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for RejectCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RejectCode::from_name(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown reject code {s:?}")))
    }
}

impl Write for RejectCode {
    fn write(&self, buf: &mut impl BufMut) {
        self.code().write(buf);
    }
}

impl FixedSize for RejectCode {
    const SIZE: usize = u16::SIZE;
}

impl Read for RejectCode {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let code = u16::read_cfg(buf, &())?;
        RejectCode::from_code(code).ok_or(CodecError::Invalid("reject code", "unknown code"))
    }
}

/// A rejection: its code and a message that names the specifics,
/// e.g. `wallet tr1... holds 3 of token T-1; 5 were to be moved`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The stable code.
    pub code: RejectCode,
    /// The specifics, for a person.
    pub message: String,
}

impl Rejection {
    /// The longest message kept, in bytes; longer ones are cut.
    pub const MESSAGE_MAX: usize = 512;

    /// A rejection with `code` and `message`, cut to [`Self::MESSAGE_MAX`].
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > Self::MESSAGE_MAX {
            let mut cut = Self::MESSAGE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        Self { code, message }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.name())
    }
}

impl std::error::Error for Rejection {}

impl Write for Rejection {
    fn write(&self, buf: &mut impl BufMut) {
        self.code.write(buf);
        crate::codec::write_bytes(self.message.as_bytes(), buf);
    }
}

impl EncodeSize for Rejection {
    fn encode_size(&self) -> usize {
        RejectCode::SIZE + crate::codec::bytes_size(self.message.as_bytes())
    }
}

impl Read for Rejection {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let code = RejectCode::read_cfg(buf, &())?;
        let message = crate::codec::read_string(buf, Self::MESSAGE_MAX, "rejection message")?;
        Ok(Self { code, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        let mut codes = BTreeSet::new();
        let mut names = BTreeSet::new();
        for c in RejectCode::ALL {
            assert!(codes.insert(c.code()), "duplicate code {}", c.code());
            assert!(names.insert(c.name()), "duplicate name {}", c.name());
            assert_eq!(RejectCode::from_code(c.code()), Some(*c));
            assert_eq!(RejectCode::from_name(c.name()), Some(*c));
            assert!(!c.summary().is_empty());
        }
        assert_eq!(RejectCode::from_code(0), None);
    }

    #[test]
    fn every_code_is_documented_in_the_api_doc() {
        let doc = include_str!("../../../../docs/API.md");
        for c in RejectCode::ALL {
            let row = format!("| {} | `{}` | {} |", c.code(), c.name(), c.summary());
            assert!(doc.contains(&row), "docs/API.md lacks the row {row}");
        }
    }

    #[test]
    fn released_codes_keep_their_numbers() {
        assert_eq!(RejectCode::WrongChain.code(), 1);
        assert_eq!(RejectCode::BadSignature.code(), 2);
        assert_eq!(RejectCode::Expired.code(), 3);
        assert_eq!(RejectCode::BadNonce.code(), 4);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let r = Rejection::new(RejectCode::Expired, "é".repeat(400));
        assert!(r.message.len() <= Rejection::MESSAGE_MAX);
        assert!(r.message.chars().all(|c| c == 'é'));
    }
}
