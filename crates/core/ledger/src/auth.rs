//! The state's authentication: every record of the state is a leaf of a
//! Jellyfish Merkle tree (a sparse Merkle tree over the hashes of the
//! records' keys), and the state root is that tree's root bound to the
//! chain.
//!
//! The tree is updated from what changed since it was last brought up to
//! date, found by comparing each table with the copy taken then: the
//! tables are persistent maps sharing every untouched subtree with that
//! copy, so the comparison skips them, and bringing the tree up to date
//! costs what the changes cost (times log N), not what the state holds.
//! The root depends only on the records, never on the order they were
//! written in or on when the tree was brought up to date.
//!
//! The tree holds hashes only; values are read from the tables. A proof
//! of one record (its presence with its value, or its absence) is checked
//! against a state root with [`StateProof::verify`], without the state.

use crate::tree_key::PackedKey;
use crate::tree_nodes::{decode_node, Nodes, TreeStore};
use jmt::proof::SparseMerkleProof;
use jmt::storage::TreeUpdateBatch;
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, RootHash, Version};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tranche_types::{ChainId, Hash};

/// The tree's hash: SHA-256, like every other hash of the chain.
pub(crate) type Tree<'a, R> = JellyfishMerkleTree<'a, R, Sha256>;

/// The tree as of the last time it was brought up to date.
#[derive(Clone, Default)]
pub(crate) struct Authenticated {
    nodes: Nodes,
    /// The version last written (each update writes the next one).
    version: Option<Version>,
    /// The tree's root (the empty tree's before the first update).
    root: Option<RootHash>,
}

/// The key hash of the record `key` (canonical bytes) of table `table`.
pub fn key_hash(table: &str, key: &[u8]) -> KeyHash {
    let mut h = Sha256::new();
    h.update(b"tranche/state/v2/");
    h.update((table.len() as u64).to_be_bytes());
    h.update(table.as_bytes());
    h.update(key);
    KeyHash(h.finalize().into())
}

/// The state root of a chain whose tree has root `tree_root`.
pub fn state_root(chain_id: &ChainId, tree_root: &[u8; 32]) -> Hash {
    let mut h = Sha256::new();
    h.update(b"tranche/state/v2");
    h.update(chain_id.as_str().as_bytes());
    h.update([0]);
    h.update(tree_root);
    Hash(h.finalize().into())
}

/// A broken tree is a broken invariant: the nodes are only ever written by
/// the tree itself.
fn intact<T>(result: anyhow::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("the state's Merkle tree is inconsistent: {e:#}"))
}

impl Authenticated {
    /// The tree's root now.
    pub(crate) fn root(&self) -> [u8; 32] {
        self.root.unwrap_or(Tree::<Nodes>::EMPTY_ROOT).0
    }

    /// Writes `changes` (key hash, new value or `None` for removed) into the
    /// tree, one version further, and drops the nodes that no longer belong
    /// to it (no query reads an earlier version).
    ///
    /// Removals go in first, key by key; then the writes in one batch,
    /// which hashes each internal node it touches once, where writing key
    /// by key rehashes the whole path for every key (a block's writes
    /// share most of their paths). Each of the two is a version of its own;
    /// the root depends only on the records, not on how they went in. The
    /// writes read the removals' nodes from their batch, so the nodes that
    /// only the removals' version had never enter the map.
    pub(crate) fn update(&mut self, changes: Vec<(KeyHash, Option<OwnedValue>)>) {
        // The first update is written even if empty, so that a version (and
        // a root node to prove absences from) always exists after it.
        if changes.is_empty() && self.version.is_some() {
            return;
        }
        let (writes, removals): (Vec<_>, Vec<_>) =
            changes.into_iter().partition(|(_, v)| v.is_some());
        let first = self.version.map_or(0, |v| v + 1);
        let removed = (!removals.is_empty() || (writes.is_empty() && self.version.is_none()))
            .then(|| intact(Tree::new(&self.nodes).put_value_set(removals, first)));
        let writes: Vec<(KeyHash, OwnedValue)> = writes
            .into_iter()
            .filter_map(|(key, value)| Some((key, value?)))
            .collect();
        if writes.is_empty() {
            let (root, batch) = removed.expect("removals, or the first update");
            self.merge(None, root, &batch, first);
            return;
        }
        match removed {
            None => {
                let (root, batch) = intact(put_writes(&Tree::new(&self.nodes), writes, first));
                self.merge(None, root, &batch, first);
            }
            Some((_, earlier)) => {
                let reader = Layered {
                    top: earlier.node_batch.nodes(),
                    base: &self.nodes,
                };
                let (root, batch) = intact(put_writes(&Tree::new(&reader), writes, first + 1));
                self.merge(Some((&earlier, first)), root, &batch, first + 1);
            }
        }
    }

