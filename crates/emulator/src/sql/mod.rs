//! The emulated Azure SQL endpoint: TDS over TCP with TLS, federated (Entra) logins, a few queries.
