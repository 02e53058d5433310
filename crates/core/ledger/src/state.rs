//! The ledger's state: ordered maps of plain records, so that iteration
//! order, the canonical encoding and the state root depend only on content.

use crate::auth::{key_hash, state_root, Authenticated, StateProof};
use imbl::ordmap::DiffItem;
use jmt::KeyHash;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
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

/// A table of the state: a persistent ordered map, so a copy (a block
/// proposed or verified on its parent) costs nothing until it is written,
/// and what changed between two copies is found without visiting what did
/// not (see [`crate::auth`]).
pub type Table<K, V> = imbl::OrdMap<K, V>;

/// The state's tables, each authenticated and snapshotted under its name,
/// in snapshot order; with the derived indexes and the chain's parameters
/// and committees, the whole ledger state.
macro_rules! tables {
    ($( $(#[$doc:meta])* $name:ident: $k:ty => $v:ty; )*) => {
        /// The whole ledger state.
        #[derive(Default)]
        pub struct State {
            $( $(#[$doc])* pub $name: Table<$k, $v>, )*
            /// Organisation by signing key (derived from `orgs`).
            pub org_by_key: Table<PublicKey, OrgId>,
            /// DID to its wallets (derived from `wallets`).
            pub did_wallets: Table<(Did, WalletAddress), ()>,
            /// The consensus parameters.
            pub params: ChainParams,
            /// The committee of the epoch the next block belongs to.
            pub committee: Committee,
            /// The committee of the epoch before (empty in the first), whose
            /// offences may still be recorded.
            pub previous_committee: Committee,
            /// The Merkle tree, and the tables as it last saw them.
            auth: Mutex<Auth>,
        }

        /// The tables as the tree last saw them.
        #[derive(Clone, Default)]
        struct Seen {
            $( $name: Table<$k, $v>, )*
            /// The encodings of params, committee and previous committee.
            singletons: [Vec<u8>; 3],
        }

        impl Clone for State {
            fn clone(&self) -> State {
                State {
                    $( $name: self.$name.clone(), )*
                    org_by_key: self.org_by_key.clone(),
                    did_wallets: self.did_wallets.clone(),
                    params: self.params.clone(),
                    committee: self.committee.clone(),
                    previous_committee: self.previous_committee.clone(),
                    auth: Mutex::new(lock(&self.auth).clone()),
                }
            }
        }

        impl PartialEq for State {
            /// Content only: how far the tree was brought up to date is not.
            fn eq(&self, other: &State) -> bool {
                $( self.$name == other.$name && )*
                self.org_by_key == other.org_by_key
                    && self.did_wallets == other.did_wallets
                    && self.params == other.params
                    && self.committee == other.committee
                    && self.previous_committee == other.previous_committee
            }
        }

        impl Eq for State {}

        impl std::fmt::Debug for State {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("State")
                    $( .field(stringify!($name), &self.$name) )*
                    .field("params", &self.params)
                    .field("committee", &self.committee)
                    .field("previous_committee", &self.previous_committee)
                    .finish_non_exhaustive()
            }
        }

        impl State {
            /// Brings the tree up to date with the tables and returns its
            /// root, under the lock `auth` already holds.
            fn bring_up_to_date(&self, auth: &mut Auth) -> [u8; 32] {
                let mut changes = Vec::new();
                $(
                    diff(stringify!($name), &auth.seen.$name, &self.$name, &mut changes);
                    auth.seen.$name = self.$name.clone();
                )*
                let singletons = [
                    ("params", self.params.encode().to_vec()),
                    ("committee", self.committee.encode().to_vec()),
                    ("previous_committee", self.previous_committee.encode().to_vec()),
                ];
                for (i, (name, bytes)) in singletons.into_iter().enumerate() {
                    if auth.seen.singletons[i] != bytes {
                        changes.push((key_hash(name, &[]), Some(bytes.clone())));
                        auth.seen.singletons[i] = bytes;
                    }
                }
                auth.tree.update(changes);
                auth.tree.root()
            }

            /// The canonical encoding of the record `key` (canonical bytes)
            /// of `table`, if it holds one.
            fn record(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, ProofRequestError> {
                match table {
                    $( stringify!($name) => {
                        let key: $k = decode_key(key)?;
                        Ok(self.$name.get(&key).map(|v| {
                            let mut out = Vec::new();
                            v.write(&mut out);
                            out
                        }))
                    } )*
                    "params" | "committee" | "previous_committee" if key.is_empty() => {
                        let bytes = match table {
                            "params" => self.params.encode(),
                            "committee" => self.committee.encode(),
                            _ => self.previous_committee.encode(),
                        };
                        Ok(Some(bytes.to_vec()))
                    }
                    _ => Err(ProofRequestError::UnknownTable(table.to_string())),
                }
            }

            /// The record `key` of `table` and its `value` (canonical bytes)
            /// as text: what a proof is about, for a person to read.
            pub fn describe_record(
                table: &str,
                key: &[u8],
                value: Option<&[u8]>,
            ) -> Result<(String, Option<String>), ProofRequestError> {
                match table {
                    $( stringify!($name) => {
                        let key: $k = decode_key(key)?;
                        let value = value.map(decode_key::<$v>).transpose()?;
                        Ok((format!("{key:?}"), value.map(|v| format!("{v:?}"))))
                    } )*
                    _ => Err(ProofRequestError::UnknownTable(table.to_string())),
                }
            }

            /// The state's canonical encoding, for storage to persist as a snapshot.
            pub fn to_bytes(&self) -> Vec<u8> {
                let mut out = b"tranche/state-snapshot/v1".to_vec();
                $( write_map(&mut out, &self.$name); )*
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
                        $( $name: read_map(&mut buf)?, )*
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
    };
}

tables! {
    /// Organisations by id.
    orgs: OrgId => Organisation;
    /// Open governance votes: action digest to voters.
    votes: Hash => Vec<OrgId>;
    /// Last nonce used per signer.
    nonces: PublicKey => u64;
    /// Wallet to DID.
    wallets: WalletAddress => Did;
    /// Claims by (DID, topic, issuer).
    claims: (Did, ClaimTopic, OrgId) => Claim;
    /// Assets.
    assets: AssetId => Asset;
    /// Issuance requests.
    issuances: RequestId => IssuanceRequest;
    /// Revocation requests.
    revocations: RequestId => RevocationRequest;
    /// Tokens.
    tokens: TokenId => Token;
    /// Balances by (token, wallet); zero balances are not kept.
    balances: (TokenId, WalletAddress) => Units;
    /// Freezes by (token, wallet).
    freezes: (TokenId, WalletAddress) => Freeze;
    /// Custodial wallets.
    custody: WalletAddress => Custody;
    /// Checkpoints by (token, number).
    checkpoints: (TokenId, u64) => Checkpoint;
    /// Checkpointed balances by (token, number, wallet).
    checkpoint_balances: (TokenId, u64, WalletAddress) => Units;
    /// Distributions.
    distributions: RequestId => Distribution;
    /// Entitlements by (distribution, wallet).
    entitlements: (RequestId, WalletAddress) => Entitlement;
    /// Free (unbonded, undelegated) stake per organisation.
    stake: OrgId => Stake;
    /// Bonded validators.
    validators: OrgId => Validator;
    /// Delegations by (delegator, validator).
    delegations: (OrgId, OrgId) => Stake;
    /// Equivocations by (consensus key, epoch, view).
    equivocations: (PublicKey, u64, u64) => Equivocation;
}

/// The Merkle tree and what it last saw.
#[derive(Clone, Default)]
struct Auth {
    tree: Authenticated,
    seen: Seen,
}

fn lock(auth: &Mutex<Auth>) -> std::sync::MutexGuard<'_, Auth> {
    // A panic while holding the lock cannot leave the tree half-written:
    // `Authenticated::update` replaces it only once the update succeeded.
    auth.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds to `out` each record of `table` that differs between `seen` and
/// `now`: its key hash and new encoding, or `None` if it is gone. Subtrees
/// the two maps share are skipped without being visited.
fn diff<K: Ord + Clone + Write, V: Clone + PartialEq + Write>(
    table: &str,
    seen: &Table<K, V>,
    now: &Table<K, V>,
    out: &mut Vec<(KeyHash, Option<Vec<u8>>)>,
) {
    let encode = |x: &dyn Fn(&mut Vec<u8>)| {
        let mut b = Vec::new();
        x(&mut b);
        b
    };
    for item in seen.diff(now) {
        match item {
            DiffItem::Add(k, v) | DiffItem::Update { new: (k, v), .. } => {
                let key = encode(&|b| k.write(b));
                out.push((key_hash(table, &key), Some(encode(&|b| v.write(b)))));
            }
            DiffItem::Remove(k, _) => {
                let key = encode(&|b| k.write(b));
                out.push((key_hash(table, &key), None));
            }
        }
    }
}

/// Why a proof cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofRequestError {
    /// No table of that name.
    #[error("the state has no table {0:?}")]
    UnknownTable(String),
    /// The key's bytes are not a key of the table.
    #[error("not a key of the table: {0}")]
    BadKey(String),
}

fn decode_key<K: ReadPlain>(bytes: &[u8]) -> Result<K, ProofRequestError> {
    let mut buf = tranche_types::commonware_codec::Copying(bytes);
    let key = K::read_plain(&mut buf).map_err(|e| ProofRequestError::BadKey(e.to_string()))?;
    if !buf.0.is_empty() {
        return Err(ProofRequestError::BadKey(format!(
            "{} bytes after the key",
            buf.0.len()
        )));
    }
    Ok(key)
}

impl State {
    /// The state root: the Merkle tree's root over every record, bound to
    /// the chain. It depends on nothing but the content.
    pub fn root(&self, chain_id: &ChainId) -> Hash {
        let mut auth = lock(&self.auth);
        state_root(chain_id, &self.bring_up_to_date(&mut auth))
    }

    /// A proof of the record `key` (canonical bytes) of `table`, present or
    /// absent, against [`State::root`].
    pub fn prove(
        &self,
        chain_id: &ChainId,
        table: &str,
        key: &[u8],
    ) -> Result<StateProof, ProofRequestError> {
        let value = self.record(table, key)?;
        let mut auth = lock(&self.auth);
        let tree_root = self.bring_up_to_date(&mut auth);
        let proof = auth.tree.prove(key_hash(table, key), value.clone());
        Ok(StateProof {
            chain_id: chain_id.clone(),
            table: table.to_string(),
            key: hex::encode(key),
            value: value.map(hex::encode),
            tree_root: Hash(tree_root),
            proof,
        })
    }

    /// How many nodes the Merkle tree holds (for measurements).
    pub fn tree_nodes(&self) -> usize {
        let mut auth = lock(&self.auth);
        self.bring_up_to_date(&mut auth);
        auth.tree.node_count()
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

fn write_map<K: Write + Ord + Clone, V: Write + Clone>(out: &mut Vec<u8>, map: &Table<K, V>) {
    (map.len() as u64).write(out);
    for (k, v) in map {
        k.write(out);
        v.write(out);
    }
}

fn read_map<K: ReadPlain + Ord + Clone, V: ReadPlain + Clone>(
    buf: &mut impl tranche_types::commonware_codec::Buf,
) -> Result<Table<K, V>, CodecError> {
    let n = u64::read_cfg(buf, &())?;
    let mut map = Table::new();
    for _ in 0..n {
        if !buf.has_remaining() {
            return Err(CodecError::EndOfBuffer);
        }
        let k = K::read_plain(buf)?;
        let v = V::read_plain(buf)?;
        // Strictly increasing keys: one encoding per state.
        if map.get_max().is_some_and(|(last, _)| *last >= k) {
            return Err(CodecError::Invalid("state", "map keys out of order"));
        }
        map.insert(k, v);
    }
    Ok(map)
}
