//! Token scopes for Azure SQL per cloud, and the rules between v1 resources and v2 scopes.
//!
//! # Resource (v1) and scope (v2)
//!
//! Azure SQL is registered in Entra ID under the application ID URI `https://database.windows.net/`, with
//! a trailing slash. That string is the **resource** of the v1 protocol: the ODBC driver receives it as the SPN
//! in FEDAUTHINFO and sends it verbatim, e.g. `resource=https%3A%2F%2Fdatabase.windows.net%2F` to the
//! instance metadata service. The v2 protocol (and every `azure_identity` credential) asks for a **scope**
//! instead: the resource followed by `/.default`.
//!
//! * scope → resource ([`Scope::resource`]): drop the `/.default` suffix and make sure exactly one `/` ends
//!   the result: `https://database.windows.net/.default` → `https://database.windows.net/`.
//! * resource → scope ([`Scope::from_resource`]): drop trailing slashes and append `/.default`:
//!   `https://database.windows.net/` → `https://database.windows.net/.default`.
//!
//! Entra ID also accepts the naive concatenation `https://database.windows.net//.default` (what SqlClient
//! sends). Both name the same resource; [`Scope::resource`] maps both to `https://database.windows.net/`.
//! Note that `azure_identity`'s managed identity credential turns a scope into a resource by stripping
//! `/.default` only, so it requests `resource=https://database.windows.net` (no slash); the instance metadata
//! service accepts that too.
//!
//! # Clouds
//!
//! | host suffix | cloud | scope |
//! |---|---|---|
//! | `.database.windows.net`, `.sql.azuresynapse.net` | public | `https://database.windows.net/.default` |
//! | `.fabric.microsoft.com`, `.pbidedicated.windows.net` | Fabric (public) | `https://database.windows.net/.default` |
//! | `.database.usgovcloudapi.net` | US Government | `https://database.usgovcloudapi.net/.default` |
//! | `.database.chinacloudapi.cn` | China | `https://database.chinacloudapi.cn/.default` |
//!
//! Fabric warehouses, SQL analytics endpoints and Fabric SQL databases accept tokens for the Azure SQL
//! resource `https://database.windows.net/`; Microsoft's Fabric connection docs use that audience.

use crate::TokenError;
use std::fmt;

/// The v2 scope of Azure SQL in the public cloud.
pub const AZURE_SQL_SCOPE: &str = "https://database.windows.net/.default";
/// The v2 scope of Azure SQL in Azure Government (US).
pub const AZURE_SQL_US_GOVERNMENT_SCOPE: &str = "https://database.usgovcloudapi.net/.default";
/// The v2 scope of Azure SQL in Azure operated by 21Vianet (China).
pub const AZURE_SQL_CHINA_SCOPE: &str = "https://database.chinacloudapi.cn/.default";

const DEFAULT_SUFFIX: &str = "/.default";

/// The Azure cloud a SQL endpoint lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cloud {
    /// Azure public cloud (`*.database.windows.net`).
    AzurePublic,
    /// Azure Government (`*.database.usgovcloudapi.net`).
    AzureUsGovernment,
    /// Azure operated by 21Vianet (`*.database.chinacloudapi.cn`).
    AzureChina,
    /// Microsoft Fabric SQL endpoints (`*.fabric.microsoft.com`); public-cloud identities and audience.
    Fabric,
}

impl Cloud {
    /// Recognises the cloud from a server name as written in a connection string: `tcp:` prefix, `,port`
    /// and `\instance` suffixes, letter case and a trailing dot are ignored. `None` for other hosts
    /// (on-premises servers, `localhost`, IP addresses).
    pub fn from_host(server: &str) -> Option<Self> {
        let host = bare_host(server);
        const TABLE: &[(&str, Cloud)] = &[
            (".database.windows.net", Cloud::AzurePublic),
            (".sql.azuresynapse.net", Cloud::AzurePublic),
            (".fabric.microsoft.com", Cloud::Fabric),
            (".pbidedicated.windows.net", Cloud::Fabric),
            (".database.usgovcloudapi.net", Cloud::AzureUsGovernment),
            (".database.chinacloudapi.cn", Cloud::AzureChina),
        ];
        TABLE
            .iter()
            .find(|(suffix, _)| host.ends_with(suffix) && host.len() > suffix.len())
            .map(|(_, cloud)| *cloud)
    }

    /// The Azure SQL scope of this cloud.
    pub fn scope(self) -> Scope {
        Scope(
            match self {
                Cloud::AzurePublic | Cloud::Fabric => AZURE_SQL_SCOPE,
                Cloud::AzureUsGovernment => AZURE_SQL_US_GOVERNMENT_SCOPE,
                Cloud::AzureChina => AZURE_SQL_CHINA_SCOPE,
            }
            .to_owned(),
        )
    }

    /// The Entra ID authority host of this cloud.
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::AzurePublic | Cloud::Fabric => "https://login.microsoftonline.com",
            Cloud::AzureUsGovernment => "https://login.microsoftonline.us",
            Cloud::AzureChina => "https://login.chinacloudapi.cn",
        }
    }
}

/// Strips `tcp:`, `,port`, `\instance`, a trailing dot, and lower-cases.
fn bare_host(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("tcp:")
        .or_else(|| s.strip_prefix("TCP:"))
        .unwrap_or(s);
    let s = s.split([',', '\\']).next().unwrap_or(s);
    s.trim_end_matches('.').to_ascii_lowercase()
}

/// A v2 OAuth scope, such as `https://database.windows.net/.default`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope(String);

