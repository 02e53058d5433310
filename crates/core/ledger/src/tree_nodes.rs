//! The Merkle tree's nodes: those written since the last checkpoint a
//! store holds are kept in memory, the rest are read from the store when
//! the tree needs them.
//!
//! Why: a million holders' tree is about seven million nodes, and a block
//! touches a few thousand of them. Held whole, the tree took gigabytes of
//! memory and a restart read every node back before the first block; read
//! on demand, memory holds what the last checkpoints did not yet write, and
//! a restart reads only the root.
//!
//! The nodes in memory come in two generations. New nodes go into the
//! young one. Once a store's checkpoint covers every version of the old
//! generation, and this tree descends from that checkpoint's tree, the old
//! generation is dropped (the store holds each of its nodes that is still
//! in the tree) and the young one becomes old. A tree keys its nodes by
//! version and path, and a node never changes once written, so a node the
//! store holds for a version this tree shares is the node this tree has.
//!
//! Nodes that leave the tree are noted (when a store backs it) so that a
//! checkpoint deletes them from the store, one checkpoint late: a copy of
//! the state from just before the newest checkpoint may still read them.

use crate::tree_key::PackedKey;
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue, Version};
use std::sync::Arc;

/// A store holding a tree's nodes as of a checkpoint, from which the nodes
/// not in memory are read.
pub trait TreeStore: Send + Sync {
    /// The node stored under `key` (keys and nodes encoded as in
    /// [`crate::NodeRow`]), or `None`.
    fn node(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;

    /// The last checkpoint written: the tree's version and root. Every node
    /// of that tree is stored.
    fn checkpoint(&self) -> Option<(Version, [u8; 32])>;

    /// Nodes that left a tree by this version (of a tree descending from
    /// the checkpoint) are deleted from the store.
    fn deleted_through(&self) -> Option<Version>;
}

/// A node's encoding (jmt's borsh form), as the store keeps it, behind an
/// `Arc`: jmt's internal node holds sixteen child slots of 56 bytes each,
/// used or not (about 1 KB), where its encoding holds the children it has
/// (a 16-way tree's lower nodes have two to five). jmt reads a node by
/// value, so a read decodes. The `Arc` makes the map's copy-on-write,
/// which clones the entries of each map node it touches, clone pointers.
pub(crate) type Encoded = Arc<[u8]>;

/// Nodes by key, in a persistent map: a copy of the state (a block proposed
/// or verified on a parent) shares every node with its parent. Ordered by
/// version first, so the nodes a checkpoint has not written are one range.
type Map = imbl::OrdMap<PackedKey, Encoded>;

/// How many recent versions' roots a tree remembers, to tell whether it
/// descends from a checkpoint: more than a checkpoint's blocks (two versions
/// a block at most) with room for checkpoints that fall behind.
const RECENT_ROOTS: usize = 1_024;

/// The tree's nodes (see the module's documentation).
#[derive(Clone, Default)]
pub(crate) struct Nodes {
    young: Map,
    old: Map,
    /// The version the old generation was complete at.
    old_max: Option<Version>,
    gone_young: imbl::OrdSet<PackedKey>,
    gone_old: imbl::OrdSet<PackedKey>,
    gone_old_max: Option<Version>,
    /// The recent versions and their roots.
    recent: imbl::Vector<(Version, [u8; 32])>,
    store: Option<Arc<dyn TreeStore>>,
    /// Some nodes are only in the store.
    partial: bool,
}

impl Nodes {
    /// Nodes read from `store` as they are needed.
    pub(crate) fn in_store(store: Arc<dyn TreeStore>) -> Nodes {
        Nodes {
            store: Some(store),
            partial: true,
            ..Nodes::default()
        }
    }

    /// Nodes all in memory, from `map`.
    pub(crate) fn in_memory(map: Map) -> Nodes {
        Nodes {
            young: map,
            ..Nodes::default()
        }
    }

    /// From now on, nodes are noted for `store` and read from it once its
    /// checkpoints hold them. Keeps a store set before.
    pub(crate) fn keep_in(&mut self, store: Arc<dyn TreeStore>) {
        if self.store.is_none() {
            self.store = Some(store);
        }
    }

    pub(crate) fn insert(&mut self, key: PackedKey, node: &Node) {
        self.young.insert(key, Arc::from(encode_node(node)));
    }

    /// Takes `key` out of the tree.
    pub(crate) fn remove(&mut self, key: &PackedKey) {
        if self.young.remove(key).is_none() {
            self.old.remove(key);
        }
        if self.store.is_some() {
            self.gone_young.insert(*key);
        }
    }