    /// Takes the tree to `version`, whose root is `root`: the nodes `batch`
    /// wrote go in, those it made stale go out; with `earlier`, the batch
    /// of the version before it (not yet in the map), whose nodes go in
    /// unless `batch` made them stale.
    fn merge(
        &mut self,
        earlier: Option<(&TreeUpdateBatch, Version)>,
        root: RootHash,
        batch: &TreeUpdateBatch,
        version: Version,
    ) {
        let stale = &batch.stale_node_index_batch;
        if let Some((e, e_version)) = earlier {
            let gone: std::collections::HashSet<PackedKey> = stale
                .iter()
                .filter(|s| s.node_key.version() == e_version)
                .map(|s| PackedKey::of(&s.node_key))
                .collect();
            // Its root is the one the writes replaced (a null root, left
            // by removing everything, is not marked stale: see below).
            let e_root = PackedKey::root(e_version);
            for (key, node) in e.node_batch.nodes() {
                let key = PackedKey::of(key);
                if !gone.contains(&key) && key != e_root {
                    self.nodes.insert(key, node);
                }
            }
            for s in &e.stale_node_index_batch {
                self.nodes.remove(&PackedKey::of(&s.node_key));
            }
        }
        for (key, node) in batch.node_batch.nodes() {
            self.nodes.insert(PackedKey::of(key), node);
        }
        for s in stale {
            if earlier.is_none_or(|(_, v)| s.node_key.version() != v) {
                self.nodes.remove(&PackedKey::of(&s.node_key));
            }
        }
        // The tree marks the last root stale, except an empty tree's null
        // root, which a write into the empty tree leaves behind.
        if let Some(last) = self.version {
            self.nodes.remove(&PackedKey::root(last));
        }
        self.version = Some(version);
        self.root = Some(root);
        self.nodes.reached(version, root.0);
    }

    /// The proof of the record `key_hash` whose value is `value` (absent:
    /// `None`), against the tree's root now. Call after [`Self::update`].
    pub(crate) fn prove(
        &self,
        key_hash: KeyHash,
        value: Option<Vec<u8>>,
    ) -> SparseMerkleProof<Sha256> {
        let version = self
            .version
            .expect("the tree is brought up to date before it proves anything");
        let reader = WithValue {
            nodes: &self.nodes,
            key_hash,
            value,
        };
        intact(Tree::new(&reader).get_with_proof(key_hash, version)).1
    }

    /// How many nodes the tree holds in memory.
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.in_memory_count()
    }

    /// The version last written.
    pub(crate) fn version(&self) -> Option<Version> {
        self.version
    }

    /// The nodes a store's checkpoint of this tree writes: those its last
    /// checkpoint does not hold, encoded.
    pub(crate) fn unstored_nodes(&self) -> Vec<NodeRow> {
        self.nodes.unstored()
    }

    /// Whether `store` is the store the tree reads from.
    pub(crate) fn kept_in(&self, store: &Arc<dyn TreeStore>) -> bool {
        self.nodes.kept_in(store)
    }

    /// Whether every node is in memory (none only in a store).
    pub(crate) fn whole(&self) -> bool {
        self.nodes.whole()
    }

    /// The nodes of version `through` or earlier (all with `None`) that
    /// left the tree, for a store to delete (`None` rows).
    pub(crate) fn gone_nodes(&self, through: Option<Version>) -> Vec<NodeRow> {
        self.nodes.gone(through)
    }

    /// From now on, nodes are read from `store` once its checkpoints hold
    /// them (see [`crate::tree_nodes`]).
    pub(crate) fn keep_in(&mut self, store: Arc<dyn TreeStore>) {
        self.nodes.keep_in(store);
    }

    /// The tree `store`'s last checkpoint holds, its nodes read from the
    /// store as they are needed.
    pub(crate) fn in_store(store: Arc<dyn TreeStore>) -> Result<Authenticated, String> {
        let (version, root) = store
            .checkpoint()
            .ok_or("the store holds no checkpoint of the tree")?;
        let tree = Authenticated::at(Nodes::in_store(store), version)?;
        if tree.root() != root {
            return Err(format!(
                "the stored tree's root at version {version} is not the checkpoint's"
            ));
        }
        Ok(tree)
    }

    /// The tree `nodes` hold at `version`. Refuses a version without a
    /// root among them.
    fn at(mut nodes: Nodes, version: Version) -> Result<Authenticated, String> {
        let root = root_at(&nodes, version)?
            .ok_or_else(|| format!("no root of the tree at version {version}"))?;
        nodes.reached(version, root.0);
        Ok(Authenticated {
            nodes,
            version: Some(version),
            root: Some(root),
        })
    }
}

