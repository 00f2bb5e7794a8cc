//! The dial plan: E.164 normalisation of dialled numbers, classification (emergency,
//! national, international, premium), per-user permissions and the trunks a call may leave
//! through.

use super::config::DialplanSection;

/// What a dialled number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An emergency number (always allowed, routed first).
    Emergency,
    /// Within the country.
    National,
    /// Abroad.
    International,
    /// Premium rate.
    Premium,
}

impl Class {
    /// The permission name of the class.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Emergency => "emergency",
            Class::National => "national",
            Class::International => "international",
            Class::Premium => "premium",
        }
    }
}

/// The decision for one dialled number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send it out: the number to put in the Request-URI, its class and the trunks in order.
    Route {
        /// E.164 (`+4940123456`), or the emergency number as dialled.
        number: String,
        /// Its class.
        class: Class,
        /// Trunk names, tried in order.
        trunks: Vec<String>,
    },
    /// The caller may not call this class of number.
    Forbidden {
        /// The normalised number.
        number: String,
        /// Its class.
        class: Class,
    },
    /// No route serves the number (or it cannot be normalised).
    NoRoute {
        /// What was dialled.
        number: String,
    },
}

/// Whether `s` looks like a telephone number: digits, optionally a leading `+`, with the
/// visual separators `-`, `.`, `(`, `)` and space allowed.
pub fn is_number(s: &str) -> bool {
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            any = true;
        } else if !"-.() ".contains(c) {
            return false;
        }
    }
    any
}

/// The number without visual separators (RFC 3966 5.1.1), `+` kept.
pub fn strip_visual(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect()
}

/// The compiled dial plan.
#[derive(Debug, Clone, Default)]
pub struct DialPlan {
    cfg: DialplanSection,
    trunk_names: Vec<String>,
}

impl DialPlan {
    /// A dial plan over the configured trunks (their names, in config order).
    pub fn new(cfg: DialplanSection, trunk_names: Vec<String>) -> Self {
        DialPlan { cfg, trunk_names }
    }

    /// The configuration.
    pub fn config(&self) -> &DialplanSection {
        &self.cfg
    }

    /// E.164 form of a dialled number: `00...` -> `+...`, `0...` -> `+<cc>...`, a number
    /// without prefix -> `+<cc><area>...` (with an area code configured), `+...` as is.
    pub fn normalize(&self, dialled: &str) -> Option<String> {
        let d = strip_visual(dialled);
        if let Some(rest) = d.strip_prefix('+') {
            return (!rest.is_empty() && !rest.contains('+')).then(|| d.clone());
        }
        if d.contains('+') || d.is_empty() {
            return None;
        }
        let c = &self.cfg;
        if !c.international_prefix.is_empty()
            && let Some(rest) = d.strip_prefix(&c.international_prefix)
        {
            return (!rest.is_empty()).then(|| format!("+{rest}"));
        }
        if !c.national_prefix.is_empty()
            && let Some(rest) = d.strip_prefix(&c.national_prefix)
        {
            return (!rest.is_empty()).then(|| format!("+{}{rest}", c.country_code));
        }
        if !c.area_code.is_empty() {
            return Some(format!("+{}{}{d}", c.country_code, c.area_code));
        }
        None
    }

    /// The class of a normalised number.
    pub fn classify(&self, e164: &str) -> Class {
        if self
            .cfg
            .premium
            .iter()
            .any(|p| e164.starts_with(p.as_str()))
        {
            Class::Premium
        } else if e164.starts_with(&format!("+{}", self.cfg.country_code)) {
            Class::National
        } else {
            Class::International
        }
    }

    /// Whether `user` may call numbers of `class`.
    pub fn allowed(&self, user: &str, class: Class) -> bool {
        if class == Class::Emergency {
            return true;
        }
        let list = self
            .cfg
            .permissions
            .get(user)
            .unwrap_or(&self.cfg.default_permissions);
        list.iter().any(|c| c == class.as_str())
    }

    /// What to do with `dialled` from `user`.
    pub fn decide(&self, user: &str, dialled: &str) -> Decision {
        let raw = strip_visual(dialled);
        // Emergency numbers first: as dialled, through every trunk, always allowed.
        if self.cfg.emergency.contains(&raw) {
            return Decision::Route {
                number: raw,
                class: Class::Emergency,
                trunks: self.trunk_names.clone(),
            };
        }
        let Some(number) = self.normalize(dialled) else {
            return Decision::NoRoute { number: raw };
        };
        let class = self.classify(&number);
        if !self.allowed(user, class) {
            return Decision::Forbidden { number, class };
        }
        let route = self
            .cfg
            .routes
            .iter()
            .filter(|r| number.starts_with(r.prefix.as_str()))
            .max_by_key(|r| r.prefix.len());
        match route {
            Some(r) => Decision::Route {
                number,
                class,
                trunks: r.trunks.clone(),
            },
            None => Decision::NoRoute { number },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pstn::config::RouteEntry;

    fn plan() -> DialPlan {
        let cfg = DialplanSection {
            area_code: "40".into(),
            routes: vec![
                RouteEntry {
                    prefix: "+".into(),
                    trunks: vec!["b".into()],
                },
                RouteEntry {
                    prefix: "+49".into(),
                    trunks: vec!["a".into(), "b".into()],
                },
            ],
            permissions: [(
                "1001".to_owned(),
                vec!["national".to_owned(), "international".to_owned()],
            )]
            .into_iter()
            .collect(),
            ..DialplanSection::default()
        };
        DialPlan::new(cfg, vec!["a".into(), "b".into()])
    }

    #[test]
    fn normalizes_to_e164() {
        let p = plan();
        assert_eq!(p.normalize("004420794960").as_deref(), Some("+4420794960"));
        assert_eq!(p.normalize("030 1234-56").as_deref(), Some("+4930123456"));
        assert_eq!(p.normalize("123456").as_deref(), Some("+4940123456"));
        assert_eq!(
            p.normalize("+1 (201) 555-0123").as_deref(),
            Some("+12015550123")
        );
        assert_eq!(p.normalize("00"), None);
        assert_eq!(p.normalize("+"), None);
        assert!(is_number("+49 40 123"));
        assert!(!is_number("alice"));
        assert!(!is_number("+"));
    }

    #[test]
    fn classes_permissions_and_routes() {
        let p = plan();
        assert_eq!(
            p.decide("1000", "0301234"),
            Decision::Route {
                number: "+49301234".into(),
                class: Class::National,
                trunks: vec!["a".into(), "b".into()]
            }
        );
        // Toll fraud: 1000 has only the default (internal, national).
        assert_eq!(
            p.decide("1000", "00442079"),
            Decision::Forbidden {
                number: "+442079".into(),
                class: Class::International
            }
        );
        assert!(matches!(
            p.decide("1001", "00442079"),
            Decision::Route { class: Class::International, ref trunks, .. } if trunks == &["b"]
        ));
        assert!(matches!(
            p.decide("1001", "0900123"),
            Decision::Forbidden {
                class: Class::Premium,
                ..
            }
        ));
        // Emergency: always, every trunk, as dialled.
        assert_eq!(
            p.decide("nobody", "112"),
            Decision::Route {
                number: "112".into(),
                class: Class::Emergency,
                trunks: vec!["a".into(), "b".into()]
            }
        );
        let mut no_routes = plan();
        no_routes.cfg.routes.clear();
        assert!(matches!(
            no_routes.decide("1001", "0301234"),
            Decision::NoRoute { .. }
        ));
    }
}
