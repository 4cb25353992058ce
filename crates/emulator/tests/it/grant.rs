//! Acceptance (d): the grant workflow through the driver.

use std::sync::atomic::Ordering;

use mssql_entra_emulator::sql::{Grant, UserType};

use crate::support::*;

#[test]
fn identity_without_a_user_fails_then_is_granted_then_logs_in_with_its_roles() {
    let s = Server::start();
    // The managed identity has no user in appdb yet.
    let e = s
        .connect_token(MI_TOKEN, "appdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    assert_eq!(diag(&e).1, 18456);

    // The admin creates it by SID (the application id in GUID byte order) and grants roles.
    let admin_conn = s
        .connect_token(ADMIN_TOKEN, "appdb", "Encrypt=yes")
        .unwrap();
    let mi = managed_identity();
    let script = format!(
        "CREATE USER [demo-mi] WITH SID = {}, TYPE = E;\n\
         ALTER ROLE db_datareader ADD MEMBER [demo-mi];\n\
         ALTER ROLE [db_datawriter] ADD MEMBER [demo-mi]\n\
         GRANT VIEW ANY COLUMN MASTER KEY DEFINITION TO [demo-mi];\n\
         GRANT VIEW ANY COLUMN ENCRYPTION KEY DEFINITION TO [demo-mi];",
        sid_literal(&mi)
    );
    assert!(admin_conn.execute(&script, (), None).unwrap().is_none());
    let user = s.databases().user("appdb", "demo-mi").unwrap();
    assert_eq!(user.sid, mi.sid().to_vec());
    assert_eq!(user.user_type, UserType::External);
    assert!(user.roles.contains("db_datareader") && user.roles.contains("db_datawriter"));
    assert!(user
        .grants
        .contains(&Grant::ViewAnyColumnMasterKeyDefinition));
    assert!(user
        .grants
        .contains(&Grant::ViewAnyColumnEncryptionKeyDefinition));

    // The identity now logs in, and IS_ROLEMEMBER reports the roles.
    let conn = s.connect_token(MI_TOKEN, "appdb", "Encrypt=yes").unwrap();
    assert_eq!(
        scalar(&conn, "SELECT USER_NAME()").unwrap().unwrap(),
        "demo-mi"
    );
    let roles = row(
        &conn,
        "SELECT IS_ROLEMEMBER('db_datareader'), IS_ROLEMEMBER('db_datawriter'), IS_ROLEMEMBER('db_owner'), \
         IS_ROLEMEMBER('no_such_role')",
        4,
    )
    .unwrap();
    assert_eq!(
        roles,
        vec![Some("1".into()), Some("1".into()), Some("0".into()), None]
    );

    // State survives reconnects, and DROP USER takes the access away again.
    drop(conn);
    assert!(admin_conn
        .execute("DROP USER [demo-mi]", (), None)
        .unwrap()
        .is_none());
    let e = s
        .connect_token(MI_TOKEN, "appdb", "Encrypt=yes")
        .map(|_| ())
        .unwrap_err();
    assert_eq!(diag(&e).1, 18456);
}

#[test]
fn create_user_from_external_provider_resolves_through_the_directory() {
    let s = Server::start();
    let admin_conn = s
        .connect_token(ADMIN_TOKEN, "otherdb", "Encrypt=yes")
        .unwrap();
    admin_conn
        .execute("CREATE USER [demo-app] FROM EXTERNAL PROVIDER", (), None)
        .unwrap();
    admin_conn
        .execute("ALTER ROLE db_owner ADD MEMBER [demo-app]", (), None)
        .unwrap();
    assert_eq!(
        s.databases().user("otherdb", "demo-app").unwrap().sid,
        app().sid().to_vec()
    );
    let conn = s
        .connect_token(APP_TOKEN, "otherdb", "Encrypt=yes")
        .unwrap();
    assert_eq!(
        scalar(&conn, "SELECT IS_ROLEMEMBER('db_ddladmin')")
            .unwrap()
            .unwrap(),
        "1"
    );

    // An unknown name, and Graph switched off, both give 33130.
    let e = admin_conn
        .execute("CREATE USER [nobody] FROM EXTERNAL PROVIDER", (), None)
        .map(|_| ())
        .unwrap_err();
    let (state, native, text) = diag(&e);
    assert_eq!(native, 33130, "{state} {text}");
    assert!(
        text.contains(
            "Principal 'nobody' could not be found or this principal type is not supported."
        ),
        "{text}"
    );
    s.authority.graph.store(false, Ordering::SeqCst);
    let e = admin_conn
        .execute(
            "CREATE USER [alice@emulator.test] FROM EXTERNAL PROVIDER",
            (),
            None,
        )
        .map(|_| ())
        .unwrap_err();
    assert_eq!(diag(&e).1, 33130);
    assert!(
        diag(&e).2.contains("could not be resolved"),
        "{}",
        diag(&e).2
    );
}

#[test]
fn only_owners_may_run_ddl() {
    let s = Server::start();
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    let e = conn
        .execute(
            "CREATE USER [x] WITH SID = 0x00112233445566778899AABBCCDDEEFF, TYPE = E",
            (),
            None,
        )
        .map(|_| ())
        .unwrap_err();
    assert_eq!(diag(&e).1, 15247, "{}", diag(&e).2);
    assert!(s.databases().user("appdb", "x").is_none());
    // The connection is still usable after the error.
    assert_eq!(scalar(&conn, "SELECT 1").unwrap().unwrap(), "1");
}

#[test]
fn ddl_errors_use_sql_server_numbers() {
    let s = Server::start();
    let admin_conn = s
        .connect_token(ADMIN_TOKEN, "appdb", "Encrypt=yes")
        .unwrap();
    let cases = [
        (
            format!(
                "CREATE USER [demo-app] WITH SID = {}, TYPE = E",
                sid_literal(&managed_identity())
            ),
            15023,
        ),
        (
            format!(
                "CREATE USER [copy] WITH SID = {}, TYPE = E",
                sid_literal(&app())
            ),
            15063,
        ),
        ("ALTER ROLE db_owner ADD MEMBER [ghost]".to_string(), 15151),
        (
            "ALTER ROLE sysadmin ADD MEMBER [demo-app]".to_string(),
            15151,
        ),
        ("DROP USER [ghost]".to_string(), 15151),
        (
            "GRANT VIEW ANY COLUMN MASTER KEY DEFINITION TO [ghost]".to_string(),
            15151,
        ),
        (
            "CREATE USER [short] WITH SID = 0x0102, TYPE = X".to_string(),
            15419,
        ),
    ];
    for (sql, number) in cases {
        let e = admin_conn.execute(&sql, (), None).map(|_| ()).unwrap_err();
        assert_eq!(diag(&e).1, number, "{sql}: {}", diag(&e).2);
    }
    // `]]` escapes a bracket inside a name.
    admin_conn
        .execute(
            "CREATE USER [we]]ird] WITH SID = 0x0102030405060708090A0B0C0D0E0F10, TYPE = X",
            (),
            None,
        )
        .unwrap();
    assert_eq!(
        s.databases().user("appdb", "we]ird").unwrap().user_type,
        UserType::ExternalGroup
    );
    admin_conn
        .execute("DROP USER IF EXISTS [ghost]", (), None)
        .unwrap();
}
