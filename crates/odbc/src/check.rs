//! [`Connector::check`]: one login on a raw ODBC handle, reporting every diagnostic record.
//!
//! `Connector::connect` goes through odbc-api's `Environment`, which frees the connection handle of a
//! failed connect after reading only its first diagnostic record. Many of the driver's Entra failures
//! put the telling record second or third (`HYT00` first, then `FA004` and `CE269`/`CE275`/`CE276`,
//! measured), so a check that must explain a failure logs in on a handle of its own and reads them
//! all before freeing it. On success it also asks the driver for its version (`SQL_DRIVER_VER`).

use std::fmt;

use mssql_entra_token::AccessToken;
use odbc_api::handles::{self, DiagnosticStream, SqlResult, SqlText};
use odbc_api::sys::{InfoType, SsAccessToken};
use odbc_api::SetConnectionAttributeArgs;

use crate::connector::Inner;
use crate::drivers::raw_environment;
use crate::error::{DiagRecord, Error, OdbcFailure};

/// What [`Connector::check`](crate::Connector::check) learnt from a successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// `SQL_DRIVER_VER` as the driver reports it, e.g. `18.06.0002`.
    pub driver_version: Option<String>,
    /// `SQL_DBMS_NAME`, e.g. `Microsoft SQL Server`.
    pub dbms_name: Option<String>,
    /// Whether the login used an access token.
    pub used_access_token: bool,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "logged in ({}) to {} with driver {}",
            if self.used_access_token {
                "access token"
            } else {
                "connection string"
            },
            self.dbms_name.as_deref().unwrap_or("an unknown server"),
            self.driver_version
                .as_deref()
                .unwrap_or("of unknown version")
        )
    }
}

fn failure(function: &'static str, records: Vec<DiagRecord>) -> Error {
    Error::Odbc(Box::new(OdbcFailure {
        function,
        records,
        diagnosis: None,
        attempts: 1,
    }))
}

/// Every diagnostic record left on `handle`.
fn all_records(handle: &(impl handles::Diagnostics + ?Sized)) -> Vec<DiagRecord> {
    let mut stream = DiagnosticStream::new(handle);
    let mut out = Vec::new();
    while let Some(record) = stream.next() {
        let message = handles::slice_to_cow_utf8(&record.message);
        out.push(DiagRecord::new(
            record.state.as_str().to_owned(),
            record.native_error,
            &message,
        ));
        if out.len() >= 64 {
            break;
        }
    }
    out
}

/// `SQLGetInfo` for a string-valued info type, through the narrow function (the values are ASCII).
fn info_string(connection: &handles::Connection<'_>, info: InfoType) -> Option<String> {
    let mut buf = vec![0u8; 256];
    let mut len: i16 = 0;
    let capacity = i16::try_from(buf.len()).unwrap_or(i16::MAX);
    // SAFETY: `connection` is a valid, connected handle; the buffer pointer and its length in bytes
    // describe `buf`, which outlives the call; `len` is a valid out pointer.
    #[allow(unsafe_code)]
    let ret = unsafe {
        odbc_api::sys::SQLGetInfo(
            connection.as_sys(),
            info,
            buf.as_mut_ptr().cast(),
            capacity,
            &mut len,
        )
    };
    if !matches!(
        ret,
        odbc_api::sys::SqlReturn::SUCCESS | odbc_api::sys::SqlReturn::SUCCESS_WITH_INFO
    ) {
        return None;
    }
    let len = usize::try_from(len).ok()?.min(buf.len());
    buf.truncate(len);
    while buf.last() == Some(&0) {
        buf.pop();
    }
    String::from_utf8(buf).ok()
}

impl Inner {
    /// One login on a handle of our own, reading every record on failure. Blocking.
    pub(crate) fn check_once(&self, token: Option<AccessToken>) -> Result<CheckReport, Error> {
        // Declared first so that it is dropped last: the driver keeps the pointer to this buffer
        // until the connection handle below is freed.
        let buffer = token
            .as_ref()
            .map(|t| SsAccessToken::from_text(t.token.expose_secret()));

        let env = raw_environment()?;
        let mut connection = match env.allocate_connection() {
            SqlResult::Success(c) | SqlResult::SuccessWithInfo(c) => c,
            _ => return Err(failure("SQLAllocHandle", all_records(&env))),
        };
        if let Some(secs) = self.login_timeout_sec() {
            if let SqlResult::Error { function } = connection.set_login_timeout_sec(secs) {
                return Err(failure(function, all_records(&connection)));
            }
        }
        if let Some(buffer) = &buffer {
            let args = SetConnectionAttributeArgs::from(&**buffer);
            // SAFETY: SQL_COPT_SS_ACCESS_TOKEN is set only in token mode, which is for the
            // Microsoft driver (`Auth::Token`). `buffer` is declared before `connection`, so it is
            // dropped after the connection handle is disconnected and freed, on every path.
            #[allow(unsafe_code)]
            let set = unsafe {
                connection.set_attribute(args.attribute(), args.value(), args.string_length())
            };
            if let SqlResult::Error { function } = set {
                return Err(failure(function, all_records(&connection)));
            }
        }
        let text = self.connection_string.to_odbc_string();
        match connection.connect_with_connection_string(&SqlText::new(&text)) {
            SqlResult::Success(()) | SqlResult::SuccessWithInfo(()) => {}
            SqlResult::Error { function } => {
                let records = all_records(&connection);
                return Err(Error::Odbc(self.failure(
                    function,
                    records,
                    token.as_ref(),
                    1,
                )));
            }
            _ => return Err(failure("SQLDriverConnect", all_records(&connection))),
        }
        let mut dbms = Vec::new();
        let dbms_name = match connection.fetch_database_management_system_name(&mut dbms) {
            SqlResult::Success(()) | SqlResult::SuccessWithInfo(()) => {
                Some(handles::slice_to_cow_utf8(&dbms).into_owned())
            }
            _ => None,
        };
        let report = CheckReport {
            driver_version: info_string(&connection, InfoType::DriverVer),
            dbms_name,
            used_access_token: buffer.is_some(),
        };
        // A failed disconnect leaves nothing to report: the handle is freed either way.
        let _ = connection.disconnect();
        drop(connection);
        drop(env);
        drop(buffer);
        Ok(report)
    }
}
