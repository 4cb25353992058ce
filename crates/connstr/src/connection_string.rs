//! The connection string: an ordered, case-insensitive map of keywords to values.

use std::fmt;
use std::str::FromStr;

use crate::auth::Authentication;
use crate::error::Error;
use crate::escape::{braced, escape_value};
use crate::keyword::{self, always_braced, check_key, identity, is_secret, spelling};
use crate::validate::{parse_bool, values_equivalent, Encrypt};

/// What `Display` and `Debug` print instead of a secret value.
const MASK: &str = "***";

/// One `keyword=value` attribute.
#[derive(Clone)]
struct Pair {
    /// The spelling we write (canonical for known keywords and synonyms).
    key: String,
    /// The spelling the caller used (for error messages only; not part of equality).
    written: String,
    /// Folded identity: equal identities are the same keyword.
    id: String,
    /// The value, unescaped.
    value: String,
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.value == other.value
    }
}

impl Eq for Pair {}

/// An ODBC connection string for the Microsoft ODBC Driver 18 for SQL Server.
///
/// Keywords are matched case-insensitively, and the usual synonyms are one keyword:
/// `Server`/`Address`/`Addr`, `UID`/`User ID`, `PWD`/`Password`, `Database`/`Initial Catalog`,
/// `Trusted_Connection`/`Integrated Security`. Known keywords are written in their canonical
/// spelling (`User ID` is written `UID`), and attributes keep the order they were first set in.
///
/// Writing the canonical keyword matters: the driver knows `Address` and `Addr`, but it
/// ignores the ADO.NET spellings `User ID`, `Password`, `Initial Catalog` and
/// `Integrated Security` with only a `01S00 Invalid connection string attribute` warning
/// (measured with driver 18.6). Folded here, they reach the driver as the keyword they mean.
///
/// [`to_odbc_string`](Self::to_odbc_string) is the exact text for the driver, secrets included.
/// `Display` and `Debug` print the same text with every secret value replaced by `***`:
///
/// ```
/// use mssql_entra_connstr::ConnectionString;
///
/// let mut cs = ConnectionString::parse("Server=tcp:db.example,1433;User ID=app;Password={s3cr;t}").unwrap();
/// assert_eq!(cs.get("pwd"), Some("s3cr;t"));
/// assert_eq!(cs.to_odbc_string(), "Server=tcp:db.example,1433;UID=app;PWD={s3cr;t}");
/// assert_eq!(cs.to_string(), "Server=tcp:db.example,1433;UID=app;PWD=***");
/// cs.set("Initial Catalog", "x;Authentication=ActiveDirectoryPassword");
/// // No value can inject a keyword: the text reads back as the same attributes.
/// let back = ConnectionString::parse(&cs.to_odbc_string()).unwrap();
/// assert_eq!(back.get("Database"), Some("x;Authentication=ActiveDirectoryPassword"));
/// assert_eq!(back.get("Authentication"), None);
/// assert_eq!(back, cs);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectionString {
    pairs: Vec<Pair>,
}

