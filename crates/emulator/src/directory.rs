//! The emulated Entra ID directory: one tenant with its app registrations, managed identities, users and groups,
//! plus the database users the SQL endpoint is seeded with.
//!
//! Build it in code, load it from TOML ([`Directory::from_toml_str`]), or take [`Directory::demo`].

use std::path::Path;

use serde::Deserialize;
use uuid::Uuid;

use crate::keys::{pooled_rsa_key, AppCertificate, KeyError};
use crate::model::{Principal, PrincipalKind};
use crate::secret::Secret;

/// The issuer of the federated (workload identity) tokens the emulator mints itself.
pub const EMULATOR_OIDC_ISSUER: &str = "https://oidc.emulator.test/";
/// The audience Entra expects in federated tokens.
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Why a directory could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The TOML file could not be read.
    #[error("cannot read the directory file '{path}': {reason}")]
    Read { path: String, reason: String },
    /// The TOML text does not match the expected shape (the text names the line and key).
    #[error("invalid directory TOML: {0}")]
    Toml(String),
    /// Two objects share an id or a name that must be unique.
    #[error("duplicate {what} '{value}' in the directory; each must be unique")]
    Duplicate { what: &'static str, value: String },
    /// A managed identity `kind` other than `system` or `user`.
    #[error("managed identity '{name}': kind must be \"system\" or \"user\", not '{found}'")]
    BadManagedIdentityKind { name: String, found: String },
    /// A database user names no principal of the directory.
    #[error("database '{database}': user '{principal}' names no app, managed identity, user or group of the directory")]
    UnknownDatabasePrincipal { database: String, principal: String },
    /// `sql_admin` names no principal.
    #[error(
        "sql_admin '{principal}' names no app, managed identity, user or group of the directory"
    )]
    UnknownSqlAdmin { principal: String },
    /// A certificate could not be generated.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// The tenant (directory) id.
    pub id: Uuid,
    /// The primary domain, used in UPNs (`alice@<domain>`), e.g. `contoso.onmicrosoft.com`.
    pub domain: String,
    /// A display name.
    pub display_name: String,
}

/// A federated identity credential of an app registration (workload identity federation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredential {
    /// A name for the credential.
    pub name: String,
    /// The expected `iss` of the external token; [`EMULATOR_OIDC_ISSUER`] for tokens the emulator mints.
    pub issuer: String,
    /// The expected `sub` of the external token, e.g. `system:serviceaccount:default:demo`.
    pub subject: String,
    /// Accepted `aud` values; normally [`FEDERATED_AUDIENCE`].
    pub audiences: Vec<String>,
}

/// An app registration with its service principal in this tenant.
#[derive(Debug, Clone)]
pub struct AppRegistration {
    /// The display name.
    pub name: String,
    /// The application (client) id.
    pub client_id: Uuid,
    /// The service principal's object id.
    pub object_id: Uuid,
    /// Client secrets (any of them is accepted).
    pub secrets: Vec<Secret>,
    /// Certificate credentials for client assertions.
    pub certificates: Vec<AppCertificate>,
    /// Federated identity credentials.
    pub federated_credentials: Vec<FederatedCredential>,
}

/// System- or user-assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManagedIdentityKind {
    /// The host's own identity: what the endpoints answer when no id is given.
    SystemAssigned,
    /// A standalone identity attached to the host, selected by client id, object id or resource id.
    UserAssigned,
}

/// A managed identity attached to the emulated host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedIdentity {
    /// The display name (for a system-assigned identity, the resource's name).
    pub name: String,
    /// System- or user-assigned.
    pub kind: ManagedIdentityKind,
    /// The client (application) id.
    pub client_id: Uuid,
    /// The service principal's object id.
    pub object_id: Uuid,
    /// The ARM resource id.
    pub resource_id: String,
}

