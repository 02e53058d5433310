//! A token's compliance rules (L-1): the claims and countries its holders
//! need, its holder, balance, category and ownership limits, its lock-up,
//! pre-approval and transfer limits over time. Part of
//! [`crate::RequestIssuance`], [`crate::OpenOffering`] and
//! [`crate::SetTokenRules`].

use crate::codec::BoundedVec;
use crate::{record, unit_enum, CountryCode, Date, Units};
use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Serialize};

/// A kind of identity claim. Codes below 1000 are the network's; custom
/// topics use 1000 and above.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClaimTopic(pub u16);

impl ClaimTopic {
    /// Know-your-customer checks passed.
    pub const KYC: ClaimTopic = ClaimTopic(1);
    /// An accredited (professional) investor.
    pub const ACCREDITED_INVESTOR: ClaimTopic = ClaimTopic(2);
    /// Country of residence; the claim carries the country.
    pub const JURISDICTION: ClaimTopic = ClaimTopic(3);
    /// A legal person with an LEI.
    pub const LEGAL_PERSON: ClaimTopic = ClaimTopic(4);
}

impl Write for ClaimTopic {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}
impl FixedSize for ClaimTopic {
    const SIZE: usize = 2;
}
impl Read for ClaimTopic {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(u16::read_cfg(buf, &())?))
    }
}

record! {
    /// A cap for an investor category: an identity with a valid claim of
    /// `topic` (e.g. a custom topic for retail investors) holds at most
    /// `max_per_identity` units across its wallets.
    pub struct CategoryLimit {
        /// The claim topic that puts an identity in the category.
        pub topic: ClaimTopic,
        /// The most units such an identity may hold.
        pub max_per_identity: Units,
    }
}

unit_enum! {
    /// The period a transfer limit counts over, in block time (UTC days).
    pub enum LimitPeriod {
        /// The last `days` days, today included.
        Rolling = 1,
        /// The calendar month so far.
        CalendarMonth = 2,
    }
}

/// The longest rolling period of a transfer limit, in days.
pub const LIMIT_DAYS_MAX: u16 = 31;

record! {
    /// How much one identity may send of a token in a period: every holder
    /// transfer from any of its wallets counts; the token's agent is exempt.
    pub struct TransferLimit {
        /// The most units sent in the period.
        pub max: Units,
        /// Rolling days or the calendar month.
        pub period: LimitPeriod,
        /// For a rolling period, its length in days (1 to 31).
        pub days: u16,
    }
}

/// Most investor categories one token caps.
pub const CATEGORY_LIMITS_MAX: usize = 8;

record! {
    /// A token's compliance rules, checked on every transfer (L-1).
    pub struct TokenRules {
        /// Claims both parties must hold, valid and from a trusted claim issuer.
        pub required_topics: BoundedVec<ClaimTopic, 16>,
        /// If not empty, holders must have a jurisdiction claim for one of these.
        pub allowed_countries: BoundedVec<CountryCode, 64>,
        /// Holders with a jurisdiction claim for one of these are refused.
        pub denied_countries: BoundedVec<CountryCode, 64>,
        /// Most wallets that may hold the token at once; 0 means no limit.
        pub max_holders: u32,
        /// Most units one identity (all its wallets) may hold; 0 means no limit.
        pub max_balance_per_identity: Units,
        /// No transfers before this day, if set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub lockup_until: Option<Date>,
        /// Every holder transfer needs the agent's pre-approval of that
        /// sender, receiver and amount (`approve_transfer`), used once.
        #[serde(default)]
        pub transfer_approval: bool,
        /// Caps by investor category; an identity in several has the lowest.
        #[serde(default)]
        pub category_limits: BoundedVec<CategoryLimit, CATEGORY_LIMITS_MAX>,
        /// How much one identity may send in a period, if limited.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub transfer_limit: Option<TransferLimit>,
        /// The most one identity may hold as a share of the circulating
        /// supply, in basis points, after a transfer (issuance and
        /// redemption excepted); 0 means no limit.
        #[serde(default)]
        pub max_ownership_bps: u16,
    }
}
