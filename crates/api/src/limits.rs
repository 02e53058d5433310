//! Limits of the node API, the same for the node that enforces them and the
//! clients that stay within them.

/// The largest request body accepted (a signed transaction is far smaller).
pub const BODY_BYTES_MAX: usize = 256 * 1024;
/// The most transactions one batch submission carries.
pub const BATCH_TXS_MAX: usize = 1000;
/// The largest batch submission body.
pub const BATCH_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The most transfers one query returns.
pub const TRANSFERS_MAX: usize = 1000;
/// The transfers one query returns when it names no limit.
pub const TRANSFERS_DEFAULT: usize = 100;
/// The most subscriptions one answer about an offering lists.
pub const OFFERING_ENTRIES_MAX: usize = 1000;