    /// Notes that the tree is at `version` with `root`, and drops what a
    /// store's checkpoints now hold.
    pub(crate) fn reached(&mut self, version: Version, root: [u8; 32]) {
        self.recent.push_back((version, root));
        if self.recent.len() > RECENT_ROOTS {
            self.recent.pop_front();
        }
        let Some(store) = &self.store else {
            return;
        };
        // Only a tree that passed through the checkpoint's tree shares its
        // nodes; a copy on another branch keeps its own.
        let Some((through, _)) = store.checkpoint().filter(|c| self.recent.contains(c)) else {
            return;
        };
        if self.old.is_empty() || self.old_max.is_some_and(|m| m <= through) {
            self.partial |= !self.old.is_empty();
            self.old = std::mem::take(&mut self.young);
            self.old_max = Some(version);
        }
        let deleted = store.deleted_through();
        if self.gone_old.is_empty() || self.gone_old_max.zip(deleted).is_some_and(|(m, d)| m <= d) {
            self.gone_old = std::mem::take(&mut self.gone_young);
            self.gone_old_max = Some(version);
        }
    }

    /// Whether `store` is the store these nodes read from.
    pub(crate) fn kept_in(&self, store: &Arc<dyn TreeStore>) -> bool {
        self.store
            .as_ref()
            .is_some_and(|s| std::ptr::addr_eq(Arc::as_ptr(s), Arc::as_ptr(store)))
    }

    /// Whether every node is held in memory.
    pub(crate) fn whole(&self) -> bool {
        !self.partial
    }

    /// How many nodes are held in memory.
    pub(crate) fn in_memory_count(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// The nodes held in memory that the store's checkpoint does not hold
    /// (all of them if this tree does not descend from it), encoded.
    pub(crate) fn unstored(&self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let from = self
            .store
            .as_ref()
            .and_then(|s| s.checkpoint())
            .filter(|c| self.recent.contains(c))
            .map(|(v, _)| PackedKey::root(v + 1));
        let mut out = Vec::with_capacity(self.in_memory_count());
        for map in [&self.old, &self.young] {
            let nodes: Box<dyn Iterator<Item = (&PackedKey, &Encoded)>> = match &from {
                Some(from) => Box::new(map.range(*from..)),
                None => Box::new(map.iter()),
            };
            out.extend(nodes.map(|(k, n)| (k.encode(), Some(n.to_vec()))));
        }
        out
    }

    /// The nodes that left the tree, noted for the store, encoded: those
    /// of version `through` or earlier (all of them with `None`).
    pub(crate) fn gone(&self, through: Option<Version>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        // Keys order by version first: the nodes up to a version are a range.
        let end = match through.and_then(|v| v.checked_add(1)) {
            Some(after) => std::ops::Bound::Excluded(PackedKey::root(after)),
            None => std::ops::Bound::Unbounded,
        };
        let range = (std::ops::Bound::Unbounded, end);
        self.gone_old
            .range(range)
            .chain(self.gone_young.range(range))
            .map(|k| (k.encode(), None))
            .collect()
    }

    fn get(&self, key: &PackedKey) -> anyhow::Result<Option<Node>> {
        if let Some(bytes) = self.young.get(key).or_else(|| self.old.get(key)) {
            return decode_node(bytes).map(Some);
        }
        let Some(store) = &self.store else {
            return Ok(None);
        };
        decode_read(store.node(&key.encode()))
    }
}

impl TreeReader for Nodes {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        self.get(&PackedKey::of(node_key))
    }

