//! T-SQL text: quoted identifiers, and the statements `sid` and `grant` print.
//!
//! Everything here is pure string building, so it is covered by snapshot tests; nothing connects.

use std::fmt;

use mssql_entra::lower::token::SqlSid;
use serde::Serialize;

/// The longest identifier SQL Server accepts (`sysname` is `nvarchar(128)`).
const MAX_NAME_CHARS: usize = 128;

/// A database principal name, checked and ready to be written as `[name]` with `]` doubled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name(String);

impl Name {
    /// Checks `raw` as a `sysname`: not empty or blank, at most 128 UTF-16 code units, no control
    /// characters (a newline or NUL in a user name is always a copy-paste accident).
    pub(crate) fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Err("the name is empty; give the display name of the app, managed identity or group, or the user's UPN, e.g. --name my-app".to_owned());
        }
        if raw.trim() != raw {
            return Err(format!("the name `{raw}` has leading or trailing spaces; SQL Server would keep them in the user name, so remove them"));
        }
        if raw.encode_utf16().count() > MAX_NAME_CHARS {
            return Err(format!(
                "the name is longer than {MAX_NAME_CHARS} characters, the limit of a SQL Server identifier (sysname)"
            ));
        }
        if let Some(c) = raw.chars().find(|c| c.is_control()) {
            return Err(format!(
                "the name contains the control character {:?}; remove it",
                c
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name as given.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// `[name]`, with every `]` doubled: the one escape a bracket-quoted T-SQL identifier has.
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        f.write_str(&self.0.replace(']', "]]"))?;
        f.write_str("]")
    }
}

/// Parses a GUID given on the command line (an application/client id or an object id) into the SID
/// Azure SQL stores for it. Hyphens, braces and the `urn:uuid:` prefix are optional.
pub(crate) fn parse_guid(raw: &str) -> Result<SqlSid, String> {
    SqlSid::from_guid_str(raw).map_err(|_| {
        format!(
            "`{raw}` is not a GUID; expected 32 hex digits in the form 8-4-4-4-12, e.g. 619a4449-b4aa-4383-a2a9-7c365106c5e7 (the application (client) id of an app registration or managed identity, or the object id of a user or group)"
        )
    })
}

/// What kind of Entra principal a `WITH SID` user stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PrincipalType {
    /// An application or managed identity (SID from the application id), or a user (SID from the
    /// object id): `TYPE = E`.
    #[value(name = "E", alias = "e")]
    #[serde(rename = "E")]
    External,
    /// A group (SID from the group's object id): `TYPE = X`.
    #[value(name = "X", alias = "x")]
    #[serde(rename = "X")]
    Group,
}

impl PrincipalType {
    fn letter(self) -> &'static str {
        match self {
            PrincipalType::External => "E",
            PrincipalType::Group => "X",
        }
    }
}

/// `CREATE USER [name] WITH SID = 0x…, TYPE = E;`
pub(crate) fn create_user_with_sid(name: &Name, sid: SqlSid, kind: PrincipalType) -> String {
    format!(
        "CREATE USER {name} WITH SID = {sid}, TYPE = {};",
        kind.letter()
    )
}

/// `CREATE USER [name] FROM EXTERNAL PROVIDER;`
pub(crate) fn create_user_from_external_provider(name: &Name) -> String {
    format!("CREATE USER {name} FROM EXTERNAL PROVIDER;")
}

/// How much data access `grant` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Access {
    /// `db_datareader` only.
    ReadOnly,
    /// `db_datareader` and `db_datawriter`.
    ReadWrite,
}

/// What `grant` creates: a database user and its roles and permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrantPlan {
    /// The database user's name (for `FROM EXTERNAL PROVIDER`: the display name or UPN in Entra ID).
    pub(crate) name: Name,
    /// With an application id: `WITH SID`, no Microsoft Graph lookup on the server.
    pub(crate) app_id: Option<SqlSid>,
    /// Reader, or reader and writer.
    pub(crate) access: Access,
    /// `db_ddladmin`, for running schema migrations.
    pub(crate) migrations: bool,
    /// The two `VIEW ANY COLUMN … KEY DEFINITION` permissions Always Encrypted clients need.
    pub(crate) always_encrypted: bool,
}

/// One statement of a grant script, with what it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Step {
    /// The T-SQL statement, ending in `;`.
    pub(crate) sql: String,
    /// Why it is there, one line (written as a comment above it in the script).
    pub(crate) why: &'static str,
}

