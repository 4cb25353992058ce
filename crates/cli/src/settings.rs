//! Where the settings come from: `--settings FILE`, `--env`, or (for `token`) `--source …` flags.

use std::path::PathBuf;

use clap::Args;
use mssql_entra::{Plan, Settings};

use crate::exit::{Class, Failure};

/// The prefix of the environment variables `--env` reads (`MSSQL_ENTRA_HOST`, …).
pub(crate) const DEFAULT_ENV_PREFIX: &str = "MSSQL_ENTRA";

/// `--settings FILE | --env [--env-prefix P]`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SettingsArgs {
    /// A settings file, `.toml` or `.json`, in the shape of mssql-django's DATABASES entry
    /// (NAME, HOST, PORT, USER, PASSWORD_ENV, TOKEN, OPTIONS).
    #[arg(long, value_name = "FILE", conflicts_with = "env")]
    pub(crate) settings: Option<PathBuf>,
    /// Read the settings from environment variables instead: MSSQL_ENTRA_HOST, MSSQL_ENTRA_NAME,
    /// MSSQL_ENTRA_TOKEN_SOURCE, … (see --env-prefix).
    #[arg(long)]
    pub(crate) env: bool,
    /// The prefix of the variables --env reads.
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_ENV_PREFIX, requires = "env")]
    pub(crate) env_prefix: String,
}

impl SettingsArgs {
    /// Whether `--settings` or `--env` was given.
    pub(crate) fn given(&self) -> bool {
        self.settings.is_some() || self.env
    }

    /// Loads and validates the settings.
    pub(crate) fn load(&self) -> Result<Settings, Failure> {
        let loaded = match (&self.settings, self.env) {
            (Some(path), _) => Settings::from_file(path),
            (None, true) => Settings::from_env(&self.env_prefix),
            (None, false) => {
                return Err(Failure::new(
                    Class::Usage,
                    format!("no settings given; pass --settings FILE (a .toml or .json file) or --env (reads {}_* variables)", self.env_prefix),
                ))
            }
        };
        loaded.map_err(|e| Failure::from_facade(&e))
    }

    /// Loads the settings and resolves them into a plan (secrets read from the environment, the
    /// token source built, the connection string built and validated). No network I/O.
    pub(crate) fn plan(&self) -> Result<Plan, Failure> {
        self.load()?.resolve().map_err(|e| Failure::from_facade(&e))
    }
}
