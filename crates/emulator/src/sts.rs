//! The token service's routes: v1 and v2.0 token endpoints, UserRealm, device code, discovery and JWKS.

use std::collections::HashMap;

use serde_json::json;

use crate::directory::Subject;
use crate::http::{json, sts_error, AppState, Endpoint, Req, Resp};
use crate::identity::{scope_to_audience, IssuedToken, MintOptions};
use crate::sts_error::StsError;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn seg(req: &Req, i: usize) -> Option<&str> {
    req.segments.get(i).map(String::as_str)
}

fn eq(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.eq_ignore_ascii_case(b))
}

pub(crate) fn classify(req: &Req) -> Endpoint {
    let n = req.segments.len();
    let post = req.method == hyper::Method::POST;
    let get = req.method == hyper::Method::GET;
    match n {
        3 if get && eq(seg(req, 1), "userrealm") => Endpoint::UserRealm,
        3 if post && eq(seg(req, 1), "oauth2") && eq(seg(req, 2), "token") => Endpoint::TokenV1,
        3 if post && eq(seg(req, 1), "oauth2") && eq(seg(req, 2), "devicecode") => {
            Endpoint::DeviceCode
        }
        4 if post
            && eq(seg(req, 1), "oauth2")
            && eq(seg(req, 2), "v2.0")
            && eq(seg(req, 3), "token") =>
        {
            Endpoint::TokenV2
        }
        4 if post
            && eq(seg(req, 1), "oauth2")
            && eq(seg(req, 2), "v2.0")
            && eq(seg(req, 3), "devicecode") =>
        {
            Endpoint::DeviceCode
        }
        3 if get && eq(seg(req, 1), ".well-known") && eq(seg(req, 2), "openid-configuration") => {
            Endpoint::OpenIdConfiguration
        }
        4 if get
            && eq(seg(req, 1), "v2.0")
            && eq(seg(req, 2), ".well-known")
            && eq(seg(req, 3), "openid-configuration") =>
        {
            Endpoint::OpenIdConfiguration
        }
        3 if get && eq(seg(req, 1), "discovery") && eq(seg(req, 2), "keys") => Endpoint::Jwks,
        4 if get
            && eq(seg(req, 1), "discovery")
            && eq(seg(req, 2), "v2.0")
            && eq(seg(req, 3), "keys") =>
        {
            Endpoint::Jwks
        }
        _ => Endpoint::Unknown,
    }
}

/// How the path names the tenant.
enum TenantRef {
    Ours,
    Common,
}

fn tenant_ref(req: &Req, state: &AppState) -> Result<TenantRef, StsError> {
    let name = seg(req, 0).unwrap_or("");
    if ["common", "organizations", "consumers"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
    {
        return Ok(TenantRef::Common);
    }
    if state.identity.with_directory(|d| d.is_tenant(name)) {
        return Ok(TenantRef::Ours);
    }
    Err(StsError::invalid_request(
        90002,
        &format!("Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."),
    ))
}

pub(crate) fn route(req: &Req, endpoint: Endpoint, state: &AppState) -> Resp {
    let result = match endpoint {
        Endpoint::TokenV1 => token(req, state, Version::V1),
        Endpoint::TokenV2 => token(req, state, Version::V2),
        Endpoint::DeviceCode => device_code(req, state),
        Endpoint::UserRealm => Ok(user_realm(req, state)),
        Endpoint::OpenIdConfiguration => openid_configuration(req, state),
        Endpoint::Jwks => Ok(json(200, state.identity.jwks().to_string())),
        _ => Ok(json(
            404,
            json!({"error":"not_found","error_description":"The emulator's token service has no such endpoint."})
                .to_string(),
        )),
    };
    result.unwrap_or_else(|e| sts_error(&e))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

fn required<'a>(form: &'a HashMap<String, String>, name: &str) -> Result<&'a str, StsError> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| StsError::missing(name))
}

