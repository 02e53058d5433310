//! A state read back from a store: its records and its Merkle tree's
//! nodes decoded one by one, as the store's iterator yields them, so that
//! no copy of every row is made first (at a million holders the copies
//! were gigabytes).

use crate::state::{State, StateTree};

/// A state read from a store row by row, in any order: what
/// [`State::from_rows`] does, for a reader whose rows live only for one
/// step (a store's iterator), so that no copy of every row is made first.
#[derive(Debug, Default)]
pub struct StateRows {
    state: State,
    singletons: u8,
}

impl StateRows {
    /// Decodes one row (table, key, value) into the state.
    pub fn row(
        &mut self,
        table: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), tranche_types::DecodeError> {
        self.singletons |= self.state.put_row(table, key, value)?;
        Ok(())
    }

    /// The rows `other` read beside these (rows of other tables, or
    /// other rows of the same: read on another thread), taken in.
    pub fn merge(mut self, other: StateRows) -> StateRows {
        if other.singletons & 1 != 0 {
            self.state.params = other.state.params.clone();
        }
        if other.singletons & 2 != 0 {
            self.state.committee = other.state.committee.clone();
        }
        if other.singletons & 4 != 0 {
            self.state.previous_committee = other.state.previous_committee.clone();
        }
        self.singletons |= other.singletons;
        self.state.absorb_tables(other.state);
        self
    }

    /// The state, with the derived indexes rebuilt. Refuses a state without
    /// its parameters and committees.
    pub fn finish(self) -> Result<State, tranche_types::DecodeError> {
        if self.singletons != 7 {
            return Err(tranche_types::DecodeError {
                what: "state row",
                reason: "the parameters or committees are missing".into(),
            });
        }
        let mut s = self.state;
        for (org, o) in &s.orgs {
            s.org_by_key.insert(o.key, org.clone());
        }
        // In two passes, every other wallet first: its DIDs come in
        // about their order, and a persistent map filled in order keeps
        // its leaves half full (the store's reader does the same).
        for pass in 0..2 {
            for (w, d) in s.wallets.iter().skip(pass).step_by(2) {
                s.did_wallets.insert((d.clone(), *w), ());
            }
        }
        Ok(s)
    }
}

/// A state's Merkle tree read from a store node by node, in any order (see
/// [`StateRows`]).
#[derive(Default)]
pub struct StateTreeNodes(crate::auth::NodesRead);

impl std::fmt::Debug for StateTreeNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateTreeNodes")
            .field("nodes", &self.0.len())
            .finish()
    }
}

impl StateTreeNodes {
    /// Decodes one node (its key's and its own encodings).
    pub fn node(&mut self, key: &[u8], node: &[u8]) -> Result<(), tranche_types::DecodeError> {
        self.0.node(key, node).map_err(tree_error)
    }

    /// The tree at `version`. Refuses a version without a root among the
    /// nodes.
    pub fn finish(self, version: u64) -> Result<StateTree, tranche_types::DecodeError> {
        self.0.finish(version).map(StateTree).map_err(tree_error)
    }
}

pub(crate) fn tree_error(reason: String) -> tranche_types::DecodeError {
    tranche_types::DecodeError {
        what: "state tree",
        reason,
    }
}
