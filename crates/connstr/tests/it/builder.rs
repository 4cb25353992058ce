//! The mssql-django-shaped builder.

use mssql_entra_connstr::{
    Authentication, ConnectionString, ConnectionStringBuilder, Encrypt, Error, ValidateOptions,
    DEFAULT_DRIVER,
};

#[test]
fn django_service_principal_settings() {
    let cs = ConnectionStringBuilder::new("myserver.database.windows.net")
        .port(1433)
        .database("app")
        .uid("client-id")
        .pwd("se;cr}et")
        .authentication(Authentication::ServicePrincipal)
        .build()
        .unwrap();
    assert_eq!(
        cs.to_odbc_string(),
        "Driver={ODBC Driver 18 for SQL Server};Server=tcp:myserver.database.windows.net,1433;\
         Database=app;UID=client-id;PWD={se;cr}}et};Authentication=ActiveDirectoryServicePrincipal;Encrypt=yes"
    );
    assert_eq!(cs.validate(&ValidateOptions::default()), Ok(()));
    assert_eq!(ConnectionString::parse(&cs.to_odbc_string()), Ok(cs));
}

#[test]
fn named_instance_and_driver() {
    let cs = ConnectionStringBuilder::new(r"sqlhost\PROD")
        .driver("ODBC Driver 17 for SQL Server")
        .encrypt(Encrypt::Strict)
        .build()
        .unwrap();
    assert_eq!(
        cs.to_odbc_string(),
        r"Driver={ODBC Driver 17 for SQL Server};Server=tcp:sqlhost\PROD;Encrypt=strict"
    );
    assert_ne!(DEFAULT_DRIVER, "ODBC Driver 17 for SQL Server");
}

#[test]
fn extra_params_are_appended_in_order() {
    let cs = ConnectionStringBuilder::new("h")
        .port(14330)
        .extra_params("Authentication=ActiveDirectoryMsi;;APP=my app; MultiSubnetFailover=yes;")
        .build()
        .unwrap();
    let keys: Vec<_> = cs.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "Driver",
            "Server",
            "Encrypt",
            "Authentication",
            "APP",
            "MultiSubnetFailover"
        ]
    );
}

#[test]
fn extra_params_that_repeat_a_setting() {
    // Same value (by meaning): accepted, written once.
    let cs = ConnectionStringBuilder::new("h")
        .encrypt(Encrypt::Mandatory)
        .danger_trust_server_certificate(true)
        .extra_params("Encrypt=Mandatory;TrustServerCertificate=Yes")
        .build()
        .unwrap();
    assert_eq!(cs.len(), 4);
    // Different value: refused, naming both spellings.
    let err = ConnectionStringBuilder::new("h")
        .port(1433)
        .extra_params("Addr=evil,1433")
        .build();
    assert_eq!(
        err,
        Err(Error::ConflictingKey {
            existing: "Server".into(),
            incoming: "Addr".into()
        })
    );
    let err = ConnectionStringBuilder::new("h")
        .authentication(Authentication::Msi)
        .extra_params("Authentication=ActiveDirectoryPassword")
        .build();
    assert_eq!(
        err,
        Err(Error::ConflictingKey {
            existing: "Authentication".into(),
            incoming: "Authentication".into()
        })
    );
    // A repeat inside extra_params itself is a parse error.
    let err = ConnectionStringBuilder::new("h")
        .extra_params("APP=a;app=b")
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::ExtraParams(inner) if matches!(*inner, Error::DuplicateKey { .. }))
    );
}

#[test]
fn unsafe_extra_encrypt_is_caught_by_validate() {
    // mssql-django users often append Encrypt=no; the builder accepts it (the default yields),
    // and validation refuses it for Entra modes.
    let cs = ConnectionStringBuilder::new("h")
        .extra_params("Encrypt=no;Authentication=ActiveDirectoryMsi")
        .build()
        .unwrap();
    assert_eq!(cs.get("Encrypt"), Some("no"));
    assert!(matches!(
        cs.validate(&ValidateOptions::default()),
        Err(Error::UnencryptedToken { .. })
    ));
}
