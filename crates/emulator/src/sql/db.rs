//! Per-database state: contained users (name, SID, type), fixed-role membership and the two column-key grants.
//!
//! Azure SQL keeps Entra users in each user database ("contained users"), keyed by SID. A login to database D
//! succeeds when D has a user whose SID is the token principal's [`Principal::sid`]. The server's Microsoft Entra
//! admin (see [`Databases::set_entra_admin`]) enters every database as `dbo`, a member of every role. `master`
//! behaves like any other database: a non-admin principal needs a user there.
//!
//! Names compare case-insensitively, as under the default collation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::model::Principal;

/// The fixed database roles of Azure SQL Database (plus `public`, which every user is in).
pub const FIXED_ROLES: &[&str] = &[
    "db_owner",
    "db_securityadmin",
    "db_accessadmin",
    "db_backupoperator",
    "db_ddladmin",
    "db_datawriter",
    "db_datareader",
    "db_denydatawriter",
    "db_denydatareader",
];

/// The permissions `GRANT … TO [user]` can give in the emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Grant {
    /// `VIEW ANY COLUMN MASTER KEY DEFINITION` (Always Encrypted metadata).
    ViewAnyColumnMasterKeyDefinition,
    /// `VIEW ANY COLUMN ENCRYPTION KEY DEFINITION` (Always Encrypted metadata).
    ViewAnyColumnEncryptionKeyDefinition,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Grant::ViewAnyColumnMasterKeyDefinition => "VIEW ANY COLUMN MASTER KEY DEFINITION",
            Grant::ViewAnyColumnEncryptionKeyDefinition => {
                "VIEW ANY COLUMN ENCRYPTION KEY DEFINITION"
            }
        })
    }
}

/// The `TYPE =` of an Entra database user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserType {
    /// `TYPE = E`: a user, application or managed identity (sys.database_principals type `E`).
    External,
    /// `TYPE = X`: a group (sys.database_principals type `X`).
    ExternalGroup,
}

/// A database user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUser {
    /// The user name as created (the bracketed name in `CREATE USER`).
    pub name: String,
    /// The 16-byte SID: see [`Principal::sid`].
    pub sid: Vec<u8>,
    /// `E` (user, application, managed identity) or `X` (group).
    pub user_type: UserType,
    /// Fixed roles the user was added to, lower-case.
    pub roles: BTreeSet<String>,
    /// Permissions granted with `GRANT … TO [user]`.
    pub grants: BTreeSet<Grant>,
}

/// Why a change to the databases was refused; each carries the SQL Server message number it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The database does not exist.
    #[error("database '{0}' does not exist; create it with Databases::create_database or SqlEndpointConfig::databases")]
    NoSuchDatabase(String),
    /// A user of that name exists (SQL Server message 15023).
    #[error("User, group, or role '{0}' already exists in the current database.")]
    UserExists(String),
    /// A user with that SID exists under another name (15063).
    #[error("A user with SID 0x{sid} already exists in the current database as '{existing}'.")]
    SidExists { sid: String, existing: String },
    /// No such user (15151).
    #[error(
        "Cannot find the user '{0}', because it does not exist or you do not have permission."
    )]
    NoSuchUser(String),
    /// No such fixed role (15151).
    #[error(
        "Cannot alter the role '{0}', because it does not exist or you do not have permission."
    )]
    NoSuchRole(String),
}

impl DbError {
    /// The SQL Server message number the emulator reports for this error.
    pub fn number(&self) -> u32 {
        match self {
            DbError::NoSuchDatabase(_) => 911,
            DbError::UserExists(_) => 15023,
            DbError::SidExists { .. } => 15063,
            DbError::NoSuchUser(_) | DbError::NoSuchRole(_) => 15151,
        }
    }
}

#[derive(Debug, Default)]
struct Database {
    name: String,
    /// Keyed by lower-case user name.
    users: BTreeMap<String, DatabaseUser>,
}

#[derive(Debug, Default)]
struct State {
    /// Keyed by lower-case database name.
    databases: BTreeMap<String, Database>,
    admin: Option<Principal>,
}

/// A cheap, cloneable handle on the endpoint's databases. Changes are visible to every session at once and last
/// as long as the endpoint.
#[derive(Clone)]
pub struct Databases {
    state: Arc<Mutex<State>>,
}

impl Default for Databases {
    /// The same as [`Databases::new`]: only `master`.
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Databases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Databases")
            .field("names", &self.database_names())
            .finish()
    }
}

/// The identity a session runs as inside its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionUser {
    /// The server's Entra admin: `dbo`, member of every role.
    Dbo,
    /// A contained user, by lower-case name.
    User(String),
}

