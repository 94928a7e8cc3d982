//! The probe: from the target to a working command, stage by stage, each bounded, each failure
//! turned into a diagnosis: `target` (what to connect to), `dns`, `tcp`, `tls` (with a hello,
//! see `wire`), `auth` (the official driver with MONGODB-AWS) and `command`.

pub mod auth;
pub mod command;
pub mod dns;
pub mod roundtrip;
pub mod target;
pub mod tcp;
pub mod tls;
pub mod wire;

pub use target::{target, Destination, HostPort, DEFAULT_PORT};
