//! Project automation: `cargo xtask <command>`. See `cargo xtask help`.
#![forbid(unsafe_code)]

fn main() -> anyhow::Result<()> {
    anyhow::bail!("no xtask commands yet")
}
