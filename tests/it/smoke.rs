//! The provisioned driver loads and runs: unixODBC lists it, and connecting to a closed local port fails with
//! the driver's own network error (not a driver-manager error such as "Data source name not found").
//! Nothing leaves the machine: the only address used is 127.0.0.1.
//!
//! Measured fact these tests pin down: for a refused TCP connect the driver retries until the login timeout,
//! then reports `HYT00 Login timeout expired` first and the network error (`08001`) after it.
//! odbc-api's `Error::Diagnostics` keeps only the first record, so the network error is read here through
//! odbc-api's handle layer, which exposes every record.

use std::net::{Ipv4Addr, TcpListener};

use mssql_entra_tests::{driver, DRIVER_NAME};
use odbc_api::{
    handles::{self, DiagnosticStream, SqlResult, SqlText},
    sys::AttrOdbcVersion,
    ConnectionOptions, Environment, Error,
};

const LOGIN_TIMEOUT_SEC: u32 = 2;

fn environment() -> &'static Environment {
    driver();
    match odbc_api::environment() {
        Ok(env) => env,
        Err(err) => {
            panic!("could not create an ODBC environment (is libodbc.so.2 installed?): {err}")
        }
    }
}

/// A connection string for a port on 127.0.0.1 that was just bound and released, so nothing listens there.
fn closed_port_connection_string() -> (u16, String) {
    let port = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("bind an ephemeral port on 127.0.0.1");
        listener
            .local_addr()
            .expect("local address of a bound listener")
            .port()
    };
    (
        port,
        format!("Driver={{{DRIVER_NAME}}};Server=tcp:127.0.0.1,{port};Encrypt=yes"),
    )
}

fn ok<T>(result: SqlResult<T>, what: &str) -> T {
    match result {
        SqlResult::Success(value) | SqlResult::SuccessWithInfo(value) => value,
        _ => panic!("{what} failed"),
    }
}

#[test]
fn the_driver_manager_lists_the_driver() {
    let drivers = environment().drivers().expect("unixODBC lists its drivers");
    let names: Vec<&str> = drivers
        .iter()
        .map(|info| info.description.as_str())
        .collect();
    assert!(
        names.contains(&DRIVER_NAME),
        "`{DRIVER_NAME}` not among {names:?} (ODBCSYSINI={})",
        driver().display()
    );
}

#[test]
fn a_closed_port_gives_the_drivers_own_network_error() {
    driver();
    let (port, connection_string) = closed_port_connection_string();
    let env = ok(handles::Environment::new(), "SQLAllocHandle(ENV)");
    ok(
        env.declare_version(AttrOdbcVersion::Odbc3_80),
        "SQLSetEnvAttr(ODBC 3.80)",
    );
    let mut connection = ok(env.allocate_connection(), "SQLAllocHandle(DBC)");
    ok(
        connection.set_login_timeout_sec(LOGIN_TIMEOUT_SEC),
        "SQLSetConnectAttr(LOGIN_TIMEOUT)",
    );

    let result = connection.connect_with_connection_string(&SqlText::new(&connection_string));
    assert!(
        matches!(
            result,
            SqlResult::Error {
                function: "SQLDriverConnect"
            }
        ),
        "connected to the closed port {port}"
    );

    let mut records = Vec::new();
    let mut stream = DiagnosticStream::new(&connection);
    while let Some(record) = stream.next() {
        records.push((record.state.as_str().to_owned(), record.to_string()));
    }
    let shown = records
        .iter()
        .map(|(_, text)| text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let driver_prefix = "[Microsoft][ODBC Driver 18 for SQL Server]";
    assert!(
        records.iter().all(|(_, text)| text.contains(driver_prefix)),
        "not all from the driver:\n{shown}"
    );
    let network = |needle: &str| {
        records
            .iter()
            .any(|(state, text)| state == "08001" && text.contains(needle))
    };
    assert!(
        network("TCP Provider: Error code"),
        "no 08001 TCP Provider record:\n{shown}"
    );
    assert!(
        network(&format!("network-related or instance-specific error has occurred while establishing a connection to tcp:127.0.0.1,{port}")),
        "no 08001 network-related record naming the server:\n{shown}"
    );
}

/// The same failure through odbc-api's ordinary path: the one record it keeps is the driver's login timeout.
#[test]
fn odbc_api_reports_the_drivers_first_record() {
    let (port, connection_string) = closed_port_connection_string();
    let options = ConnectionOptions {
        login_timeout_sec: Some(LOGIN_TIMEOUT_SEC),
        ..ConnectionOptions::default()
    };
    let err = match environment().connect_with_connection_string(&connection_string, options) {
        Ok(_) => panic!("connected to the closed port {port}"),
        Err(err) => err,
    };
    let Error::Diagnostics { record, function } = &err else {
        panic!("expected diagnostics from the driver, got {err:?}");
    };
    assert_eq!(*function, "SQLDriverConnect", "{record}");
    assert_eq!(
        record.to_string(),
        "State: HYT00, Native error: 0, Message: [Microsoft][ODBC Driver 18 for SQL Server]Login timeout expired"
    );
}
