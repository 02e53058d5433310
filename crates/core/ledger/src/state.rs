//! The ledger's state: ordered maps of plain records, so that iteration order,
//! the canonical encoding and therefore the state root depend only on content.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tranche_types::commonware_codec::{Encode, Write};
use tranche_types::{
    record, AssetId, AssetKind, BoundedVec, ChainId, ClaimTopic, CountryCode, Currency, Date, Did,
    Hash, Money, OffenceKind, OrgId, PublicKey, RequestId, RequestIssuance, Role, Stake, TokenId,
    TokenRules, Units, WalletAddress,
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
        /// Allowed appraisal deviation in basis points.
        pub tolerance_bps: u16,
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

record! {
    /// The chain's consensus parameters, fixed at genesis (C-2).
    pub struct ChainParams {
        /// Blocks per epoch: the committee changes after every block whose
        /// height is a multiple of this.
        pub epoch_blocks: u64,
        /// The most validators in a committee.
        pub committee_max: u32,
    }
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            epoch_blocks: crate::EPOCH_BLOCKS_DEFAULT,
            committee_max: crate::COMMITTEE_MAX as u32,
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

/// The whole ledger state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Organisations by id.
    pub orgs: BTreeMap<OrgId, Organisation>,
    /// Organisation by signing key.
    pub org_by_key: BTreeMap<PublicKey, OrgId>,
    /// Open governance votes: action digest to voters.
    pub votes: BTreeMap<Hash, Vec<OrgId>>,
    /// Last nonce used per signer.
    pub nonces: BTreeMap<PublicKey, u64>,
    /// Wallet to DID.
    pub wallets: BTreeMap<WalletAddress, Did>,
    /// DID to its wallets.
    pub did_wallets: BTreeMap<(Did, WalletAddress), ()>,
    /// Claims by (DID, topic, issuer).
    pub claims: BTreeMap<(Did, ClaimTopic, OrgId), Claim>,
    /// Assets.
    pub assets: BTreeMap<AssetId, Asset>,
    /// Issuance requests.
    pub issuances: BTreeMap<RequestId, IssuanceRequest>,
    /// Revocation requests.
    pub revocations: BTreeMap<RequestId, RevocationRequest>,
    /// Tokens.
    pub tokens: BTreeMap<TokenId, Token>,
    /// Balances by (token, wallet); zero balances are not kept.
    pub balances: BTreeMap<(TokenId, WalletAddress), Units>,
    /// Freezes by (token, wallet).
    pub freezes: BTreeMap<(TokenId, WalletAddress), Freeze>,
    /// Custodial wallets.
    pub custody: BTreeMap<WalletAddress, Custody>,
    /// Checkpoints by (token, number).
    pub checkpoints: BTreeMap<(TokenId, u64), Checkpoint>,
    /// Checkpointed balances by (token, number, wallet).
    pub checkpoint_balances: BTreeMap<(TokenId, u64, WalletAddress), Units>,
    /// Distributions.
    pub distributions: BTreeMap<RequestId, Distribution>,
    /// Entitlements by (distribution, wallet).
    pub entitlements: BTreeMap<(RequestId, WalletAddress), Entitlement>,
    /// Free (unbonded, undelegated) stake per organisation.
    pub stake: BTreeMap<OrgId, Stake>,
    /// Bonded validators.
    pub validators: BTreeMap<OrgId, Validator>,
    /// Delegations by (delegator, validator).
    pub delegations: BTreeMap<(OrgId, OrgId), Stake>,
    /// Equivocations by (consensus key, epoch, view).
    pub equivocations: BTreeMap<(PublicKey, u64, u64), Equivocation>,
    /// The consensus parameters.
    pub params: ChainParams,
    /// The committee of the epoch the next block belongs to.
    pub committee: Committee,
    /// The committee of the epoch before (empty in the first), whose
    /// offences may still be recorded.
    pub previous_committee: Committee,
}

/// Feeds the canonical encoding of each map into the hash, one by one.
fn feed<K: Write + Ord, V: Write>(h: &mut Sha256, label: &[u8], map: &BTreeMap<K, V>) {
    h.update(label);
    h.update((map.len() as u64).to_be_bytes());
    let mut buf = Vec::with_capacity(256);
    for (k, v) in map {
        buf.clear();
        k.write(&mut buf);
        v.write(&mut buf);
        h.update(&buf);
    }
}

impl State {
    /// The state root: SHA-256 over the chain id and every map's canonical
    /// encoding, in a fixed order. It depends on nothing but the content.
    pub fn root(&self, chain_id: &ChainId) -> Hash {
        let mut h = Sha256::new();
        h.update(b"tranche/state/v1");
        h.update(chain_id.encode());
        feed(&mut h, b"orgs", &self.orgs);
        feed(&mut h, b"votes", &self.votes);
        feed(&mut h, b"nonces", &self.nonces);
        feed(&mut h, b"wallets", &self.wallets);
        feed(&mut h, b"claims", &self.claims);
        feed(&mut h, b"assets", &self.assets);
        feed(&mut h, b"issuances", &self.issuances);
        feed(&mut h, b"revocations", &self.revocations);
        feed(&mut h, b"tokens", &self.tokens);
        feed(&mut h, b"balances", &self.balances);
        feed(&mut h, b"freezes", &self.freezes);
        feed(&mut h, b"custody", &self.custody);
        feed(&mut h, b"checkpoints", &self.checkpoints);
        feed(&mut h, b"checkpoint_balances", &self.checkpoint_balances);
        feed(&mut h, b"distributions", &self.distributions);
        feed(&mut h, b"entitlements", &self.entitlements);
        feed(&mut h, b"stake", &self.stake);
        feed(&mut h, b"validators", &self.validators);
        feed(&mut h, b"delegations", &self.delegations);
        feed(&mut h, b"equivocations", &self.equivocations);
        h.update(b"params");
        h.update(self.params.encode());
        h.update(b"committee");
        h.update(self.committee.encode());
        h.update(self.previous_committee.encode());
        // org_by_key and did_wallets are indexes derived from the maps above.
        Hash(h.finalize().into())
    }
}

/// Reads a value that needs no configuration; tuples and lists of such
/// values included, so every map of the state reads the same way.
trait ReadPlain: Sized {
    fn read_plain(buf: &mut impl tranche_types::commonware_codec::Buf) -> Result<Self, CodecError>;
}

use tranche_types::commonware_codec::{Error as CodecError, Read};

macro_rules! read_plain {
    ($($t:ty),*) => {$(
        impl ReadPlain for $t {
            fn read_plain(buf: &mut impl tranche_types::commonware_codec::Buf) -> Result<Self, CodecError> {
                <$t as Read>::read_cfg(buf, &())
            }
        }
    )*};
}

read_plain!(
    OrgId,
    PublicKey,
    Hash,
    u64,
    u128,
    Stake,
    WalletAddress,
    Did,
    ClaimTopic,
    AssetId,
    RequestId,
    TokenId,
    Units,
    Organisation,
    Claim,
    Asset,
    IssuanceRequest,
    RevocationRequest,
    Token,
    Freeze,
    Custody,
    Checkpoint,
    Distribution,
    Entitlement,
    Validator,
    Equivocation
);

impl<A: ReadPlain, B: ReadPlain> ReadPlain for (A, B) {
    fn read_plain(buf: &mut impl tranche_types::commonware_codec::Buf) -> Result<Self, CodecError> {
        Ok((A::read_plain(buf)?, B::read_plain(buf)?))
    }
}

impl<A: ReadPlain, B: ReadPlain, C: ReadPlain> ReadPlain for (A, B, C) {
    fn read_plain(buf: &mut impl tranche_types::commonware_codec::Buf) -> Result<Self, CodecError> {
        Ok((
            A::read_plain(buf)?,
            B::read_plain(buf)?,
            C::read_plain(buf)?,
        ))
    }
}

/// The most voters on one governance action (the organisations admitted).
const VOTERS_MAX: usize = 10_000;

impl ReadPlain for Vec<OrgId> {
    fn read_plain(buf: &mut impl tranche_types::commonware_codec::Buf) -> Result<Self, CodecError> {
        Vec::<OrgId>::read_cfg(buf, &((0..=VOTERS_MAX).into(), ()))
    }
}

fn write_map<K: Write, V: Write>(out: &mut Vec<u8>, map: &BTreeMap<K, V>) {
    (map.len() as u64).write(out);
    for (k, v) in map {
        k.write(out);
        v.write(out);
    }
}

fn read_map<K: ReadPlain + Ord, V: ReadPlain>(
    buf: &mut impl tranche_types::commonware_codec::Buf,
) -> Result<BTreeMap<K, V>, CodecError> {
    let n = u64::read_cfg(buf, &())?;
    let mut map = BTreeMap::new();
    for _ in 0..n {
        if !buf.has_remaining() {
            return Err(CodecError::EndOfBuffer);
        }
        let k = K::read_plain(buf)?;
        let v = V::read_plain(buf)?;
        // Strictly increasing keys: one encoding per state.
        if map.last_key_value().is_some_and(|(last, _)| *last >= k) {
            return Err(CodecError::Invalid("state", "map keys out of order"));
        }
        map.insert(k, v);
    }
    Ok(map)
}

impl State {
    /// The state's canonical encoding, for storage to persist as a snapshot.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = b"tranche/state-snapshot/v1".to_vec();
        write_map(&mut out, &self.orgs);
        write_map(&mut out, &self.votes);
        write_map(&mut out, &self.nonces);
        write_map(&mut out, &self.wallets);
        write_map(&mut out, &self.claims);
        write_map(&mut out, &self.assets);
        write_map(&mut out, &self.issuances);
        write_map(&mut out, &self.revocations);
        write_map(&mut out, &self.tokens);
        write_map(&mut out, &self.balances);
        write_map(&mut out, &self.freezes);
        write_map(&mut out, &self.custody);
        write_map(&mut out, &self.checkpoints);
        write_map(&mut out, &self.checkpoint_balances);
        write_map(&mut out, &self.distributions);
        write_map(&mut out, &self.entitlements);
        write_map(&mut out, &self.stake);
        write_map(&mut out, &self.validators);
        write_map(&mut out, &self.delegations);
        write_map(&mut out, &self.equivocations);
        self.params.write(&mut out);
        self.committee.write(&mut out);
        self.previous_committee.write(&mut out);
        out
    }

    /// Reads a snapshot written by [`State::to_bytes`], rebuilding the
    /// derived indexes. Refuses anything but a whole, canonical snapshot.
    pub fn from_bytes(bytes: &[u8]) -> Result<State, tranche_types::DecodeError> {
        let fail = |reason: String| tranche_types::DecodeError {
            what: "state snapshot",
            reason,
        };
        let label: &[u8] = b"tranche/state-snapshot/v1";
        let body = bytes
            .strip_prefix(label)
            .ok_or_else(|| fail("not a version 1 state snapshot".into()))?;
        let mut buf = tranche_types::commonware_codec::Copying(body);
        let mut read = || -> Result<State, CodecError> {
            let mut s = State {
                orgs: read_map(&mut buf)?,
                votes: read_map(&mut buf)?,
                nonces: read_map(&mut buf)?,
                wallets: read_map(&mut buf)?,
                claims: read_map(&mut buf)?,
                assets: read_map(&mut buf)?,
                issuances: read_map(&mut buf)?,
                revocations: read_map(&mut buf)?,
                tokens: read_map(&mut buf)?,
                balances: read_map(&mut buf)?,
                freezes: read_map(&mut buf)?,
                custody: read_map(&mut buf)?,
                checkpoints: read_map(&mut buf)?,
                checkpoint_balances: read_map(&mut buf)?,
                distributions: read_map(&mut buf)?,
                entitlements: read_map(&mut buf)?,
                stake: read_map(&mut buf)?,
                validators: read_map(&mut buf)?,
                delegations: read_map(&mut buf)?,
                equivocations: read_map(&mut buf)?,
                params: ChainParams::read_cfg(&mut buf, &())?,
                committee: Committee::read_cfg(&mut buf, &())?,
                previous_committee: Committee::read_cfg(&mut buf, &())?,
                ..State::default()
            };
            for (org, o) in &s.orgs {
                s.org_by_key.insert(o.key, org.clone());
            }
            for (w, d) in &s.wallets {
                s.did_wallets.insert((d.clone(), *w), ());
            }
            Ok(s)
        };
        let state = read().map_err(|e| fail(e.to_string()))?;
        if !buf.0.is_empty() {
            return Err(fail(format!("{} bytes after the snapshot", buf.0.len())));
        }
        Ok(state)
    }
}
