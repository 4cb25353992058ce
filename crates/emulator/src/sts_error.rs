//! Error answers shaped like Entra's token service (`error`, `error_description` with the AADSTS code,
//! `error_codes`, trace and correlation ids).

use std::time::{SystemTime, UNIX_EPOCH};

/// An OAuth error answer of the token service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsError {
    /// The HTTP status.
    pub status: u16,
    /// The OAuth `error`, e.g. `invalid_client`.
    pub error: &'static str,
    /// The AADSTS code, e.g. 7000215.
    pub code: u32,
    /// The description without the `AADSTS<code>: ` prefix and trailer.
    pub description: String,
    /// Entra's `suberror` (e.g. `basic_action` for MFA).
    pub suberror: Option<&'static str>,
}

impl StsError {
    /// A new error.
    pub fn new(status: u16, error: &'static str, code: u32, description: &str) -> StsError {
        StsError {
            status,
            error,
            code,
            description: description.to_owned(),
            suberror: None,
        }
    }

    /// `invalid_client` (401).
    pub fn invalid_client(code: u32, description: &str) -> StsError {
        StsError::new(401, "invalid_client", code, description)
    }

    /// `invalid_request` (400).
    pub fn invalid_request(code: u32, description: &str) -> StsError {
        StsError::new(400, "invalid_request", code, description)
    }

    /// A missing form parameter (AADSTS900144).
    pub fn missing(param: &str) -> StsError {
        StsError::invalid_request(
            900144,
            &format!("The request body must contain the following parameter: '{param}'."),
        )
    }

    /// An internal failure (500).
    pub fn server(description: &str) -> StsError {
        StsError::new(500, "server_error", 90100, description)
    }

    /// The JSON body, compact, in Entra's shape.
    pub fn to_json(&self) -> String {
        let trace = uuid::Uuid::new_v4();
        let correlation = uuid::Uuid::new_v4();
        let timestamp = format_timestamp(SystemTime::now());
        let mut body = serde_json::json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace.to_string(),
            "correlation_id": correlation.to_string(),
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        if let (Some(sub), Some(map)) = (self.suberror, body.as_object_mut()) {
            map.insert("suberror".to_owned(), serde_json::Value::from(sub));
        }
        body.to_string()
    }
}

/// `YYYY-MM-DD hh:mm:ssZ`, as Entra writes its timestamps.
pub(crate) fn format_timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamp_and_shape() {
        assert_eq!(
            format_timestamp(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14 22:13:20Z"
        );
        assert_eq!(format_timestamp(UNIX_EPOCH), "1970-01-01 00:00:00Z");
        let json = StsError::invalid_client(7000215, "Invalid client secret provided.").to_json();
        assert!(
            json.starts_with(r#"{"correlation_id":"#)
                || json.contains(r#""error":"invalid_client""#),
            "{json}"
        );
        assert!(json.contains(r#""error_codes":[7000215]"#), "{json}");
        assert!(
            json.contains("AADSTS7000215: Invalid client secret provided."),
            "{json}"
        );
        assert!(!json.contains(": \""), "not compact: {json}");
    }
}
