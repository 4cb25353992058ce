//! A local stand-in for Microsoft Entra ID, the managed-identity endpoints and Azure SQL's federated login, so
//! that the real Microsoft ODBC Driver 18 (and azure_identity) can be tested end to end without Azure.
//!
//! What it does: an [`Emulator`] starts an HTTPS token service (Entra's v1 endpoint the driver uses, the v2.0
//! endpoint azure_identity uses, `UserRealm`, device code, OpenID discovery and JWKS), the two managed-identity
//! endpoints (instance metadata and App Service, plain HTTP as in Azure) and the SQL endpoint ([`sql`]), all
//! backed by one [`Directory`] (tenant, app registrations, managed identities, users, groups). Tokens are RS256
//! JWTs with Azure's claims; the SQL endpoint validates them through the emulator's [`LoginAuthority`] as Azure
//! SQL does. Test knobs: HTTP faults ([`HttpFaults`]), token lifetime and clock skew, Graph availability, request
//! counters ([`HttpStats`]).
//!
//! What it deliberately does not do: talk to the real Entra ID, verify federated tokens of external issuers
//! (only those it mints itself with [`Identity::issue_federated_token`]), federated realms (MEX/WS-Trust),
//! refresh tokens, interactive browser sign-in, or anything a production identity provider needs (persistence,
//! key rotation, consent). It is a test tool: nothing in the product depends on it.
//!
//! Secrets (client secrets, passwords, identity headers, tokens, private keys) never appear in `Debug` output,
//! errors or logs; the binary prints the client environment only on its own terminal.
#![forbid(unsafe_code)]

pub mod model;
pub mod sql;

pub mod directory;
mod emulator;
mod http;
pub mod identity;
pub mod keys;
mod msi;
pub mod pki;
mod secret;
mod sts;
mod sts_error;

pub use directory::{Directory, DirectoryError, ManagedIdentityKind, Subject};
pub use emulator::{Emulator, EmulatorBuilder, EmulatorError, EmulatorHandle};
pub use http::{Endpoint, HttpFault, HttpFaults, HttpService, HttpStats, Times};
pub use identity::{AccessClaims, Identity, IdentityError, MintOptions, SQL_RESOURCE};
pub use model::{LoginAuthority, Principal, PrincipalKind, TokenRejection};
pub use msi::{APP_SERVICE_PATH, IMDS_PATH};
pub use secret::Secret;
pub use sts_error::StsError;
