//! The ledger tests' world: the testkit's, shared with other crates' tests.
#![allow(unused_imports)]

pub use tranche_testkit::key;
pub use tranche_testkit::world::*;
