//! Local stand-ins for atlas-iam's tests and demo (never a dependency of atlas-iam itself):
//! a MONGODB-AWS server that decides like Atlas, an STS gate in front of moto, a DNS server
//! for mongodb+srv, and the moto launcher that provisions IAM.

pub mod admin;
pub mod auth;
pub mod commands;
pub mod dns;
pub mod gate;
pub mod http;
pub mod latency;
pub mod metadata;
pub mod moto;
pub mod pki;
pub mod server;
pub mod stack;
pub mod wire;

pub use server::{AtlasConfig, DbUser, Event, Fault, IamType, LocalAtlas, Mode, ReplicaSet, Role};
pub use stack::{Account, Stack, StackOptions};
