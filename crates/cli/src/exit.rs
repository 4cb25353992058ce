//! [`Failure`]: why a command failed, its exit code, and how it is reported on stderr.

use std::process::ExitCode;

use mssql_entra::lower::odbc::{DiagRecord, Diagnosis};
use serde::Serialize;

/// The failure classes, each with its own exit code (listed in `mssql-entra --help`), so that a
/// script can tell "fix the settings" from "the server refused the login". Usage errors (code 2)
/// are clap's and never reach [`Failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Class {
    /// 1: the command itself failed (standard output could not be written).
    Internal,
    /// 2: the command line asks for something impossible (clap reports most of these itself).
    Usage,
    /// 3: the settings are unreadable, incomplete or contradictory.
    Settings,
    /// 4: the token source could not produce an access token.
    Token,
    /// 5: the driver could not connect, or the server refused the login.
    Connect,
    /// 6: connected, but a statement failed.
    Query,
}

impl Class {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Class::Internal => 1,
            Class::Usage => 2,
            Class::Settings => 3,
            Class::Token => 4,
            Class::Connect => 5,
            Class::Query => 6,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Class::Internal => "error",
            Class::Usage => "usage error",
            Class::Settings => "settings error",
            Class::Token => "token error",
            Class::Connect => "connection failed",
            Class::Query => "query failed",
        }
    }
}

/// A failed command: its class, the message (with causes), and what the connector made of it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Failure {
    /// Which class, hence which exit code.
    pub(crate) class: Class,
    /// The error and its causes, one level per line.
    pub(crate) message: String,
    /// Every diagnostic record of the driver (redacted by the connector).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) records: Vec<Record>,
    /// The connector's diagnosis: what happened and the fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) diagnosis: Option<Box<DiagnosisOut>>,
}

/// A driver diagnostic record, for output.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Record {
    pub(crate) sqlstate: String,
    pub(crate) native_error: i32,
    pub(crate) message: String,
}

impl From<&DiagRecord> for Record {
    fn from(r: &DiagRecord) -> Self {
        Self {
            sqlstate: r.sqlstate.clone(),
            native_error: r.native_error,
            message: r.message.clone(),
        }
    }
}

/// A diagnosis, for output.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DiagnosisOut {
    /// The kind, as the connector names it (`LoginFailedObjectId`).
    pub(crate) kind: String,
    pub(crate) summary: String,
    pub(crate) fix: String,
    /// Where the long explanation is: `docs/troubleshooting.md#…`.
    pub(crate) see: String,
}

impl From<&Diagnosis> for DiagnosisOut {
    fn from(d: &Diagnosis) -> Self {
        Self {
            kind: format!("{:?}", d.kind),
            summary: d.summary.clone(),
            fix: d.fix.clone(),
            see: format!("docs/{}", d.anchor),
        }
    }
}

impl Failure {
    /// A failure of `class` with a plain message.
    pub(crate) fn new(class: Class, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            records: Vec::new(),
            diagnosis: None,
        }
    }

    /// Exit 1.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(Class::Internal, message)
    }

    /// A facade error, classed by what went wrong, with the connector's records and diagnosis.
    pub(crate) fn from_facade(error: &mssql_entra::Error) -> Self {
        use mssql_entra::Error as E;
        let class = match error {
            E::Parse { .. }
            | E::Invalid { .. }
            | E::MissingEnv { .. }
            | E::ReadFile { .. }
            | E::AuthModeNotEnabled { .. }
            | E::InteractiveNotWindows
            | E::ConnectionString(_) => Class::Settings,
            E::Token(_) => Class::Token,
            E::Odbc(e) => odbc_class(e),
            E::Runtime { .. } => Class::Internal,
            // The pool's errors, and anything added later: they happen while connecting.
            _ => Class::Connect,
        };
        let message = match error {
            E::Odbc(e) => format!("{error}: {}", odbc_message(e)),
            _ => chain(error),
        };
        let mut failure = Self::new(class, message);
        if let E::Odbc(e) = error {
            failure.add_odbc(e);
        }
        failure
    }

    /// A connector error, classed, with its records and diagnosis.
    pub(crate) fn from_odbc(error: &mssql_entra::lower::odbc::Error) -> Self {
        let mut failure = Self::new(odbc_class(error), odbc_message(error));
        failure.add_odbc(error);
        failure
    }

    fn add_odbc(&mut self, error: &mssql_entra::lower::odbc::Error) {
        if let Some(odbc) = error.odbc() {
            self.records = odbc.records.iter().map(Record::from).collect();
        }
        self.diagnosis = error
            .diagnosis()
            .as_ref()
            .map(|d| Box::new(DiagnosisOut::from(d)));
    }

    /// The exit code.
    pub(crate) fn code(&self) -> u8 {
        self.class.code()
    }

    /// The failure as stderr text: the message, the driver's records, the diagnosis and the fix.
    pub(crate) fn render(&self) -> String {
        let mut text = format!("{}: {}\n", self.class.label(), self.message);
        if !self.records.is_empty() {
            text.push_str("driver diagnostics:\n");
            for r in &self.records {
                text.push_str(&format!(
                    "  [{}] native={} {}\n",
                    r.sqlstate,
                    r.native_error,
                    r.message.trim_end()
                ));
            }
        }
        if let Some(d) = &self.diagnosis {
            text.push_str(&format!(
                "diagnosis: {}\nfix: {}\nsee: {}\n",
                d.summary, d.fix, d.see
            ));
        }
        text
    }

    /// Prints the failure to stderr and returns the exit code.
    pub(crate) fn report(self) -> ExitCode {
        eprint!("{}", self.render());
        ExitCode::from(self.code())
    }
}

/// The connector's error without the records and diagnosis its `Display` appends (they are
/// printed on lines of their own).
fn odbc_message(error: &mssql_entra::lower::odbc::Error) -> String {
    match error.odbc() {
        Some(f) if f.attempts > 1 => format!("{} failed after {} attempts", f.function, f.attempts),
        Some(f) => format!("{} failed", f.function),
        None => chain(error),
    }
}

fn odbc_class(error: &mssql_entra::lower::odbc::Error) -> Class {
    use mssql_entra::lower::odbc::Error as E;
    match error {
        E::Token(_) => Class::Token,
        // Refused before any I/O: the settings ask for something that cannot work.
        E::ConnectionString(_)
        | E::ProvidedInTokenMode { .. }
        | E::InteractiveNotWindows { .. } => Class::Settings,
        _ => Class::Connect,
    }
}

/// `error` and its causes, one per line (`Display` of each level shows only that level).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        // The connector's Odbc variant repeats its failure in Display; skip exact repeats.
        if !text.ends_with(&line) {
            text.push_str(&format!("\n  caused by: {line}"));
        }
        source = cause.source();
    }
    text
}