impl ConnectionString {
    /// An empty connection string.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a connection string the way the Microsoft driver reads it.
    ///
    /// * Attributes are `keyword=value`, separated by `;`. Empty attributes (`;;`, a trailing
    ///   `;`) are skipped. White space before a keyword is ignored.
    /// * A value that starts with `{` runs to the matching `}`; inside it `}}` stands for `}`
    ///   and `;`, `=`, `{` and spaces are literal. The closing `}` must be followed by `;` or
    ///   the end of the string.
    /// * Any other value runs to the next `;` and is taken literally, spaces included.
    ///
    /// Where the driver would silently misread the text, this refuses it instead (all
    /// measured with driver 18.6): an unterminated `{` (the driver swallows the rest of the
    /// string), a repeated keyword (the driver keeps the first), white space between a keyword
    /// and its `=` (the driver ignores `PWD =x` as an unknown keyword), and anything after a
    /// closing `}` (the driver loses the next attribute):
    ///
    /// ```
    /// use mssql_entra_connstr::{ConnectionString, Error};
    ///
    /// assert_eq!(
    ///     ConnectionString::parse("PWD={weird;Database=db"),
    ///     Err(Error::UnterminatedBrace { key: "PWD".into(), position: 4 })
    /// );
    /// assert!(matches!(
    ///     ConnectionString::parse("Server=a;Address=b"),
    ///     Err(Error::DuplicateKey { .. })
    /// ));
    /// assert!(matches!(ConnectionString::parse("PWD ={x}"), Err(Error::SpaceBeforeEquals { .. })));
    /// assert!(matches!(ConnectionString::parse("PWD={x} ;UID=u"), Err(Error::TextAfterBrace { .. })));
    /// let cs = ConnectionString::parse("PWD={a;b}}c{d= e };Database=données").unwrap();
    /// assert_eq!(cs.get("PWD"), Some("a;b}c{d= e "));
    /// ```
    ///
    /// Errors name the byte position and never contain any part of a value.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let bytes = input.as_bytes();
        let mut cs = ConnectionString::new();
        let mut pos = 0;
        while pos < bytes.len() {
            // The attribute runs to the next `=` or `;`, whichever comes first.
            let stop = bytes[pos..]
                .iter()
                .position(|&b| b == b'=' || b == b';')
                .map_or(bytes.len(), |i| pos + i);
            if stop == bytes.len() || bytes[stop] == b';' {
                let text = &input[pos..stop];
                if !text.trim().is_empty() {
                    let lead = text.len() - text.trim_start().len();
                    return Err(Error::MissingEquals {
                        position: pos + lead,
                    });
                }
                pos = stop + 1;
                continue;
            }
            let eq = stop;
            let raw_key = &input[pos..eq];
            if raw_key.trim().is_empty() {
                return Err(Error::EmptyKey { position: eq });
            }
            check_key(raw_key, pos)?;
            if raw_key.ends_with(char::is_whitespace) {
                // The driver trims white space before a keyword but not after it, and ignores
                // `PWD =x` as an unknown keyword (measured).
                return Err(Error::SpaceBeforeEquals {
                    key: raw_key.trim().to_owned(),
                    position: eq,
                });
            }
            let key = raw_key.trim();
            let value_start = eq + 1;
            let (value, next) = if bytes.get(value_start) == Some(&b'{') {
                parse_braced(input, key, value_start)?
            } else {
                let end = bytes[value_start..]
                    .iter()
                    .position(|&b| b == b';')
                    .map_or(bytes.len(), |i| value_start + i);
                (input[value_start..end].to_owned(), end)
            };
            let id = identity(key);
            if let Some(first) = cs.pairs.iter().find(|p| p.id == id) {
                return Err(Error::DuplicateKey {
                    first: first.written.clone(),
                    second: key.to_owned(),
                    position: pos + (raw_key.len() - raw_key.trim_start().len()),
                });
            }
            cs.pairs.push(Pair {
                key: spelling(key),
                written: key.to_owned(),
                id,
                value,
            });
            // `next` is at `;` or at the end.
            pos = next + 1;
        }
        Ok(cs)
    }

    /// The value of `key` (any case, any synonym), unescaped.
    pub fn get(&self, key: &str) -> Option<&str> {
        let id = identity(key);
        self.pairs
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.value.as_str())
    }

    /// Whether `key` (any case, any synonym) is present, even with an empty value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`. An existing keyword (any case, any synonym) keeps its place and
    /// gets the new value; a new one goes at the end. Any value is accepted: it is escaped when
    /// written.
    ///
    /// # Panics
    ///
    /// If `key` cannot be an ODBC keyword: empty or blank, or containing `;`, `=`, `{`, `}` or a
    /// control character. Keywords are meant to be literals in code; for a keyword that comes
    /// from input, use [`try_set`](Self::try_set), which returns the error instead.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        if let Err(e) = self.try_set(key, value) {
            panic!("ConnectionString::set: {e}");
        }
        self
    }

    /// Like [`set`](Self::set), but returns [`Error::EmptyKey`] or [`Error::InvalidKeyChar`]
    /// (positions inside `key`) instead of panicking on a keyword that cannot be written.
    pub fn try_set(&mut self, key: &str, value: impl Into<String>) -> Result<&mut Self, Error> {
        check_key(key, 0)?;
        let value = value.into();
        let id = identity(key);
        match self.pairs.iter_mut().find(|p| p.id == id) {
            Some(pair) => pair.value = value,
            None => self.pairs.push(Pair {
                key: spelling(key),
                written: key.trim().to_owned(),
                id,
                value,
            }),
        }
        Ok(self)
    }

    /// Removes `key` (any case, any synonym) and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let id = identity(key);
        let index = self.pairs.iter().position(|p| p.id == id)?;
        Some(self.pairs.remove(index).value)
    }

    /// The number of attributes.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The `(keyword, value)` pairs in order, keywords in their written spelling and values
    /// unescaped (secrets included: this is data, not a log line).
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.pairs.iter(),
        }
    }

    /// The exact text to hand to the driver: `keyword=value` joined by `;`, every value escaped
    /// by [`escape_value`](crate::escape_value), and secrets and `Driver` always braced.
    ///
    /// This is the only way to get the secrets back out as text; never log it.
    ///
    /// ```
    /// use mssql_entra_connstr::ConnectionString;
    ///
    /// let mut cs = ConnectionString::new();
    /// cs.set("Driver", "ODBC Driver 18 for SQL Server")
    ///     .set("UID", "app")
    ///     .set("PWD", "plain")            // always braced
    ///     .set("Database", "{weird");     // a leading `{` is always braced
    /// assert_eq!(
    ///     cs.to_odbc_string(),
    ///     "Driver={ODBC Driver 18 for SQL Server};UID=app;PWD={plain};Database={{weird}"
    /// );
    /// ```
    pub fn to_odbc_string(&self) -> String {
        self.render(false)
    }

    fn render(&self, mask: bool) -> String {
        let mut out = String::new();
        for (i, pair) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            out.push_str(&pair.key);
            out.push('=');
            if mask && is_secret(&pair.key) {
                out.push_str(MASK);
            } else if always_braced(&pair.key) {
                out.push_str(&braced(&pair.value));
            } else {
                out.push_str(&escape_value(&pair.value));
            }
        }
        out
    }

    /// The `Authentication` mode, if one is set. An empty `Authentication=` counts as none (the
    /// driver ignores it with a warning); an unknown value is [`Error::UnknownAuthentication`].
    pub fn authentication(&self) -> Result<Option<Authentication>, Error> {
        match self.get(keyword::AUTHENTICATION) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v.trim().parse().map(Some),
        }
    }

    /// The `Encrypt` setting; when absent, the driver 18 default [`Encrypt::Mandatory`].
    pub fn encrypt(&self) -> Result<Encrypt, Error> {
        match self.get(keyword::ENCRYPT) {
            None => Ok(Encrypt::Mandatory),
            Some(v) => v.parse(),
        }
    }

    /// Whether `Trusted_Connection` (or `Integrated Security`) says yes (`yes`, `true`, `sspi`).
    /// Absent or empty is no; anything else is [`Error::InvalidBoolean`].
    ///
    /// `SSPI` is the ADO.NET spelling that comes with `Integrated Security`. The ODBC driver
    /// does not know the keyword `Integrated Security` and ignores it with a warning (measured,
    /// driver-facts Q2); this crate folds it into `Trusted_Connection`, which the driver does
    /// read, and keeps the value as written, so treat `SSPI` as a request for integrated
    /// (Kerberos) sign-in.
    pub fn trusted_connection(&self) -> Result<bool, Error> {
        match self.get(keyword::TRUSTED_CONNECTION) {
            None => Ok(false),
            Some(v) if v.trim().eq_ignore_ascii_case("sspi") => Ok(true),
            Some(v) => parse_bool(keyword::TRUSTED_CONNECTION, v),
        }
    }

    /// Adds every attribute of `other` after those of `self`, the way mssql-django appends
    /// `extra_params`, but refusing conflicts: a keyword already present with a different value
    /// (same keyword in any case or synonym) is [`Error::ConflictingKey`] naming both spellings,
    /// and `self` is left unchanged. The same value again is accepted and not repeated. Values
    /// of `Encrypt`, `Authentication` and yes/no keywords are compared by meaning (`yes` equals
    /// `Mandatory`).
    pub fn merge(&mut self, other: &ConnectionString) -> Result<(), Error> {
        let mut added = Vec::new();
        for pair in &other.pairs {
            match self.pairs.iter().find(|p| p.id == pair.id) {
                Some(existing) if values_equivalent(&pair.id, &existing.value, &pair.value) => {}
                Some(existing) => {
                    return Err(Error::ConflictingKey {
                        existing: existing.written.clone(),
                        incoming: pair.written.clone(),
                    })
                }
                None => added.push(pair.clone()),
            }
        }
        self.pairs.extend(added);
        Ok(())
    }
}