/// A user.
#[derive(Debug, Clone)]
pub struct User {
    /// The user principal name, e.g. `alice@contoso.onmicrosoft.com`.
    pub upn: String,
    /// The display name.
    pub display_name: String,
    /// The object id.
    pub object_id: Uuid,
    /// The password for the ROPC (password) grant; `None` refuses that grant.
    pub password: Option<Secret>,
    /// Conditional access demands MFA: the password grant is refused with AADSTS50076.
    pub mfa_required: bool,
}

/// A security group (only reachable through `CREATE USER … FROM EXTERNAL PROVIDER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The display name.
    pub display_name: String,
    /// The object id.
    pub object_id: Uuid,
}

/// A database user to create when the SQL endpoint starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUserSeed {
    /// Names a directory principal (name, UPN, client id or object id); the user is created for it.
    pub principal: String,
    /// Database roles to add it to, e.g. `db_datareader`.
    pub roles: Vec<String>,
}

/// A database and the users it starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSeed {
    /// The database name.
    pub name: String,
    /// Its users.
    pub users: Vec<DatabaseUserSeed>,
}

/// The whole directory.
#[derive(Debug, Clone)]
pub struct Directory {
    /// The tenant.
    pub tenant: Tenant,
    /// App registrations.
    pub apps: Vec<AppRegistration>,
    /// Managed identities attached to the emulated host.
    pub managed_identities: Vec<ManagedIdentity>,
    /// Users.
    pub users: Vec<User>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Databases to seed into the SQL endpoint.
    pub databases: Vec<DatabaseSeed>,
    /// The SQL server's Microsoft Entra admin (a principal name, UPN or id): it logs into every database as
    /// `dbo` and may run the grant workflow.
    pub sql_admin: Option<String>,
}

/// Something a token can be issued to.
#[derive(Debug, Clone)]
pub enum Subject {
    /// An app registration's service principal.
    App(AppRegistration),
    /// A managed identity.
    ManagedIdentity(ManagedIdentity),
    /// A user.
    User(User),
}

impl Subject {
    /// The principal this subject is in `tenant`.
    pub fn principal(&self, tenant: Uuid) -> Principal {
        match self {
            Subject::App(app) => Principal {
                kind: PrincipalKind::ServicePrincipal,
                tenant_id: tenant,
                object_id: app.object_id,
                app_id: Some(app.client_id),
                upn: None,
                display_name: app.name.clone(),
            },
            Subject::ManagedIdentity(mi) => Principal {
                kind: PrincipalKind::ManagedIdentity,
                tenant_id: tenant,
                object_id: mi.object_id,
                app_id: Some(mi.client_id),
                upn: None,
                display_name: mi.name.clone(),
            },
            Subject::User(user) => Principal {
                kind: PrincipalKind::User,
                tenant_id: tenant,
                object_id: user.object_id,
                app_id: None,
                upn: Some(user.upn.clone()),
                display_name: user.display_name.clone(),
            },
        }
    }
}

fn fixed(s: &str) -> Uuid {
    // Only called with literals below, checked by the `demo_ids_parse` test.
    Uuid::parse_str(s).unwrap_or_else(|_| Uuid::nil())
}

impl Directory {
    /// An empty directory for `tenant`.
    pub fn new(tenant: Tenant) -> Directory {
        Directory {
            tenant,
            apps: Vec::new(),
            managed_identities: Vec::new(),
            users: Vec::new(),
            groups: Vec::new(),
            databases: Vec::new(),
            sql_admin: None,
        }
    }