impl Databases {
    /// A set holding only `master`.
    pub fn new() -> Self {
        let d = Self {
            state: Arc::new(Mutex::new(State::default())),
        };
        d.create_database("master");
        d
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated (every update is a single insert or
        // remove), so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates an empty database; does nothing if it exists.
    pub fn create_database(&self, name: &str) {
        self.lock()
            .databases
            .entry(name.to_lowercase())
            .or_insert_with(|| Database {
                name: name.to_string(),
                users: BTreeMap::new(),
            });
    }

    /// Names of all databases, `master` included.
    pub fn database_names(&self) -> Vec<String> {
        self.lock()
            .databases
            .values()
            .map(|d| d.name.clone())
            .collect()
    }

    /// The database's name as created, if it exists.
    pub fn canonical_name(&self, name: &str) -> Option<String> {
        self.lock()
            .databases
            .get(&name.to_lowercase())
            .map(|d| d.name.clone())
    }

    /// Makes `admin` the server's Microsoft Entra admin: it logs into every database as `dbo`.
    pub fn set_entra_admin(&self, admin: Option<Principal>) {
        self.lock().admin = admin;
    }

    /// The server's Microsoft Entra admin.
    pub fn entra_admin(&self) -> Option<Principal> {
        self.lock().admin.clone()
    }

    /// Adds a user, as `CREATE USER [name] WITH SID = …, TYPE = E|X` does.
    pub fn add_user(
        &self,
        database: &str,
        name: &str,
        sid: &[u8],
        user_type: UserType,
    ) -> Result<(), DbError> {
        let mut st = self.lock();
        let db = st
            .databases
            .get_mut(&database.to_lowercase())
            .ok_or_else(|| DbError::NoSuchDatabase(database.to_string()))?;
        if db.users.contains_key(&name.to_lowercase()) {
            return Err(DbError::UserExists(name.to_string()));
        }
        if let Some(existing) = db.users.values().find(|u| u.sid == sid) {
            return Err(DbError::SidExists {
                sid: hex_upper(sid),
                existing: existing.name.clone(),
            });
        }
        db.users.insert(
            name.to_lowercase(),
            DatabaseUser {
                name: name.to_string(),
                sid: sid.to_vec(),
                user_type,
                roles: BTreeSet::new(),
                grants: BTreeSet::new(),
            },
        );
        Ok(())
    }

    /// Adds a user for a directory principal (as `CREATE USER … FROM EXTERNAL PROVIDER` does), named `name`.
    pub fn add_principal_user(
        &self,
        database: &str,
        name: &str,
        principal: &Principal,
    ) -> Result<(), DbError> {
        let ty = match principal.kind {
            crate::model::PrincipalKind::Group => UserType::ExternalGroup,
            _ => UserType::External,
        };
        self.add_user(database, name, &principal.sid(), ty)
    }

    /// Removes a user.
    pub fn drop_user(&self, database: &str, name: &str) -> Result<(), DbError> {
        let mut st = self.lock();
        let db = st
            .databases
            .get_mut(&database.to_lowercase())
            .ok_or_else(|| DbError::NoSuchDatabase(database.to_string()))?;
        db.users
            .remove(&name.to_lowercase())
            .map(|_| ())
            .ok_or_else(|| DbError::NoSuchUser(name.to_string()))
    }

    /// Adds a user to a fixed role.
    pub fn add_role_member(&self, database: &str, role: &str, user: &str) -> Result<(), DbError> {
        self.change_role(database, role, user, true)
    }

    /// Removes a user from a fixed role.
    pub fn drop_role_member(&self, database: &str, role: &str, user: &str) -> Result<(), DbError> {
        self.change_role(database, role, user, false)
    }

    fn change_role(
        &self,
        database: &str,
        role: &str,
        user: &str,
        add: bool,
    ) -> Result<(), DbError> {
        let role = role.to_lowercase();
        if !FIXED_ROLES.contains(&role.as_str()) {
            return Err(DbError::NoSuchRole(role));
        }
        self.with_user(database, user, |u| {
            if add {
                u.roles.insert(role);
            } else {
                u.roles.remove(&role);
            }
        })
    }

    /// Grants a permission to a user.
    pub fn grant(&self, database: &str, grant: Grant, user: &str) -> Result<(), DbError> {
        self.with_user(database, user, |u| {
            u.grants.insert(grant);
        })
    }

    fn with_user(
        &self,
        database: &str,
        user: &str,
        f: impl FnOnce(&mut DatabaseUser),
    ) -> Result<(), DbError> {
        let mut st = self.lock();
        let db = st
            .databases
            .get_mut(&database.to_lowercase())
            .ok_or_else(|| DbError::NoSuchDatabase(database.to_string()))?;
        let u = db
            .users
            .get_mut(&user.to_lowercase())
            .ok_or_else(|| DbError::NoSuchUser(user.to_string()))?;
        f(u);
        Ok(())
    }

    /// A user by name.
    pub fn user(&self, database: &str, name: &str) -> Option<DatabaseUser> {
        self.lock()
            .databases
            .get(&database.to_lowercase())?
            .users
            .get(&name.to_lowercase())
            .cloned()
    }

    /// All users of a database, by name.
    pub fn users(&self, database: &str) -> Vec<DatabaseUser> {
        self.lock()
            .databases
            .get(&database.to_lowercase())
            .map(|d| d.users.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The user of `database` whose SID is `sid`.
    pub fn user_by_sid(&self, database: &str, sid: &[u8]) -> Option<DatabaseUser> {
        self.lock()
            .databases
            .get(&database.to_lowercase())?
            .users
            .values()
            .find(|u| u.sid == sid)
            .cloned()
    }

    /// Whether `user` is in `role` (`dbo` and `db_owner` members are in every role, everyone is in `public`).
    /// `None` when the role does not exist, as `IS_ROLEMEMBER` answers NULL.
    pub fn is_role_member(&self, database: &str, user: &str, role: &str) -> Option<bool> {
        self.session_is_role_member(database, &SessionUser::User(user.to_lowercase()), role)
    }

    pub(crate) fn session_is_role_member(
        &self,
        database: &str,
        who: &SessionUser,
        role: &str,
    ) -> Option<bool> {
        let role = role.to_lowercase();
        if role != "public" && !FIXED_ROLES.contains(&role.as_str()) {
            return None;
        }
        let name = match who {
            SessionUser::Dbo => return Some(true),
            SessionUser::User(name) => name,
        };
        let user = self.user(database, name)?;
        Some(role == "public" || user.roles.contains(&role) || user.roles.contains("db_owner"))
    }

    /// Whether the session may run user and permission DDL: `dbo` or a `db_owner` member.
    pub(crate) fn may_administer(&self, database: &str, who: &SessionUser) -> bool {
        self.session_is_role_member(database, who, "db_owner") == Some(true)
    }
}

pub(crate) fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_per_database_and_case_insensitive() {
        let d = Databases::new();
        d.create_database("AppDb");
        d.add_user("appdb", "Demo-App", &[1; 16], UserType::External)
            .unwrap();
        assert_eq!(
            d.add_user("APPDB", "demo-app", &[2; 16], UserType::External),
            Err(DbError::UserExists("demo-app".into()))
        );
        assert!(matches!(
            d.add_user("appdb", "other", &[1; 16], UserType::External),
            Err(DbError::SidExists { .. })
        ));
        assert!(d.user("master", "demo-app").is_none());
        assert_eq!(d.user_by_sid("appdb", &[1; 16]).unwrap().name, "Demo-App");
        assert_eq!(d.canonical_name("APPDB").as_deref(), Some("AppDb"));
    }

    #[test]
    fn roles() {
        let d = Databases::new();
        d.add_user("master", "u", &[1; 16], UserType::External)
            .unwrap();
        assert_eq!(
            d.is_role_member("master", "u", "db_datareader"),
            Some(false)
        );
        assert_eq!(d.is_role_member("master", "u", "public"), Some(true));
        assert_eq!(d.is_role_member("master", "u", "no_such_role"), None);
        d.add_role_member("master", "DB_DATAREADER", "U").unwrap();
        assert_eq!(d.is_role_member("master", "u", "db_datareader"), Some(true));
        assert_eq!(
            d.is_role_member("master", "u", "db_datawriter"),
            Some(false)
        );
        assert!(!d.may_administer("master", &SessionUser::User("u".into())));
        d.add_role_member("master", "db_owner", "u").unwrap();
        assert_eq!(d.is_role_member("master", "u", "db_datawriter"), Some(true));
        assert!(d.may_administer("master", &SessionUser::User("u".into())));
        assert_eq!(
            d.add_role_member("master", "sysadmin", "u"),
            Err(DbError::NoSuchRole("sysadmin".into()))
        );
        assert_eq!(
            d.add_role_member("master", "db_owner", "x"),
            Err(DbError::NoSuchUser("x".into()))
        );
        d.drop_user("master", "u").unwrap();
        assert_eq!(
            d.drop_user("master", "u"),
            Err(DbError::NoSuchUser("u".into()))
        );
    }
}
