//! `ctl/policy`: the grammar of policy requests. Parsing checks every value (through the
//! model's rules) before anything is looked up or changed.

use crate::model::names::{
    invalid_name, is_valid_instance_name, is_valid_new_name, MAX_NEW_NAME_LEN,
};
use crate::model::policy::{
    parse_count, parse_time_zone, parse_times, parse_weekdays, DaysSpec, Keep, PolicyChange,
    PolicyError, MAX_EVERY_DAYS, MAX_KEEP,
};

use super::grammar::{boolean, instance_name, parse_words, ControlError, Fields, Result};

/// Quotas a `settings` request may set are at most this.
pub const MAX_QUOTA: u32 = 99_999;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRequest {
    Create {
        name: String,
        change: PolicyChange,
    },
    Update {
        name: String,
        change: PolicyChange,
    },
    Delete {
        name: String,
    },
    Enable {
        name: String,
    },
    Disable {
        name: String,
    },
    Bind {
        name: String,
        instance: String,
    },
    Unbind {
        instance: String,
    },
    RunNow {
        name: String,
        instance: Option<String>,
    },
    Settings(SettingsChange),
}

impl PolicyRequest {
    /// The verb that asked for it.
    pub fn verb(&self) -> &'static str {
        match self {
            PolicyRequest::Create { .. } => "create",
            PolicyRequest::Update { .. } => "update",
            PolicyRequest::Delete { .. } => "delete",
            PolicyRequest::Enable { .. } => "enable",
            PolicyRequest::Disable { .. } => "disable",
            PolicyRequest::Bind { .. } => "bind",
            PolicyRequest::Unbind { .. } => "unbind",
            PolicyRequest::RunNow { .. } => "run-now",
            PolicyRequest::Settings(_) => "settings",
        }
    }

    /// The instance it names, if it names one.
    pub fn instance(&self) -> Option<&str> {
        match self {
            PolicyRequest::Bind { instance, .. } | PolicyRequest::Unbind { instance } => {
                Some(instance)
            }
            PolicyRequest::RunNow { instance, .. } => instance.as_deref(),
            _ => None,
        }
    }
}

/// `settings`: quotas and write-once; `None` leaves a value as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    pub max_policies: Option<u32>,
    pub max_instances_per_policy: Option<u32>,
    pub write_once: Option<bool>,
}

fn invalid(e: PolicyError) -> ControlError {
    ControlError::invalid(e.0)
}

fn policy_name(value: String) -> Result<String> {
    if is_valid_instance_name(&value) {
        Ok(value)
    } else {
        Err(ControlError::invalid(invalid_name("policy", &value)))
    }
}

/// The schedule and retention keys of `create` and `update`.
fn change(f: &mut Fields) -> Result<PolicyChange> {
    let times = f
        .optional("times")?
        .map(|t| parse_times(&t))
        .transpose()
        .map_err(invalid)?;
    let weekdays = f.optional("weekdays")?;
    let every = f.optional("every-days")?;
    let days = match (weekdays, every) {
        (Some(_), Some(_)) => {
            return Err(ControlError::invalid(
                "give `weekdays=` or `every-days=`, not both",
            ))
        }
        (Some(w), None) => Some(DaysSpec::Weekdays(parse_weekdays(&w).map_err(invalid)?)),
        (None, Some(n)) => Some(DaysSpec::EveryDays(
            parse_count("every-days", &n, MAX_EVERY_DAYS).map_err(invalid)?,
        )),
        (None, None) => None,
    };
    let mut keeps = Vec::new();
    if let Some(n) = f.optional("keep-days")? {
        keeps.push(Keep::Days(
            parse_count("keep-days", &n, MAX_KEEP).map_err(invalid)?,
        ));
    }
    if let Some(n) = f.optional("keep-count")? {
        keeps.push(Keep::Count(
            parse_count("keep-count", &n, MAX_KEEP).map_err(invalid)?,
        ));
    }
    if let Some(k) = f.optional("keep")? {
        if k != "forever" {
            return Err(ControlError::invalid(format!(
                "`keep={k}`: the only value is `forever` (or use keep-days=N / keep-count=N)"
            )));
        }
        keeps.push(Keep::Forever);
    }
    if keeps.len() > 1 {
        return Err(ControlError::invalid(
            "give one of keep-days=N, keep-count=N, keep=forever",
        ));
    }
    let time_zone = f.optional("tz")?;
    if let Some(tz) = &time_zone {
        parse_time_zone(tz).map_err(invalid)?;
    }
    Ok(PolicyChange {
        times,
        days,
        keep: keeps.pop(),
        time_zone,
        enabled: None,
    })
}

