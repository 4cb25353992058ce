//! The managed-identity endpoints: the instance-metadata form (`/metadata/identity/oauth2/token`, `Metadata: true`)
//! and the App Service form (`IDENTITY_ENDPOINT` + `X-IDENTITY-HEADER`, api-version 2019-08-01).
//!
//! Both listeners answer both paths; the App Service path is `/msi/token`.

use serde_json::json;
use uuid::Uuid;

use crate::directory::{Directory, ManagedIdentity, ManagedIdentityKind, Subject};
use crate::http::{json, AppState, Endpoint, Req, Resp};
use crate::identity::MintOptions;

/// The App Service endpoint's path.
pub const APP_SERVICE_PATH: &str = "/msi/token";
/// The instance-metadata endpoint's path.
pub const IMDS_PATH: &str = "/metadata/identity/oauth2/token";

pub(crate) fn classify(req: &Req) -> Endpoint {
    let path: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match path.as_slice() {
        ["metadata", "identity", "oauth2", "token"] => Endpoint::ImdsToken,
        ["msi", "token"] => Endpoint::AppServiceToken,
        _ => Endpoint::Unknown,
    }
}

pub(crate) fn route(req: &Req, endpoint: Endpoint, state: &AppState) -> Resp {
    match endpoint {
        Endpoint::ImdsToken => imds(req, state),
        Endpoint::AppServiceToken => app_service(req, state),
        _ => json(
            404,
            json!({"error":"not_found","error_description":"No such managed-identity endpoint."})
                .to_string(),
        ),
    }
}

fn imds_error(description: &str) -> Resp {
    json(
        400,
        json!({"error": "invalid_request", "error_description": description}).to_string(),
    )
}

/// The identity named by `client_id`/`object_id`/`msi_res_id`/`mi_res_id`/`principal_id`, or the default one.
fn select(dir: &Directory, req: &Req) -> Result<ManagedIdentity, &'static str> {
    let q = |name: &str| {
        req.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let as_uuid = |v: &str| Uuid::parse_str(v.trim()).ok();
    if let Some(id) = q("client_id") {
        let id = as_uuid(id);
        return dir
            .managed_identities
            .iter()
            .find(|m| Some(m.client_id) == id)
            .cloned()
            .ok_or("Identity not found");
    }
    if let Some(id) = q("object_id").or_else(|| q("principal_id")) {
        let id = as_uuid(id);
        return dir
            .managed_identities
            .iter()
            .find(|m| Some(m.object_id) == id)
            .cloned()
            .ok_or("Identity not found");
    }
    if let Some(res) = q("msi_res_id").or_else(|| q("mi_res_id")) {
        return dir
            .managed_identities
            .iter()
            .find(|m| m.resource_id.eq_ignore_ascii_case(res))
            .cloned()
            .ok_or("Identity not found");
    }
    if let Some(system) = dir.system_assigned() {
        return Ok(system.clone());
    }
    // With no system-assigned identity, a host with exactly one user-assigned identity uses it.
    let mut users = dir
        .managed_identities
        .iter()
        .filter(|m| m.kind == ManagedIdentityKind::UserAssigned);
    match (users.next(), users.next()) {
        (Some(only), None) => Ok(only.clone()),
        (Some(_), Some(_)) => Err("Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"),
        _ => Err("Identity not found"),
    }
}

fn imds(req: &Req, state: &AppState) -> Resp {
    let metadata = req
        .headers
        .get("metadata")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !metadata.eq_ignore_ascii_case("true") {
        return imds_error("Required metadata header not specified");
    }
    if req.query.get("api-version").is_none_or(|v| v.is_empty()) {
        return imds_error("Required query variable 'api-version' is missing");
    }
    let Some(resource) = req.query.get("resource").filter(|v| !v.is_empty()).cloned() else {
        return imds_error("Required query variable 'resource' is missing");
    };
    let mi = match state.identity.with_directory(|d| select(d, req)) {
        Ok(mi) => mi,
        Err(msg) => return imds_error(msg),
    };
    issue(state, mi, &resource, true)
}

fn app_service(req: &Req, state: &AppState) -> Resp {
    let header = req
        .headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if header.is_empty() || !state.identity_header.matches(header) {
        return json(
            401,
            json!({"statusCode": 401, "message": "Unauthorized: the X-IDENTITY-HEADER request header is missing or does not match IDENTITY_HEADER."})
                .to_string(),
        );
    }
    match req.query.get("api-version").map(String::as_str) {
        Some("2019-08-01") => {}
        other => {
            return json(
                400,
                json!({"statusCode": 400, "message": format!("Unsupported api-version '{}'; this endpoint speaks 2019-08-01.", other.unwrap_or(""))})
                    .to_string(),
            )
        }
    }
    let Some(resource) = req.query.get("resource").filter(|v| !v.is_empty()).cloned() else {
        return json(
            400,
            json!({"statusCode": 400, "message": "The 'resource' query parameter is required."})
                .to_string(),
        );
    };
    let mi = match state.identity.with_directory(|d| select(d, req)) {
        Ok(mi) => mi,
        Err(_) => {
            return json(
                400,
                json!({"statusCode": 400, "message": "Unable to load the proper Managed Identity.", "correlationId": Uuid::new_v4().to_string()})
                    .to_string(),
            )
        }
    };
    issue(state, mi, &resource, false)
}

fn issue(state: &AppState, mi: ManagedIdentity, resource: &str, imds_shape: bool) -> Resp {
    let client_id = mi.client_id.to_string();
    let issued = match state.identity.issue_for(
        &Subject::ManagedIdentity(mi),
        resource,
        None,
        &MintOptions::default(),
    ) {
        Ok(t) => t,
        Err(e) => {
            return json(
                500,
                json!({"error": "unknown_error", "error_description": e.to_string()}).to_string(),
            )
        }
    };
    let expires_in = (issued.expires_on - crate::identity::unix_now())
        .max(0)
        .to_string();
    let body = if imds_shape {
        json!({
            "access_token": issued.token,
            "client_id": client_id,
            "expires_in": expires_in,
            "expires_on": issued.expires_on.to_string(),
            "ext_expires_in": expires_in,
            "not_before": issued.not_before.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        })
    } else {
        json!({
            "access_token": issued.token,
            "expires_on": issued.expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id,
        })
    };
    json(200, body.to_string())
}