/// The root of the tree `reader` reads at `version`, if it has one there.
pub(crate) fn root_at(
    reader: &impl TreeReader,
    version: Version,
) -> Result<Option<RootHash>, String> {
    Tree::new(reader)
        .get_root_hash_option(version)
        .map_err(|e| format!("the tree's root: {e}"))
}

/// A tree's nodes read from a store one by one, in any order.
#[derive(Default)]
pub(crate) struct NodesRead(imbl::OrdMap<PackedKey, Arc<[u8]>>);

impl NodesRead {
    /// Decodes one node (its key's and its own encodings).
    pub(crate) fn node(&mut self, key: &[u8], node: &[u8]) -> Result<(), String> {
        let key = PackedKey::decode(key)?;
        // Checked whole here, so that a damaged store is refused on start
        // rather than found by the tree in the middle of a block.
        decode_node(node).map_err(|e| format!("a tree node: {e}"))?;
        self.0.insert(key, Arc::from(node));
        Ok(())
    }

    /// How many nodes were read.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The tree the nodes hold at `version`. Refuses a version without a
    /// root among them.
    pub(crate) fn finish(self, version: Version) -> Result<Authenticated, String> {
        Authenticated::at(Nodes::in_memory(self.0), version)
    }
}

/// A tree node as a store keeps it: its key's and its own encodings
/// (`None`: the node is gone).
pub type NodeRow = (Vec<u8>, Option<Vec<u8>>);

/// The tree's nodes with the one value a proof asks for.
struct WithValue<'a> {
    nodes: &'a Nodes,
    key_hash: KeyHash,
    value: Option<Vec<u8>>,
}

impl TreeReader for WithValue<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        self.nodes.get_node_option(node_key)
    }

    fn get_value_option(
        &self,
        _: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self.value.clone().filter(|_| key_hash == self.key_hash))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Ok(None)
    }
}

/// Writes `writes` into `tree` in one batch, as version `version`.
fn put_writes<R: TreeReader>(
    tree: &Tree<'_, R>,
    writes: Vec<(KeyHash, OwnedValue)>,
    version: Version,
) -> anyhow::Result<(RootHash, TreeUpdateBatch)> {
    let (roots, batch) = tree.batch_put_value_sets(vec![writes], None, version)?;
    Ok((*roots.first().expect("one root per value set"), batch))
}

/// The tree's nodes with a batch not yet merged into them on top: what
/// the version after that batch reads.
struct Layered<'a> {
    top: &'a std::collections::BTreeMap<NodeKey, Node>,
    base: &'a Nodes,
}

impl TreeReader for Layered<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        match self.top.get(node_key) {
            Some(node) => Ok(Some(node.clone())),
            None => self.base.get_node_option(node_key),
        }
    }

    fn get_value_option(&self, _: Version, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        Ok(None)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Ok(None)
    }
}

/// A proof that one record of the state has a value, or is absent, in the
/// state whose root is `state_root`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateProof {
    /// The chain.
    pub chain_id: ChainId,
    /// The table the record is in (e.g. `balances`).
    pub table: String,
    /// The record's key, canonical bytes in hex.
    pub key: String,
    /// The record's value, canonical bytes in hex; `None` proves absence.
    pub value: Option<String>,
    /// The root of the state's tree; with the chain id it gives the state root.
    pub tree_root: Hash,
    /// The tree's proof of the record's leaf (or of its absence).
    pub proof: SparseMerkleProof<Sha256>,
}

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The key or value is not hex.
    #[error("the proof's {0} is not hex")]
    NotHex(&'static str),
    /// The tree root and chain do not give the trusted state root.
    #[error("the proof is for state root {proved}, not the trusted {trusted}")]
    WrongRoot {
        /// What the proof's tree root and chain give.
        proved: Hash,
        /// What the caller trusts.
        trusted: Hash,
    },
    /// The Merkle path does not lead from the record to the tree root.
    #[error("the Merkle proof does not hold: {0}")]
    Invalid(String),
}

impl StateProof {
    /// The record's key and value as text (`None`: proved absent).
    pub fn describe(&self) -> Result<(String, Option<String>), crate::ProofRequestError> {
        let bad = |what: &str| crate::ProofRequestError::BadKey(format!("the {what} is not hex"));
        let key = hex::decode(&self.key).map_err(|_| bad("key"))?;
        let value = self
            .value
            .as_ref()
            .map(hex::decode)
            .transpose()
            .map_err(|_| bad("value"))?;
        crate::State::describe_record(&self.table, &key, value.as_deref())
    }