impl Scope {
    /// Takes a scope as given. It must be non-empty and contain no whitespace.
    pub fn new(scope: impl Into<String>) -> Result<Self, TokenError> {
        let scope = scope.into();
        if scope.is_empty() || scope.chars().any(char::is_whitespace) {
            return Err(TokenError::Config {
                field: "scope",
                reason: format!(
                    "`{scope}` is not a scope; use e.g. `{AZURE_SQL_SCOPE}` (no spaces, not empty)"
                ),
            });
        }
        Ok(Self(scope))
    }

    /// The public-cloud Azure SQL scope, `https://database.windows.net/.default`.
    pub fn azure_sql() -> Self {
        Cloud::AzurePublic.scope()
    }

    /// The Azure SQL scope for a server name (see the table in the [module docs](crate::scope)).
    ///
    /// Fails with [`TokenError::Config`] for hosts of no known cloud: set the scope explicitly then.
    pub fn for_server(server: &str) -> Result<Self, TokenError> {
        Cloud::from_host(server)
            .map(Cloud::scope)
            .ok_or_else(|| TokenError::Config {
                field: "server",
                reason: format!(
                    "cannot tell the Azure cloud from host `{}`; set the token scope explicitly, e.g. `{AZURE_SQL_SCOPE}`",
                    bare_host(server)
                ),
            })
    }

    /// The scope for a v1 resource (an SPN such as `https://database.windows.net/`).
    pub fn from_resource(resource: &str) -> Result<Self, TokenError> {
        let base = resource.trim().trim_end_matches('/');
        if base.is_empty() {
            return Err(TokenError::Config {
                field: "resource",
                reason: "the resource is empty; use e.g. `https://database.windows.net/`"
                    .to_owned(),
            });
        }
        Self::new(format!("{base}{DEFAULT_SUFFIX}"))
    }

    /// The v1 resource this scope names, with exactly one trailing slash.
    ///
    /// Scopes that do not end in `/.default` (delegated permissions such as `api://x/read`) are returned
    /// unchanged.
    pub fn resource(&self) -> String {
        match self.0.strip_suffix(DEFAULT_SUFFIX) {
            Some(base) => format!("{}/", base.trim_end_matches('/')),
            None => self.0.clone(),
        }
    }

    /// The scope string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.0)
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_from_server_host() {
        let table = [
            ("myserver.database.windows.net", Some(AZURE_SQL_SCOPE)),
            (
                "tcp:myserver.database.windows.net,1433",
                Some(AZURE_SQL_SCOPE),
            ),
            ("MyServer.Database.Windows.Net.", Some(AZURE_SQL_SCOPE)),
            ("mi.abc123.database.windows.net", Some(AZURE_SQL_SCOPE)),
            ("ws-ondemand.sql.azuresynapse.net", Some(AZURE_SQL_SCOPE)),
            (
                "x.datawarehouse.fabric.microsoft.com",
                Some(AZURE_SQL_SCOPE),
            ),
            (
                "x.database.fabric.microsoft.com,1433",
                Some(AZURE_SQL_SCOPE),
            ),
            (
                "gov.database.usgovcloudapi.net",
                Some(AZURE_SQL_US_GOVERNMENT_SCOPE),
            ),
            ("cn.database.chinacloudapi.cn", Some(AZURE_SQL_CHINA_SCOPE)),
            ("database.windows.net", None),
            ("evil-database.windows.net.example.com", None),
            ("localhost", None),
            ("127.0.0.1,1433", None),
            ("onprem\\SQLEXPRESS", None),
        ];
        for (host, want) in table {
            let got = Scope::for_server(host).ok();
            assert_eq!(got.as_ref().map(Scope::as_str), want, "host {host}");
        }
        let err = Scope::for_server("localhost").unwrap_err();
        assert!(matches!(
            err,
            TokenError::Config {
                field: "server",
                ..
            }
        ));
        assert!(err.to_string().contains("localhost"));
    }

    #[test]
    fn cloud_from_host() {
        assert_eq!(
            Cloud::from_host("a.database.usgovcloudapi.net"),
            Some(Cloud::AzureUsGovernment)
        );
        assert_eq!(
            Cloud::from_host("a.datawarehouse.fabric.microsoft.com"),
            Some(Cloud::Fabric)
        );
        assert_eq!(
            Cloud::AzureChina.authority_host(),
            "https://login.chinacloudapi.cn"
        );
    }

    #[test]
    fn resource_scope_round_trip() {
        let table = [
            (
                "https://database.windows.net/.default",
                "https://database.windows.net/",
            ),
            (
                "https://database.windows.net//.default",
                "https://database.windows.net/",
            ),
            (
                "https://database.usgovcloudapi.net/.default",
                "https://database.usgovcloudapi.net/",
            ),
            ("api://app/read", "api://app/read"),
        ];
        for (scope, resource) in table {
            assert_eq!(
                Scope::new(scope).unwrap().resource(),
                resource,
                "scope {scope}"
            );
        }
        for resource in [
            "https://database.windows.net/",
            "https://database.windows.net",
            "https://database.windows.net//",
        ] {
            assert_eq!(
                Scope::from_resource(resource).unwrap().as_str(),
                AZURE_SQL_SCOPE
            );
        }
        assert_eq!(
            Scope::from_resource("https://custom-spn.example/")
                .unwrap()
                .as_str(),
            "https://custom-spn.example/.default"
        );
    }

    #[test]
    fn bad_scopes_are_config_errors() {
        assert!(matches!(
            Scope::new(""),
            Err(TokenError::Config { field: "scope", .. })
        ));
        assert!(matches!(
            Scope::new("a b"),
            Err(TokenError::Config { field: "scope", .. })
        ));
        assert!(matches!(
            Scope::from_resource("/"),
            Err(TokenError::Config {
                field: "resource",
                ..
            })
        ));
    }
}
