//! Defines the node API's edge: its error codes with their HTTP statuses,
//! its limits, and the wire types clients and role services share, with no
//! dependency on the chain (only on `tranche-types`).
//!
//! Every code maps to one status and one meaning; codes never change
//! meaning once released.

pub mod block_binary;
mod error;
pub mod freeze;
mod limits;
pub mod node;
pub mod packing;
pub mod report;
pub mod report_binary;
pub mod token_admin;
pub mod travel;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
mod stream;
#[cfg(feature = "server")]
pub mod tls;

pub use error::{ErrorBody, ErrorCode};
pub use limits::*;