    /// The ready default for demos and tests (all ids fixed, so they can be written in docs):
    ///
    /// * tenant `72f988bf-0000-4000-8000-00000000e001`, domain `emulator.onmicrosoft.com`;
    /// * app registration `demo-app` (client id `00000000-0000-4000-8000-0000000a0001`, secret `demo-app-secret`,
    ///   one certificate, a federated credential for subject `system:serviceaccount:default:demo` from
    ///   [`EMULATOR_OIDC_ISSUER`]);
    /// * app registration `unmapped-app` (secret `unmapped-app-secret`) with no database user anywhere;
    /// * system-assigned managed identity `demo-mi` and user-assigned `demo-uami`;
    /// * users `alice@emulator.onmicrosoft.com` (password `alice-password`), `bob@…` (password `bob-password`,
    ///   MFA required) and `sqladmin@…` (password `sqladmin-password`, the server's Entra admin); group `sql-admins`;
    /// * database `appdb` with users `demo-app` (db_datareader, db_datawriter), `demo-mi` (db_datareader),
    ///   `alice@emulator.onmicrosoft.com` (db_owner).
    pub fn demo() -> Result<Directory, DirectoryError> {
        let tenant = Tenant {
            id: fixed("72f988bf-0000-4000-8000-00000000e001"),
            domain: "emulator.onmicrosoft.com".to_owned(),
            display_name: "Emulator".to_owned(),
        };
        let cert = AppCertificate::generate("demo-app", pooled_rsa_key(1)?)?;
        let mut dir = Directory::new(tenant);
        dir.apps.push(AppRegistration {
            name: "demo-app".to_owned(),
            client_id: fixed("00000000-0000-4000-8000-0000000a0001"),
            object_id: fixed("00000000-0000-4000-8000-0000000b0001"),
            secrets: vec![Secret::new("demo-app-secret")],
            certificates: vec![cert],
            federated_credentials: vec![FederatedCredential {
                name: "k8s-demo".to_owned(),
                issuer: EMULATOR_OIDC_ISSUER.to_owned(),
                subject: "system:serviceaccount:default:demo".to_owned(),
                audiences: vec![FEDERATED_AUDIENCE.to_owned()],
            }],
        });
        dir.apps.push(AppRegistration {
            name: "unmapped-app".to_owned(),
            client_id: fixed("00000000-0000-4000-8000-0000000a0002"),
            object_id: fixed("00000000-0000-4000-8000-0000000b0002"),
            secrets: vec![Secret::new("unmapped-app-secret")],
            certificates: Vec::new(),
            federated_credentials: Vec::new(),
        });
        dir.managed_identities.push(ManagedIdentity {
            name: "demo-mi".to_owned(),
            kind: ManagedIdentityKind::SystemAssigned,
            client_id: fixed("00000000-0000-4000-8000-0000000c0001"),
            object_id: fixed("00000000-0000-4000-8000-0000000d0001"),
            resource_id: "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/demo/providers/Microsoft.Web/sites/demo-mi".to_owned(),
        });
        dir.managed_identities.push(ManagedIdentity {
            name: "demo-uami".to_owned(),
            kind: ManagedIdentityKind::UserAssigned,
            client_id: fixed("00000000-0000-4000-8000-0000000c0002"),
            object_id: fixed("00000000-0000-4000-8000-0000000d0002"),
            resource_id: "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/demo-uami".to_owned(),
        });
        dir.users.push(User {
            upn: "alice@emulator.onmicrosoft.com".to_owned(),
            display_name: "Alice".to_owned(),
            object_id: fixed("00000000-0000-4000-8000-0000000e0001"),
            password: Some(Secret::new("alice-password")),
            mfa_required: false,
        });
        dir.users.push(User {
            upn: "bob@emulator.onmicrosoft.com".to_owned(),
            display_name: "Bob".to_owned(),
            object_id: fixed("00000000-0000-4000-8000-0000000e0002"),
            password: Some(Secret::new("bob-password")),
            mfa_required: true,
        });
        dir.users.push(User {
            upn: "sqladmin@emulator.onmicrosoft.com".to_owned(),
            display_name: "SQL Admin".to_owned(),
            object_id: fixed("00000000-0000-4000-8000-0000000e0003"),
            password: Some(Secret::new("sqladmin-password")),
            mfa_required: false,
        });
        dir.sql_admin = Some("sqladmin@emulator.onmicrosoft.com".to_owned());
        dir.groups.push(Group {
            display_name: "sql-admins".to_owned(),
            object_id: fixed("00000000-0000-4000-8000-0000000f0001"),
        });
        dir.databases.push(DatabaseSeed {
            name: "appdb".to_owned(),
            users: vec![
                DatabaseUserSeed {
                    principal: "demo-app".to_owned(),
                    roles: vec!["db_datareader".to_owned(), "db_datawriter".to_owned()],
                },
                DatabaseUserSeed {
                    principal: "demo-mi".to_owned(),
                    roles: vec!["db_datareader".to_owned()],
                },
                DatabaseUserSeed {
                    principal: "alice@emulator.onmicrosoft.com".to_owned(),
                    roles: vec!["db_owner".to_owned()],
                },
            ],
        });
        dir.check()?;
        Ok(dir)
    }