impl FromStr for ConnectionString {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConnectionString::parse(s)
    }
}

/// Reads a braced value whose `{` is at `open`. Returns the unescaped value and the index of
/// the `;` that ends the attribute (or the length of the input).
fn parse_braced(input: &str, key: &str, open: usize) -> Result<(String, usize), Error> {
    let bytes = input.as_bytes();
    let mut value = String::new();
    let mut chunk_start = open + 1;
    let mut i = open + 1;
    let close = loop {
        let Some(off) = bytes[i..].iter().position(|&b| b == b'}') else {
            return Err(Error::UnterminatedBrace {
                key: key.to_owned(),
                position: open,
            });
        };
        let at = i + off;
        if bytes.get(at + 1) == Some(&b'}') {
            // `}}` is one literal `}`: keep the first, skip the second.
            value.push_str(&input[chunk_start..=at]);
            i = at + 2;
            chunk_start = i;
        } else {
            value.push_str(&input[chunk_start..at]);
            break at;
        }
    };
    // Nothing, not even white space, may follow the `}`: the driver then loses the next
    // attribute (measured: `PWD={abc} ;Database=x` gives no database and a 01S00 warning).
    let next = close + 1;
    if next < bytes.len() && bytes[next] != b';' {
        return Err(Error::TextAfterBrace {
            key: key.to_owned(),
            position: next,
        });
    }
    Ok((value, next))
}