impl GrantPlan {
    /// The statements, in the order they must run.
    pub(crate) fn steps(&self) -> Vec<Step> {
        let name = &self.name;
        let mut steps = vec![match self.app_id {
            Some(sid) => Step {
                sql: create_user_with_sid(name, sid, PrincipalType::External),
                why: "the user, from the application (client) id as SID: no Microsoft Graph lookup needed",
            },
            None => Step {
                sql: create_user_from_external_provider(name),
                why: "the user, looked up by display name (UPN for users) in Microsoft Entra ID",
            },
        }];
        let role = |role: &str, why| Step {
            sql: format!("ALTER ROLE {role} ADD MEMBER {name};"),
            why,
        };
        steps.push(role("db_datareader", "read every table and view"));
        if self.access == Access::ReadWrite {
            steps.push(role(
                "db_datawriter",
                "insert, update and delete in every table",
            ));
        }
        if self.migrations {
            steps.push(role(
                "db_ddladmin",
                "create and alter tables, views and procedures (schema migrations)",
            ));
        }
        if self.always_encrypted {
            steps.push(Step {
                sql: format!("GRANT VIEW ANY COLUMN MASTER KEY DEFINITION TO {name};"),
                why: "Always Encrypted: read column master key metadata",
            });
            steps.push(Step {
                sql: format!("GRANT VIEW ANY COLUMN ENCRYPTION KEY DEFINITION TO {name};"),
                why: "Always Encrypted: read column encryption key metadata",
            });
        }
        steps
    }