    /// Loads a directory from a TOML file (see [`Directory::from_toml_str`] for the format).
    pub fn from_toml_file(path: &Path) -> Result<Directory, DirectoryError> {
        let text = std::fs::read_to_string(path).map_err(|e| DirectoryError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Directory::from_toml_str(&text)
    }

    /// Parses a directory from TOML. Ids are optional (random when absent); example:
    ///
    /// ```toml
    /// sql_admin = "carol@contoso.onmicrosoft.com"   # optional: the server's Entra admin
    ///
    /// [tenant]
    /// id = "72f988bf-0000-4000-8000-00000000e001"   # optional
    /// domain = "contoso.onmicrosoft.com"
    ///
    /// [[apps]]
    /// name = "reporting"
    /// secrets = ["s3cret"]
    /// certificate = true          # generate a certificate credential
    /// [[apps.federated_credentials]]
    /// subject = "system:serviceaccount:default:reporting"   # issuer defaults to the emulator's OIDC issuer
    ///
    /// [[managed_identities]]
    /// name = "web"
    /// kind = "system"             # or "user"
    ///
    /// [[users]]
    /// upn = "carol@contoso.onmicrosoft.com"
    /// password = "pw"
    /// mfa_required = false
    ///
    /// [[databases]]
    /// name = "appdb"
    /// users = [{ principal = "reporting", roles = ["db_datareader"] }]
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Directory, DirectoryError> {
        let raw: RawDirectory =
            toml::from_str(text).map_err(|e| DirectoryError::Toml(e.to_string()))?;
        let tenant = Tenant {
            id: raw.tenant.id.unwrap_or_else(Uuid::new_v4),
            domain: raw
                .tenant
                .domain
                .unwrap_or_else(|| "emulator.onmicrosoft.com".to_owned()),
            display_name: raw
                .tenant
                .display_name
                .unwrap_or_else(|| "Emulator".to_owned()),
        };
        let mut dir = Directory::new(tenant);
        dir.sql_admin = raw.sql_admin;
        for (i, app) in raw.apps.into_iter().enumerate() {
            let mut certificates = Vec::new();
            if app.certificate {
                // Pool slot 1 is the demo app's key; further apps get their own keys.
                certificates.push(AppCertificate::generate(&app.name, pooled_rsa_key(1 + i)?)?);
            }
            dir.apps.push(AppRegistration {
                client_id: app.client_id.unwrap_or_else(Uuid::new_v4),
                object_id: app.object_id.unwrap_or_else(Uuid::new_v4),
                secrets: app.secrets,
                certificates,
                federated_credentials: app
                    .federated_credentials
                    .into_iter()
                    .enumerate()
                    .map(|(n, f)| FederatedCredential {
                        name: f
                            .name
                            .unwrap_or_else(|| format!("{}-federated-{n}", app.name)),
                        issuer: f.issuer.unwrap_or_else(|| EMULATOR_OIDC_ISSUER.to_owned()),
                        subject: f.subject,
                        audiences: f
                            .audiences
                            .unwrap_or_else(|| vec![FEDERATED_AUDIENCE.to_owned()]),
                    })
                    .collect(),
                name: app.name,
            });
        }
        for mi in raw.managed_identities {
            let kind = match mi.kind.as_deref().unwrap_or("user") {
                "system" | "system-assigned" | "SystemAssigned" => {
                    ManagedIdentityKind::SystemAssigned
                }
                "user" | "user-assigned" | "UserAssigned" => ManagedIdentityKind::UserAssigned,
                other => {
                    return Err(DirectoryError::BadManagedIdentityKind {
                        name: mi.name,
                        found: other.to_owned(),
                    })
                }
            };
            let resource_id = mi.resource_id.unwrap_or_else(|| match kind {
                ManagedIdentityKind::SystemAssigned => format!(
                    "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/emulator/providers/Microsoft.Web/sites/{}",
                    mi.name
                ),
                ManagedIdentityKind::UserAssigned => format!(
                    "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
                    mi.name
                ),
            });
            dir.managed_identities.push(ManagedIdentity {
                kind,
                client_id: mi.client_id.unwrap_or_else(Uuid::new_v4),
                object_id: mi.object_id.unwrap_or_else(Uuid::new_v4),
                resource_id,
                name: mi.name,
            });
        }
        for user in raw.users {
            let upn = if user.upn.contains('@') {
                user.upn
            } else {
                format!("{}@{}", user.upn, dir.tenant.domain)
            };
            dir.users.push(User {
                display_name: user
                    .display_name
                    .unwrap_or_else(|| upn.split('@').next().unwrap_or("").to_owned()),
                object_id: user.object_id.unwrap_or_else(Uuid::new_v4),
                password: user.password,
                mfa_required: user.mfa_required,
                upn,
            });
        }
        for group in raw.groups {
            dir.groups.push(Group {
                display_name: group.name,
                object_id: group.object_id.unwrap_or_else(Uuid::new_v4),
            });
        }
        for db in raw.databases {
            dir.databases.push(DatabaseSeed {
                name: db.name,
                users: db
                    .users
                    .into_iter()
                    .map(|u| DatabaseUserSeed {
                        principal: u.principal,
                        roles: u.roles,
                    })
                    .collect(),
            });
        }
        dir.check()?;
        Ok(dir)
    }

    /// Checks uniqueness of ids and names, and that database users name directory principals.
    pub fn check(&self) -> Result<(), DirectoryError> {
        let mut ids = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        let dup = |what: &'static str, set: &mut std::collections::HashSet<String>, v: String| {
            if set.insert(v.to_ascii_lowercase()) {
                Ok(())
            } else {
                Err(DirectoryError::Duplicate { what, value: v })
            }
        };
        for app in &self.apps {
            dup("id", &mut ids, app.client_id.to_string())?;
            dup("id", &mut ids, app.object_id.to_string())?;
            dup("name", &mut names, app.name.clone())?;
        }
        for mi in &self.managed_identities {
            dup("id", &mut ids, mi.client_id.to_string())?;
            dup("id", &mut ids, mi.object_id.to_string())?;
            dup("name", &mut names, mi.name.clone())?;
        }
        let system = self
            .managed_identities
            .iter()
            .filter(|m| m.kind == ManagedIdentityKind::SystemAssigned);
        if let Some(second) = system.clone().nth(1) {
            return Err(DirectoryError::Duplicate {
                what: "system-assigned managed identity",
                value: second.name.clone(),
            });
        }
        for user in &self.users {
            dup("id", &mut ids, user.object_id.to_string())?;
            dup("name", &mut names, user.upn.clone())?;
        }
        for group in &self.groups {
            dup("id", &mut ids, group.object_id.to_string())?;
            dup("name", &mut names, group.display_name.clone())?;
        }
        if let Some(admin) = &self.sql_admin {
            if self.resolve(admin).is_none() {
                return Err(DirectoryError::UnknownSqlAdmin {
                    principal: admin.clone(),
                });
            }
        }
        for db in &self.databases {
            for user in &db.users {
                if self.resolve(&user.principal).is_none() {
                    return Err(DirectoryError::UnknownDatabasePrincipal {
                        database: db.name.clone(),
                        principal: user.principal.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Finds a token subject by name, UPN, client id or object id (case-insensitive).
    pub fn find_subject(&self, name: &str) -> Option<Subject> {
        let name = name.trim();
        let as_uuid = Uuid::parse_str(name).ok();
        let eq = |s: &str| s.eq_ignore_ascii_case(name);
        if let Some(app) = self
            .apps
            .iter()
            .find(|a| eq(&a.name) || Some(a.client_id) == as_uuid || Some(a.object_id) == as_uuid)
        {
            return Some(Subject::App(app.clone()));
        }
        if let Some(mi) = self.managed_identities.iter().find(|m| {
            eq(&m.name)
                || Some(m.client_id) == as_uuid
                || Some(m.object_id) == as_uuid
                || eq(&m.resource_id)
        }) {
            return Some(Subject::ManagedIdentity(mi.clone()));
        }
        self.users
            .iter()
            .find(|u| eq(&u.upn) || eq(&u.display_name) || Some(u.object_id) == as_uuid)
            .map(|u| Subject::User(u.clone()))
    }

    /// Resolves a name as Microsoft Graph does for `CREATE USER [name] FROM EXTERNAL PROVIDER`:
    /// display name, UPN, client id or object id of an app, managed identity, user or group.
    pub fn resolve(&self, name: &str) -> Option<Principal> {
        if let Some(subject) = self.find_subject(name) {
            return Some(subject.principal(self.tenant.id));
        }
        let as_uuid = Uuid::parse_str(name.trim()).ok();
        self.groups
            .iter()
            .find(|g| {
                g.display_name.eq_ignore_ascii_case(name.trim()) || Some(g.object_id) == as_uuid
            })
            .map(|g| Principal {
                kind: PrincipalKind::Group,
                tenant_id: self.tenant.id,
                object_id: g.object_id,
                app_id: None,
                upn: None,
                display_name: g.display_name.clone(),
            })
    }

    /// The app registration with this client id.
    pub fn app_by_client_id(&self, client_id: &str) -> Option<&AppRegistration> {
        let id = Uuid::parse_str(client_id.trim()).ok()?;
        self.apps.iter().find(|a| a.client_id == id)
    }

    /// The user with this UPN (case-insensitive).
    pub fn user_by_upn(&self, upn: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.upn.eq_ignore_ascii_case(upn.trim()))
    }

    /// The system-assigned managed identity, if the emulated host has one.
    pub fn system_assigned(&self) -> Option<&ManagedIdentity> {
        self.managed_identities
            .iter()
            .find(|m| m.kind == ManagedIdentityKind::SystemAssigned)
    }

    /// Whether `domain` is this tenant's domain (for the UserRealm lookup).
    pub fn owns_domain(&self, domain: &str) -> bool {
        self.tenant.domain.eq_ignore_ascii_case(domain)
    }

    /// Whether `name` (a GUID or domain in a URL path) names this tenant.
    pub fn is_tenant(&self, name: &str) -> bool {
        Uuid::parse_str(name)
            .map(|id| id == self.tenant.id)
            .unwrap_or(false)
            || self.owns_domain(name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    sql_admin: Option<String>,
    #[serde(default)]
    tenant: RawTenant,
    #[serde(default)]
    apps: Vec<RawApp>,
    #[serde(default)]
    managed_identities: Vec<RawMi>,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    groups: Vec<RawGroup>,
    #[serde(default)]
    databases: Vec<RawDatabase>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    id: Option<Uuid>,
    domain: Option<String>,
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    name: String,
    client_id: Option<Uuid>,
    object_id: Option<Uuid>,
    #[serde(default)]
    secrets: Vec<Secret>,
    #[serde(default)]
    certificate: bool,
    #[serde(default)]
    federated_credentials: Vec<RawFederated>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFederated {
    name: Option<String>,
    issuer: Option<String>,
    subject: String,
    audiences: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMi {
    name: String,
    kind: Option<String>,
    client_id: Option<Uuid>,
    object_id: Option<Uuid>,
    resource_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    upn: String,
    display_name: Option<String>,
    object_id: Option<Uuid>,
    password: Option<Secret>,
    #[serde(default)]
    mfa_required: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    object_id: Option<Uuid>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    name: String,
    #[serde(default)]
    users: Vec<RawDbUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDbUser {
    principal: String,
    #[serde(default)]
    roles: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_ids_parse_and_resolve() {
        let dir = Directory::demo().expect("demo directory");
        assert_ne!(dir.tenant.id, Uuid::nil());
        for app in &dir.apps {
            assert_ne!(app.client_id, Uuid::nil(), "{}", app.name);
        }
        let alice = dir.resolve("Alice").expect("alice by display name");
        assert_eq!(alice.upn.as_deref(), Some("alice@emulator.onmicrosoft.com"));
        let app = dir
            .resolve("00000000-0000-4000-8000-0000000a0001")
            .expect("app by client id");
        assert_eq!(app.kind, PrincipalKind::ServicePrincipal);
        assert_eq!(app.display_name, "demo-app");
        assert_eq!(
            dir.resolve("sql-admins").map(|p| p.kind),
            Some(PrincipalKind::Group)
        );
        assert!(dir.resolve("nobody").is_none());
        assert!(!format!("{dir:?}").contains("alice-password"));
        assert!(!format!("{dir:?}").contains("demo-app-secret"));
    }

    #[test]
    fn toml_round_trip_and_errors() {
        let dir = Directory::from_toml_str(
            r#"
            [tenant]
            domain = "contoso.test"
            [[apps]]
            name = "reporting"
            secrets = ["s3cret"]
            [[apps.federated_credentials]]
            subject = "sa:reporting"
            [[managed_identities]]
            name = "web"
            kind = "system"
            [[users]]
            upn = "carol"
            password = "pw"
            mfa_required = true
            [[databases]]
            name = "appdb"
            users = [{ principal = "carol@contoso.test", roles = ["db_owner"] }]
            "#,
        )
        .expect("valid toml");
        assert_eq!(dir.users[0].upn, "carol@contoso.test");
        assert!(dir.users[0].mfa_required);
        assert_eq!(
            dir.apps[0].federated_credentials[0].issuer,
            EMULATOR_OIDC_ISSUER
        );
        assert_eq!(dir.system_assigned().map(|m| m.name.as_str()), Some("web"));

        let err =
            Directory::from_toml_str("[[managed_identities]]\nname = \"x\"\nkind = \"both\"\n")
                .unwrap_err();
        assert!(
            matches!(err, DirectoryError::BadManagedIdentityKind { .. }),
            "{err}"
        );
        let err = Directory::from_toml_str("[[apps]]\nnmae = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("nmae"), "{err}");
        let err = Directory::from_toml_str(
            "[[databases]]\nname = \"d\"\nusers = [{ principal = \"ghost\" }]\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, DirectoryError::UnknownDatabasePrincipal { .. }),
            "{err}"
        );
        let err = Directory::from_toml_str("[[users]]\nupn = \"a@x\"\n[[users]]\nupn = \"A@x\"\n")
            .unwrap_err();
        assert!(matches!(err, DirectoryError::Duplicate { .. }), "{err}");
        let err = Directory::from_toml_str("sql_admin = \"ghost\"\n").unwrap_err();
        assert!(
            matches!(err, DirectoryError::UnknownSqlAdmin { .. }),
            "{err}"
        );
        let dir =
            Directory::from_toml_str("sql_admin = \"a@x\"\n[[users]]\nupn = \"a@x\"\n").unwrap();
        assert_eq!(dir.sql_admin.as_deref(), Some("a@x"));
    }
}