/// `Display` prints the connection string with every secret value replaced by `***`.
impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(true))
    }
}

/// `Debug` prints the masked string, like `Display`.
impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ConnectionString")
            .field(&self.render(true))
            .finish()
    }
}

/// Iterator over the `(keyword, value)` pairs of a [`ConnectionString`], from
/// [`ConnectionString::iter`].
#[derive(Clone)]
pub struct Iter<'a> {
    inner: std::slice::Iter<'a, Pair>,
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("remaining", &self.inner.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner
            .next()
            .map(|p| (p.key.as_str(), p.value.as_str()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a ConnectionString {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(cs: &ConnectionString) -> Vec<(&str, &str)> {
        cs.iter().collect()
    }

    #[test]
    fn parses_the_measured_rows_of_q5() {
        for (text, key, value) in [
            ("PWD={a;b}}c{d= e }", "PWD", "a;b}c{d= e "),
            ("PWD={}}}}}}}", "PWD", "}}}"),
            ("PWD={{}", "PWD", "{"),
            ("PWD={ lead}", "PWD", " lead"),
            ("PWD= spaced ", "PWD", " spaced "),
            (
                "Database={x;Authentication=ActiveDirectoryPassword}",
                "Database",
                "x;Authentication=ActiveDirectoryPassword",
            ),
            ("Database={{weird}", "Database", "{weird"),
            ("Database={weird}}}", "Database", "weird}"),
            ("Database={a=b}", "Database", "a=b"),
            ("Database=données-日本", "Database", "données-日本"),
            ("PWD=ab}c", "PWD", "ab}c"),
            ("PWD={weird};Database=db", "PWD", "weird"),
        ] {
            let cs = ConnectionString::parse(text).unwrap();
            assert_eq!(cs.get(key), Some(value), "{text}");
            assert_eq!(cs.get("Authentication"), None, "{text}");
        }
    }

    #[test]
    fn skips_empty_attributes_and_leading_space() {
        let cs = ConnectionString::parse(";; Server= x ; ;\tUID=;").unwrap();
        assert_eq!(pairs(&cs), [("Server", " x "), ("UID", "")]);
        assert_eq!(
            ConnectionString::parse("Server=x; Database =y"),
            Err(Error::SpaceBeforeEquals {
                key: "Database".into(),
                position: 19
            })
        );
        assert_eq!(
            ConnectionString::parse("Driver={ODBC Driver 18 for SQL Server} ;Server=x"),
            Err(Error::TextAfterBrace {
                key: "Driver".into(),
                position: 38
            })
        );
    }

    #[test]
    fn parse_errors_name_positions() {
        assert_eq!(
            ConnectionString::parse("Server=x; secret ;UID=a"),
            Err(Error::MissingEquals { position: 10 })
        );
        assert_eq!(
            ConnectionString::parse("Server=x;=a"),
            Err(Error::EmptyKey { position: 9 })
        );
        assert_eq!(
            ConnectionString::parse("Ser}ver=x"),
            Err(Error::InvalidKeyChar {
                position: 3,
                character: '}'
            })
        );
        assert_eq!(
            ConnectionString::parse("UID=a;PWD={abc}def"),
            Err(Error::TextAfterBrace {
                key: "PWD".into(),
                position: 15
            })
        );
        assert_eq!(
            ConnectionString::parse("uid=a;User ID=b"),
            Err(Error::DuplicateKey {
                first: "uid".into(),
                second: "User ID".into(),
                position: 6
            })
        );
    }

    #[test]
    fn set_replaces_in_place_and_remove_works() {
        let mut cs = ConnectionString::parse("Server=a;UID=u;Database=d").unwrap();
        cs.set("user id", "v").set("Extra", "1");
        assert_eq!(
            pairs(&cs),
            [
                ("Server", "a"),
                ("UID", "v"),
                ("Database", "d"),
                ("Extra", "1")
            ]
        );
        assert_eq!(cs.remove("Initial Catalog"), Some("d".to_owned()));
        assert_eq!(cs.remove("Database"), None);
        assert_eq!(cs.len(), 3);
        assert!(cs.try_set("a;b", "x").is_err());
        assert!(cs.try_set(" ", "x").is_err());
        assert_eq!(cs.len(), 3);
    }

    #[test]
    fn masks_every_secret() {
        let cs = ConnectionString::parse(
            "UID=u;Password=hunter2;AccessToken=tok123;KeyStoreSecret={ks;1};ClientSecret=cs456",
        )
        .unwrap();
        let shown = format!("{cs} {cs:?} {cs:#?}");
        for secret in ["hunter2", "tok123", "ks;1", "ks", "cs456"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert_eq!(
            cs.to_string(),
            "UID=u;PWD=***;AccessToken=***;KeyStoreSecret=***;ClientSecret=***"
        );
        assert!(cs.to_odbc_string().contains("PWD={hunter2}"));
    }

    #[test]
    fn merge_refuses_conflicts_and_accepts_equal_values() {
        let mut cs = ConnectionString::parse("Server=a;Encrypt=yes").unwrap();
        let extra = ConnectionString::parse("encrypt=Mandatory;APP=x").unwrap();
        cs.merge(&extra).unwrap();
        assert_eq!(cs.to_odbc_string(), "Server=a;Encrypt=yes;APP=x");
        let clash = ConnectionString::parse("Timeout=5;Address=b").unwrap();
        assert_eq!(
            cs.merge(&clash),
            Err(Error::ConflictingKey {
                existing: "Server".into(),
                incoming: "Address".into()
            })
        );
        assert_eq!(cs.to_odbc_string(), "Server=a;Encrypt=yes;APP=x");
    }
}
