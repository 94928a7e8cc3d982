//! The integration tests, one binary: a module per area (each links the SDK, the driver,
//! reqwest and hickory once, not once per file).

mod common;

mod atlas;
mod aws;
mod connection_strings;
mod environments;
mod everyday;
mod inputs;
mod lambda;
mod no_panic;
mod probe;
mod roundtrip;
mod schema;
mod seedlist;
mod sweep;
mod trust;
mod uri_roundtrip;
