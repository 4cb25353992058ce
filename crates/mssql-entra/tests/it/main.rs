//! Facade tests: settings parsing (TOML, Django JSON, environment), impossible combinations,
//! secrets kept out of Debug and errors, resolution of each mode to its plan (pure, no network),
//! features that are not compiled in, and the pool's wiring against the real driver (127.0.0.1 only).

mod combos;
mod driver;
mod emulator;
mod features;
mod parse;
mod resolve;
mod secrets;
mod support;