const CHANGE_KEYS: &str = "times, weekdays, every-days, keep-days, keep-count, keep, tz";

fn quota(key: &str, value: Option<String>) -> Result<Option<u32>> {
    value
        .map(|v| parse_count(key, &v, MAX_QUOTA).map_err(invalid))
        .transpose()
}

pub fn parse_policy(text: &str) -> Result<PolicyRequest> {
    let words = parse_words(text)?;
    let verb = words.verb.clone();
    let mut f = Fields::new(words);
    let name = |f: &mut Fields| f.required("name").and_then(policy_name);
    let req = match verb.as_deref() {
        Some("create") => {
            let name = name(&mut f)?;
            if !is_valid_new_name(&name) {
                return Err(ControlError::invalid(format!(
                    "policy name `{name}` is {} bytes long: a new policy's name has at most \
                     {MAX_NEW_NAME_LEN}",
                    name.len()
                )));
            }
            let mut change = change(&mut f)?;
            change.enabled = f
                .optional("enabled")?
                .map(|v| boolean("enabled", Some(v)))
                .transpose()?;
            f.finish(&format!("name, {CHANGE_KEYS}, enabled"))?;
            for (missing, what) in [
                (change.times.is_none(), "`times=HH:MM,..`"),
                (change.days.is_none(), "`weekdays=mon,..` or `every-days=N`"),
                (
                    change.keep.is_none(),
                    "`keep-days=N`, `keep-count=N` or `keep=forever`",
                ),
            ] {
                if missing {
                    return Err(ControlError::invalid(format!("a new policy needs {what}")));
                }
            }
            PolicyRequest::Create { name, change }
        }
        Some("update") => {
            let name = name(&mut f)?;
            let change = change(&mut f)?;
            f.finish(&format!("name, {CHANGE_KEYS}"))?;
            if change == PolicyChange::default() {
                return Err(ControlError::invalid(format!(
                    "`update` changes nothing: give one of {CHANGE_KEYS}"
                )));
            }
            PolicyRequest::Update { name, change }
        }
        Some(v @ ("delete" | "enable" | "disable")) => {
            let name = name(&mut f)?;
            f.finish("name")?;
            match v {
                "delete" => PolicyRequest::Delete { name },
                "enable" => PolicyRequest::Enable { name },
                _ => PolicyRequest::Disable { name },
            }
        }
        Some("bind") => {
            let name = name(&mut f)?;
            let instance = instance_name(f.required("instance")?)?;
            f.finish("name, instance")?;
            PolicyRequest::Bind { name, instance }
        }
        Some("unbind") => {
            let instance = instance_name(f.required("instance")?)?;
            f.finish("instance")?;
            PolicyRequest::Unbind { instance }
        }
        Some("run-now") => {
            let name = name(&mut f)?;
            let instance = f.optional("instance")?.map(instance_name).transpose()?;
            f.finish("name, instance")?;
            PolicyRequest::RunNow { name, instance }
        }
        Some("settings") => {
            let max_policies = quota("max-policies", f.optional("max-policies")?)?;
            let max_instances_per_policy = quota(
                "max-instances-per-policy",
                f.optional("max-instances-per-policy")?,
            )?;
            let write_once = f
                .optional("write-once")?
                .map(|v| boolean("write-once", Some(v)))
                .transpose()?;
            f.finish("max-policies, max-instances-per-policy, write-once")?;
            PolicyRequest::Settings(SettingsChange {
                max_policies,
                max_instances_per_policy,
                write_once,
            })
        }
        Some(other) => {
            return Err(ControlError::invalid(format!(
                "unknown verb `{other}` (create, update, delete, enable, disable, bind, unbind, run-now, settings)"
            )))
        }
        None => {
            return Err(ControlError::invalid(
                "start with a verb: create, update, delete, enable, disable, bind, unbind, run-now, settings",
            ))
        }
    };
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::Day;

    #[test]
    fn policy_requests_parse() {
        let r =
            parse_policy("create name=nightly times=03:00,15:00 weekdays=mon,wed,fri keep-days=7")
                .unwrap();
        let PolicyRequest::Create { name, change } = r else {
            panic!("create")
        };
        assert_eq!(name, "nightly");
        assert_eq!(change.times.unwrap().len(), 2);
        assert_eq!(
            change.days,
            Some(DaysSpec::Weekdays(vec![Day::Mon, Day::Wed, Day::Fri]))
        );
        assert_eq!(change.keep, Some(Keep::Days(7)));
        let r = parse_policy(
            "create name=hourly times=00:00,01:00,02:00 every-days=1 keep-count=24 tz=Europe/Berlin enabled=false",
        )
        .unwrap();
        let PolicyRequest::Create { change, .. } = r else {
            panic!("create")
        };
        assert_eq!(change.enabled, Some(false));
        assert_eq!(change.time_zone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(
            parse_policy("update name=nightly keep=forever").unwrap(),
            PolicyRequest::Update {
                name: "nightly".into(),
                change: PolicyChange {
                    keep: Some(Keep::Forever),
                    ..PolicyChange::default()
                }
            }
        );
        assert_eq!(
            parse_policy("bind name=nightly instance=redis-prod").unwrap(),
            PolicyRequest::Bind {
                name: "nightly".into(),
                instance: "redis-prod".into()
            }
        );
        assert_eq!(
            parse_policy("unbind instance=redis-prod").unwrap(),
            PolicyRequest::Unbind {
                instance: "redis-prod".into()
            }
        );
        assert_eq!(
            parse_policy("run-now name=nightly").unwrap(),
            PolicyRequest::RunNow {
                name: "nightly".into(),
                instance: None
            }
        );
        assert_eq!(
            parse_policy("settings max-policies=2 write-once=true").unwrap(),
            PolicyRequest::Settings(SettingsChange {
                max_policies: Some(2),
                max_instances_per_policy: None,
                write_once: Some(true)
            })
        );
        assert!(parse_policy(r#"{"op":"disable","name":"nightly"}"#).is_ok());
    }

    #[test]
    fn bad_policy_requests_are_refused_with_a_reason() {
        for (bad, reason) in [
            ("create name=n times=03:00 weekdays=mon", "keep"),
            (
                "create name=n times=03:00,03:30 weekdays=mon keep-days=1",
                "1 h apart",
            ),
            (
                "create name=n times=03:00 weekdays=mon every-days=2 keep-days=1",
                "not both",
            ),
            (
                "create name=n times=03:00 every-days=31 keep-days=1",
                "1 to 30",
            ),
            (
                "create name=n times=03:00 every-days=1 keep-days=100000",
                "1 to 99999",
            ),
            (
                "create name=n times=03:00 every-days=1 keep-count=0",
                "1 to 99999",
            ),
            (
                "create name=n times=03:00 every-days=1 keep-days=1 keep-count=2",
                "one of",
            ),
            (
                "create name=n times=03:00 every-days=1 keep=never",
                "forever",
            ),
            (
                "create name=n times=03:00 every-days=1 keep=forever tz=Moon/Base",
                "time zone",
            ),
            (
                "create name=n/x times=03:00 every-days=1 keep=forever",
                "policy name",
            ),
            (
                "create name=n times=25:00 every-days=1 keep=forever",
                "HH:MM",
            ),
            (
                "create name=n times=03:00 weekdays=funday keep=forever",
                "weekday",
            ),
            (
                "create name=n times=03:00 every-days=1 keep=forever colour=red",
                "unknown key",
            ),
            ("update name=n", "changes nothing"),
            ("bind name=n", "instance"),
            ("unbind name=n", "instance"),
            ("explode name=n", "unknown verb"),
            ("name=n", "verb"),
            ("settings max-policies=0", "1 to 99999"),
            ("settings write-once=perhaps", "true or false"),
        ] {
            let err = parse_policy(bad).expect_err(bad);
            assert_eq!(err.errno, libc::EINVAL, "{bad}");
            assert!(err.message.contains(reason), "{bad}: {}", err.message);
        }
    }
}
