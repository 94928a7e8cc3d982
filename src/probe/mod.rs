//! The probe: from the target to a working command, stage by stage, each bounded, each failure
//! turned into a diagnosis: `target` (what to connect to), `dns`, `tcp`, `tls` (with a hello,
//! see `wire`), `auth` (the official driver with MONGODB-AWS) and `command`.

pub(crate) mod auth;
pub(crate) mod command;
pub mod dns;
pub(crate) mod network;
pub(crate) mod roundtrip;
pub mod target;
pub(crate) mod tcp;
pub(crate) mod tls;
pub mod wire;

pub use target::{target, Destination, HostPort, DEFAULT_PORT};
