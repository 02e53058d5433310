//! The ledger's state: ordered maps of plain records, so that iteration
//! order, the canonical encoding and the state root depend only on content.

use crate::auth::{key_hash, state_root, Authenticated, NodeRow, StateProof};
use crate::tree_nodes::TreeStore;
use imbl::ordmap::DiffItem;
use jmt::KeyHash;
use std::sync::Arc;
use std::sync::Mutex;
use tranche_types::commonware_codec::{Encode, Write};
use tranche_types::{
    AssetId, BoundedVec, ChainId, ClaimTopic, Did, DocumentName, Hash, OrgId, PublicKey, RequestId,
    Stake, TokenId, Units, WalletAddress, TRUSTED_ISSUERS_MAX, WALLET_HOLDS_MAX,
};

pub use crate::records::*;
use crate::stored::tree_error;

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
            /// What the tree sees when it is up to date with this state.
            fn seen_now(&self) -> Seen {
                let [p, c, pc] = self.singletons();
                Seen {
                    $( $name: self.$name.clone(), )*
                    singletons: [p.1, c.1, pc.1],
                }
            }

            /// The parameters and committees, each with its encoding.
            fn singletons(&self) -> [(&'static str, Vec<u8>); 3] {
                [
                    ("params", self.params.encode().to_vec()),
                    ("committee", self.committee.encode().to_vec()),
                    ("previous_committee", self.previous_committee.encode().to_vec()),
                ]
            }

            /// Brings the tree up to date with the tables and returns its
            /// root, under the lock `auth` already holds.
            fn bring_up_to_date(&self, auth: &mut Auth) -> [u8; 32] {
                let mut rows = Vec::new();
                $(
                    changed_rows(stringify!($name), &auth.seen.$name, &self.$name, &mut rows);
                    auth.seen.$name = self.$name.clone();
                )*
                let mut changes: Vec<(KeyHash, Option<Vec<u8>>)> = rows
                    .into_iter()
                    .map(|r| (key_hash(r.table, &r.key), r.value))
                    .collect();
                for (i, (name, bytes)) in self.singletons().into_iter().enumerate() {
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

            /// Every record of the state as a row (table, key, value), for a
            /// store that keeps the state record by record.
            pub fn rows(&self) -> Vec<Row> {
                let mut out = Vec::new();
                $( for (k, v) in &self.$name {
                    out.push(Row {
                        table: stringify!($name),
                        key: encoded(k),
                        value: Some(encoded(v)),
                    });
                } )*
                for (name, bytes) in self.singletons() {
                    out.push(Row { table: name, key: Vec::new(), value: Some(bytes) });
                }
                out
            }

            /// The rows that differ between `earlier` and this state: what a
            /// store that holds `earlier` writes (a `None` value: deleted) to
            /// hold this one. Costs what changed: subtrees the two states
            /// share are skipped.
            pub fn changes_since(&self, earlier: &State) -> Vec<Row> {
                let mut out = Vec::new();
                $( changed_rows(stringify!($name), &earlier.$name, &self.$name, &mut out); )*
                for ((name, now), (_, then)) in self.singletons().into_iter().zip(earlier.singletons()) {
                    if now != then {
                        out.push(Row { table: name, key: Vec::new(), value: Some(now) });
                    }
                }
                out
            }

            /// The state a store's rows hold (any order), with the derived
            /// indexes rebuilt. Refuses a row of no table, one that does not
            /// decode, and a state without its parameters and committees.
            pub fn from_rows<'r>(
                rows: impl IntoIterator<Item = (&'r str, &'r [u8], &'r [u8])>,
            ) -> Result<State, tranche_types::DecodeError> {
                let mut state = crate::stored::StateRows::default();
                for (table, key, value) in rows {
                    state.row(table, key, value)?;
                }
                state.finish()
            }

            /// Moves `other`'s records into this state (tables this one
            /// has none of move whole); `other`'s singletons are not taken.
            pub(crate) fn absorb_tables(&mut self, other: State) {
                $(
                    if self.$name.is_empty() {
                        self.$name = other.$name;
                    } else {
                        self.$name.extend(other.$name);
                    }
                )*
            }

            /// Decodes one stored row into its table; returns which of the
            /// singletons (bit 0 params, 1 committee, 2 previous committee)
            /// it was, if one.
            pub(crate) fn put_row(
                &mut self,
                table: &str,
                key: &[u8],
                value: &[u8],
            ) -> Result<u8, tranche_types::DecodeError> {
                let bad = |e: ProofRequestError| tranche_types::DecodeError {
                    what: "state row",
                    reason: format!("{table}: {e}"),
                };
                match table {
                    $( stringify!($name) => {
                        let k: $k = decode_key(key).map_err(bad)?;
                        let v: $v = decode_key(value).map_err(bad)?;
                        self.$name.insert(k, v);
                        Ok(0)
                    } )*
                    "params" => {
                        self.params = decode_value(value).map_err(bad)?;
                        Ok(1)
                    }
                    "committee" => {
                        self.committee = decode_value(value).map_err(bad)?;
                        Ok(2)
                    }
                    "previous_committee" => {
                        self.previous_committee = decode_value(value).map_err(bad)?;
                        Ok(4)
                    }
                    other => Err(tranche_types::DecodeError {
                        what: "state row",
                        reason: format!("no table {other:?}"),
                    }),
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
    /// The last audit-log anchor of each organisation.
    audit_anchors: OrgId => AuditAnchor;
    /// Offerings.
    offerings: RequestId => Offering;
    /// Subscriptions by (offering, number).
    subscriptions: (RequestId, u64) => Subscription;
    /// Units subscribed by (offering, investor identity).
    investor_units: (RequestId, Did) => Units;
    /// Asset ownership as registries attested it.
    ownerships: AssetId => Ownership;
    /// Funded distributions.
    distribution_funds: RequestId => DistributionFunds;
    /// Wallets whose money only the ledger's rules move (offerings'
    /// escrows, distributions' pools), by the offering or distribution.
    escrows: WalletAddress => RequestId;
    /// The AML policy's versions (F6-1).
    aml_policies: u32 => AmlPolicyVersion;
    /// Tokens' replaced rules by (token, version).
    rule_versions: (TokenId, u32) => RuleVersion;
    /// The claim issuers a token trusts, by (token, topic).
    trusted_issuers: (TokenId, ClaimTopic) => BoundedVec<OrgId, TRUSTED_ISSUERS_MAX>;
    /// Tokens' documents by (token, name).
    documents: (TokenId, DocumentName) => Document;
    /// Tokens' document changes by (token, number).
    document_history: (TokenId, u64) => DocumentChange;
    /// Outstanding transfer pre-approvals by (token, from, to, amount): how many.
    transfer_approvals: (TokenId, WalletAddress, WalletAddress, Units) => u32;
    /// Ballots of token holders.
    ballots: RequestId => Ballot;
    /// Votes by (ballot, wallet).
    ballot_votes: (RequestId, WalletAddress) => Vote;
    /// Holds.
    holds: RequestId => Hold;
    /// Each wallet's open holds of a token, oldest first.
    wallet_holds: (TokenId, WalletAddress) => BoundedVec<RequestId, WALLET_HOLDS_MAX>;
    /// Settlement instructions.
    instructions: RequestId => Instruction;
    /// Units locked up by their issuance allocation, by (token, wallet).
    lockups: (TokenId, WalletAddress) => Lockup;
    /// Units each identity sent of a limited token, by (token, DID, day
    /// since 1970); days older than the longest period are dropped.
    sent_by_day: (TokenId, Did, u32) => Units;
    /// How many wallets of each identity hold each token (none: not kept).
    identity_holdings: (TokenId, Did) => u32;
    /// Identities the token's agent exempted from its limits.
    limit_exemptions: (TokenId, Did) => bool;
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

/// One record of the state as a store keeps it: its table, its key's and
/// its value's canonical bytes (`None`: the record is gone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The table (`balances`, `params`, ...).
    pub table: &'static str,
    /// The key's canonical bytes (empty for params and committees).
    pub key: Vec<u8>,
    /// The value's canonical bytes, or `None` if the record was removed.
    pub value: Option<Vec<u8>>,
}

fn encoded(x: &impl Write) -> Vec<u8> {
    let mut out = Vec::new();
    x.write(&mut out);
    out
}

/// Adds to `out` each record of `table` that differs between `earlier` and
/// `now`, with its new value or `None` if it is gone. Subtrees the two maps
/// share are skipped without being visited.
fn changed_rows<K: Ord + Clone + Write, V: Clone + PartialEq + Write>(
    table: &'static str,
    earlier: &Table<K, V>,
    now: &Table<K, V>,
    out: &mut Vec<Row>,
) {
    for item in earlier.diff(now) {
        match item {
            DiffItem::Add(k, v) | DiffItem::Update { new: (k, v), .. } => out.push(Row {
                table,
                key: encoded(k),
                value: Some(encoded(v)),
            }),
            DiffItem::Remove(k, _) => out.push(Row {
                table,
                key: encoded(k),
                value: None,
            }),
        }
    }
}

fn decode_value<T: Read<Cfg = ()>>(bytes: &[u8]) -> Result<T, ProofRequestError> {
    let mut buf = tranche_types::commonware_codec::Copying(bytes);
    let v = T::read_cfg(&mut buf, &()).map_err(|e| ProofRequestError::BadKey(e.to_string()))?;
    if !buf.0.is_empty() {
        return Err(ProofRequestError::BadKey(format!(
            "{} bytes after the value",
            buf.0.len()
        )));
    }
    Ok(v)
}

/// A state's Merkle tree as of some version, for a store: the nodes its
/// checkpoint writes.
#[derive(Clone)]
pub struct StateTree(pub(crate) Authenticated);

impl std::fmt::Debug for StateTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateTree")
            .field("version", &self.0.version())
            .field("nodes_in_memory", &self.0.node_count())
            .finish()
    }
}

impl StateTree {
    /// The tree's version.
    pub fn version(&self) -> u64 {
        self.0.version().unwrap_or(0)
    }

    /// The tree's root.
    pub fn root(&self) -> [u8; 32] {
        self.0.root()
    }

    /// The nodes the store's last checkpoint does not hold: what a
    /// checkpoint of this tree writes. Every node, for a tree whose store
    /// holds no checkpoint it descends from (or that has no store).
    pub fn unstored(&self) -> Vec<NodeRow> {
        self.0.unstored_nodes()
    }

    /// Whether every node is in memory, none only in a store: then
    /// [`Self::unstored`] is the whole tree.
    pub fn whole(&self) -> bool {
        self.0.whole()
    }

    /// Whether `store` is the store the tree reads what is not in memory
    /// from: only then does [`Self::unstored`] complete that store.
    pub fn kept_in(&self, store: &Arc<dyn TreeStore>) -> bool {
        self.0.kept_in(store)
    }

    /// The nodes that left the tree since they were last deleted (rows
    /// with `None`): a checkpoint made after this one deletes them. Only
    /// those of version `through` or earlier (all with `None`): a node
    /// written after the last checkpoint that can hold it and gone before
    /// the next was never stored, and deleting it is wasted work (most of
    /// a block's gone nodes are the block before's).
    pub fn gone(&self, through: Option<u64>) -> Vec<NodeRow> {
        self.0.gone_nodes(through)
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

    /// The Merkle tree brought up to date, and a copy of it (O(1)).
    fn tree_now(&self) -> Authenticated {
        let mut auth = lock(&self.auth);
        self.bring_up_to_date(&mut auth);
        auth.tree.clone()
    }

    /// The state's Merkle tree, brought up to date (a copy: O(1)), for a
    /// store to write what changed in it since the tree it holds.
    pub fn tree(&self) -> StateTree {
        StateTree(self.tree_now())
    }

    /// This state (decoded from a store's records) with the Merkle tree the
    /// store kept (`stored`, an earlier version) and the records changed
    /// since it (`dirty`: table and key). The tree is brought up to date
    /// from the dirty records alone — a restart does not hash the whole
    /// state again — and returned as it was stored too, for the store's
    /// next write. Debug builds rebuild the tree from every record as well
    /// and refuse a stored tree that does not agree.
    pub fn with_stored_tree<'r>(
        self,
        stored: StateTree,
        dirty: impl IntoIterator<Item = (&'r str, &'r [u8])>,
    ) -> Result<(State, StateTree), tranche_types::DecodeError> {
        let state = self;
        let mut changes = Vec::new();
        for (table, key) in dirty {
            let value = state
                .record(table, key)
                .map_err(|e| tree_error(format!("a changed record: {e}")))?;
            changes.push((key_hash(table, key), value));
        }
        let mut tree = stored.0.clone();
        tree.update(changes);
        if cfg!(debug_assertions) && state.clone().tree_now().root() != tree.root() {
            return Err(tree_error(
                "the stored tree and changes are not the tree of the stored records".into(),
            ));
        }
        *lock(&state.auth) = Auth {
            seen: state.seen_now(),
            tree,
        };
        Ok((state, stored))
    }

    /// From now on, the Merkle tree's nodes are read from `store` once its
    /// checkpoints hold them, and no longer kept in memory (see
    /// [`TreeStore`]). A tree that has a store keeps it.
    pub fn keep_tree_in(&self, store: Arc<dyn TreeStore>) {
        lock(&self.auth).tree.keep_in(store);
    }

    /// This state (decoded from the records of `store`'s checkpoint) with
    /// the Merkle tree the checkpoint holds, read from the store as it is
    /// needed. Debug builds rebuild the tree from every record as well and
    /// refuse a stored tree that does not agree.
    pub fn with_tree_in(
        self,
        store: Arc<dyn TreeStore>,
    ) -> Result<(State, StateTree), tranche_types::DecodeError> {
        let tree = Authenticated::in_store(store).map_err(tree_error)?;
        if cfg!(debug_assertions) && self.clone().tree_now().root() != tree.root() {
            return Err(tree_error(
                "the stored tree is not the tree of the stored records".into(),
            ));
        }
        *lock(&self.auth) = Auth {
            seen: self.seen_now(),
            tree: tree.clone(),
        };
        Ok((self, StateTree(tree)))
    }

    /// How many nodes of the Merkle tree are in memory (for measurements).
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
    bool,
    OrgId,
    PublicKey,
    Hash,
    u32,
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
    Equivocation,
    AuditAnchor,
    Offering,
    Subscription,
    DistributionFunds,
    Ownership,
    AmlPolicyVersion,
    DocumentName,
    RuleVersion,
    Document,
    DocumentChange,
    BoundedVec<OrgId, TRUSTED_ISSUERS_MAX>,
    Ballot,
    Vote,
    Hold,
    BoundedVec<RequestId, WALLET_HOLDS_MAX>,
    Instruction,
    Lockup
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

impl<A: ReadPlain, B: ReadPlain, C: ReadPlain, D: ReadPlain> ReadPlain for (A, B, C, D) {
    fn read_plain(buf: &mut impl tranche_types::commonware_codec::Buf) -> Result<Self, CodecError> {
        Ok((
            A::read_plain(buf)?,
            B::read_plain(buf)?,
            C::read_plain(buf)?,
            D::read_plain(buf)?,
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