    /// The whole script, commented, ready for `sqlcmd` or a query window.
    pub(crate) fn script(&self) -> String {
        let mut out = format!(
            "-- Database user {} and its roles (generated by mssql-entra grant).\n\
             -- Run it in the application's database (not in master), signed in as the server's\n\
             -- Microsoft Entra admin or a member of db_owner.\n",
            self.name
        );
        if let Some(sid) = self.app_id {
            out.push_str(&format!(
                "-- SID {sid} is the application (client) id {}.\n\
                 -- It must be the client id of the app registration or managed identity, never its\n\
                 -- object id: a user made from the object id cannot log in (error 18456).\n",
                sid.to_guid()
            ));
        }
        for step in self.steps() {
            out.push_str(&format!("\n-- {}\n{}\n", step.why, step.sql));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{expect, Expect};

    fn name(s: &str) -> Name {
        Name::parse(s).expect("valid name")
    }

    #[test]
    fn names_are_bracket_quoted_with_closing_brackets_doubled() {
        let check = |raw: &str, expect: Expect| expect.assert_eq(&name(raw).to_string());
        check("my-app", expect!["[my-app]"]);
        check("a]b", expect!["[a]]b]"]);
        check("]]", expect!["[]]]]]"]);
        check("[x]", expect!["[[x]]]"]);
        check("x'; DROP USER y; --", expect!["[x'; DROP USER y; --]"]);
        check("ann@contoso.com", expect!["[ann@contoso.com]"]);
        check("Zoë ünïcode", expect!["[Zoë ünïcode]"]);
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        let err = |raw: &str| Name::parse(raw).expect_err(raw);
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("empty"));
        assert!(err(" app").contains("leading or trailing spaces"));
        assert!(err("a\nb").contains("control character"));
        assert!(err("a\0b").contains("control character"));
        assert!(err(&"x".repeat(129)).contains("128"));
        assert!(Name::parse(&"x".repeat(128)).is_ok());
    }

    #[test]
    fn guids_parse_into_the_sid_and_non_guids_are_refused() {
        let sid = parse_guid("619a4449-b4aa-4383-a2a9-7c365106c5e7").expect("guid");
        assert_eq!(sid.to_string(), "0x49449A61AAB48343A2A97C365106C5E7");
        assert_eq!(
            parse_guid("{619A4449-B4AA-4383-A2A9-7C365106C5E7}").expect("braces"),
            sid
        );
        for bad in [
            "",
            "619a4449",
            "619a4449-b4aa-4383-a2a9-7c365106c5e",
            "619a4449-b4aa-4383-a2a9-7c365106c5e7x",
            "zzzzzzzz-b4aa-4383-a2a9-7c365106c5e7",
            "my-app",
        ] {
            let e = parse_guid(bad).expect_err(bad);
            assert!(
                e.contains("is not a GUID") && e.contains("8-4-4-4-12"),
                "{e}"
            );
        }
    }

    #[test]
    fn create_user_statements() {
        let sid = parse_guid("619a4449-b4aa-4383-a2a9-7c365106c5e7").expect("guid");
        expect!["CREATE USER [my]]app] WITH SID = 0x49449A61AAB48343A2A97C365106C5E7, TYPE = E;"]
            .assert_eq(&create_user_with_sid(
                &name("my]app"),
                sid,
                PrincipalType::External,
            ));
        expect![
            "CREATE USER [sql-admins] WITH SID = 0x49449A61AAB48343A2A97C365106C5E7, TYPE = X;"
        ]
        .assert_eq(&create_user_with_sid(
            &name("sql-admins"),
            sid,
            PrincipalType::Group,
        ));
        expect!["CREATE USER [ann@contoso.com] FROM EXTERNAL PROVIDER;"].assert_eq(
            &create_user_from_external_provider(&name("ann@contoso.com")),
        );
    }

    fn plan(app_id: Option<&str>, access: Access, migrations: bool, ae: bool) -> GrantPlan {
        GrantPlan {
            name: name("orders-api"),
            app_id: app_id.map(|g| parse_guid(g).expect("guid")),
            access,
            migrations,
            always_encrypted: ae,
        }
    }

    #[test]
    fn grant_default_is_read_write_from_external_provider() {
        expect![[r#"
            -- Database user [orders-api] and its roles (generated by mssql-entra grant).
            -- Run it in the application's database (not in master), signed in as the server's
            -- Microsoft Entra admin or a member of db_owner.

            -- the user, looked up by display name (UPN for users) in Microsoft Entra ID
            CREATE USER [orders-api] FROM EXTERNAL PROVIDER;

            -- read every table and view
            ALTER ROLE db_datareader ADD MEMBER [orders-api];

            -- insert, update and delete in every table
            ALTER ROLE db_datawriter ADD MEMBER [orders-api];
        "#]]
        .assert_eq(&plan(None, Access::ReadWrite, false, false).script());
    }

    #[test]
    fn grant_read_only() {
        let steps: Vec<_> = plan(None, Access::ReadOnly, false, false)
            .steps()
            .into_iter()
            .map(|s| s.sql)
            .collect();
        expect![[r#"
            [
                "CREATE USER [orders-api] FROM EXTERNAL PROVIDER;",
                "ALTER ROLE db_datareader ADD MEMBER [orders-api];",
            ]
        "#]]
        .assert_debug_eq(&steps);
    }

    #[test]
    fn grant_with_app_id_migrations_and_always_encrypted() {
        expect![[r#"
            -- Database user [orders-api] and its roles (generated by mssql-entra grant).
            -- Run it in the application's database (not in master), signed in as the server's
            -- Microsoft Entra admin or a member of db_owner.
            -- SID 0x49449A61AAB48343A2A97C365106C5E7 is the application (client) id 619a4449-b4aa-4383-a2a9-7c365106c5e7.
            -- It must be the client id of the app registration or managed identity, never its
            -- object id: a user made from the object id cannot log in (error 18456).

            -- the user, from the application (client) id as SID: no Microsoft Graph lookup needed
            CREATE USER [orders-api] WITH SID = 0x49449A61AAB48343A2A97C365106C5E7, TYPE = E;

            -- read every table and view
            ALTER ROLE db_datareader ADD MEMBER [orders-api];

            -- insert, update and delete in every table
            ALTER ROLE db_datawriter ADD MEMBER [orders-api];

            -- create and alter tables, views and procedures (schema migrations)
            ALTER ROLE db_ddladmin ADD MEMBER [orders-api];

            -- Always Encrypted: read column master key metadata
            GRANT VIEW ANY COLUMN MASTER KEY DEFINITION TO [orders-api];

            -- Always Encrypted: read column encryption key metadata
            GRANT VIEW ANY COLUMN ENCRYPTION KEY DEFINITION TO [orders-api];
        "#]]
        .assert_eq(
            &plan(
                Some("619a4449-b4aa-4383-a2a9-7c365106c5e7"),
                Access::ReadWrite,
                true,
                true,
            )
            .script(),
        );
    }

    #[test]
    fn grant_quotes_hostile_names_in_every_statement() {
        let p = GrantPlan {
            name: name("evil]; DROP TABLE t; --"),
            app_id: None,
            access: Access::ReadOnly,
            migrations: true,
            always_encrypted: true,
        };
        for step in p.steps() {
            assert!(
                step.sql.contains("[evil]]; DROP TABLE t; --]"),
                "{}",
                step.sql
            );
            let rest = step.sql.replace("[evil]]; DROP TABLE t; --]", "[x]");
            assert_eq!(rest.matches(';').count(), 1, "{rest}");
            assert!(rest.ends_with(';'), "{rest}");
        }
    }
}