    /// Checks the proof against `trusted`, a state root the caller already
    /// trusts (from its own node, or a block certified by the committee).
    /// Only the proof is used: not the node that served it.
    pub fn verify(&self, trusted: &Hash) -> Result<(), ProofError> {
        let proved = state_root(&self.chain_id, &self.tree_root.0);
        if proved != *trusted {
            return Err(ProofError::WrongRoot {
                proved,
                trusted: *trusted,
            });
        }
        let key = hex::decode(&self.key).map_err(|_| ProofError::NotHex("key"))?;
        let value = self
            .value
            .as_ref()
            .map(hex::decode)
            .transpose()
            .map_err(|_| ProofError::NotHex("value"))?;
        self.proof
            .verify(
                RootHash(self.tree_root.0),
                key_hash(&self.table, &key),
                value,
            )
            .map_err(|e| ProofError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The root and node count of the records `set`, written key by key
    /// into a new tree.
    fn key_by_key(set: &BTreeMap<u8, u8>) -> ([u8; 32], usize) {
        let nodes = Nodes::default();
        let changes = set
            .iter()
            .map(|(k, v)| (key_hash("t", &[*k]), Some(vec![*v])));
        let (root, batch) = intact(Tree::new(&nodes).put_value_set(changes, 0));
        (root.0, batch.node_batch.nodes().len())
    }

    proptest! {
        /// Whatever the updates (writes in a batch, removals key by key,
        /// several versions each), the root is the root of the records
        /// left, and every node the tree keeps is reachable.
        #[test]
        fn the_root_depends_only_on_the_records(
            blocks in proptest::collection::vec(
                proptest::collection::vec((0u8..40, proptest::option::of(0u8..3)), 0..30),
                1..8,
            )
        ) {
            let mut tree = Authenticated::default();
            let mut records = BTreeMap::new();
            for block in blocks {
                let mut changes = BTreeMap::new();
                for (k, v) in block {
                    changes.insert(k, v);
                }
                for (k, v) in &changes {
                    match v {
                        Some(v) => { records.insert(*k, *v); }
                        None => { records.remove(k); }
                    }
                }
                tree.update(
                    changes
                        .into_iter()
                        .map(|(k, v)| (key_hash("t", &[k]), v.map(|v| vec![v])))
                        .collect(),
                );
                prop_assert_eq!((tree.root(), tree.node_count()), key_by_key(&records));
                for (k, v) in &records {
                    let proof = tree.prove(key_hash("t", &[*k]), Some(vec![*v]));
                    prop_assert!(proof
                        .verify(RootHash(tree.root()), key_hash("t", &[*k]), Some(vec![*v]))
                        .is_ok());
                }
            }
            let version = tree.version().expect("written");
            let rows = tree.unstored_nodes();
            let mut read = NodesRead::default();
            for (k, n) in &rows {
                prop_assert_eq!(read.node(k, n.as_deref().expect("present")), Ok(()));
            }
            prop_assert_eq!(read.finish(version).map(|t| t.root()), Ok(tree.root()));
        }
    }

    /// Nodes are kept as the store keeps them, so a damaged one must be
    /// caught when the store is read, not when a block reaches it.
    #[test]
    fn a_damaged_node_is_refused_when_read() {
        let mut tree = Authenticated::default();
        tree.update(
            (0u8..20)
                .map(|k| (key_hash("t", &[k]), Some(vec![k])))
                .collect(),
        );
        let rows = tree.unstored_nodes();
        for (key, node) in &rows {
            let node = node.as_deref().expect("present");
            let mut read = NodesRead::default();
            assert!(
                read.node(key, &node[..node.len() - 1]).is_err(),
                "cut short"
            );
            let mut longer = node.to_vec();
            longer.push(0);
            assert!(read.node(key, &longer).is_err(), "a byte too many");
            let mut tagged = node.to_vec();
            tagged[0] = 9;
            assert!(read.node(key, &tagged).is_err(), "no such node kind");
            assert_eq!(read.len(), 0, "nothing refused is kept");
            assert_eq!(read.node(key, node), Ok(()));
        }
        let mut read = NodesRead::default();
        for (key, node) in &rows {
            read.node(key, node.as_deref().expect("present"))
                .expect("intact");
        }
        let again = read
            .finish(tree.version().expect("written"))
            .expect("a root");
        assert_eq!(again.root(), tree.root());
        assert_eq!(again.unstored_nodes(), rows, "read back byte for byte");
    }
}
