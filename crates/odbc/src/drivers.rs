//! The driver manager's driver list, read on an environment handle of our own.
//!
//! odbc-api 29.3's `Environment::drivers` sizes the attribute buffer to the exact length SQLDrivers
//! reports, and unixODBC 2.3.11 then writes the list's final terminating NUL one byte past it
//! (measured with valgrind: "Invalid write of size 1 in SQLDrivers"); its attribute parser also
//! panics on an attribute without `=`. So this module asks SQLDrivers itself, with room to spare,
//! and parses leniently.

use odbc_api::handles::{self, SqlChar, SqlResult};
use odbc_api::sys::{AttrOdbcVersion, FetchOrientation};

use crate::error::Error;

/// A fresh ODBC 3.80 environment handle (not odbc-api's shared one: this one is ours alone, so no
/// other thread iterates over its driver list or reads its diagnostics).
pub(crate) fn raw_environment() -> Result<handles::Environment, Error> {
    let env = match handles::Environment::new() {
        SqlResult::Success(env) | SqlResult::SuccessWithInfo(env) => env,
        _ => {
            return Err(Error::Environment {
                message: "SQLAllocHandle(SQL_HANDLE_ENV) failed".to_owned(),
            })
        }
    };
    if let SqlResult::Error { .. } = env.declare_version(AttrOdbcVersion::Odbc3_80) {
        return Err(Error::Environment {
            message: "the driver manager refused ODBC version 3.80".to_owned(),
        });
    }
    Ok(env)
}

/// One driver: its name and its attributes (`Driver=/path/lib.so`, `UsageCount=1`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DriverEntry {
    pub(crate) name: String,
    pub(crate) attributes: Vec<(String, String)>,
}

/// `key=value\0key=value\0\0`; entries without `=` are skipped.
fn parse_attributes(raw: &str) -> Vec<(String, String)> {
    raw.split('\0')
        .take_while(|kv| !kv.is_empty())
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// Every registered driver.
pub(crate) fn drivers() -> Result<Vec<DriverEntry>, Error> {
    let env = raw_environment()?;
    let fail = |what: &str| Error::Environment {
        message: format!("SQLDrivers failed while {what}"),
    };
    // SAFETY (all calls below): `env` is a local handle no other thread can reach, so nothing else
    // iterates over its driver list; every buffer passed to SQLDrivers is a live Vec whose length
    // is given in characters, as the function expects.
    #[allow(unsafe_code)]
    let (max_desc, max_attr) = {
        let mut max_desc = 0i16;
        let mut max_attr = 0i16;
        let mut direction = FetchOrientation::First;
        loop {
            match unsafe { env.drivers_buffer_len(direction) } {
                SqlResult::Success((d, a)) | SqlResult::SuccessWithInfo((d, a)) => {
                    max_desc = max_desc.max(d);
                    max_attr = max_attr.max(a);
                }
                SqlResult::NoData => break,
                _ => return Err(fail("measuring the driver list")),
            }
            direction = FetchOrientation::Next;
        }
        (max_desc, max_attr)
    };
    // Room for the terminating NULs unixODBC writes (two after the attribute list), plus slack.
    let mut desc: Vec<SqlChar> = vec![0; usize::try_from(max_desc).unwrap_or(0) + 16];
    let mut attr: Vec<SqlChar> = vec![0; usize::try_from(max_attr).unwrap_or(0) + 16];
    let mut out = Vec::new();
    let mut direction = FetchOrientation::First;
    loop {
        desc.iter_mut().for_each(|c| *c = 0);
        attr.iter_mut().for_each(|c| *c = 0);
        #[allow(unsafe_code)]
        let filled = unsafe { env.drivers_buffer_fill(direction, &mut desc, &mut attr) };
        match filled {
            SqlResult::Success(()) | SqlResult::SuccessWithInfo(()) => {}
            SqlResult::NoData => break,
            _ => return Err(fail("reading the driver list")),
        }
        let name_len = desc.iter().position(|c| *c == 0).unwrap_or(desc.len());
        let name = handles::slice_to_cow_utf8(&desc[..name_len]).into_owned();
        let attributes = parse_attributes(&handles::slice_to_cow_utf8(&attr));
        out.push(DriverEntry { name, attributes });
        direction = FetchOrientation::Next;
    }
    Ok(out)
}

/// The driver's library path as registered with the driver manager (its `Driver=` attribute), if
/// a driver called `name` (any case) is registered.
pub fn driver_library(name: &str) -> Result<Option<String>, Error> {
    Ok(drivers()?
        .into_iter()
        .find(|d| d.name.eq_ignore_ascii_case(name))
        .and_then(|d| {
            d.attributes
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Driver"))
                .map(|(_, v)| v)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_parse_leniently() {
        let raw = "Description=Microsoft ODBC Driver 18\0Driver=/opt/lib/libmsodbcsql-18.6.so.2.1\0junk\0UsageCount=1\0\0garbage";
        assert_eq!(
            parse_attributes(raw),
            vec![
                (
                    "Description".to_owned(),
                    "Microsoft ODBC Driver 18".to_owned()
                ),
                (
                    "Driver".to_owned(),
                    "/opt/lib/libmsodbcsql-18.6.so.2.1".to_owned()
                ),
                ("UsageCount".to_owned(), "1".to_owned()),
            ]
        );
        assert!(parse_attributes("").is_empty());
    }
}
