//! The integration tests, one binary: a module per area (each links the SDK, the driver,
//! reqwest and hickory once, not once per file).

mod common;

mod dns;
mod faults;
mod fidelity;
mod launcher;