fn token(req: &Req, state: &AppState, version: Version) -> Result<Resp, StsError> {
    let tenant = tenant_ref(req, state)?;
    let form = req.form();
    let grant = required(&form, "grant_type")?;
    // The audience: v1 names a resource, v2.0 a scope (a device-code poll uses the one stored with the code).
    let scope = form.get("scope").filter(|s| !s.is_empty()).cloned();
    let audience = || -> Result<String, StsError> {
        match version {
            Version::V1 => Ok(required(&form, "resource")?.to_owned()),
            Version::V2 => {
                let scope = required(&form, "scope")?;
                scope_to_audience(scope).map(str::to_owned).ok_or_else(|| {
                    StsError::new(
                        400,
                        "invalid_scope",
                        70011,
                        "The provided value for the input parameter 'scope' is not valid.",
                    )
                })
            }
        }
    };
    let issued = match grant {
        "client_credentials" => {
            if matches!(tenant, TenantRef::Common) {
                return Err(StsError::invalid_request(
                    50059,
                    "No tenant-identifying information found in either the request or implied by any provided credentials.",
                ));
            }
            let audience = audience()?;
            if let (Version::V2, Some(scope)) = (version, &scope) {
                if !scope.trim().ends_with("/.default") {
                    return Err(StsError::new(400, "invalid_scope", 1002012, &format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")));
                }
            }
            client_credentials(&form, state, &audience)?
        }
        "password" => password(&form, state, &audience()?)?,
        DEVICE_CODE_GRANT => {
            let client_id = required(&form, "client_id")?;
            let code = form
                .get("device_code")
                .or_else(|| form.get("code"))
                .filter(|c| !c.is_empty())
                .ok_or_else(|| StsError::missing("device_code"))?;
            state.identity.poll_device_code(code, client_id)?
        }
        other => {
            return Err(StsError::new(
                400,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
            ))
        }
    };
    let expires_in = (issued.expires_on - crate::identity::unix_now()).max(0);
    let body = match version {
        Version::V1 => {
            // Entra's v1 endpoint writes the numbers as strings.
            let mut v = json!({
                "token_type": "Bearer",
                "expires_in": expires_in.to_string(),
                "ext_expires_in": expires_in.to_string(),
                "expires_on": issued.expires_on.to_string(),
                "not_before": issued.not_before.to_string(),
                "resource": issued.audience,
                "access_token": issued.token,
            });
            if grant != "client_credentials" {
                if let Some(map) = v.as_object_mut() {
                    map.insert("scope".to_owned(), json!("user_impersonation"));
                }
            }
            v
        }
        Version::V2 => {
            let mut v = json!({
                "token_type": "Bearer",
                "expires_in": expires_in,
                "ext_expires_in": expires_in,
                "access_token": issued.token,
            });
            if grant != "client_credentials" {
                if let (Some(map), Some(scope)) = (v.as_object_mut(), &scope) {
                    map.insert("scope".to_owned(), json!(scope));
                }
            }
            v
        }
    };
    Ok(json(200, body.to_string()))
}

fn client_credentials(
    form: &HashMap<String, String>,
    state: &AppState,
    audience: &str,
) -> Result<IssuedToken, StsError> {
    let client_id = required(form, "client_id")?;
    let tenant = state.identity.tenant_id();
    let Some(app) = state
        .identity
        .with_directory(|d| d.app_by_client_id(client_id).cloned())
    else {
        return Err(StsError::new(
            400,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."),
        ));
    };
    if let Some(secret) = form.get("client_secret").filter(|s| !s.is_empty()) {
        if !app.secrets.iter().any(|s| s.matches(secret)) {
            return Err(StsError::invalid_client(
                7000215,
                &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", app.client_id),
            ));
        }
    } else if let Some(assertion) = form.get("client_assertion").filter(|s| !s.is_empty()) {
        let kind = form
            .get("client_assertion_type")
            .map(String::as_str)
            .unwrap_or("");
        if kind != ASSERTION_TYPE {
            return Err(StsError::invalid_request(
                50027,
                &format!("Invalid client_assertion_type '{kind}'; expected '{ASSERTION_TYPE}'."),
            ));
        }
        state.identity.verify_client_assertion(&app, assertion)?;
    } else {
        return Err(StsError::invalid_client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    state
        .identity
        .issue_for(&Subject::App(app), audience, None, &MintOptions::default())
        .map_err(|e| StsError::server(&e.to_string()))
}

fn password(
    form: &HashMap<String, String>,
    state: &AppState,
    audience: &str,
) -> Result<IssuedToken, StsError> {
    let username = required(form, "username")?;
    let password = required(form, "password")?;
    let client_id = required(form, "client_id")?;
    let (user, tenant) = state
        .identity
        .with_directory(|d| (d.user_by_upn(username).cloned(), d.tenant.id));
    let Some(user) = user else {
        return Err(StsError::new(
            400,
            "invalid_grant",
            50034,
            &format!("The user account {{EUII Hidden}} does not exist in the {tenant} directory. To sign into this application, the account must be added to the directory."),
        ));
    };
    if !user.password.as_ref().is_some_and(|p| p.matches(password)) {
        return Err(StsError::new(
            400,
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        ));
    }
    if user.mfa_required {
        let mut err = StsError::new(
            400,
            "invalid_grant",
            50076,
            &format!("Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{audience}'."),
        );
        err.suberror = Some("basic_action");
        return Err(err);
    }
    state
        .identity
        .issue_for(
            &Subject::User(user),
            audience,
            Some(client_id),
            &MintOptions::default(),
        )
        .map_err(|e| StsError::server(&e.to_string()))
}

fn device_code(req: &Req, state: &AppState) -> Result<Resp, StsError> {
    tenant_ref(req, state)?;
    let form = req.form();
    let client_id = required(&form, "client_id")?;
    let audience = match form.get("scope").filter(|s| !s.is_empty()) {
        Some(scope) => scope_to_audience(scope)
            .ok_or_else(|| {
                StsError::new(
                    400,
                    "invalid_scope",
                    70011,
                    "The provided value for the input parameter 'scope' is not valid.",
                )
            })?
            .to_owned(),
        None => required(&form, "resource")?.to_owned(),
    };
    let (device_code, entry, interval) = state.identity.new_device_code(client_id, &audience);
    let verification_uri = format!("{}/devicelogin", state.identity.sts_base_url());
    let body = json!({
        "user_code": entry.user_code,
        "device_code": device_code,
        "verification_uri": verification_uri,
        "expires_in": 900,
        "interval": interval,
        "message": format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the code {} to authenticate.",
            entry.user_code
        ),
    });
    Ok(json(200, body.to_string()))
}

fn user_realm(req: &Req, state: &AppState) -> Resp {
    let upn = seg(req, 2).unwrap_or("");
    let domain = upn.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    let body = if state.identity.with_directory(|d| d.owns_domain(domain)) {
        json!({
            "ver": "1.0",
            "account_type": "Managed",
            "domain_name": domain,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        })
    } else {
        json!({"ver": "1.0", "account_type": "Unknown", "cloud_instance_name": "microsoftonline.com"})
    };
    json(200, body.to_string())
}

fn openid_configuration(req: &Req, state: &AppState) -> Result<Resp, StsError> {
    let tenant = tenant_ref(req, state)?;
    let base = state.identity.sts_base_url();
    let path_tenant = seg(req, 0).unwrap_or("common");
    let tid = match tenant {
        TenantRef::Ours => state.identity.tenant_id().to_string(),
        TenantRef::Common => "{tenantid}".to_owned(),
    };
    let v2 = eq(seg(req, 1), "v2.0");
    let body = if v2 {
        json!({
            "token_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{path_tenant}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("https://login.microsoftonline.com/{tid}/v2.0"),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/devicecode"),
            "end_session_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "tid", "upn", "appid", "idtyp"],
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        })
    } else {
        json!({
            "token_endpoint": format!("{base}/{path_tenant}/oauth2/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{path_tenant}/discovery/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "issuer": format!("https://sts.windows.net/{tid}/"),
            "authorization_endpoint": format!("{base}/{path_tenant}/oauth2/authorize"),
            "device_authorization_endpoint": format!("{base}/{path_tenant}/oauth2/devicecode"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "tid", "upn", "appid", "idtyp"],
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        })
    };
    Ok(json(200, body.to_string()))
}