    fn get_value_option(&self, _: Version, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        // Values live in the state's tables; updating the tree reads none.
        Ok(None)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only restoring a tree from chunks asks for it, which is never done.
        Ok(None)
    }
}

pub(crate) fn encode_node(node: &Node) -> Vec<u8> {
    borsh::to_vec(node).expect("a node encodes into memory")
}

pub(crate) fn decode_node(bytes: &[u8]) -> anyhow::Result<Node> {
    Ok(borsh::from_slice(bytes)?)
}

/// The node a store's read gave, decoded.
fn decode_read(read: Result<Option<Vec<u8>>, String>) -> anyhow::Result<Option<Node>> {
    read.map_err(|e| anyhow::anyhow!("reading a tree node from the store: {e}"))?
        .map(|bytes| decode_node(&bytes))
        .transpose()
}

/// The root hash of the tree whose nodes `node` reads (by key, encoded as
/// in [`crate::NodeRow`]) at `version`; `None` if it has no root there.
pub fn stored_root(
    node: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, String>,
    version: Version,
) -> Result<Option<[u8; 32]>, String> {
    struct Reader<F>(F);
    impl<F: Fn(&[u8]) -> Result<Option<Vec<u8>>, String>> TreeReader for Reader<F> {
        fn get_node_option(&self, key: &NodeKey) -> anyhow::Result<Option<Node>> {
            decode_read((self.0)(&PackedKey::of(key).encode()))
        }
        fn get_value_option(&self, _: Version, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
            Ok(None)
        }
        fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
            Ok(None)
        }
    }
    crate::auth::root_at(&Reader(node), version).map(|r| r.map(|r| r.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{key_hash, Authenticated};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// A store in memory that takes checkpoints as a chain store does.
    #[derive(Default)]
    struct MapStore {
        nodes: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
        checkpoint: Mutex<Option<(Version, [u8; 32])>>,
        deleted: Mutex<Option<Version>>,
    }

    impl TreeStore for MapStore {
        fn node(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
            Ok(self.nodes.lock().unwrap().get(key).cloned())
        }
        fn checkpoint(&self) -> Option<(Version, [u8; 32])> {
            *self.checkpoint.lock().unwrap()
        }
        fn deleted_through(&self) -> Option<Version> {
            *self.deleted.lock().unwrap()
        }
    }

    impl MapStore {
        /// Writes `tree` as the checkpoint, deleting the nodes `previous`
        /// (the last checkpoint's tree) no longer had.
        fn write(&self, tree: &Authenticated, previous: Option<&Authenticated>) {
            let mut nodes = self.nodes.lock().unwrap();
            let gone = previous.map(|p| p.gone_nodes(None)).unwrap_or_default();
            for (key, node) in tree.unstored_nodes().into_iter().chain(gone) {
                match node {
                    Some(node) => nodes.insert(key, node),
                    None => nodes.remove(&key),
                };
            }
            *self.checkpoint.lock().unwrap() = Some((tree.version().unwrap(), tree.root()));
            *self.deleted.lock().unwrap() = previous.and_then(Authenticated::version);
        }
    }

    fn update(tree: &mut Authenticated, changes: &[(u8, Option<u8>)]) {
        let changes: BTreeMap<u8, Option<u8>> = changes.iter().copied().collect();
        tree.update(
            changes
                .into_iter()
                .map(|(k, v)| (key_hash("t", &[k]), v.map(|v| vec![v])))
                .collect(),
        );
    }

    proptest! {
        /// A tree that reads what a store's checkpoints hold has the roots
        /// and proofs of one held whole in memory, holds fewer nodes once
        /// checkpoints cover them, and a tree read back from the last
        /// checkpoint goes on with the same roots.
        #[test]
        fn a_tree_read_from_a_store_has_the_roots_of_one_in_memory(
            blocks in proptest::collection::vec(
                proptest::collection::vec((0u8..64, proptest::option::of(0u8..3)), 1..20),
                4..40,
            ),
            every in 1usize..6,
        ) {
            let store = Arc::new(MapStore::default());
            let mut whole = Authenticated::default();
            let mut stored = Authenticated::default();
            stored.keep_in(store.clone());
            let mut previous: Option<Authenticated> = None;
            let mut records = BTreeMap::new();
            for (i, block) in blocks.iter().enumerate() {
                update(&mut whole, block);
                update(&mut stored, block);
                for (k, v) in block {
                    match v {
                        Some(v) => records.insert(*k, *v),
                        None => records.remove(k),
                    };
                }
                prop_assert_eq!(stored.root(), whole.root());
                prop_assert!(stored.node_count() <= whole.node_count() + block.len() * 70);
                if i % every == every - 1 {
                    store.write(&stored, previous.as_ref());
                    previous = Some(stored.clone());
                }
            }
            for k in 0u8..64 {
                let value = records.get(&k).map(|v| vec![*v]);
                let proof = stored.prove(key_hash("t", &[k]), value.clone());
                prop_assert!(proof
                    .verify(jmt::RootHash(whole.root()), key_hash("t", &[k]), value)
                    .is_ok());
            }
            store.write(&stored, previous.as_ref());
            let mut again = Authenticated::in_store(store.clone()).expect("the checkpoint");
            prop_assert_eq!(again.root(), whole.root());
            prop_assert_eq!(again.node_count(), 0);
            for block in blocks.iter().take(5) {
                update(&mut again, block);
                update(&mut whole, block);
                prop_assert_eq!(again.root(), whole.root());
            }
        }
    }
}
