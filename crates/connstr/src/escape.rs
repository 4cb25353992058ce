//! Escaping values for the ODBC connection-string grammar, as the Microsoft driver reads it.

use std::borrow::Cow;

/// Escapes one attribute value for an ODBC connection string read by the Microsoft ODBC
/// Driver 18: wraps it in braces when it needs them and doubles every `}` inside the braces.
///
/// [`ConnectionString::to_odbc_string`](crate::ConnectionString::to_odbc_string) calls this for
/// every value, and additionally braces every secret (`PWD`…) and `Driver` value even when this
/// function would not.
///
/// A value needs braces when it
///
/// * contains `;` (it would end the attribute and start a new keyword):
///   ```
///   # use mssql_entra_connstr::escape_value;
///   assert_eq!(escape_value("x;Authentication=ActiveDirectoryPassword"),
///              "{x;Authentication=ActiveDirectoryPassword}");
///   ```
/// * contains `}`, which is doubled inside the braces:
///   ```
///   # use mssql_entra_connstr::escape_value;
///   assert_eq!(escape_value("a}b"), "{a}}b}");
///   assert_eq!(escape_value("}}}"), "{}}}}}}}");
///   ```
/// * contains `{`, and in particular starts with one (unbraced, the driver would take that `{`
///   as the opening brace and swallow the rest of the string, measured in driver-facts Q5):
///   ```
///   # use mssql_entra_connstr::escape_value;
///   assert_eq!(escape_value("{weird"), "{{weird}");
///   assert_eq!(escape_value("{weird}"), "{{weird}}}");
///   ```
/// * contains `=`:
///   ```
///   # use mssql_entra_connstr::escape_value;
///   assert_eq!(escape_value("a=b"), "{a=b}");
///   ```
/// * starts or ends with white space (the driver keeps it either way; braces make it visible
///   and survive tools that trim):
///   ```
///   # use mssql_entra_connstr::escape_value;
///   assert_eq!(escape_value(" lead"), "{ lead}");
///   assert_eq!(escape_value("trail "), "{trail }");
///   ```
/// * contains `+` (the one rule we keep from odbc-api; braces are always safe):
///   ```
///   # use mssql_entra_connstr::escape_value;
///   assert_eq!(escape_value("a+b"), "{a+b}");
///   ```
///
/// Anything else, including inner spaces, non-ASCII text and the empty value, is written as is:
/// ```
/// # use mssql_entra_connstr::escape_value;
/// assert_eq!(escape_value("ODBC Driver 18 for SQL Server"), "ODBC Driver 18 for SQL Server");
/// assert_eq!(escape_value("données-日本"), "données-日本");
/// assert_eq!(escape_value(""), "");
/// ```
///
/// # Compared with odbc-api
///
/// odbc-api 29's `escape_attribute_value` braces a value only when it contains `;` or `+` (the
/// `+` for a PostgreSQL driver quirk). That is enough to stop `;` from starting a new keyword,
/// but it passes `{weird` through unchanged, and the Microsoft driver reads an unbraced value
/// that starts with `{` as a braced one: `PWD={weird;Database=db` gives the password
/// `weird;Database=db` and no database (measured, driver-facts Q5), and a value `{x}` loses
/// its braces. We brace every value that contains `{`, which is the difference that matters.
/// We also brace on `}`, `=` and leading or trailing white space, which the driver reads
/// literally even unbraced (measured), because braces cost nothing and keep the text
/// unambiguous for every other reader of the string (unixODBC, tools that trim, people); and we
/// always brace secrets. The result: every value, whatever its text, reaches the driver
/// unchanged and parses back to itself.
///
/// Measured against the real driver 18.6 (each of 16 awkward values, such as `{weird`,
/// `{}`, `}}}`, ` lead`, `p};Authentication=ActiveDirectoryMsi;X={`, used as both `PWD` and
/// `Database`, read back from the LOGIN7 packet): with this escaping all 16 arrived unchanged;
/// with odbc-api's rule 12 did, and the four that start with `{` were misread: `{weird` and
/// `{` as `Database` swallowed the rest of the string (`UID`, `PWD` and `Encrypt=no` with it,
/// with only a `01S00 Invalid connection string attribute` warning), `{weird}` arrived as
/// `weird`, and `{}` as the empty string.
pub fn escape_value(value: &str) -> Cow<'_, str> {
    if needs_braces(value) {
        Cow::Owned(braced(value))
    } else {
        Cow::Borrowed(value)
    }
}

/// Whether [`escape_value`] would wrap `value` in braces.
pub(crate) fn needs_braces(value: &str) -> bool {
    value.contains([';', '{', '}', '=', '+'])
        || value.starts_with(char::is_whitespace)
        || value.ends_with(char::is_whitespace)
}

/// `{value}` with every `}` doubled.
pub(crate) fn braced(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('{');
    for c in value.chars() {
        out.push(c);
        if c == '}' {
            out.push('}');
        }
    }
    out.push('}');
    out
}
