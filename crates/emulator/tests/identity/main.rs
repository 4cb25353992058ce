//! Tests of the emulator's identity half: token service, managed-identity endpoints, fault knobs, token
//! validation. Requests go over real sockets (HTTPS with the emulator's test CA) with a small hyper client.

// azure_core and azure_identity option structs are set field by field, as their own docs do.
#![allow(clippy::field_reassign_with_default)]

mod authority;
mod azure;
mod binary;
mod client;
mod driver;
mod faults;
mod hygiene;
mod msi;
mod namespace;
mod sts;

use mssql_entra_emulator::Emulator;

/// Starts an emulator with the demo directory on the current runtime.
pub async fn start() -> Emulator {
    Emulator::builder()
        .start()
        .await
        .expect("the emulator starts")
}

/// The demo app's client id.
pub const DEMO_APP: &str = "00000000-0000-4000-8000-0000000a0001";
/// The demo system-assigned identity's client id.
pub const DEMO_MI: &str = "00000000-0000-4000-8000-0000000c0001";
/// The demo user-assigned identity's client id and object id.
pub const DEMO_UAMI: &str = "00000000-0000-4000-8000-0000000c0002";
pub const DEMO_UAMI_OBJECT: &str = "00000000-0000-4000-8000-0000000d0002";
