//! Shared helpers for the end-to-end suites in `tests/`: finding the provisioned driver, starting the emulator.
//!
//! The suites themselves live in `tests/it/`. They need the driver stack that `cargo xtask setup` provisions;
//! `cargo xtask test` sets the environment they read.
#![forbid(unsafe_code)]
