//! The little T-SQL the emulator understands: a tokenizer and a statement parser.
//!
//! Keywords are case-insensitive; whitespace and comments separate tokens; statements may be separated by `;`
//! or simply follow each other (as T-SQL allows), so a newline between them is enough. Like SQL Server, a batch
//! that does not parse runs nothing.

use super::db::{Grant, UserType};

/// A scalar the emulator can `SELECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    SuserSname,
    UserName,
    DbName,
    Version,
    Spid,
    Int(i32),
    IsRoleMember(String),
}

/// A parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Statement {
    /// `SELECT expr [AS alias], …` (no FROM).
    Select(Vec<(Expr, String)>),
    /// `CREATE USER [name] FROM EXTERNAL PROVIDER`.
    CreateUserFromExternalProvider { name: String },
    /// `CREATE USER [name] WITH SID = 0x…, TYPE = E|X`.
    CreateUserWithSid {
        name: String,
        sid: Vec<u8>,
        user_type: UserType,
    },
    /// `ALTER ROLE role ADD|DROP MEMBER [name]`.
    AlterRole {
        role: String,
        add: bool,
        member: String,
    },
    /// `GRANT VIEW ANY COLUMN {MASTER|ENCRYPTION} KEY DEFINITION TO [a], [b]`.
    Grant { grant: Grant, to: Vec<String> },
    /// `DROP USER [IF EXISTS] [name]`.
    DropUser { name: String, if_exists: bool },
    /// `SET <option> ON|OFF|<number>`: accepted and ignored.
    Set,
}

/// Why a batch was not understood. `statement` is the text of the statement that failed, shortened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported {
    pub(crate) statement: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Hex(Vec<u8>),
    Int(i64),
    Var(String),
    Punct(char),
}

/// A token with the byte offset where it starts in the batch text.
type Spanned = (Tok, usize);

fn tokenize(text: &str) -> Result<Vec<Spanned>, usize> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if text[i..].starts_with("--") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if text[i..].starts_with("/*") {
            i = text[i + 2..]
                .find("*/")
                .map(|p| i + 2 + p + 2)
                .ok_or(start)?;
        } else if c == b'[' || c == b'"' {
            let close = if c == b'[' { ']' } else { '"' };
            let mut s = String::new();
            i += 1;
            loop {
                let ch = text[i..].chars().next().ok_or(start)?;
                i += ch.len_utf8();
                if ch == close {
                    if text[i..].starts_with(close) {
                        s.push(close);
                        i += 1;
                    } else {
                        break;
                    }
                } else {
                    s.push(ch);
                }
            }
            out.push((Tok::Quoted(s), start));
        } else if c == b'\'' || ((c == b'N' || c == b'n') && b.get(i + 1) == Some(&b'\'')) {
            i += if c == b'\'' { 1 } else { 2 };
            let mut s = String::new();
            loop {
                let ch = text[i..].chars().next().ok_or(start)?;
                i += ch.len_utf8();
                if ch == '\'' {
                    if text[i..].starts_with('\'') {
                        s.push('\'');
                        i += 1;
                    } else {
                        break;
                    }
                } else {
                    s.push(ch);
                }
            }
            out.push((Tok::Str(s), start));
        } else if c == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
            i += 2;
            let h0 = i;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            let hex = &text[h0..i];
            // SQL Server pads an odd digit count on the left.
            let padded = if !hex.len().is_multiple_of(2) {
                format!("0{hex}")
            } else {
                hex.to_string()
            };
            let bytes = (0..padded.len())
                .step_by(2)
                .map(|k| u8::from_str_radix(&padded[k..k + 2], 16).map_err(|_| start))
                .collect::<Result<Vec<u8>, usize>>()?;
            out.push((Tok::Hex(bytes), start));
        } else if c.is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push((Tok::Int(text[start..i].parse().map_err(|_| start)?), start));
        } else if c == b'@' && b.get(i + 1) == Some(&b'@') {
            i += 2;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Var(text[start..i].to_ascii_uppercase()), start));
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'#' || !c.is_ascii() {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || matches!(b[i], b'_' | b'#' | b'$' | b'@')
                    || !b[i].is_ascii())
            {
                i += 1;
            }
            out.push((Tok::Word(text[start..i].to_string()), start));
        } else if "(),;=.*+-".contains(char::from(c)) {
            out.push((Tok::Punct(char::from(c)), start));
            i += 1;
        } else {
            return Err(start);
        }
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<Spanned>,
    pos: usize,
}

