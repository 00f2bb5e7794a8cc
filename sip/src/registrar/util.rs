//! Small helpers of the registrar: SIP-date, URI equivalence, q-values.

use crate::message::{Param, Uri};

/// An RFC 1123 date in GMT (RFC 3261 20.17) for seconds since the Unix epoch.
pub fn sip_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let weekday = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let month_name = MONTHS
        .get(usize::try_from(month - 1).unwrap_or(0))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday}, {day:02} {month_name} {year} {:02}:{:02}:{:02} GMT",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Parses a q-value (`0`, `0.5`, `1.000`; RFC 3261 20.10) into thousandths.
pub fn parse_q(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, c) in frac.chars().enumerate() {
        let digit = u16::try_from(c.to_digit(10)?).ok()?;
        thousandths += digit * [100, 10, 1].get(i).copied().unwrap_or(0);
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Prints thousandths as a q-value.
pub fn format_q(q: u16) -> String {
    if q >= 1000 {
        "1".to_owned()
    } else {
        let s = format!("0.{q:03}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b.get(i) == Some(&b'%')
            && let Some(h) = b.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(h), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        if let Some(c) = b.get(i) {
            out.push(*c);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn param_value<'a>(params: &'a [Param], name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value.as_deref())
}

/// URI equivalence of RFC 3261 19.1.4 (sip/sips); other schemes compare as text.
pub fn uri_equivalent(a: &Uri, b: &Uri) -> bool {
    let (Uri::Sip(x), Uri::Sip(y)) = (a, b) else {
        return a.to_string().eq_ignore_ascii_case(&b.to_string());
    };
    if x.secure != y.secure
        || x.userinfo.as_deref().map(unescape) != y.userinfo.as_deref().map(unescape)
        || !x.host.eq_ignore_ascii_case(&y.host)
        || x.port != y.port
    {
        return false;
    }
    // user, ttl, method, maddr and transport must match when present in either.
    for name in ["user", "ttl", "method", "maddr", "transport"] {
        let (pa, pb) = (param_value(&x.params, name), param_value(&y.params, name));
        match (pa, pb) {
            (None, None) => {}
            (Some(va), Some(vb)) => {
                if !va.unwrap_or("").eq_ignore_ascii_case(vb.unwrap_or("")) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    // Other parameters present in both must match.
    for p in &x.params {
        if let Some(vb) = param_value(&y.params, &p.name)
            && !p
                .value
                .as_deref()
                .unwrap_or("")
                .eq_ignore_ascii_case(vb.unwrap_or(""))
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(sip_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // RFC 3261 20.17's example date.
        assert_eq!(sip_date(1_289_690_940), "Sat, 13 Nov 2010 23:29:00 GMT");
        assert_eq!(sip_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.001"), Some(1));
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q("x"), None);
        assert_eq!(format_q(500), "0.5");
        assert_eq!(format_q(1000), "1");
        assert_eq!(format_q(0), "0");
    }

    #[test]
    fn uri_equivalence_rfc3261_examples() {
        let eq =
            |a: &str, b: &str| uri_equivalent(&Uri::parse(a).unwrap(), &Uri::parse(b).unwrap());
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com;newparam=5",
            "sip:carol@chicago.com;security=on"
        ));
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq("sip:carol@chicago.com", "sips:carol@chicago.com"));
    }
}
