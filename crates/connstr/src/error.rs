//! The one error type of this crate.

use crate::auth::Authentication;

/// Everything that can go wrong while parsing, building or validating a connection string.
///
/// Match on the variants; the message text is not API and may change.
/// No variant ever carries a value that could be a secret: parse errors carry positions and
/// keywords, never the text of a value, and validation errors carry keywords and the
/// values of non-secret keywords only (`Authentication`, `Encrypt`, `Trusted_Connection`).
///
/// Positions are byte offsets into the parsed text, counted from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- parsing and keywords -----
    /// A `key=value` pair has no `=`.
    #[error("missing `=` in the attribute starting at byte {position}; write attributes as `keyword=value` separated by `;`")]
    MissingEquals {
        /// Where the attribute without `=` starts.
        position: usize,
    },
    /// A pair has nothing (or only blanks) before its `=`.
    #[error("empty keyword before the `=` at byte {position}; put a keyword such as `Server` before `=`")]
    EmptyKey {
        /// Where the `=` is.
        position: usize,
    },
    /// A keyword contains a character the ODBC grammar does not allow in keywords.
    #[error("keyword contains {character:?} at byte {position}; keywords cannot contain `;`, `=`, `{{`, `}}` or control characters")]
    InvalidKeyChar {
        /// Where the character is (for `try_set`, the offset inside the keyword).
        position: usize,
        /// The offending character.
        character: char,
    },
    /// White space between a keyword and its `=`: the driver does not trim it and would ignore
    /// the keyword (measured: `PWD =x` is an unknown keyword to the driver).
    #[error("`{key}` is followed by white space before the `=` at byte {position}, which makes the driver ignore it; write `{key}=` without the space")]
    SpaceBeforeEquals {
        /// The keyword, trimmed.
        key: String,
        /// Where the `=` is.
        position: usize,
    },
    /// A value opened with `{` is never closed.
    #[error("the value of `{key}` opens a `{{` at byte {position} that is never closed; end it with `}}` and write every `}}` inside it as `}}}}`")]
    UnterminatedBrace {
        /// The keyword whose value is unterminated.
        key: String,
        /// Where the opening `{` is.
        position: usize,
    },
    /// Something other than `;` follows the closing `}` of a braced value.
    #[error("unexpected text after the closing `}}` of `{key}` at byte {position}; put `;` after the `}}`, or write a `}}` that belongs to the value as `}}}}`")]
    TextAfterBrace {
        /// The keyword whose braced value is followed by stray text.
        key: String,
        /// Where the stray text starts.
        position: usize,
    },
    /// The same keyword (or two synonyms of it) appears twice.
    #[error(
        "`{second}` at byte {position} repeats `{first}` (the same keyword); keep only one of them"
    )]
    DuplicateKey {
        /// The spelling used the first time.
        first: String,
        /// The spelling used the second time.
        second: String,
        /// Where the second occurrence starts.
        position: usize,
    },

    // ----- builder -----
    /// The builder was given an empty host.
    #[error("the host is empty; give the server name or address, for example `myserver.database.windows.net`")]
    EmptyHost,
    /// The builder was given a host it cannot place in `Server=tcp:host,port`.
    #[error("the host contains {character:?}; give a bare host name or address (with an optional `\\instance`), and the port separately")]
    InvalidHost {
        /// The character that does not belong in a host name.
        character: char,
    },
    /// The builder was given port 0.
    #[error("port 0 is not a valid SQL Server port; give the TCP port (1433 by default) or leave it out")]
    InvalidPort,
    /// A keyword in `extra_params` conflicts with one the builder already set.
    #[error("`{incoming}` in extra_params conflicts with `{existing}` set from the settings; remove one of them (values are not shown because they may be secret)")]
    ConflictingKey {
        /// The spelling the builder already set.
        existing: String,
        /// The spelling that appears in `extra_params`.
        incoming: String,
    },
    /// `extra_params` could not be parsed; the cause is in [`std::error::Error::source`].
    #[error("extra_params is not a valid connection string")]
    ExtraParams(#[source] Box<Error>),

    // ----- validation: values -----
    /// `Authentication=` holds a value that is not a known mode.
    #[error("`Authentication={value}` is not a known mode; use one of SqlPassword, ActiveDirectoryMsi, ActiveDirectoryServicePrincipal, ActiveDirectoryPassword, ActiveDirectoryIntegrated, ActiveDirectoryInteractive, ActiveDirectoryDefault, ActiveDirectoryManagedIdentity, ActiveDirectoryWorkloadIdentity, ActiveDirectoryDeviceCode")]
    UnknownAuthentication {
        /// The value as written.
        value: String,
    },
    /// `Encrypt=` holds a value the driver does not know.
    #[error("`Encrypt={value}` is not valid; use `yes`/`mandatory`, `strict`, or (unsafe) `no`/`optional`")]
    InvalidEncrypt {
        /// The value as written.
        value: String,
    },
    /// A yes/no keyword holds something else.
    #[error("`{key}={value}` is not a yes/no value; use `yes` or `no`")]
    InvalidBoolean {
        /// The keyword.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A value contains a NUL character, which C code in the driver would read as the end of
    /// the whole connection string.
    #[error("the value of `{key}` contains a NUL character, which would cut the connection string short; remove it")]
    NulInValue {
        /// The keyword whose value contains NUL.
        key: String,
    },

    // ----- validation: per-mode rules -----
    /// The driver refuses this mode; mssql-entra provides it in access-token mode.
    #[error("`Authentication={mode}` is refused by the ODBC driver (`Invalid value specified for connection string attribute 'Authentication'`); remove `Authentication` and connect with an access token from a token source, which is how mssql-entra provides this mode")]
    TokenModeOnly {
        /// The mode.
        mode: Authentication,
    },
    /// The mode needs `UID` (driver error FA003 for ServicePrincipal and Password).
    #[error("`Authentication={mode}` needs `UID` ({what}); add `UID=...`")]
    MissingUid {
        /// The mode.
        mode: Authentication,
        /// What `UID` means in this mode.
        what: &'static str,
    },
    /// The mode needs `PWD` (driver error FA003 for ServicePrincipal and Password).
    #[error("`Authentication={mode}` needs `PWD` ({what}); add `PWD=...`")]
    MissingPwd {
        /// The mode.
        mode: Authentication,
        /// What `PWD` means in this mode.
        what: &'static str,
    },
    /// The mode takes no `UID`.
    #[error("`Authentication={mode}` takes no `UID`; remove `UID` (the identity comes from {source_of_identity})")]
    UidNotAllowed {
        /// The mode.
        mode: Authentication,
        /// Where this mode takes the identity from instead.
        source_of_identity: &'static str,
    },
    /// The mode takes no `PWD`.
    #[error("`Authentication={mode}` takes no `PWD`; remove `PWD` (this mode has no password or secret)")]
    PwdNotAllowed {
        /// The mode.
        mode: Authentication,
    },
    /// The mode works only on Windows.
    #[error("`Authentication={mode}` works only on Windows (on Linux and macOS the driver silently falls back to Kerberos); use ActiveDirectoryDeviceCode or another mode here")]
    WindowsOnly {
        /// The mode.
        mode: Authentication,
    },
    /// `Authentication` together with `Trusted_Connection=yes` (driver error FA001).
    #[error("`Authentication={mode}` cannot be combined with `Trusted_Connection=yes` (driver error FA001); remove `Trusted_Connection`")]
    AuthenticationWithTrustedConnection {
        /// The mode.
        mode: Authentication,
    },

    // ----- validation: access token (attribute 1256) -----
    /// Access token with `UID` (driver error FA005).
    #[error("an access-token connection cannot carry `UID`, even empty (driver error FA005); remove `UID`")]
    AccessTokenWithUid,
    /// Access token with `PWD` (driver error FA005).
    #[error("an access-token connection cannot carry `PWD`, even empty (driver error FA005); remove `PWD`")]
    AccessTokenWithPwd,
    /// Access token with `Authentication` (driver error FA005).
    #[error("an access-token connection cannot carry `Authentication` (driver error FA005); remove `Authentication`, the token already authenticates")]
    AccessTokenWithAuthentication,
    /// Access token with `Trusted_Connection=yes` (driver error FA005).
    #[error("an access-token connection cannot carry `Trusted_Connection=yes` (driver error FA005); remove `Trusted_Connection`")]
    AccessTokenWithTrustedConnection,

    // ----- validation: transport security -----
    /// A bearer token would be allowed to travel in clear text.
    #[error("`Encrypt={encrypt}` with {what} lets the driver send the bearer token in clear text; use `Encrypt=yes` or `Encrypt=strict`, or set `ValidateOptions::danger.allow_unencrypted_token` if you accept that")]
    UnencryptedToken {
        /// The `Encrypt` value as written.
        encrypt: String,
        /// What makes this an Entra connection (`an access token` or the mode).
        what: String,
    },
}