const STATEMENT_STARTS: &[&str] = &["SELECT", "CREATE", "ALTER", "GRANT", "DROP", "SET"];

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.0.clone());
        self.pos += usize::from(t.is_some());
        t
    }

    fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
        matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if Self::is_kw(self.peek(), kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Option<()> {
        self.eat_kw(kw).then_some(())
    }

    fn eat_punct(&mut self, p: char) -> bool {
        if self.peek() == Some(&Tok::Punct(p)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Option<String> {
        match self.next()? {
            Tok::Word(w) | Tok::Quoted(w) => Some(w),
            _ => None,
        }
    }

    /// Whether the current statement is over: end of batch, `;`, or the start of the next statement.
    fn at_statement_end(&self) -> bool {
        match self.peek() {
            None | Some(Tok::Punct(';')) => true,
            Some(Tok::Word(w)) => STATEMENT_STARTS.iter().any(|k| w.eq_ignore_ascii_case(k)),
            _ => false,
        }
    }

    fn statement(&mut self) -> Option<Statement> {
        let kw = match self.next()? {
            Tok::Word(w) => w.to_ascii_uppercase(),
            _ => return None,
        };
        let st = match kw.as_str() {
            "SELECT" => self.select()?,
            "CREATE" => {
                self.expect_kw("USER")?;
                let name = self.name()?;
                if self.eat_kw("FROM") {
                    self.expect_kw("EXTERNAL")?;
                    self.expect_kw("PROVIDER")?;
                    Statement::CreateUserFromExternalProvider { name }
                } else {
                    self.expect_kw("WITH")?;
                    let (mut sid, mut ty) = (None, None);
                    loop {
                        if self.eat_kw("SID") {
                            self.eat_punct('=').then_some(())?;
                            match self.next()? {
                                Tok::Hex(h) => sid = Some(h),
                                _ => return None,
                            }
                        } else if self.eat_kw("TYPE") {
                            self.eat_punct('=').then_some(())?;
                            ty = match self.name()?.to_ascii_uppercase().as_str() {
                                "E" => Some(UserType::External),
                                "X" => Some(UserType::ExternalGroup),
                                _ => return None,
                            };
                        } else {
                            return None;
                        }
                        if !self.eat_punct(',') {
                            break;
                        }
                    }
                    Statement::CreateUserWithSid {
                        name,
                        sid: sid?,
                        user_type: ty?,
                    }
                }
            }
            "ALTER" => {
                self.expect_kw("ROLE")?;
                let role = self.name()?;
                let add = if self.eat_kw("ADD") {
                    true
                } else {
                    self.expect_kw("DROP")?;
                    false
                };
                self.expect_kw("MEMBER")?;
                Statement::AlterRole {
                    role,
                    add,
                    member: self.name()?,
                }
            }
            "GRANT" => {
                for kw in ["VIEW", "ANY", "COLUMN"] {
                    self.expect_kw(kw)?;
                }
                let grant = if self.eat_kw("MASTER") {
                    Grant::ViewAnyColumnMasterKeyDefinition
                } else {
                    self.expect_kw("ENCRYPTION")?;
                    Grant::ViewAnyColumnEncryptionKeyDefinition
                };
                self.expect_kw("KEY")?;
                self.expect_kw("DEFINITION")?;
                self.expect_kw("TO")?;
                let mut to = vec![self.name()?];
                while self.eat_punct(',') {
                    to.push(self.name()?);
                }
                Statement::Grant { grant, to }
            }
            "DROP" => {
                self.expect_kw("USER")?;
                let if_exists = if self.eat_kw("IF") {
                    self.expect_kw("EXISTS")?;
                    true
                } else {
                    false
                };
                Statement::DropUser {
                    name: self.name()?,
                    if_exists,
                }
            }
            "SET" => {
                match self.next()? {
                    Tok::Word(_) => {}
                    _ => return None,
                }
                match self.next()? {
                    Tok::Word(w)
                        if w.eq_ignore_ascii_case("ON") || w.eq_ignore_ascii_case("OFF") => {}
                    Tok::Int(_) | Tok::Punct('-') => {
                        self.eat_int();
                    }
                    _ => return None,
                }
                Statement::Set
            }
            _ => return None,
        };
        self.at_statement_end().then_some(st)
    }

    fn eat_int(&mut self) {
        if matches!(self.peek(), Some(Tok::Int(_))) {
            self.pos += 1;
        }
    }

    fn select(&mut self) -> Option<Statement> {
        let mut cols = Vec::new();
        loop {
            let expr = self.expr()?;
            let alias = if self.eat_kw("AS") {
                self.name()?
            } else {
                match self.peek() {
                    Some(Tok::Quoted(_)) => self.name()?,
                    Some(Tok::Word(w))
                        if !STATEMENT_STARTS.iter().any(|k| w.eq_ignore_ascii_case(k)) =>
                    {
                        self.name()?
                    }
                    _ => String::new(),
                }
            };
            cols.push((expr, alias));
            if !self.eat_punct(',') {
                return Some(Statement::Select(cols));
            }
        }
    }

    fn expr(&mut self) -> Option<Expr> {
        let negative = self.eat_punct('-');
        match self.next()? {
            Tok::Int(v) => {
                let v = if negative { -v } else { v };
                Some(Expr::Int(i32::try_from(v).ok()?))
            }
            Tok::Var(v) if !negative => match v.as_str() {
                "@@VERSION" => Some(Expr::Version),
                "@@SPID" => Some(Expr::Spid),
                _ => None,
            },
            Tok::Word(w) if !negative => {
                let f = w.to_ascii_uppercase();
                self.eat_punct('(').then_some(())?;
                let e = match f.as_str() {
                    "SUSER_SNAME" | "SUSER_NAME" | "ORIGINAL_LOGIN" => Expr::SuserSname,
                    "USER_NAME" | "CURRENT_USER" => Expr::UserName,
                    "DB_NAME" => Expr::DbName,
                    "IS_ROLEMEMBER" => match self.next()? {
                        Tok::Str(role) => Expr::IsRoleMember(role),
                        _ => return None,
                    },
                    _ => return None,
                };
                self.eat_punct(')').then_some(e)
            }
            _ => None,
        }
    }

    /// The text of the statement starting at token `from`, up to the next `;`, shortened for messages.
    fn statement_text(&self, from: usize) -> String {
        let start = self.toks.get(from).map_or(self.text.len(), |t| t.1);
        let rest = &self.text[start..];
        let end = rest.find(';').unwrap_or(rest.len());
        shorten(rest[..end].trim())
    }
}

fn shorten(s: &str) -> String {
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() > 120 {
        let mut t: String = collapsed.chars().take(117).collect();
        t.push_str("...");
        t
    } else {
        collapsed
    }
}

/// Parses a whole batch. An empty batch (only whitespace, comments or `;`) gives no statements.
pub(crate) fn parse(text: &str) -> Result<Vec<Statement>, Unsupported> {
    let toks = tokenize(text).map_err(|at| Unsupported {
        statement: shorten(&text[at..]),
    })?;
    let mut p = Parser { text, toks, pos: 0 };
    let mut out = Vec::new();
    loop {
        while p.eat_punct(';') {}
        if p.peek().is_none() {
            return Ok(out);
        }
        let start = p.pos;
        match p.statement() {
            Some(st) => out.push(st),
            None => {
                return Err(Unsupported {
                    statement: p.statement_text(start),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Statement {
        let mut v = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
        assert_eq!(v.len(), 1, "{text:?}");
        v.remove(0)
    }

    #[test]
    fn selects() {
        assert_eq!(
            one("select 1"),
            Statement::Select(vec![(Expr::Int(1), String::new())])
        );
        assert_eq!(
            one("  SELECT   suser_sname ( ) ;"),
            Statement::Select(vec![(Expr::SuserSname, String::new())])
        );
        assert_eq!(
            one("SELECT USER_NAME() AS [who], @@version v, IS_ROLEMEMBER(N'db_owner')"),
            Statement::Select(vec![
                (Expr::UserName, "who".into()),
                (Expr::Version, "v".into()),
                (Expr::IsRoleMember("db_owner".into()), String::new()),
            ])
        );
    }

    #[test]
    fn grant_workflow() {
        let batch = "CREATE USER [my app]]x] WITH SID = 0x0A0b, TYPE = E\n\
                     ALTER ROLE db_datareader ADD MEMBER [my app]]x];\n\
                     -- a comment\n\
                     GRANT VIEW ANY COLUMN MASTER KEY DEFINITION TO [my app]]x]\n\
                     /* block */ DROP USER IF EXISTS \"other\"";
        let v = parse(batch).unwrap();
        assert_eq!(
            v,
            vec![
                Statement::CreateUserWithSid {
                    name: "my app]x".into(),
                    sid: vec![0x0A, 0x0B],
                    user_type: UserType::External
                },
                Statement::AlterRole {
                    role: "db_datareader".into(),
                    add: true,
                    member: "my app]x".into()
                },
                Statement::Grant {
                    grant: Grant::ViewAnyColumnMasterKeyDefinition,
                    to: vec!["my app]x".into()]
                },
                Statement::DropUser {
                    name: "other".into(),
                    if_exists: true
                },
            ]
        );
        assert_eq!(
            one("create user [g] from external provider"),
            Statement::CreateUserFromExternalProvider { name: "g".into() }
        );
    }

    #[test]
    fn unsupported_names_the_statement() {
        let e = parse("SELECT 1; SELECT * FROM sys.tables; SELECT 2").unwrap_err();
        assert_eq!(e.statement, "SELECT * FROM sys.tables");
        assert!(parse("SELECT 1 FROM t").is_err());
        assert!(parse("CREATE USER [x] WITH SID = 0x01").is_err());
        assert!(parse("[unterminated").is_err());
        assert!(parse("SELECT 99999999999999999999999").is_err());
        assert_eq!(parse(" ; ;-- nothing").unwrap(), vec![]);
    }
}
